//! Execution and its end: connector calls for `enforce` actions, outcome
//! reports for `check` actions, and recovery of actions a crash left
//! `executing`.

use serde_json::{Value, json};
use warden_evidence::{Record, RecordKind, ResultRules};
use warden_model::{ActionStatus, FailureCode, OnInterrupt, RunStatus};
use warden_store::{ActionRow, RunRow, StateWrite};

use crate::connector::ExecOutcome;
use crate::error::RuntimeError;
use crate::runtime::{Runtime, now_us};
use crate::types::{ActionView, Mode, Report};

/// How many actions recovery re-sends at once.
const RECOVERY_CONCURRENCY: usize = 16;

impl Runtime {
    /// Executes `row` (committed `executing`) in the background and records
    /// its end.
    pub(crate) fn spawn_execution(&self, row: ActionRow, args: Value) {
        let rt = self.clone();
        tokio::spawn(async move {
            let outcome = rt.connectors().execute(&row.tool, &row.id, &args).await;
            if let Err(e) = rt.finish(row, outcome).await {
                tracing::error!(error = %e, "cannot record the end of an execution");
            }
        });
    }

    /// Records `outcome` as the end of `row`'s execution, in place of a
    /// connector call (drill traffic with an injected fault or result).
    pub(crate) fn spawn_injected(&self, row: ActionRow, outcome: ExecOutcome) {
        let rt = self.clone();
        tokio::spawn(async move {
            if let Err(e) = rt.finish(row, outcome).await {
                tracing::error!(error = %e, "cannot record the end of an execution");
            }
        });
    }

    /// Records the end of an execution: the `action_executed` record, the
    /// action's final state, and the run's progress, in one commit; then
    /// wakes whoever waits for the action.
    pub(crate) async fn finish(
        &self,
        mut row: ActionRow,
        outcome: ExecOutcome,
    ) -> Result<ActionView, RuntimeError> {
        let engine = self.0.engine.current();
        let pack = engine.pack();
        let tool = pack.tools.get(&row.tool);
        let cap = tool
            .and_then(|t| t.execute.as_ref())
            .map_or(warden_model::DEFAULT_MAX_RESULT_BYTES, |e| {
                e.max_result_bytes
            });
        let from = Some(row.state);
        let status = if outcome.ok {
            ActionStatus::Succeeded
        } else {
            ActionStatus::Failed
        };
        // Results are recorded redacted: declared fields and what the output
        // scanner recognises become tokens, and the findings are kept.
        let redacted = match &outcome.result {
            Some(v) => Some(
                self.0
                    .redactor
                    .redact_result(v, &ResultRules::for_tool(pack, &row.tool))?,
            ),
            None => None,
        };
        let findings = redacted
            .as_ref()
            .filter(|r| !r.findings.is_empty())
            .map(|r| (r.findings.clone(), r.redacted));
        let recorded_result = redacted.map(|r| cap_value(r.value, cap));
        // The result's size before redaction and capping, for the output
        // detectors.
        let result_bytes = outcome
            .result
            .as_ref()
            .map(|v| serde_json::to_vec(v).map_or(0, |b| b.len()));
        let summary = |result: Option<Value>| {
            let mut o = json!({
                "attempts": outcome.attempts,
                "elapsed_ms": outcome.elapsed.as_millis() as u64,
            });
            if let Some(n) = result_bytes {
                o["result_bytes"] = json!(n);
            }
            if let Some(r) = result {
                o["result"] = r;
            }
            if let Some((f, n)) = &findings {
                o["findings"] = json!(f);
                o["redacted"] = json!(n);
            }
            if let Some(e) = &outcome.error {
                o["error"] = json!(e);
            }
            if let Some(s) = outcome.http_status {
                o["http_status"] = json!(s);
            }
            o
        };
        let t = now_us();
        row.state = status;
        row.code = outcome.code.map(|c| c.as_str().to_owned());
        // Dropped from the row; a step that exposes arguments reads them below.
        let call_args = row.arguments.take();
        row.result = Some(summary(recorded_result.clone()).to_string());
        row.attempts = row.attempts.saturating_add(i64::from(outcome.attempts));
        row.updated_us = t;
        let mut rec = Record::new(RecordKind::ActionExecuted);
        // Drill traffic stays marked to its end: detectors and rollout
        // scans tell it from real traffic by the trigger.
        rec.trigger = drill_of(&row).map(|d| warden_model::Trigger::drill(&d));
        rec.agent = Some(row.agent.clone());
        rec.tool = Some(row.tool.clone());
        rec.run = row.run_id.clone();
        rec.action = Some(row.id.clone());
        rec.status = Some(status);
        rec.code = row.code.clone();
        rec.message = Some(match &outcome.error {
            Some(e) => e.clone(),
            None => format!("`{}` succeeded", row.tool),
        });
        rec.detail = Some(summary(recorded_result));
        let mut records = vec![rec];
        let mut writes = vec![StateWrite::Action(row.clone())];
        // A succeeded step moves its run on; the last one completes it.
        let run = match (&row.run_id, &row.step, status) {
            (Some(run), Some(_), ActionStatus::Succeeded) => Some(self.run_state(run).await?),
            _ => None,
        };
        let mut guard = match &run {
            Some(r) => Some(r.lock().await),
            None => None,
        };
        let mut run_update: Option<RunRow> = None;
        if let (Some(state), Some(step)) = (guard.as_deref_mut(), &row.step) {
            let mut next = state.clone();
            next.done.insert(step.clone());
            let wf = pack.workflows.get(&next.row.workflow);
            if let Some(d) = wf
                .and_then(|w| w.steps.iter().find(|s| &s.id == step))
                .and_then(|s| {
                    crate::runs::exposed(s, call_args.as_deref(), outcome.result.as_ref())
                })
            {
                next.data.insert(step.clone(), d);
                next.row.step_data = serde_json::to_string(&next.data).unwrap_or_default();
            }
            let ordered: Vec<String> = match wf {
                Some(wf) => wf
                    .steps
                    .iter()
                    .filter(|s| next.done.contains(&s.id))
                    .map(|s| s.id.clone())
                    .collect(),
                None => next.done.iter().cloned().collect(),
            };
            next.row.done_steps = serde_json::to_string(&ordered).unwrap_or_default();
            next.row.updated_us = t;
            if let Some(wf) = wf
                && wf.steps.iter().all(|s| next.done.contains(&s.id))
                && next.row.state == RunStatus::Running
            {
                next.row.state = RunStatus::Completed;
                let mut r = Record::new(RecordKind::RunFinished);
                r.agent = Some(next.row.agent.clone());
                r.workflow = Some(next.row.workflow.clone());
                r.run = Some(next.row.id.clone());
                r.message = Some(format!("every step of `{}` succeeded", wf.id));
                r.detail = Some(json!({ "state": "completed", "steps": ordered }));
                records.push(r);
            }
            writes.push(StateWrite::Run(next.row.clone()));
            run_update = Some(next.row.clone());
            *state = next;
        }
        self.0.log.commit(records, writes).await?;
        drop(guard);
        if let Some(r) = run_update
            && r.state != RunStatus::Running
            && let Ok(mut runs) = self.0.runs.lock()
        {
            runs.remove(&r.id);
        }
        self.count(from, status);
        // The waiting agent gets the full result; the store keeps the
        // recorded (redacted, capped) one.
        let mut view = ActionView::from_row(&row);
        view.outcome = Some(summary(outcome.result.clone()));
        self.publish(view.clone());
        Ok(view)
    }

    /// Records what `agent` reports after executing its `check`-mode action.
    pub async fn report(
        &self,
        agent: &str,
        id: &str,
        report: Report,
    ) -> Result<ActionView, RuntimeError> {
        // Concurrent reports queue here; the first ends the action and the
        // others find it final (409).
        let _one = self.0.action_locks.lock(id.to_owned()).await;
        let row = match self.store().action(id).await? {
            Some(r) if r.agent == agent => r,
            _ => return Err(RuntimeError::UnknownAction(id.to_owned())),
        };
        if row.mode != Mode::Check.as_str() || row.state != ActionStatus::Approved {
            return Err(RuntimeError::InvalidTransition {
                action: row.id,
                state: row.state,
                why: "only an approved `check`-mode action takes an outcome, once",
            });
        }
        let code = match (report.status, report.code.as_deref()) {
            (ActionStatus::Succeeded, None) => None,
            (ActionStatus::Succeeded, Some(_)) => {
                return Err(RuntimeError::InvalidReport(
                    "`code` is for `failed` outcomes".into(),
                ));
            }
            (ActionStatus::Failed, None) => Some(FailureCode::ToolError),
            (ActionStatus::Failed, Some(c)) => match c.parse::<FailureCode>() {
                Ok(
                    c @ (FailureCode::ToolError
                    | FailureCode::ToolTimeout
                    | FailureCode::RetriesExhausted),
                ) => Some(c),
                _ => {
                    return Err(RuntimeError::InvalidReport(format!(
                        "`code` must be tool_error, tool_timeout or retries_exhausted, not `{c}`"
                    )));
                }
            },
            (other, _) => {
                return Err(RuntimeError::InvalidReport(format!(
                    "`status` must be succeeded or failed, not `{other}`"
                )));
            }
        };
        let outcome = ExecOutcome {
            ok: code.is_none(),
            code,
            result: report.result,
            error: report
                .error
                .or_else(|| code.map(|c| format!("the agent reported {c}"))),
            attempts: 1,
            http_status: None,
            elapsed: std::time::Duration::from_micros(
                u64::try_from(now_us().saturating_sub(row.created_us)).unwrap_or(0),
            ),
        };
        self.finish(row, outcome).await
    }

    /// On start: actions a crash left `executing` are re-sent with the same
    /// idempotency key (tools with `on_interrupt = "resend"`) or end
    /// `failed` with `interrupted`. Returns how many of each.
    pub async fn recover(&self) -> Result<(usize, usize), RuntimeError> {
        let stuck = self
            .store()
            .actions_in_state(ActionStatus::Executing.as_str())
            .await?;
        let connectors = self.connectors();
        let (mut resent, mut failed) = (0, 0);
        let mut resends = Vec::new();
        for row in stuck {
            let resend = connectors
                .execution(&row.tool)
                .is_some_and(|e| e.on_interrupt == OnInterrupt::Resend);
            let args = row
                .arguments
                .as_deref()
                .and_then(|a| serde_json::from_str::<Value>(a).ok());
            match (resend, args) {
                (true, Some(args)) => {
                    let mut r = Record::new(RecordKind::ActionRecovered);
                    r.agent = Some(row.agent.clone());
                    r.tool = Some(row.tool.clone());
                    r.run = row.run_id.clone();
                    r.action = Some(row.id.clone());
                    r.status = Some(ActionStatus::Executing);
                    r.message = Some(
                        "Warden restarted while this action was executing; re-sent with the same idempotency key"
                            .into(),
                    );
                    self.0.log.append(r).await?;
                    self.watch(&row.id);
                    resends.push((row, args));
                    resent += 1;
                }
                _ => {
                    let outcome = ExecOutcome {
                        ok: false,
                        code: Some(FailureCode::Interrupted),
                        result: None,
                        error: Some(
                            "Warden stopped while this action was executing and the tool is not marked for re-sending; it may or may not have run"
                                .into(),
                        ),
                        attempts: 0,
                        http_status: None,
                        elapsed: std::time::Duration::ZERO,
                    };
                    self.finish(row, outcome).await?;
                    failed += 1;
                }
            }
        }
        // Re-send in the background, a few at a time.
        let rt = self.clone();
        tokio::spawn(async move {
            let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(RECOVERY_CONCURRENCY));
            for (row, args) in resends {
                let Ok(permit) = std::sync::Arc::clone(&sem).acquire_owned().await else {
                    break;
                };
                let rt = rt.clone();
                tokio::spawn(async move {
                    let outcome = rt.connectors().execute(&row.tool, &row.id, &args).await;
                    if let Err(e) = rt.finish(row, outcome).await {
                        tracing::error!(error = %e, "cannot record a recovered execution");
                    }
                    drop(permit);
                });
            }
        });
        Ok((resent, failed))
    }
}

/// `v`, or its size and hash when its JSON is longer than `cap` bytes.
fn cap_value(v: Value, cap: usize) -> Value {
    let text = v.to_string();
    if text.len() <= cap {
        return v;
    }
    use sha2::{Digest, Sha256};
    json!({
        "truncated": true,
        "bytes": text.len(),
        "sha256": format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes()))),
    })
}

/// The drill an action belongs to (kept in its decision).
pub(crate) fn drill_of(row: &ActionRow) -> Option<String> {
    serde_json::from_str::<Value>(&row.decision)
        .ok()?
        .get("drill")?
        .as_str()
        .map(str::to_owned)
}

/// The outcome a drill injects in place of the connector call, when its
/// step declares one.
pub(crate) fn injected(d: &crate::types::DrillTag) -> Option<ExecOutcome> {
    use warden_model::Fault;
    let failed = |code: FailureCode, error: &str| ExecOutcome {
        ok: false,
        code: Some(code),
        result: None,
        error: Some(format!("drill {}: {error} (injected by Warden)", d.id)),
        attempts: 1,
        http_status: None,
        elapsed: std::time::Duration::ZERO,
    };
    match (&d.fault, &d.result) {
        (Some(Fault::Error), _) => Some(failed(FailureCode::ToolError, "the tool failed")),
        (Some(Fault::Timeout), _) => Some(failed(FailureCode::ToolTimeout, "the tool timed out")),
        (None, Some(v)) => Some(ExecOutcome {
            ok: true,
            code: None,
            result: Some(v.clone()),
            error: None,
            attempts: 1,
            http_status: None,
            elapsed: std::time::Duration::ZERO,
        }),
        (None, None) => None,
    }
}
