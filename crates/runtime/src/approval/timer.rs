//! Durable approval timers. Each pending request stores when its next
//! step is due (`due_us`): escalate to the next group of the chain, or
//! expire at its end. One task sleeps until the earliest due time (woken
//! when a new request may be earlier), then fires what is due. A step
//! changes the request and writes its record in one transaction, so after
//! a restart each step fires exactly once: a step missed while the server
//! was down fires on start. The same task ends runs that outlive their
//! workflow's `timeout` ([`Runtime::time_out_runs`]).

use std::time::Duration;

use serde_json::json;
use warden_evidence::RecordKind;
use warden_model::{ActionStatus, ApprovalState, FailureCode};
use warden_store::ApprovalRow;

use super::answer::After;
use super::{ApprovalView, eligible, end_action, next_due, parse_slots, parse_votes, record_for};
use crate::error::RuntimeError;
use crate::runtime::{Runtime, now_us};

/// Longest sleep between looks at the store (a safety net: new requests
/// wake the task).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Requests fired per round.
const BATCH: u32 = 100;

impl Runtime {
    /// Starts the approval timer task; it runs until aborted (the server
    /// aborts it on shutdown) or the process ends.
    pub fn start_timers(&self) -> tokio::task::JoinHandle<()> {
        let rt = self.clone();
        tokio::spawn(async move {
            loop {
                // After a failure, wait a second before the next round
                // rather than retrying a due step in a tight loop.
                let fired = rt.fire_due().await.map(drop);
                // Runs are looked at once per round; ended only when one is due.
                let mut run_due = rt.next_run_deadline().await;
                let mut timed = Ok(());
                if matches!(run_due, Ok(Some(d)) if d <= now_us()) {
                    timed = rt.time_out_runs(now_us()).await.map(drop);
                    run_due = rt.next_run_deadline().await;
                }
                let floor = match fired.and(timed) {
                    Ok(()) => Duration::from_millis(5),
                    Err(e) => {
                        tracing::error!(error = %e, "approval or run timers failed; retrying in 1s");
                        Duration::from_secs(1)
                    }
                };
                let next = match (rt.store().next_approval_due().await, run_due) {
                    (Ok(a), Ok(r)) => Ok(a.into_iter().chain(r).min()),
                    (Err(e), _) => Err(RuntimeError::from(e)),
                    (_, Err(e)) => Err(e),
                };
                let wait = match next {
                    Ok(Some(due)) => Duration::from_micros(
                        u64::try_from(due.saturating_sub(now_us())).unwrap_or(0),
                    )
                    .min(MAX_SLEEP),
                    Ok(None) => MAX_SLEEP,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read approval or run timers");
                        Duration::from_secs(1)
                    }
                };
                // Never spin: at least a few milliseconds between rounds.
                let wait = wait.max(floor);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = rt.0.timer_wake.notified() => {}
                }
            }
        })
    }

    /// Fires every step that is due now; returns how many requests changed.
    pub async fn fire_due(&self) -> Result<usize, RuntimeError> {
        let now = now_us();
        let due = self.store().due_approvals(now, BATCH).await?;
        let mut n = 0;
        let mut first_error = None;
        for candidate in due {
            let _one_at_a_time = self.0.approvals_lock.lock().await;
            // Someone may have answered since the list was read.
            let fired = match self.store().approval(&candidate.id).await {
                Ok(Some(row))
                    if row.state == ApprovalState::Pending
                        && row.due_us.is_some_and(|d| d <= now) =>
                {
                    self.fire(row, now).await.map(|_| 1)
                }
                Ok(_) => Ok(0),
                Err(e) => Err(e.into()),
            };
            // One request that cannot be fired does not hold up the others.
            match fired {
                Ok(k) => n += k,
                Err(e) => {
                    tracing::error!(approval = %candidate.id, error = %e, "cannot fire an approval timer");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Takes the due steps of `row` (held under the approvals lock):
    /// escalation of each slot whose step ended, or expiry of the request
    /// when a slot's chain has ended. Returns the request as committed.
    pub(crate) async fn fire(
        &self,
        mut row: ApprovalRow,
        now: i64,
    ) -> Result<ApprovalRow, RuntimeError> {
        let engine = self.0.engine.current();
        let pack = engine.pack();
        let mut slots = parse_slots(&row);
        let votes = parse_votes(&row);
        let mut expired = false;
        let mut escalated: Vec<(String, String)> = Vec::new();
        for s in slots.iter_mut().filter(|s| !s.met(&votes)) {
            if s.due_us(pack) > now {
                continue;
            }
            match s.step(pack) {
                (_, Some(to)) => {
                    s.chain.push(to.clone());
                    s.since_us = now;
                    escalated.push((s.group.clone(), to));
                }
                (_, None) => expired = true,
            }
        }
        let Some(mut action) = self.store().action(&row.action_id).await? else {
            return Err(RuntimeError::UnknownAction(row.action_id.clone()));
        };
        let from = Some(action.state);
        row.updated_us = now;
        let mut records = Vec::new();
        let after = if expired {
            row.state = ApprovalState::Expired;
            row.due_us = None;
            end_action(
                &mut action,
                ActionStatus::Expired,
                FailureCode::ApprovalExpired,
                now,
            );
            let mut r = record_for(RecordKind::ApprovalExpired, &row);
            r.status = Some(ActionStatus::Expired);
            r.code = action.code.clone();
            let waiting: Vec<String> = slots
                .iter()
                .filter(|s| !s.met(&votes))
                .map(|s| format!("`{}` ({} of {})", s.group, s.approvals(&votes), s.quorum))
                .collect();
            r.message = Some(format!(
                "approval expired unanswered by {}",
                waiting.join(" and ")
            ));
            records.push(r);
            After::Final
        } else {
            row.escalations = row
                .escalations
                .saturating_add(i64::try_from(escalated.len()).unwrap_or(0));
            row.slots = serde_json::to_string(&slots).unwrap_or_default();
            row.eligible = eligible(&slots);
            row.due_us = next_due(pack, &slots, &votes);
            action.state = ActionStatus::Escalated;
            action.updated_us = now;
            for (group, to) in &escalated {
                let mut r = record_for(RecordKind::ApprovalEscalated, &row);
                r.status = Some(ActionStatus::Escalated);
                r.message = Some(format!(
                    "approval escalated: `{group}` did not answer in time; `{to}` may now answer{}",
                    row.due_us
                        .map(|d| format!(
                            " (next step at {})",
                            warden_evidence::time_from_micros(d)
                        ))
                        .unwrap_or_default()
                ));
                r.add_detail(json!({ "group": group, "to": to, "step": row.escalations, "notified": self.notifier().has(to) }),
                );
                records.push(r);
            }
            After::Wait
        };
        let opens = self.slack_opens(&row.id, escalated.iter().map(|(_, to)| to.as_str()), now);
        self.commit_change(row.clone(), action, from, records, after, opens)
            .await?;
        let view = ApprovalView::recorded(&row);
        for (_, to) in &escalated {
            self.notify_group(to, "approval_escalated", &view);
        }
        Ok(row)
    }
}
