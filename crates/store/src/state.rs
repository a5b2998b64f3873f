//! Runtime state rows: runs, actions and agent pauses. The store holds no
//! lifecycle rules: the runtime decides every value, the store persists
//! whole rows (upserts) in the audit log's transactions and reads them back.

use sqlx::Row;
use sqlx::any::AnyRow;
use warden_model::{ActionStatus, RunStatus};

use crate::Store;
use crate::error::StoreError;
use crate::sql::Sql;

/// A workflow run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    /// Run id.
    pub id: String,
    /// The workflow.
    pub workflow: String,
    /// The agent that started it.
    pub agent: String,
    /// Where it is.
    pub state: RunStatus,
    /// JSON of the trigger context.
    pub trigger: Option<String>,
    /// JSON array of the step ids that succeeded.
    pub done_steps: String,
    /// JSON object: what each succeeded step exposed, by step id.
    pub step_data: String,
    /// SHA-256 of the correlation argument's value, for runs a call
    /// without a run id joins (`correlate`).
    pub correlation: Option<String>,
    /// µs since the epoch.
    pub created_us: i64,
    /// µs since the epoch.
    pub updated_us: i64,
}

/// An action as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRow {
    /// Action id.
    pub id: String,
    /// The proposing agent (from its credential).
    pub agent: String,
    /// The tool.
    pub tool: String,
    /// The run, if any.
    pub run_id: Option<String>,
    /// The workflow step it was matched to.
    pub step: Option<String>,
    /// `enforce` or `check`.
    pub mode: String,
    /// Decided in shadow mode.
    pub shadow: bool,
    /// Lifecycle status.
    pub state: ActionStatus,
    /// Standardized code when it did not succeed.
    pub code: Option<String>,
    /// The agent's idempotency key.
    pub idempotency_key: Option<String>,
    /// `sha256:<hex>` of the canonical request.
    pub request_hash: String,
    /// JSON arguments; `None` once the action is final.
    pub arguments: Option<String>,
    /// JSON of the decision.
    pub decision: String,
    /// JSON of the result or error.
    pub result: Option<String>,
    /// Connector attempts made.
    pub attempts: i64,
    /// µs since the epoch.
    pub created_us: i64,
    /// µs since the epoch.
    pub updated_us: i64,
}

/// Whether an agent is paused (the kill switch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStateRow {
    /// The agent.
    pub agent: String,
    /// Paused: every proposal is denied with `agent_paused`.
    pub paused: bool,
    /// Quarantined: every write action needs this approver group's approval.
    pub quarantine: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Who changed it.
    pub changed_by: Option<String>,
    /// µs since the epoch.
    pub updated_us: i64,
}

/// A row to write (insert or replace) in the same transaction as the
/// evidence records of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    /// A run.
    Run(RunRow),
    /// An action.
    Action(ActionRow),
    /// An agent's pause state.
    Agent(AgentStateRow),
    /// An approval request.
    Approval(crate::approvals::ApprovalRow),
    /// An incident.
    Incident(crate::oversight::IncidentRow),
    /// A notification in the outbox.
    Notification(crate::oversight::NotificationRow),
    /// A tool's circuit.
    Circuit(crate::oversight::CircuitRow),
    /// A data-subject erasure: payloads and stored results dropped.
    Erase(crate::erase::Erasure),
    /// A drill run.
    Drill(crate::oversight::DrillRow),
    /// A Slack message to open for an approval request.
    SlackOpen(crate::slack::SlackOpen),
    /// What a Slack message shows now (a sender's outcome).
    SlackMessage(crate::slack::SlackMessageRow),
    /// What a counted action adds to a counter's window.
    Usage(crate::usage::UsageEvent),
}

pub(crate) const RUN_COLS: &str = "id, workflow, agent, state, trigger_ctx, done_steps, step_data, correlation, created_us, updated_us";
const ACTION_COLS: &str = "id, agent, tool, run_id, step, mode, shadow, state, code, \
     idempotency_key, request_hash, arguments, decision, result, attempts, created_us, updated_us";
const AGENT_COLS: &str = "agent, paused, reason, changed_by, updated_us, quarantine";

/// Rows per upsert statement (17 values each at most).
const ROWS_PER_UPSERT: usize = 100;

/// Writes `writes` in `tx`: one multi-row upsert per table and chunk. When a
/// row appears more than once, the last one wins (a multi-row upsert may
/// not touch a row twice).
pub(crate) async fn write_state(
    backend: crate::Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    writes: Vec<StateWrite>,
) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut runs: Vec<RunRow> = Vec::new();
    let mut actions: Vec<ActionRow> = Vec::new();
    let mut agents: Vec<AgentStateRow> = Vec::new();
    let mut approvals: Vec<crate::approvals::ApprovalRow> = Vec::new();
    let mut oversight = crate::oversight::Writes::default();
    let mut erasures = Vec::new();
    let mut slack_opens = Vec::new();
    let mut slack_sent = Vec::new();
    let mut usage = Vec::new();
    for w in writes.into_iter().rev() {
        match w {
            StateWrite::Run(r) if !runs.iter().any(|x| x.id == r.id) => runs.push(r),
            StateWrite::Action(a) if !actions.iter().any(|x| x.id == a.id) => actions.push(a),
            StateWrite::Agent(a) if !agents.iter().any(|x| x.agent == a.agent) => agents.push(a),
            StateWrite::Approval(a) if !approvals.iter().any(|x| x.id == a.id) => approvals.push(a),
            StateWrite::Incident(i) => oversight.incident(i),
            StateWrite::Drill(d) => oversight.drill(d),
            StateWrite::Notification(n) => oversight.notification(n),
            StateWrite::Circuit(c) => oversight.circuit(c),
            StateWrite::Erase(e) => erasures.push(e),
            StateWrite::SlackOpen(o) => slack_opens.push(o),
            StateWrite::SlackMessage(m) => slack_sent.push(m),
            StateWrite::Usage(u) => usage.push(u),
            _ => {}
        }
    }
    for chunk in runs.chunks(ROWS_PER_UPSERT) {
        let mut q = Sql::new("INSERT INTO runs (");
        q.push(RUN_COLS).push(") VALUES ");
        for (i, r) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.text(r.id.clone())
                .push(", ")
                .text(r.workflow.clone())
                .push(", ")
                .text(r.agent.clone())
                .push(", ")
                .text(r.state.as_str())
                .push(", ")
                .opt_text(r.trigger.clone())
                .push(", ")
                .text(r.done_steps.clone())
                .push(", ")
                .text(r.step_data.clone())
                .push(", ")
                .opt_text(r.correlation.clone())
                .push(", ")
                .int(r.created_us)
                .push(", ")
                .int(r.updated_us)
                .push(")");
        }
        q.push(
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
             done_steps = excluded.done_steps, step_data = excluded.step_data, \
             updated_us = excluded.updated_us",
        );
        q.build(backend).execute(&mut **tx).await?;
    }
    for chunk in actions.chunks(ROWS_PER_UPSERT) {
        let mut q = Sql::new("INSERT INTO actions (");
        q.push(ACTION_COLS).push(") VALUES ");
        for (i, a) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.text(a.id.clone())
                .push(", ")
                .text(a.agent.clone())
                .push(", ")
                .text(a.tool.clone())
                .push(", ")
                .opt_text(a.run_id.clone())
                .push(", ")
                .opt_text(a.step.clone())
                .push(", ")
                .text(a.mode.clone())
                .push(", ")
                .int(i64::from(a.shadow))
                .push(", ")
                .text(a.state.as_str())
                .push(", ")
                .opt_text(a.code.clone())
                .push(", ")
                .opt_text(a.idempotency_key.clone())
                .push(", ")
                .text(a.request_hash.clone())
                .push(", ")
                .opt_text(a.arguments.clone())
                .push(", ")
                .text(a.decision.clone())
                .push(", ")
                .opt_text(a.result.clone())
                .push(", ")
                .int(a.attempts)
                .push(", ")
                .int(a.created_us)
                .push(", ")
                .int(a.updated_us)
                .push(")");
        }
        q.push(
            " ON CONFLICT (id) DO UPDATE SET step = excluded.step, state = excluded.state, \
             code = excluded.code, arguments = excluded.arguments, decision = excluded.decision, \
             result = excluded.result, attempts = excluded.attempts, updated_us = excluded.updated_us",
        );
        q.build(backend).execute(&mut **tx).await?;
    }
    for chunk in agents.chunks(ROWS_PER_UPSERT) {
        let mut q = Sql::new("INSERT INTO agent_state (");
        q.push(AGENT_COLS).push(") VALUES ");
        for (i, a) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.text(a.agent.clone())
                .push(", ")
                .int(i64::from(a.paused))
                .push(", ")
                .opt_text(a.reason.clone())
                .push(", ")
                .opt_text(a.changed_by.clone())
                .push(", ")
                .int(a.updated_us)
                .push(", ")
                .opt_text(a.quarantine.clone())
                .push(")");
        }
        q.push(
            " ON CONFLICT (agent) DO UPDATE SET paused = excluded.paused, reason = excluded.reason, \
             changed_by = excluded.changed_by, updated_us = excluded.updated_us, \
             quarantine = excluded.quarantine",
        );
        q.build(backend).execute(&mut **tx).await?;
    }
    // After the actions: an approval row refers to its action.
    crate::approvals::write(backend, tx, &approvals).await?;
    // Every change of a request brings its Slack messages up to date.
    if !approvals.is_empty() {
        let ids: Vec<&str> = approvals.iter().map(|a| a.id.as_str()).collect();
        crate::slack::bump(backend, tx, &ids).await?;
    }
    slack_opens.reverse();
    crate::slack::open(backend, tx, &slack_opens).await?;
    crate::slack::sent(backend, tx, &slack_sent).await?;
    usage.reverse();
    crate::usage::write(backend, tx, &usage).await?;
    oversight.write(backend, tx).await?;
    // After the rows above: an erasure also clears actions written in the
    // same commit.
    for e in &erasures {
        crate::erase::write_erasure(backend, tx, e).await?;
    }
    Ok(())
}

/// A column holding one of Warden's words (a lifecycle state); anything
/// else is a corrupt store, never a silent default.
pub(crate) fn word<T>(row: &AnyRow, col: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = warden_model::UnknownWord>,
{
    let text: String = row.try_get(col)?;
    text.parse()
        .map_err(|e: warden_model::UnknownWord| StoreError::Corrupt(format!("column `{col}`: {e}")))
}

pub(crate) fn run_row(row: &AnyRow) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        id: row.try_get("id")?,
        workflow: row.try_get("workflow")?,
        agent: row.try_get("agent")?,
        state: word(row, "state")?,
        trigger: row.try_get("trigger_ctx")?,
        done_steps: row.try_get("done_steps")?,
        step_data: row.try_get("step_data")?,
        correlation: row.try_get("correlation")?,
        created_us: row.try_get("created_us")?,
        updated_us: row.try_get("updated_us")?,
    })
}

fn action_row(row: &AnyRow) -> Result<ActionRow, StoreError> {
    Ok(ActionRow {
        id: row.try_get("id")?,
        agent: row.try_get("agent")?,
        tool: row.try_get("tool")?,
        run_id: row.try_get("run_id")?,
        step: row.try_get("step")?,
        mode: row.try_get("mode")?,
        shadow: row.try_get::<i64, _>("shadow")? != 0,
        state: word(row, "state")?,
        code: row.try_get("code")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        arguments: row.try_get("arguments")?,
        decision: row.try_get("decision")?,
        result: row.try_get("result")?,
        attempts: row.try_get("attempts")?,
        created_us: row.try_get("created_us")?,
        updated_us: row.try_get("updated_us")?,
    })
}

impl Store {
    /// The run `id`.
    pub async fn run(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(RUN_COLS).push(" FROM runs WHERE id = ").text(id);
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        row.as_ref().map(run_row).transpose()
    }

    /// The oldest running run of each workflow that has one: when it
    /// started (for run timeouts).
    pub async fn oldest_running_runs(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let q = Sql::new(
            "SELECT workflow, MIN(created_us) AS oldest FROM runs \
             WHERE state = 'running' GROUP BY workflow ORDER BY workflow",
        );
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("workflow")?, r.try_get("oldest")?)))
            .collect()
    }

    /// The id of `agent`'s running run of `workflow` whose correlation hash
    /// is `correlation` (the newest, should there be several).
    pub async fn correlated_run(
        &self,
        agent: &str,
        workflow: &str,
        correlation: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut q = Sql::new("SELECT id FROM runs WHERE agent = ");
        q.text(agent)
            .push(" AND workflow = ")
            .text(workflow)
            .push(" AND correlation = ")
            .text(correlation)
            .push(" AND state = 'running' ORDER BY created_us DESC LIMIT 1");
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id")?),
            None => None,
        })
    }

    /// Running runs of `workflow` started before `created_before_us`, oldest
    /// first, at most `limit`.
    pub async fn running_runs_started_before(
        &self,
        workflow: &str,
        created_before_us: i64,
        limit: u32,
    ) -> Result<Vec<RunRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(RUN_COLS)
            .push(" FROM runs WHERE state = 'running' AND workflow = ")
            .text(workflow)
            .push(" AND created_us < ")
            .int(created_before_us)
            .push(" ORDER BY created_us, id LIMIT ")
            .int(i64::from(limit));
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(run_row).collect()
    }

    /// The action `id`.
    pub async fn action(&self, id: &str) -> Result<Option<ActionRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(ACTION_COLS)
            .push(" FROM actions WHERE id = ")
            .text(id);
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        row.as_ref().map(action_row).transpose()
    }

    /// The action `agent` proposed with idempotency key `key`.
    pub async fn action_by_key(
        &self,
        agent: &str,
        key: &str,
    ) -> Result<Option<ActionRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(ACTION_COLS)
            .push(" FROM actions WHERE agent = ")
            .text(agent)
            .push(" AND idempotency_key = ")
            .text(key)
            .push(" ORDER BY created_us LIMIT 1");
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        row.as_ref().map(action_row).transpose()
    }

    /// Every action in lifecycle state `state`, oldest first.
    pub async fn actions_in_state(&self, state: &str) -> Result<Vec<ActionRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(ACTION_COLS)
            .push(" FROM actions WHERE state = ")
            .text(state)
            .push(" ORDER BY created_us");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(action_row).collect()
    }

    /// The actions of run `run_id`, oldest first.
    pub async fn run_actions(&self, run_id: &str) -> Result<Vec<ActionRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(ACTION_COLS)
            .push(" FROM actions WHERE run_id = ")
            .text(run_id)
            .push(" ORDER BY created_us, id");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(action_row).collect()
    }

    /// Every agent's pause state.
    pub async fn agent_states(&self) -> Result<Vec<AgentStateRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(AGENT_COLS).push(" FROM agent_state ORDER BY agent");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(AgentStateRow {
                    agent: row.try_get("agent")?,
                    paused: row.try_get::<i64, _>("paused")? != 0,
                    reason: row.try_get("reason")?,
                    changed_by: row.try_get("changed_by")?,
                    updated_us: row.try_get("updated_us")?,
                    quarantine: row.try_get("quarantine")?,
                })
            })
            .collect()
    }

    /// How many actions are in each state.
    pub async fn action_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let q = Sql::new("SELECT state, COUNT(*) AS n FROM actions GROUP BY state ORDER BY state");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }
}
