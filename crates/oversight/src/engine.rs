//! The detector loop (records → detectors → incidents and playbook
//! actions) and the timer (escalation of missed response windows, stuck
//! runs and approvals).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::broadcast;
use warden_evidence::{Record, RecordKind};
use warden_model::{Detector, IncidentState, Pack, PlaybookAction};
use warden_store::{ApprovalFilter, IncidentRow, StateWrite};

use crate::detect::{Detectors, Event, Subject, Trigger};
use crate::error::OversightError;
use crate::incidents::{chain_routes, queue, record};
use crate::{Active, Oversight, new_id, now_us, us};

/// Grouped triggers are written to the incident at most this often.
const SAVE_EVERY_US: i64 = 5_000_000;

/// A drill's detectors are dropped after this long without its traffic.
const DRILL_IDLE_US: i64 = 15 * 60 * 1_000_000;

pub(crate) async fn detector_loop(o: Oversight, mut rx: broadcast::Receiver<Arc<Record>>) {
    let mut engine = o.0.engine.current();
    let mut version = engine.pack().version.clone();
    let mut detectors = Detectors::new(engine.pack());
    let mut drills: HashMap<String, (Detectors, i64)> = HashMap::new();
    loop {
        let rec = match rx.recv().await {
            Ok(r) => r,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                o.0.stats
                    .events_missed
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    missed = n,
                    "oversight fell behind the event stream: some events were not seen by the detectors"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        if rec.kind == RecordKind::PackReloaded || engine.pack().version != version {
            let current = o.0.engine.current();
            if current.pack().version != version {
                engine = current;
                version = engine.pack().version.clone();
                detectors = Detectors::new(engine.pack());
                drills.clear();
                o.reload();
            }
        }
        let pack = engine.pack();
        let started = Instant::now();
        let event = Event::new(&rec, pack);
        // Drill traffic goes to detectors of its own: a rehearsal neither
        // adds to nor borrows from the windows of real traffic.
        let triggers = match rec.drill() {
            Some(d) => {
                let now = event.t;
                drills.retain(|_, (_, seen)| now - *seen < DRILL_IDLE_US);
                let (det, seen) = drills
                    .entry(d.to_owned())
                    .or_insert_with(|| (Detectors::new(pack), now));
                *seen = now;
                let mut ts = det.observe(&event, pack);
                for t in &mut ts {
                    t.drill = Some(d.to_owned());
                    t.dedup_key = format!("drill:{d}:{}", t.dedup_key);
                }
                ts
            }
            None => detectors.observe(&event, pack),
        };
        o.0.stats
            .event(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        for t in triggers {
            if let Err(e) = o.on_trigger(pack, t).await {
                tracing::error!(error = %e, "cannot record an incident");
            }
        }
    }
}

pub(crate) async fn timer_loop(o: Oversight) {
    let mut tick = tokio::time::interval(o.0.config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Stuck runs and approvals already reported: (key, last update).
    let mut seen: HashSet<(String, i64)> = HashSet::new();
    loop {
        tick.tick().await;
        let engine = o.0.engine.current();
        let pack = engine.pack();
        if let Err(e) = o.escalate_due(pack).await {
            tracing::error!(error = %e, "cannot escalate incidents");
        }
        if let Err(e) = o.sweep_stuck(pack, &mut seen).await {
            tracing::warn!(error = %e, "cannot look for stuck runs and approvals");
        }
        if let Err(e) = o.save_grouped().await {
            tracing::warn!(error = %e, "cannot save grouped triggers");
        }
    }
}

impl Oversight {
    /// Opens an incident for `t`, or groups it into the open one with the
    /// same playbook and dedup key.
    pub(crate) async fn on_trigger(&self, pack: &Pack, t: Trigger) -> Result<(), OversightError> {
        let Some(pb) = pack.playbooks.get(&t.playbook) else {
            return Ok(());
        };
        let mut t = t;
        if t.drill.is_some() {
            // Every page and view of it says so.
            t.summary = format!("DRILL: {}", t.summary);
        }
        self.0.stats.fired(&pb.id, pb.detector.kind());
        let _g = self.0.ops.lock().await;
        let key = (t.playbook.clone(), t.dedup_key.clone());
        let now = now_us();
        if let Ok(mut a) = self.0.active.lock()
            && let Some(x) = a.get_mut(&key)
        {
            x.unsaved += 1;
            x.last_trigger_us = now;
            return Ok(());
        }
        let id = new_id("inc")?;
        let owner = pack.incident_owner(
            pb,
            t.subject.workflow.as_deref(),
            t.subject.agent.as_deref(),
            t.subject.system.as_deref(),
        );
        let paging = pack.paging(&owner, now / 1_000_000);
        let router = self.router();
        let routes = router.usable(&paging.routes);
        let skipped: Vec<Value> = paging
            .routes
            .iter()
            .filter(|r| !routes.contains(r))
            .map(|r| json!({ "route": r, "disabled": router.disabled(r) }))
            .collect();
        // The kill switch first: every moment counts.
        let mut actions = Vec::new();
        let by = format!("playbook:{}", pb.id);
        let why = Some(format!("incident {id}: {}", t.summary));
        for a in &pb.actions {
            // Would-be violations of a rollout page people; they do not
            // throw switches that would block the agent.
            if t.shadow && *a != PlaybookAction::Notify {
                actions
                    .push(json!({ "do": a.as_str(), "ok": false, "why": "shadow: not applied" }));
                continue;
            }
            let done = self
                .act(a, &t.subject, &by, why.clone(), !routes.is_empty())
                .await;
            actions.push(done);
        }
        let severity = t.severity.unwrap_or(pb.severity);
        let notify = pb.actions.contains(&PlaybookAction::Notify) && !routes.is_empty();
        let row = IncidentRow {
            id: id.clone(),
            playbook: pb.id.clone(),
            detector: pb.detector.kind().to_owned(),
            dedup_key: t.dedup_key.clone(),
            state: IncidentState::Open,
            severity: severity.as_str().to_owned(),
            owner: owner.clone(),
            summary: t.summary.clone(),
            subject: serde_json::to_string(&t.subject).unwrap_or_else(|_| "{}".into()),
            first_event_us: t.first_event_us.min(now),
            first_seq: t.first_seq.and_then(|s| i64::try_from(s).ok()),
            detected_us: now,
            acked_us: None,
            acked_by: None,
            resolved_us: None,
            resolved_by: None,
            level: 0,
            due_us: Some(now.saturating_add(us(pb.respond_within))),
            breaches: 0,
            triggers: 1,
            last_trigger_us: now,
            drill: t.drill.clone(),
            detail: json!({
                "findings": t.detail,
                "on_call": paging.person,
                "routes": routes,
                "skipped_routes": skipped,
                "respond_within_s": pb.respond_within.as_secs(),
                "actions": actions,
                "shadow": t.shadow,
                "pack_version": pack.version.as_str(),
            })
            .to_string(),
            updated_us: now,
        };
        let ttd_ms = (row.detected_us - row.first_event_us) / 1000;
        let mut writes = vec![StateWrite::Incident(row.clone())];
        if notify
            && let Some(n) = routes
                .first()
                .and_then(|r| queue(self, pack, &row, "opened", r))
        {
            writes.push(StateWrite::Notification(n));
        }
        let message = format!(
            "{} (playbook `{}`, owner `{}`{})",
            t.summary,
            pb.id,
            owner,
            match routes.first() {
                Some(r) if notify => format!(", paged via `{r}`"),
                _ if pb.actions.contains(&PlaybookAction::Notify) =>
                    ", no usable route: nobody paged".to_owned(),
                _ => String::new(),
            }
        );
        let rec = record(
            RecordKind::IncidentOpened,
            &row,
            message,
            json!({
                "first_event": warden_evidence::time_from_micros(row.first_event_us),
                "first_seq": row.first_seq,
                "ttd_ms": ttd_ms,
                "on_call": paging.person,
                "routes": routes,
                "actions": actions,
                "findings": t.detail,
                "shadow": t.shadow,
                "drill": t.drill,
            }),
        );
        self.0.log.commit(vec![rec], writes).await?;
        self.0
            .stats
            .opened(&pb.id, severity.as_str(), ttd_ms as f64 / 1000.0);
        if let Ok(mut a) = self.0.active.lock() {
            a.insert(
                key,
                Active {
                    id,
                    state: IncidentState::Open,
                    due_us: row.due_us,
                    unsaved: 0,
                    last_trigger_us: now,
                    saved_us: now,
                },
            );
        }
        self.0.outbox_wake.notify_one();
        Ok(())
    }

    /// Runs one playbook action on `s`; returns what happened.
    async fn act(
        &self,
        a: &PlaybookAction,
        s: &Subject,
        by: &str,
        why: Option<String>,
        has_route: bool,
    ) -> Value {
        let rt = &self.0.controls;
        let outcome = match a {
            PlaybookAction::Notify => {
                return json!({ "do": "notify", "ok": has_route });
            }
            PlaybookAction::Pause => match &s.agent {
                Some(agent) => rt
                    .set_paused(agent, true, by, why)
                    .await
                    .map(|_| json!({ "agent": agent })),
                None => return json!({ "do": "pause", "ok": false, "why": "no agent involved" }),
            },
            PlaybookAction::Quarantine { group } => match &s.agent {
                Some(agent) => rt
                    .set_quarantine(agent, Some(group.clone()), by, why)
                    .await
                    .map(|_| json!({ "agent": agent, "group": group })),
                None => {
                    return json!({ "do": "quarantine", "ok": false, "why": "no agent involved" });
                }
            },
            PlaybookAction::Circuit { open_for } => {
                let tools: Vec<String> = match &s.tool {
                    Some(t) => vec![t.clone()],
                    None => s.tools.clone(),
                };
                if tools.is_empty() {
                    return json!({ "do": "circuit", "ok": false, "why": "no tool involved" });
                }
                let mut opened = Vec::new();
                let mut err = None;
                for t in &tools {
                    match rt.set_circuit(t, Some(*open_for), by, why.clone()).await {
                        Ok(_) => opened.push(t.clone()),
                        Err(e) => err = Some(e),
                    }
                }
                match err {
                    Some(e) if opened.is_empty() => Err(e),
                    _ => Ok(json!({ "tools": opened, "open_for_s": open_for.as_secs() })),
                }
            }
        };
        match outcome {
            Ok(mut v) => {
                v["do"] = json!(a.as_str());
                v["ok"] = json!(true);
                v
            }
            Err(e) => {
                tracing::error!(action = a.as_str(), error = %e, "playbook action failed");
                json!({ "do": a.as_str(), "ok": false, "why": e.to_string() })
            }
        }
    }

    /// Escalates open incidents whose response window has passed: the next
    /// route is paged and the breach recorded; at the end of the chain the
    /// breach is recorded and escalation stops.
    pub(crate) async fn escalate_due(&self, pack: &Pack) -> Result<(), OversightError> {
        let now = now_us();
        let due: Vec<String> = self
            .0
            .active
            .lock()
            .map(|a| {
                a.values()
                    .filter(|x| {
                        x.state == IncidentState::Open && x.due_us.is_some_and(|d| d <= now)
                    })
                    .map(|x| x.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        for id in due {
            let _g = self.0.ops.lock().await;
            let Some(mut r) = self.store().incident(&id).await? else {
                continue;
            };
            if r.state != IncidentState::Open || r.due_us.is_none_or(|d| d > now) {
                self.sync_active(&r);
                continue;
            }
            let routes = chain_routes(&r);
            let window = pack
                .playbooks
                .get(&r.playbook)
                .map_or(0, |p| us(p.respond_within));
            r.breaches += 1;
            r.updated_us = now;
            let next = usize::try_from(r.level + 1).unwrap_or(usize::MAX);
            let mut writes = Vec::new();
            let message = match routes.get(next) {
                Some(route) => {
                    r.level += 1;
                    r.due_us = Some(now.saturating_add(window));
                    if let Some(n) = queue(self, pack, &r, &format!("escalated-{}", r.level), route)
                    {
                        writes.push(StateWrite::Notification(n));
                    }
                    format!(
                        "incident {id}: response window missed ({} breach{}); paged `{route}`",
                        r.breaches,
                        if r.breaches == 1 { "" } else { "es" }
                    )
                }
                None => {
                    r.due_us = None;
                    format!(
                        "incident {id}: response window missed ({} breach{}); no further route to escalate to",
                        r.breaches,
                        if r.breaches == 1 { "" } else { "es" }
                    )
                }
            };
            writes.insert(0, StateWrite::Incident(r.clone()));
            let rec = record(
                RecordKind::IncidentEscalated,
                &r,
                message,
                json!({ "breaches": r.breaches, "level": r.level, "route": routes.get(next), "exhausted": routes.get(next).is_none() }),
            );
            self.0.log.commit(vec![rec], writes).await?;
            self.sync_active(&r);
            self.0.outbox_wake.notify_one();
        }
        Ok(())
    }

    fn sync_active(&self, r: &IncidentRow) {
        if let Ok(mut a) = self.0.active.lock() {
            let key = (r.playbook.clone(), r.dedup_key.clone());
            if r.state == IncidentState::Resolved {
                a.remove(&key);
            } else if let Some(x) = a.get_mut(&key) {
                x.state = r.state;
                x.due_us = r.due_us;
            }
        }
    }

    /// Writes grouped triggers to their incidents (at most every few
    /// seconds per incident).
    pub(crate) async fn save_grouped(&self) -> Result<(), OversightError> {
        let now = now_us();
        let todo: Vec<(String, i64, i64)> = self
            .0
            .active
            .lock()
            .map(|mut a| {
                a.values_mut()
                    .filter(|x| x.unsaved > 0 && now - x.saved_us >= SAVE_EVERY_US)
                    .map(|x| {
                        let n = x.unsaved;
                        x.unsaved = 0;
                        x.saved_us = now;
                        (x.id.clone(), n, x.last_trigger_us)
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (id, n, last) in todo {
            let _g = self.0.ops.lock().await;
            if let Some(mut r) = self.store().incident(&id).await?
                && r.state != IncidentState::Resolved
            {
                r.triggers += n;
                r.last_trigger_us = last;
                r.updated_us = now;
                self.0
                    .log
                    .commit(Vec::new(), vec![StateWrite::Incident(r)])
                    .await?;
            }
        }
        Ok(())
    }

    /// Looks for runs without progress and approvals pending too long, for
    /// every `stuck` playbook. Each (run, last update) and each approval
    /// is reported once.
    pub(crate) async fn sweep_stuck(
        &self,
        pack: &Pack,
        seen: &mut HashSet<(String, i64)>,
    ) -> Result<(), OversightError> {
        let now = now_us();
        let store = self.store();
        for pb in pack.playbooks.values() {
            let Detector::Stuck {
                run_idle,
                approval_pending,
            } = &pb.detector
            else {
                continue;
            };
            let runs = store.run_counts(now - us(*run_idle)).await?;
            for run in runs.stuck {
                if (!pb.agents.is_empty() && !pb.agents.contains(&run.agent))
                    || (!pb.workflows.is_empty() && !pb.workflows.contains(&run.workflow))
                    || !seen.insert((format!("{}:run:{}", pb.id, run.id), run.updated_us))
                {
                    continue;
                }
                let idle = (now - run.updated_us) / 1_000_000;
                let t = Trigger {
                    playbook: pb.id.clone(),
                    dedup_key: format!("run:{}", run.id),
                    summary: format!(
                        "run {} of `{}` by `{}` has made no progress for {idle}s (limit {}s)",
                        run.id,
                        run.workflow,
                        run.agent,
                        run_idle.as_secs()
                    ),
                    subject: Subject {
                        agent: Some(run.agent.clone()),
                        run: Some(run.id.clone()),
                        workflow: Some(run.workflow.clone()),
                        ..Subject::default()
                    },
                    severity: None,
                    first_event_us: run.updated_us.saturating_add(us(*run_idle)),
                    first_seq: None,
                    detail: json!({ "check": "run_idle", "workflow": run.workflow, "idle_s": idle, "done_steps": serde_json::from_str::<Value>(&run.done_steps).unwrap_or(Value::Null) }),
                    shadow: false,
                    drill: None,
                };
                self.on_trigger(pack, t).await?;
            }
            let drills = self.drill_thresholds();
            let (pending, _) = store
                .approvals(&ApprovalFilter {
                    state: Some("pending".into()),
                    limit: 500,
                    ..ApprovalFilter::default()
                })
                .await?;
            for a in pending {
                let ctx = serde_json::from_str::<Value>(&a.context).unwrap_or(Value::Null);
                let workflow = ctx["workflow"].as_str().map(str::to_owned);
                // A drill's approvals are stuck after the drill's own
                // threshold: it cannot wait hours for the playbook's.
                let drill = ctx
                    .get("trigger")
                    .and_then(|t| serde_json::from_value::<warden_model::Trigger>(t.clone()).ok())
                    .and_then(|t| t.drill_id().map(str::to_owned));
                let limit = drill
                    .as_ref()
                    .and_then(|d| drills.get(d))
                    .copied()
                    .unwrap_or(*approval_pending);
                if a.created_us >= now - us(limit) {
                    continue;
                }
                if (!pb.agents.is_empty() && !pb.agents.contains(&a.agent))
                    || (!pb.workflows.is_empty()
                        && !workflow.as_ref().is_some_and(|w| pb.workflows.contains(w)))
                    || (!pb.tools.is_empty() && !pb.tools.contains(&a.tool))
                    || !seen.insert((format!("{}:approval:{}", pb.id, a.id), 0))
                {
                    continue;
                }
                let age = (now - a.created_us) / 1_000_000;
                let t = Trigger {
                    playbook: pb.id.clone(),
                    dedup_key: match &drill {
                        Some(d) => format!("drill:{d}:approval:{}", a.id),
                        None => format!("approval:{}", a.id),
                    },
                    summary: format!(
                        "approval {} for `{}` by `{}` has been pending {age}s (limit {}s)",
                        a.id,
                        a.tool,
                        a.agent,
                        limit.as_secs()
                    ),
                    subject: Subject {
                        agent: Some(a.agent.clone()),
                        tool: Some(a.tool.clone()),
                        run: a.run_id.clone(),
                        workflow,
                        approval: Some(a.id.clone()),
                        ..Subject::default()
                    },
                    severity: None,
                    first_event_us: a.created_us.saturating_add(us(limit)),
                    first_seq: None,
                    detail: json!({ "check": "approval_pending", "approval": a.id, "pending_s": age, "eligible_groups": a.eligible.trim_matches(',').split(',').collect::<Vec<_>>() }),
                    shadow: false,
                    drill,
                };
                self.on_trigger(pack, t).await?;
            }
        }
        if seen.len() > 100_000 {
            seen.clear();
        }
        Ok(())
    }
}
