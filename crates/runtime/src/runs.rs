//! Workflow runs: starting them, the step-order gate, and their views.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use warden_evidence::{Record, RecordKind};
use warden_model::{RunStatus, Trigger, Workflow};
use warden_store::{RunRow, StateWrite};

use crate::cancel::Ending;
use crate::error::RuntimeError;
use crate::runtime::{Runtime, new_id, now_us};
use crate::types::{ActionView, RunView};

/// A run held in memory while it is in use.
#[derive(Debug, Clone)]
pub(crate) struct RunState {
    pub(crate) row: RunRow,
    pub(crate) trigger: Option<Trigger>,
    pub(crate) done: BTreeSet<String>,
    /// What its succeeded steps exposed, by step id.
    pub(crate) data: std::collections::BTreeMap<String, serde_json::Value>,
}

/// What a succeeded step exposes: its exposed arguments (`args`, the
/// action's stored JSON), and its exposed result fields under `result`
/// (values absent from the call are left out). `None` for a step that
/// exposes nothing: its arguments are not even parsed.
pub(crate) fn exposed(
    step: &warden_model::Step,
    args: Option<&str>,
    result: Option<&serde_json::Value>,
) -> Option<serde_json::Value> {
    if step.expose.is_empty() {
        return None;
    }
    let args: serde_json::Value = args
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or(serde_json::Value::Null);
    let mut data = serde_json::Map::new();
    let mut res = serde_json::Map::new();
    for e in &step.expose {
        match e.strip_prefix("result.") {
            Some(f) => {
                if let Some(v) = result.and_then(|r| r.get(f)).filter(|v| !v.is_null()) {
                    res.insert(f.to_owned(), v.clone());
                }
            }
            None => {
                if let Some(v) = args.get(e).filter(|v| !v.is_null()) {
                    data.insert(e.clone(), v.clone());
                }
            }
        }
    }
    if step.expose.iter().any(|e| e.starts_with("result.")) {
        data.insert("result".into(), serde_json::Value::Object(res));
    }
    Some(serde_json::Value::Object(data))
}

/// The SHA-256 (hex) of a correlation value: runs keep this, not the value.
pub(crate) fn correlation_hash(workflow: &str, value: &serde_json::Value) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(
        format!("{workflow}\u{0}{value}").as_bytes(),
    ))
}

/// The step of `wf` that `tool` may run now, given the steps `done`: the
/// first not yet done whose prerequisites all succeeded, else a done one
/// (repeating a step is allowed). `Err` says why none may.
pub(crate) fn next_step(
    wf: &Workflow,
    tool: &str,
    done: &BTreeSet<String>,
) -> Result<String, String> {
    let candidates: Vec<_> = wf.steps.iter().filter(|s| s.tool == tool).collect();
    if candidates.is_empty() {
        return Err(format!("`{tool}` is not a step of workflow `{}`", wf.id));
    }
    let ready = |s: &&warden_model::Step| s.after.iter().all(|a| done.contains(a));
    if let Some(s) = candidates
        .iter()
        .find(|s| ready(s) && !done.contains(&s.id))
        .or_else(|| candidates.iter().find(|s| ready(s)))
    {
        return Ok(s.id.clone());
    }
    let s = candidates[0];
    let missing: Vec<String> = s
        .after
        .iter()
        .filter(|a| !done.contains(*a))
        .map(|a| format!("`{a}`"))
        .collect();
    Err(format!(
        "step `{}` of workflow `{}` needs {} to succeed first",
        s.id,
        wf.id,
        missing.join(", ")
    ))
}

/// `d` in microseconds, saturating.
pub(crate) fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Whether run `row` of `wf` is past its timeout at `now`.
pub(crate) fn timed_out(wf: Option<&Workflow>, row: &RunRow, now: i64) -> bool {
    wf.and_then(|w| w.timeout)
        .is_some_and(|limit| now >= row.created_us.saturating_add(micros(limit)))
}

/// Steps that may run now: not done, every prerequisite done.
pub(crate) fn ready_steps(wf: &Workflow, done: &BTreeSet<String>) -> Vec<String> {
    wf.steps
        .iter()
        .filter(|s| !done.contains(&s.id) && s.after.iter().all(|a| done.contains(a)))
        .map(|s| s.id.clone())
        .collect()
}

impl Runtime {
    /// Starts a run of `workflow` for `agent` with its trigger context.
    pub async fn start_run(
        &self,
        agent: &str,
        workflow: &str,
        trigger: Option<Trigger>,
    ) -> Result<RunView, RuntimeError> {
        self.open_run(agent, workflow, trigger, None).await
    }

    /// Starts a run, keyed by `correlation` (a [`correlation_hash`]) when
    /// a call without a run id started it.
    pub(crate) async fn open_run(
        &self,
        agent: &str,
        workflow: &str,
        trigger: Option<Trigger>,
        correlation: Option<String>,
    ) -> Result<RunView, RuntimeError> {
        let engine = self.0.engine.current();
        let pack = engine.pack();
        if !pack.agents.contains_key(agent) {
            return Err(RuntimeError::UnknownAgent(agent.to_owned()));
        }
        let Some(wf) = pack.workflows.get(workflow) else {
            return Err(RuntimeError::UnknownWorkflow(workflow.to_owned()));
        };
        let id = new_id("run")?;
        let t = now_us();
        let row = RunRow {
            id: id.clone(),
            workflow: workflow.to_owned(),
            agent: agent.to_owned(),
            state: RunStatus::Running,
            trigger: trigger
                .as_ref()
                .map(|t| serde_json::to_string(t).unwrap_or_default()),
            done_steps: "[]".into(),
            step_data: "{}".into(),
            correlation,
            created_us: t,
            updated_us: t,
        };
        let mut r = Record::new(RecordKind::RunStarted);
        r.agent = Some(agent.to_owned());
        r.workflow = Some(workflow.to_owned());
        r.run = Some(id.clone());
        r.trigger = trigger.clone();
        r.message = Some(format!("run of `{workflow}` started"));
        r.detail = Some(json!({
            "owner": wf.owner,
            "steps": wf.steps.iter().map(|s| &s.id).collect::<Vec<_>>(),
            "shadow": wf.shadow,
        }));
        self.0
            .log
            .commit(vec![r], vec![StateWrite::Run(row.clone())])
            .await?;
        let next = ready_steps(wf, &BTreeSet::new());
        let state = RunState {
            row: row.clone(),
            trigger,
            done: BTreeSet::new(),
            data: Default::default(),
        };
        if let Ok(mut runs) = self.0.runs.lock() {
            runs.insert(id, Arc::new(tokio::sync::Mutex::new(state)));
        }
        if wf.timeout.is_some() {
            // Its deadline may be the earliest: let the timer task know.
            self.0.timer_wake.notify_one();
        }
        Ok(RunView::from_row(&row, next, Vec::new()))
    }

    /// The run a call without a run id belongs to, through a correlating
    /// workflow of `tool` (`correlate = "<argument>"`): `agent`'s open run
    /// of that workflow with the same argument value, else a new run when
    /// `tool` is a first step. `(None, Some(why))`: the call is a later
    /// step and no run is open (the step-order gate refuses it). Calls of
    /// tools no correlating workflow has are left alone.
    pub(crate) async fn correlate(
        &self,
        pack: &warden_model::Pack,
        agent: &str,
        tool: &str,
        args: &serde_json::Value,
    ) -> Result<(Option<String>, Option<String>), RuntimeError> {
        let Some((wf, field)) = pack.workflows.values().find_map(|w| {
            let f = w.correlate.as_ref()?;
            w.steps.iter().any(|s| s.tool == tool).then_some((w, f))
        }) else {
            return Ok((None, None));
        };
        let Some(value) = args.get(field).filter(|v| v.is_string() || v.is_i64()) else {
            // The caller checked the arguments; nothing else can key a run.
            return Ok((None, None));
        };
        let hash = correlation_hash(&wf.id, value);
        // Calls for one value queue here, so two cannot both start a run.
        let _one = self
            .0
            .keys
            .lock(format!("correlate\u{0}{agent}\u{0}{}\u{0}{hash}", wf.id))
            .await;
        if let Some(id) = self.store().correlated_run(agent, &wf.id, &hash).await? {
            let open = match self.run_state(&id).await {
                Ok(r) => {
                    let r = r.lock().await;
                    r.row.state == RunStatus::Running
                        && !timed_out(Some(wf), &r.row, crate::runtime::now_us())
                }
                Err(_) => false,
            };
            if open {
                return Ok((Some(id), None));
            }
        }
        if wf
            .steps
            .iter()
            .any(|s| s.tool == tool && s.after.is_empty())
        {
            let trigger = Trigger {
                source: "correlation".into(),
                reference: Some(field.clone()),
                requester: None,
            };
            let run = self
                .open_run(agent, &wf.id, Some(trigger), Some(hash))
                .await?;
            return Ok((Some(run.run_id), None));
        }
        let first: Vec<String> = wf
            .steps
            .iter()
            .filter(|s| s.after.is_empty())
            .map(|s| format!("`{}`", s.tool))
            .collect();
        Ok((
            None,
            Some(format!(
                "no open run of workflow `{}` for this `{field}`: it starts with {} for the same `{field}`",
                wf.id,
                first.join(" or ")
            )),
        ))
    }

    /// Ends every run open longer than its workflow's `timeout`, with its
    /// pending requests; returns how many ended.
    pub async fn time_out_runs(&self, now: i64) -> Result<usize, RuntimeError> {
        let engine = self.0.engine.current();
        let mut n = 0;
        for (workflow, _) in self.store().oldest_running_runs().await? {
            let Some(limit) = engine
                .pack()
                .workflows
                .get(&workflow)
                .and_then(|w| w.timeout)
            else {
                continue;
            };
            let cutoff = now.saturating_sub(micros(limit));
            for run in self
                .store()
                .running_runs_started_before(&workflow, cutoff.saturating_add(1), 100)
                .await?
            {
                match self.end_run(&run.id, Ending::Timeout(limit), None).await {
                    Ok(_) => n += 1,
                    // Ended meanwhile (completed or cancelled): nothing to do.
                    Err(RuntimeError::RunClosed { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }

    /// When the next run reaches its workflow's timeout.
    pub async fn next_run_deadline(&self) -> Result<Option<i64>, RuntimeError> {
        let engine = self.0.engine.current();
        Ok(self
            .store()
            .oldest_running_runs()
            .await?
            .into_iter()
            .filter_map(|(w, oldest)| {
                let limit = engine.pack().workflows.get(&w)?.timeout?;
                Some(oldest.saturating_add(micros(limit)))
            })
            .min())
    }

    /// The run `id`, loaded into memory on first use.
    pub(crate) async fn run_state(
        &self,
        id: &str,
    ) -> Result<Arc<tokio::sync::Mutex<RunState>>, RuntimeError> {
        if let Some(r) = self.0.runs.lock().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(r);
        }
        let row = self
            .store()
            .run(id)
            .await?
            .ok_or_else(|| RuntimeError::UnknownRun(id.to_owned()))?;
        let done: BTreeSet<String> = serde_json::from_str::<Vec<String>>(&row.done_steps)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let state = RunState {
            trigger: row
                .trigger
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            data: serde_json::from_str(&row.step_data).unwrap_or_default(),
            row,
            done,
        };
        let mut runs = self
            .0
            .runs
            .lock()
            .map_err(|_| RuntimeError::Random("run table poisoned".into()))?;
        Ok(Arc::clone(runs.entry(id.to_owned()).or_insert_with(|| {
            Arc::new(tokio::sync::Mutex::new(state))
        })))
    }

    /// The run `id` with its actions, as `viewer` may see it (an agent sees
    /// its own runs; `None`: people with a role see all).
    pub async fn run(&self, id: &str, viewer: Option<&str>) -> Result<RunView, RuntimeError> {
        let row = match self.store().run(id).await? {
            Some(r) if viewer.is_none_or(|v| v == r.agent) => r,
            _ => return Err(RuntimeError::UnknownRun(id.to_owned())),
        };
        let done: BTreeSet<String> = serde_json::from_str::<Vec<String>>(&row.done_steps)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let engine = self.0.engine.current();
        let next = match engine.pack().workflows.get(&row.workflow) {
            Some(wf) if row.state == RunStatus::Running => ready_steps(wf, &done),
            _ => Vec::new(),
        };
        let actions = self
            .store()
            .run_actions(id)
            .await?
            .iter()
            .map(ActionView::from_row)
            .collect();
        Ok(RunView::from_row(&row, next, actions))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn workflow() -> Workflow {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds");
        let loaded = warden_model::load(dir).unwrap();
        loaded.pack.workflows["refund-request"].clone()
    }

    fn done(steps: &[&str]) -> BTreeSet<String> {
        steps.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn steps_run_only_after_their_prerequisites_succeed() {
        let wf = workflow();
        assert_eq!(
            next_step(&wf, "crm.lookup_customer", &done(&[])).unwrap(),
            "crm.lookup_customer"
        );
        let why = next_step(&wf, "stripe.refund", &done(&[])).unwrap_err();
        assert!(why.contains("needs `crm.lookup_customer`"), "{why}");
        assert_eq!(
            next_step(&wf, "stripe.refund", &done(&["crm.lookup_customer"])).unwrap(),
            "stripe.refund"
        );
        // Repeating a step whose prerequisites hold is allowed.
        assert_eq!(
            next_step(&wf, "crm.lookup_customer", &done(&["crm.lookup_customer"])).unwrap(),
            "crm.lookup_customer"
        );
        let why = next_step(&wf, "db.delete_rows", &done(&[])).unwrap_err();
        assert!(
            why.contains("not a step of workflow `refund-request`"),
            "{why}"
        );
        assert_eq!(ready_steps(&wf, &done(&[])), ["crm.lookup_customer"]);
        assert_eq!(
            ready_steps(&wf, &done(&["crm.lookup_customer", "stripe.refund"])),
            ["email.send_customer"]
        );
    }
}
