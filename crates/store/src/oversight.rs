//! Oversight tables: incidents, the notification outbox, tool circuits,
//! and the reads behind the operational views.

use sqlx::Row;
use sqlx::any::AnyRow;
use warden_model::{DeliveryState, IncidentState};

use crate::Store;
use crate::error::StoreError;
use crate::sql::Sql;
use crate::state::RunRow;

/// An incident opened by a playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    /// `inc_…`.
    pub id: String,
    /// The playbook that opened it.
    pub playbook: String,
    /// Its detector.
    pub detector: String,
    /// Repeat triggers with this key group into the open incident.
    pub dedup_key: String,
    /// Where it is.
    pub state: IncidentState,
    /// `info`, `warning`, `high`, `critical`.
    pub severity: String,
    /// The person or team paged.
    pub owner: String,
    /// One line.
    pub summary: String,
    /// JSON: agent, tool, system, run, approval.
    pub subject: String,
    /// µs of the first triggering event.
    pub first_event_us: i64,
    /// Its evidence record, when it has one.
    pub first_seq: Option<i64>,
    /// µs when the detector fired.
    pub detected_us: i64,
    /// µs of the acknowledgement.
    pub acked_us: Option<i64>,
    /// Who acknowledged.
    pub acked_by: Option<String>,
    /// µs of the resolution.
    pub resolved_us: Option<i64>,
    /// Who resolved.
    pub resolved_by: Option<String>,
    /// Index of the route paged last (0: the first).
    pub level: i64,
    /// Acknowledge by then (µs), while open.
    pub due_us: Option<i64>,
    /// Response windows missed.
    pub breaches: i64,
    /// Triggers grouped into it.
    pub triggers: i64,
    /// µs of the last trigger.
    pub last_trigger_us: i64,
    /// JSON: the detector's findings, the actions taken.
    pub detail: String,
    /// µs.
    pub updated_us: i64,
    /// The drill whose traffic opened it (`drl_…`), when a drill did.
    pub drill: Option<String>,
}

/// One drill run: its state while it runs (what to undo if the server
/// stops mid-drill) and its report once it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillRow {
    /// `drl_…`.
    pub id: String,
    /// The pack's `[[drills]]` id.
    pub name: String,
    /// `running`, `passed`, `failed`, `aborted`.
    pub state: String,
    /// The operator who started it.
    pub started_by: String,
    /// µs.
    pub started_us: i64,
    /// µs, once it ended.
    pub finished_us: Option<i64>,
    /// JSON: the scenario, and the measured figures once it ended.
    pub report: String,
}

/// A notification of an incident step to one route: the durable outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    /// `<incident>:<step>:<route>`: a step is sent once per route.
    pub id: String,
    /// The incident.
    pub incident_id: String,
    /// `opened`, `escalated-N`, `acknowledged`, `resolved`.
    pub step: String,
    /// The route.
    pub route: String,
    /// `webhook`, `slack`, `pagerduty`.
    pub kind: String,
    /// JSON, without secrets (added when sent).
    pub payload: String,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i64,
    /// Next attempt (µs), while pending.
    pub next_us: i64,
    /// A sender holds it until then (µs).
    pub lease_us: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// µs.
    pub created_us: i64,
    /// µs.
    pub updated_us: i64,
}

/// A tool's circuit: proposals are refused `tool_circuit_open` until
/// `open_until_us`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitRow {
    /// The tool.
    pub tool: String,
    /// µs; a time in the past means closed.
    pub open_until_us: i64,
    /// Why.
    pub reason: Option<String>,
    /// Who (a person, or `playbook:<id>`).
    pub opened_by: Option<String>,
    /// µs.
    pub updated_us: i64,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only in this state; `active` = open or acknowledged.
    pub state: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// Runs by state, and those without progress.
#[derive(Debug, Clone, Default)]
pub struct RunCounts {
    /// (state, runs).
    pub by_state: Vec<(String, i64)>,
    /// Running runs without an update since the cutoff, oldest first.
    pub stuck: Vec<RunRow>,
}

/// The pending approvals of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalAges {
    /// The group.
    pub group: String,
    /// Requests pending.
    pub pending: i64,
    /// Age percentiles, seconds.
    pub p50_s: f64,
    /// Age percentiles, seconds.
    pub p95_s: f64,
    /// The oldest request.
    pub oldest_id: String,
    /// Its age, seconds.
    pub oldest_s: f64,
}

/// A tool's calls, failures and retries since a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotspotRow {
    /// The tool.
    pub tool: String,
    /// Actions proposed.
    pub actions: i64,
    /// Ended `failed`.
    pub failed: i64,
    /// Denied.
    pub denied: i64,
    /// Retries: connector re-sends (attempts beyond the first) plus
    /// proposals repeating an identical earlier one (same agent, same
    /// canonical request).
    pub retries: i64,
}

const INCIDENT_COLS: &str = "id, playbook, detector, dedup_key, state, severity, owner, summary, \
     subject, first_event_us, first_seq, detected_us, acked_us, acked_by, resolved_us, \
     resolved_by, level, due_us, breaches, triggers, last_trigger_us, detail, updated_us, drill";
const DRILL_COLS: &str = "id, name, state, started_by, started_us, finished_us, report";
const NOTIFICATION_COLS: &str = "id, incident_id, step, route, kind, payload, state, attempts, \
     next_us, lease_us, last_error, created_us, updated_us";
const CIRCUIT_COLS: &str = "tool, open_until_us, reason, opened_by, updated_us";

/// The oversight rows of one commit (the last write of a row wins).
#[derive(Debug, Default)]
pub(crate) struct Writes {
    incidents: Vec<IncidentRow>,
    notifications: Vec<NotificationRow>,
    circuits: Vec<CircuitRow>,
    drills: Vec<DrillRow>,
}

impl Writes {
    // Writes arrive last first: keep the first seen of each id.
    pub(crate) fn incident(&mut self, r: IncidentRow) {
        if !self.incidents.iter().any(|x| x.id == r.id) {
            self.incidents.push(r);
        }
    }
    pub(crate) fn notification(&mut self, r: NotificationRow) {
        if !self.notifications.iter().any(|x| x.id == r.id) {
            self.notifications.push(r);
        }
    }
    pub(crate) fn drill(&mut self, r: DrillRow) {
        if !self.drills.iter().any(|x| x.id == r.id) {
            self.drills.push(r);
        }
    }
    pub(crate) fn circuit(&mut self, r: CircuitRow) {
        if !self.circuits.iter().any(|x| x.tool == r.tool) {
            self.circuits.push(r);
        }
    }

    pub(crate) async fn write(
        self,
        backend: crate::Backend,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<(), StoreError> {
        for i in self.incidents {
            let mut q = Sql::new("INSERT INTO incidents (");
            q.push(INCIDENT_COLS).push(") VALUES (");
            q.text(i.id)
                .push(", ")
                .text(i.playbook)
                .push(", ")
                .text(i.detector)
                .push(", ")
                .text(i.dedup_key)
                .push(", ")
                .text(i.state.as_str())
                .push(", ")
                .text(i.severity)
                .push(", ")
                .text(i.owner)
                .push(", ")
                .text(i.summary)
                .push(", ")
                .text(i.subject)
                .push(", ")
                .int(i.first_event_us)
                .push(", ")
                .opt_int(i.first_seq)
                .push(", ")
                .int(i.detected_us)
                .push(", ")
                .opt_int(i.acked_us)
                .push(", ")
                .opt_text(i.acked_by)
                .push(", ")
                .opt_int(i.resolved_us)
                .push(", ")
                .opt_text(i.resolved_by)
                .push(", ")
                .int(i.level)
                .push(", ")
                .opt_int(i.due_us)
                .push(", ")
                .int(i.breaches)
                .push(", ")
                .int(i.triggers)
                .push(", ")
                .int(i.last_trigger_us)
                .push(", ")
                .text(i.detail)
                .push(", ")
                .int(i.updated_us)
                .push(", ")
                .opt_text(i.drill)
                .push(
                    ") ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                     summary = excluded.summary, acked_us = excluded.acked_us, \
                     acked_by = excluded.acked_by, resolved_us = excluded.resolved_us, \
                     resolved_by = excluded.resolved_by, level = excluded.level, \
                     due_us = excluded.due_us, breaches = excluded.breaches, \
                     triggers = excluded.triggers, last_trigger_us = excluded.last_trigger_us, \
                     detail = excluded.detail, updated_us = excluded.updated_us",
                );
            q.build(backend).execute(&mut **tx).await?;
        }
        for n in self.notifications {
            let mut q = Sql::new("INSERT INTO notifications (");
            q.push(NOTIFICATION_COLS).push(") VALUES (");
            q.text(n.id)
                .push(", ")
                .text(n.incident_id)
                .push(", ")
                .text(n.step)
                .push(", ")
                .text(n.route)
                .push(", ")
                .text(n.kind)
                .push(", ")
                .text(n.payload)
                .push(", ")
                .text(n.state.as_str())
                .push(", ")
                .int(n.attempts)
                .push(", ")
                .int(n.next_us)
                .push(", ")
                .opt_int(n.lease_us)
                .push(", ")
                .opt_text(n.last_error)
                .push(", ")
                .int(n.created_us)
                .push(", ")
                .int(n.updated_us)
                // A step already queued is never queued again; a delivery
                // result updates its row.
                .push(
                    ") ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                     attempts = excluded.attempts, next_us = excluded.next_us, \
                     lease_us = excluded.lease_us, last_error = excluded.last_error, \
                     updated_us = excluded.updated_us \
                     WHERE notifications.state = 'pending'",
                );
            q.build(backend).execute(&mut **tx).await?;
        }
        for d in self.drills {
            let mut q = Sql::new("INSERT INTO drills (");
            q.push(DRILL_COLS).push(") VALUES (");
            q.text(d.id)
                .push(", ")
                .text(d.name)
                .push(", ")
                .text(d.state)
                .push(", ")
                .text(d.started_by)
                .push(", ")
                .int(d.started_us)
                .push(", ")
                .opt_int(d.finished_us)
                .push(", ")
                .text(d.report)
                .push(
                    ") ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                     finished_us = excluded.finished_us, report = excluded.report",
                );
            q.build(backend).execute(&mut **tx).await?;
        }
        for c in self.circuits {
            let mut q = Sql::new("INSERT INTO tool_circuits (");
            q.push(CIRCUIT_COLS).push(") VALUES (");
            q.text(c.tool)
                .push(", ")
                .int(c.open_until_us)
                .push(", ")
                .opt_text(c.reason)
                .push(", ")
                .opt_text(c.opened_by)
                .push(", ")
                .int(c.updated_us)
                .push(
                    ") ON CONFLICT (tool) DO UPDATE SET open_until_us = excluded.open_until_us, \
                     reason = excluded.reason, opened_by = excluded.opened_by, \
                     updated_us = excluded.updated_us",
                );
            q.build(backend).execute(&mut **tx).await?;
        }
        Ok(())
    }
}

fn incident_row(r: &AnyRow) -> Result<IncidentRow, StoreError> {
    Ok(IncidentRow {
        id: r.try_get("id")?,
        playbook: r.try_get("playbook")?,
        detector: r.try_get("detector")?,
        dedup_key: r.try_get("dedup_key")?,
        state: crate::state::word(r, "state")?,
        severity: r.try_get("severity")?,
        owner: r.try_get("owner")?,
        summary: r.try_get("summary")?,
        subject: r.try_get("subject")?,
        first_event_us: r.try_get("first_event_us")?,
        first_seq: r.try_get("first_seq")?,
        detected_us: r.try_get("detected_us")?,
        acked_us: r.try_get("acked_us")?,
        acked_by: r.try_get("acked_by")?,
        resolved_us: r.try_get("resolved_us")?,
        resolved_by: r.try_get("resolved_by")?,
        level: r.try_get("level")?,
        due_us: r.try_get("due_us")?,
        breaches: r.try_get("breaches")?,
        triggers: r.try_get("triggers")?,
        last_trigger_us: r.try_get("last_trigger_us")?,
        detail: r.try_get("detail")?,
        updated_us: r.try_get("updated_us")?,
        drill: r.try_get("drill")?,
    })
}

fn drill_row(r: &AnyRow) -> Result<DrillRow, StoreError> {
    Ok(DrillRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        state: r.try_get("state")?,
        started_by: r.try_get("started_by")?,
        started_us: r.try_get("started_us")?,
        finished_us: r.try_get("finished_us")?,
        report: r.try_get("report")?,
    })
}

fn notification_row(r: &AnyRow) -> Result<NotificationRow, StoreError> {
    Ok(NotificationRow {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        step: r.try_get("step")?,
        route: r.try_get("route")?,
        kind: r.try_get("kind")?,
        payload: r.try_get("payload")?,
        state: crate::state::word(r, "state")?,
        attempts: r.try_get("attempts")?,
        next_us: r.try_get("next_us")?,
        lease_us: r.try_get("lease_us")?,
        last_error: r.try_get("last_error")?,
        created_us: r.try_get("created_us")?,
        updated_us: r.try_get("updated_us")?,
    })
}

/// The `q`-th quantile of sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

impl Store {
    /// Incidents, newest first.
    pub async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<IncidentRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(INCIDENT_COLS).push(" FROM incidents");
        match f.state.as_deref() {
            Some("active") => {
                q.push(" WHERE state <> 'resolved'");
            }
            Some(s) => {
                q.push(" WHERE state = ").text(s);
            }
            None => {}
        }
        q.push(" ORDER BY detected_us DESC, id LIMIT ")
            .int(i64::from(f.limit.clamp(1, 1000)));
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(incident_row).collect()
    }

    /// The incident `id`.
    pub async fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(INCIDENT_COLS)
            .push(" FROM incidents WHERE id = ")
            .text(id);
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        row.as_ref().map(incident_row).transpose()
    }

    /// Open and acknowledged incidents, oldest first.
    pub async fn active_incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(INCIDENT_COLS)
            .push(" FROM incidents WHERE state <> 'resolved' ORDER BY detected_us, id");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(incident_row).collect()
    }

    /// The incidents drill `id` opened, oldest first.
    pub async fn drill_incidents(&self, id: &str) -> Result<Vec<IncidentRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(INCIDENT_COLS)
            .push(" FROM incidents WHERE drill = ")
            .text(id)
            .push(" ORDER BY detected_us, id");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(incident_row).collect()
    }

    /// Drill runs, newest first; only `running` ones with `running`.
    pub async fn drills(&self, running: bool, limit: u32) -> Result<Vec<DrillRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(DRILL_COLS).push(" FROM drills");
        if running {
            q.push(" WHERE state = 'running'");
        }
        q.push(" ORDER BY started_us DESC, id LIMIT ")
            .int(i64::from(limit.clamp(1, 10_000)));
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(drill_row).collect()
    }

    /// The drill run `id`.
    pub async fn drill(&self, id: &str) -> Result<Option<DrillRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(DRILL_COLS).push(" FROM drills WHERE id = ").text(id);
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        row.as_ref().map(drill_row).transpose()
    }

    /// Incidents per state.
    pub async fn incident_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let q =
            Sql::new("SELECT state, COUNT(*) AS n FROM incidents GROUP BY state ORDER BY state");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// The notifications of incident `id`, oldest first.
    pub async fn notifications_of(&self, id: &str) -> Result<Vec<NotificationRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(NOTIFICATION_COLS)
            .push(" FROM notifications WHERE incident_id = ")
            .text(id)
            .push(" ORDER BY created_us, id");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(notification_row).collect()
    }

    /// Pending notifications due at `now_us` that no sender holds.
    pub async fn due_notifications(
        &self,
        now_us: i64,
        limit: u32,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(NOTIFICATION_COLS)
            .push(" FROM notifications WHERE state = 'pending' AND next_us <= ")
            .int(now_us)
            .push(" AND (lease_us IS NULL OR lease_us < ")
            .int(now_us)
            .push(") ORDER BY next_us, id LIMIT ")
            .int(i64::from(limit.max(1)));
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(notification_row).collect()
    }

    /// The earliest next attempt of a pending notification (µs).
    pub async fn next_notification_due(&self) -> Result<Option<i64>, StoreError> {
        let q = Sql::new("SELECT MIN(next_us) AS t FROM notifications WHERE state = 'pending'");
        let row = q.build(self.backend).fetch_one(&self.pool).await?;
        Ok(row.try_get::<Option<i64>, _>("t")?)
    }

    /// Takes notification `id` for sending until `lease_until_us`; false
    /// when it is no longer pending or another sender holds it.
    pub async fn claim_notification(
        &self,
        id: &str,
        now_us: i64,
        lease_until_us: i64,
    ) -> Result<bool, StoreError> {
        let mut q = Sql::new("UPDATE notifications SET lease_us = ");
        q.int(lease_until_us)
            .push(" WHERE id = ")
            .text(id)
            .push(" AND state = 'pending' AND (lease_us IS NULL OR lease_us < ")
            .int(now_us)
            .push(")");
        let done = q.build(self.backend).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every tool circuit (open or not).
    pub async fn circuits(&self) -> Result<Vec<CircuitRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(CIRCUIT_COLS)
            .push(" FROM tool_circuits ORDER BY tool");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(CircuitRow {
                    tool: r.try_get("tool")?,
                    open_until_us: r.try_get("open_until_us")?,
                    reason: r.try_get("reason")?,
                    opened_by: r.try_get("opened_by")?,
                    updated_us: r.try_get("updated_us")?,
                })
            })
            .collect()
    }

    /// Runs per state, and running runs not updated since `idle_before_us`.
    pub async fn run_counts(&self, idle_before_us: i64) -> Result<RunCounts, StoreError> {
        let q = Sql::new("SELECT state, COUNT(*) AS n FROM runs GROUP BY state ORDER BY state");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        let by_state = rows
            .iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut q = Sql::new("SELECT ");
        q.push(crate::state::RUN_COLS)
            .push(" FROM runs WHERE state = 'running' AND updated_us < ")
            .int(idle_before_us)
            // A run waiting on a person is not idle: its approval has a
            // window of its own.
            .push(
                " AND NOT EXISTS (SELECT 1 FROM approvals a \
                 WHERE a.run_id = runs.id AND a.state = 'pending')",
            )
            .push(" ORDER BY updated_us, id LIMIT 100");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        let stuck = rows
            .iter()
            .map(crate::state::run_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RunCounts { by_state, stuck })
    }

    /// Pending approval requests per group with their ages at `now_us`,
    /// the group with the oldest request first.
    pub async fn approval_ages(&self, now_us: i64) -> Result<Vec<ApprovalAges>, StoreError> {
        let q = Sql::new(
            "SELECT grp, approval_id, created_us FROM approval_groups \
             WHERE state = 'pending' ORDER BY grp, created_us",
        );
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        let mut out: Vec<ApprovalAges> = Vec::new();
        let mut ages: Vec<Vec<f64>> = Vec::new();
        for r in &rows {
            let grp: String = r.try_get("grp")?;
            let id: String = r.try_get("approval_id")?;
            let created: i64 = r.try_get("created_us")?;
            let age = (now_us - created).max(0) as f64 / 1e6;
            if out.last().is_none_or(|a| a.group != grp) {
                out.push(ApprovalAges {
                    group: grp,
                    pending: 0,
                    p50_s: 0.0,
                    p95_s: 0.0,
                    oldest_id: id,
                    oldest_s: age,
                });
                ages.push(Vec::new());
            }
            if let (Some(a), Some(v)) = (out.last_mut(), ages.last_mut()) {
                a.pending += 1;
                v.push(age);
            }
        }
        for (a, mut v) in out.iter_mut().zip(ages) {
            v.sort_by(f64::total_cmp);
            a.p50_s = quantile(&v, 0.5);
            a.p95_s = quantile(&v, 0.95);
        }
        out.sort_by(|a, b| b.oldest_s.total_cmp(&a.oldest_s));
        Ok(out)
    }

    /// Tools by failures and retries among actions proposed since
    /// `since_us`, worst first.
    pub async fn hotspots(&self, since_us: i64, limit: u32) -> Result<Vec<HotspotRow>, StoreError> {
        let mut q = Sql::new(
            "SELECT tool, COUNT(*) AS n, \
             CAST(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
             CAST(SUM(CASE WHEN state = 'denied' THEN 1 ELSE 0 END) AS BIGINT) AS denied, \
             CAST(SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END) \
                  + COUNT(*) - COUNT(DISTINCT agent || ':' || request_hash) AS BIGINT) AS retries \
             FROM actions WHERE created_us >= ",
        );
        q.int(since_us)
            .push(" GROUP BY tool ORDER BY failed DESC, retries DESC, denied DESC, tool LIMIT ")
            .int(i64::from(limit.clamp(1, 1000)));
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(HotspotRow {
                    tool: r.try_get("tool")?,
                    actions: r.try_get("n")?,
                    failed: r.try_get::<Option<i64>, _>("failed")?.unwrap_or(0),
                    denied: r.try_get::<Option<i64>, _>("denied")?.unwrap_or(0),
                    retries: r.try_get::<Option<i64>, _>("retries")?.unwrap_or(0),
                })
            })
            .collect()
    }
}
