//! Cancelling: an approval request (its action ends `cancelled`), or a
//! whole run (it ends `cancelled`, and so does every request of it still
//! pending). The agent that asked may cancel, and so may an operator; the
//! server says which caller is which.

use std::time::Duration;

use serde_json::json;
use warden_evidence::{Record, RecordKind};
use warden_model::{ActionStatus, ApprovalState, FailureCode, RunStatus};
use warden_store::{ActionRow, ApprovalRow, StateWrite};

use crate::approval::{ApprovalView, end_action, record_for};
use crate::error::RuntimeError;
use crate::runtime::{Runtime, now_us};
use crate::types::{ActionView, RunView};

/// Who cancels.
#[derive(Debug, Clone, Copy)]
pub enum Canceller<'a> {
    /// The agent (its own requests and runs only).
    Agent(&'a str),
    /// An operator (any).
    Operator(&'a str),
}

impl Canceller<'_> {
    fn id(&self) -> &str {
        match self {
            Self::Agent(a) | Self::Operator(a) => a,
        }
    }

    fn may(&self, agent: &str) -> bool {
        match self {
            Self::Agent(a) => *a == agent,
            Self::Operator(_) => true,
        }
    }
}

impl Runtime {
    /// Cancels pending approval request `id`: it takes no more answers and
    /// its action ends `cancelled` without executing.
    pub async fn cancel_approval(
        &self,
        id: &str,
        by: Canceller<'_>,
        reason: Option<String>,
    ) -> Result<ApprovalView, RuntimeError> {
        let _one_at_a_time = self.0.approvals_lock.lock().await;
        let row = match self.store().approval(id).await? {
            Some(r) if by.may(&r.agent) => r,
            _ => return Err(RuntimeError::UnknownApproval(id.to_owned())),
        };
        if row.state != ApprovalState::Pending {
            return Err(RuntimeError::ApprovalClosed {
                id: row.id,
                state: row.state,
            });
        }
        let action = self
            .store()
            .action(&row.action_id)
            .await?
            .ok_or_else(|| RuntimeError::UnknownAction(row.action_id.clone()))?;
        let from = Some(action.state);
        let (row, action, rec) =
            cancelled(row, action, Ending::Cancel(by), reason.as_deref(), None);
        self.0
            .log
            .commit(
                vec![rec],
                vec![
                    StateWrite::Action(action.clone()),
                    StateWrite::Approval(row.clone()),
                ],
            )
            .await?;
        self.count(from, ActionStatus::Cancelled);
        self.publish(ActionView::from_row(&action));
        Ok(ApprovalView::from_row(&row))
    }

    /// Cancels running run `id`: it accepts no more actions, and each of its
    /// requests still pending is cancelled with it. An action already
    /// executing finishes (it cannot be called back) and is recorded.
    pub async fn cancel_run(
        &self,
        id: &str,
        by: Canceller<'_>,
        reason: Option<String>,
    ) -> Result<RunView, RuntimeError> {
        self.end_run(id, Ending::Cancel(by), reason).await
    }

    /// Ends running run `id` `how`, with its pending requests (held under
    /// the approvals lock, then the run's lock, the order every path uses).
    pub(crate) async fn end_run(
        &self,
        id: &str,
        how: Ending<'_>,
        reason: Option<String>,
    ) -> Result<RunView, RuntimeError> {
        let _approvals = self.0.approvals_lock.lock().await;
        let run = self.run_state(id).await?;
        let mut state = run.lock().await;
        if let Ending::Cancel(by) = how
            && !by.may(&state.row.agent)
        {
            return Err(RuntimeError::UnknownRun(id.to_owned()));
        }
        if state.row.state != RunStatus::Running {
            return Err(RuntimeError::RunClosed {
                run: id.to_owned(),
                state: state.row.state,
            });
        }
        let now = now_us();
        let mut records = Vec::new();
        let mut writes = Vec::new();
        let mut ended = Vec::new();
        for action in self.store().run_actions(id).await? {
            let from = Some(action.state);
            if !matches!(
                from,
                Some(ActionStatus::AwaitingApproval | ActionStatus::Escalated)
            ) {
                continue;
            }
            let Some(ap) = self.store().approval_of_action(&action.id).await? else {
                continue;
            };
            if ap.state != ApprovalState::Pending {
                continue;
            }
            let (ap, action, rec) = cancelled(ap, action, how, reason.as_deref(), Some(id));
            records.push(rec);
            writes.push(StateWrite::Action(action.clone()));
            writes.push(StateWrite::Approval(ap));
            ended.push((from, action));
        }
        let status = how.run_status();
        let mut row = state.row.clone();
        row.state = status;
        row.updated_us = now;
        let mut r = Record::new(RecordKind::RunCancelled);
        r.agent = Some(row.agent.clone());
        r.workflow = Some(row.workflow.clone());
        r.run = Some(row.id.clone());
        let why = match how {
            Ending::Cancel(by) => format!(
                "run cancelled by `{}`{}",
                by.id(),
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            Ending::Timeout(limit) => format!(
                "run timed out: open longer than its workflow's timeout ({})",
                humantime::format_duration(limit)
            ),
        };
        r.message = Some(format!(
            "{why}; {} pending request(s) cancelled with it",
            ended.len()
        ));
        r.detail = Some(json!({
            "by": how.by(),
            "reason": reason,
            "state": status.as_str(),
            "timeout_s": match how { Ending::Timeout(d) => Some(d.as_secs()), Ending::Cancel(_) => None },
            "cancelled_actions": ended.iter().map(|(_, a)| a.id.clone()).collect::<Vec<_>>(),
        }));
        records.push(r);
        writes.push(StateWrite::Run(row.clone()));
        self.0.log.commit(records, writes).await?;
        state.row = row;
        drop(state);
        if let Ok(mut runs) = self.0.runs.lock() {
            runs.remove(id);
        }
        for (from, a) in &ended {
            self.count(*from, ActionStatus::Cancelled);
            self.publish(ActionView::from_row(a));
        }
        self.run(id, None).await
    }
}

/// How a run ends before its last step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending<'a> {
    /// Cancelled by its agent or an operator.
    Cancel(Canceller<'a>),
    /// Open longer than its workflow's timeout.
    Timeout(Duration),
}

impl Ending<'_> {
    /// Who ends it, as recorded.
    fn by(&self) -> &str {
        match self {
            Self::Cancel(c) => c.id(),
            Self::Timeout(_) => "warden",
        }
    }

    fn run_status(&self) -> RunStatus {
        match self {
            Self::Cancel(_) => RunStatus::Cancelled,
            Self::Timeout(_) => RunStatus::TimedOut,
        }
    }

    /// The code its cancelled actions end with.
    fn code(&self) -> FailureCode {
        match self {
            Self::Cancel(_) => FailureCode::Cancelled,
            Self::Timeout(_) => FailureCode::RunTimedOut,
        }
    }
}

/// A pending request and its action, cancelled, with the record that says so.
fn cancelled(
    mut row: ApprovalRow,
    mut action: ActionRow,
    how: Ending<'_>,
    reason: Option<&str>,
    run: Option<&str>,
) -> (ApprovalRow, ActionRow, Record) {
    let now = now_us();
    row.state = ApprovalState::Cancelled;
    row.due_us = None;
    row.updated_us = now;
    end_action(&mut action, ActionStatus::Cancelled, how.code(), now);
    let mut rec = record_for(RecordKind::ApprovalCancelled, &row);
    rec.status = Some(ActionStatus::Cancelled);
    rec.code = Some(how.code().as_str().into());
    rec.message = Some(format!(
        "approval request {} cancelled by `{}`{}{}: not executed",
        row.id,
        how.by(),
        run.map(|r| format!(" with run {r}")).unwrap_or_default(),
        reason.map(|r| format!(" ({r})")).unwrap_or_default()
    ));
    rec.add_detail(json!({ "by": how.by(), "reason": reason }));
    (row, action, rec)
}
