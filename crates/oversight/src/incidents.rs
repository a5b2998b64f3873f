//! Incidents: how they read, and the owner's answers (acknowledge,
//! resolve). Opening and escalating are the detector loop's and the
//! timer's (`crate::engine`).

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use warden_evidence::{Record, RecordKind, time_from_micros};
use warden_model::{DeliveryState, IncidentState, Pack, Role};
use warden_store::{IncidentFilter, IncidentRow, NotificationRow, StateWrite};

use crate::error::OversightError;
use crate::{Oversight, now_us};

/// An incident as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentView {
    /// `inc_…`.
    pub id: String,
    /// `open`, `acknowledged`, `resolved`.
    #[schema(value_type = String, example = "open")]
    pub state: IncidentState,
    /// The playbook that opened it.
    pub playbook: String,
    /// Its detector.
    pub detector: String,
    /// `info`, `warning`, `high`, `critical`.
    pub severity: String,
    /// Person or team paged.
    pub owner: String,
    /// The person on call when it opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_call: Option<String>,
    /// One line.
    pub summary: String,
    /// Repeat triggers group by this key.
    pub dedup_key: String,
    /// Agent, tool, system, run, approval.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// Time of the first triggering event.
    pub first_event: String,
    /// Its evidence record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<i64>,
    /// When the detector fired.
    pub detected: String,
    /// Acknowledge by then (while open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledge_by: Option<String>,
    /// When it was acknowledged, and by whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
    /// Who acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// When it was resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// Who resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// Time to detect: first event → detection, ms.
    pub ttd_ms: i64,
    /// Time to acknowledge: detection → acknowledgement, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tta_ms: Option<i64>,
    /// Time to resolve: detection → resolution, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttr_ms: Option<i64>,
    /// Route paged last (0: the first).
    pub level: i64,
    /// Response windows missed.
    pub breaches: i64,
    /// Triggers grouped into it.
    pub triggers: i64,
    /// Findings, routes, actions taken.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// The drill whose traffic opened it (`drl_…`): a rehearsal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    /// The post-incident review, once written.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub review: Option<Value>,
    /// Its notifications (on `show`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationView>,
}

/// A notification of an incident step.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationView {
    /// `<incident>:<step>:<route>`.
    pub id: String,
    /// `opened`, `escalated-N`, `acknowledged`, `resolved`.
    pub step: String,
    /// The route.
    pub route: String,
    /// `webhook`, `slack`, `pagerduty`.
    pub kind: String,
    /// `pending`, `delivered`, `failed`.
    #[schema(value_type = String, example = "delivered")]
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i64,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was queued.
    pub queued: String,
    /// When it was delivered (or given up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done: Option<String>,
}

impl IncidentView {
    /// The view of `r`.
    pub fn from_row(r: &IncidentRow) -> Self {
        let detail: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
        Self {
            id: r.id.clone(),
            state: r.state,
            playbook: r.playbook.clone(),
            detector: r.detector.clone(),
            severity: r.severity.clone(),
            owner: r.owner.clone(),
            on_call: detail
                .get("on_call")
                .and_then(Value::as_str)
                .map(str::to_owned),
            summary: r.summary.clone(),
            dedup_key: r.dedup_key.clone(),
            subject: serde_json::from_str(&r.subject).unwrap_or(Value::Null),
            first_event: time_from_micros(r.first_event_us),
            first_seq: r.first_seq,
            detected: time_from_micros(r.detected_us),
            acknowledge_by: r
                .due_us
                .filter(|_| r.state == IncidentState::Open)
                .map(time_from_micros),
            acknowledged: r.acked_us.map(time_from_micros),
            acknowledged_by: r.acked_by.clone(),
            resolved: r.resolved_us.map(time_from_micros),
            resolved_by: r.resolved_by.clone(),
            ttd_ms: (r.detected_us - r.first_event_us).max(0) / 1000,
            tta_ms: r.acked_us.map(|a| (a - r.detected_us).max(0) / 1000),
            ttr_ms: r.resolved_us.map(|a| (a - r.detected_us).max(0) / 1000),
            level: r.level,
            breaches: r.breaches,
            triggers: r.triggers,
            drill: r.drill.clone(),
            review: detail.get("review").cloned(),
            detail,
            notifications: Vec::new(),
        }
    }
}

impl NotificationView {
    fn from_row(n: &NotificationRow) -> Self {
        Self {
            id: n.id.clone(),
            step: n.step.clone(),
            route: n.route.clone(),
            kind: n.kind.clone(),
            state: n.state,
            attempts: n.attempts,
            last_error: n.last_error.clone(),
            queued: time_from_micros(n.created_us),
            done: (n.state != DeliveryState::Pending).then(|| time_from_micros(n.updated_us)),
        }
    }
}

/// Every usable route of an incident's chain, in order (`detail.routes`).
pub(crate) fn chain_routes(r: &IncidentRow) -> Vec<String> {
    let detail: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
    detail
        .get("routes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The routes an incident paged so far (`detail.routes[..=level]`).
pub(crate) fn paged_routes(r: &IncidentRow) -> Vec<String> {
    let all = chain_routes(r);
    let n = usize::try_from(r.level + 1).unwrap_or(0).min(all.len());
    all.into_iter().take(n).collect()
}

/// A notification of `step` of `incident` to `route`, queued now.
pub(crate) fn queue(
    o: &Oversight,
    pack: &Pack,
    incident: &IncidentRow,
    step: &str,
    route: &str,
) -> Option<NotificationRow> {
    let kind = pack.routes.get(route)?.kind;
    let now = now_us();
    Some(NotificationRow {
        id: format!("{}:{step}:{route}", incident.id),
        incident_id: incident.id.clone(),
        step: step.to_owned(),
        route: route.to_owned(),
        kind: kind.as_str().to_owned(),
        payload: crate::routes::payload_for(kind, incident, step, &pack.name).to_string(),
        state: DeliveryState::Pending,
        attempts: 0,
        next_us: now,
        lease_us: None,
        last_error: None,
        created_us: now,
        updated_us: now,
    })
    .filter(|_| o.router().get(route).is_some())
}

/// The evidence record of an incident change.
pub(crate) fn record(kind: RecordKind, r: &IncidentRow, message: String, extra: Value) -> Record {
    let subject: Value = serde_json::from_str(&r.subject).unwrap_or(Value::Null);
    let mut rec = Record::new(kind);
    rec.agent = subject
        .get("agent")
        .and_then(Value::as_str)
        .map(str::to_owned);
    rec.tool = subject
        .get("tool")
        .and_then(Value::as_str)
        .map(str::to_owned);
    rec.run = subject
        .get("run")
        .and_then(Value::as_str)
        .map(str::to_owned);
    rec.code = Some(r.detector.clone());
    rec.message = Some(message);
    let mut d = json!({
        "incident": r.id,
        "playbook": r.playbook,
        "state": r.state,
        "severity": r.severity,
        "owner": r.owner,
    });
    if let (Value::Object(d), Value::Object(e)) = (&mut d, extra) {
        d.extend(e);
    }
    rec.detail = Some(d);
    rec
}

impl Oversight {
    /// Incidents, newest first.
    pub async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<IncidentView>, OversightError> {
        if let Some(s) = &f.state
            && !["open", "acknowledged", "resolved", "active"].contains(&s.as_str())
        {
            return Err(OversightError::InvalidQuery(format!(
                "unknown state `{s}`; expected open, acknowledged, resolved or active"
            )));
        }
        Ok(self
            .store()
            .incidents(f)
            .await?
            .iter()
            .map(IncidentView::from_row)
            .collect())
    }

    /// Incident `id` with its notifications.
    pub async fn incident(&self, id: &str) -> Result<IncidentView, OversightError> {
        let store = self.store();
        let row = store
            .incident(id)
            .await?
            .ok_or_else(|| OversightError::UnknownIncident(id.to_owned()))?;
        let mut v = IncidentView::from_row(&row);
        v.notifications = store
            .notifications_of(id)
            .await?
            .iter()
            .map(NotificationView::from_row)
            .collect();
        Ok(v)
    }

    /// Whether `person` may answer incident `r`: an operator, the owner,
    /// a member of the owning team, or the person on call.
    pub(crate) fn may_answer(pack: &Pack, person: &str, r: &IncidentRow) -> bool {
        let p = pack.people.get(person);
        let detail: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
        let team = p.and_then(|p| p.team.as_deref());
        p.is_some_and(|p| p.roles.contains(&Role::Operator))
            || r.owner == person
            || team == Some(r.owner.as_str())
            // The owner's teammates respond for them.
            || team.is_some()
                && pack.people.get(&r.owner).and_then(|o| o.team.as_deref()) == team
            || pack.teams.get(&r.owner).and_then(|t| t.owner.as_deref()) == Some(person)
            || detail.get("on_call").and_then(Value::as_str) == Some(person)
    }

    /// Acknowledges incident `id`: its escalation stops.
    pub async fn acknowledge(
        &self,
        id: &str,
        person: &str,
        note: Option<String>,
    ) -> Result<IncidentView, OversightError> {
        self.answer(id, person, note, false, false).await
    }

    /// Resolves incident `id` (open or acknowledged).
    pub async fn resolve(
        &self,
        id: &str,
        person: &str,
        note: Option<String>,
    ) -> Result<IncidentView, OversightError> {
        self.answer(id, person, note, true, false).await
    }

    /// Resolves an incident a drill opened and left open, as the drill
    /// (`by` = `drill:<id>`): the drill's clean-up, not a person's answer.
    pub async fn close_drill_incident(
        &self,
        id: &str,
        by: &str,
        note: String,
    ) -> Result<IncidentView, OversightError> {
        self.answer(id, by, Some(note), true, true).await
    }

    async fn answer(
        &self,
        id: &str,
        person: &str,
        note: Option<String>,
        resolve: bool,
        drill_cleanup: bool,
    ) -> Result<IncidentView, OversightError> {
        let _g = self.0.ops.lock().await;
        let engine = self.0.engine.current();
        let pack = engine.pack();
        let store = self.store();
        let mut r = store
            .incident(id)
            .await?
            .ok_or_else(|| OversightError::UnknownIncident(id.to_owned()))?;
        let what = if resolve { "resolve" } else { "acknowledge" };
        let drill_closing = drill_cleanup && r.drill.is_some();
        if !drill_closing && !Self::may_answer(pack, person, &r) {
            return Err(OversightError::NotResponder {
                person: person.to_owned(),
                what,
                id: id.to_owned(),
            });
        }
        match (r.state, resolve) {
            (IncidentState::Open, _) | (IncidentState::Acknowledged, true) => {}
            (state, _) => {
                return Err(OversightError::IncidentState {
                    id: id.to_owned(),
                    state,
                    why: if resolve {
                        "only an open or acknowledged incident can be resolved"
                    } else {
                        "only an open incident can be acknowledged"
                    },
                });
            }
        }
        let now = now_us();
        let (kind, step, message, extra) = if resolve {
            r.state = IncidentState::Resolved;
            r.resolved_us = Some(now);
            r.resolved_by = Some(person.to_owned());
            r.due_us = None;
            let ttr = (now - r.detected_us) / 1000;
            (
                RecordKind::IncidentResolved,
                "resolved",
                format!("incident {id} resolved by `{person}` after {}s", ttr / 1000),
                json!({ "by": person, "note": note, "ttr_ms": ttr }),
            )
        } else {
            r.state = IncidentState::Acknowledged;
            r.acked_us = Some(now);
            r.acked_by = Some(person.to_owned());
            r.due_us = None;
            let tta = (now - r.detected_us) / 1000;
            self.0.stats.acknowledged(tta as f64 / 1000.0);
            (
                RecordKind::IncidentAcknowledged,
                "acknowledged",
                format!(
                    "incident {id} acknowledged by `{person}` after {}s",
                    tta / 1000
                ),
                json!({ "by": person, "note": note, "tta_ms": tta }),
            )
        };
        r.updated_us = now;
        let key = (r.playbook.clone(), r.dedup_key.clone());
        if let Ok(mut a) = self.0.active.lock() {
            if let Some(x) = a.get(&key) {
                r.triggers += x.unsaved;
            }
            if resolve {
                a.remove(&key);
            } else if let Some(x) = a.get_mut(&key) {
                x.state = r.state;
                x.due_us = None;
                x.unsaved = 0;
            }
        }
        // Tell the routes already paged: PagerDuty and webhooks of both
        // steps (PagerDuty closes its own incident), Slack of resolution.
        let mut writes = vec![StateWrite::Incident(r.clone())];
        for route in paged_routes(&r) {
            let kind = pack.routes.get(&route).map(|x| x.kind);
            let tell = resolve || kind != Some(warden_model::RouteKind::Slack);
            if tell && let Some(n) = queue(self, pack, &r, step, &route) {
                writes.push(StateWrite::Notification(n));
            }
        }
        let queued = writes.len() > 1;
        let rec = record(kind, &r, message, extra);
        self.0.log.commit(vec![rec], writes).await?;
        if queued {
            self.0.outbox_wake.notify_one();
        }
        Ok(IncidentView::from_row(&r))
    }
}
