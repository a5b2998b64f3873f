//! The runtime's inputs and outputs: proposals, reports, and the views of
//! actions and runs that the API returns.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_model::{ActionStatus, RunStatus, Trigger};
use warden_store::{ActionRow, RunRow};

/// How an allowed action is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Warden executes through the tool's connector, holding the credentials.
    Enforce,
    /// Warden decides; the agent executes and reports the outcome.
    Check,
}

impl Mode {
    /// `enforce` or `check`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Check => "check",
        }
    }
}

/// An action an agent proposes. The agent is the caller's credential's.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// Tool id.
    pub tool: String,
    /// Arguments, checked against the tool's JSON Schema.
    pub arguments: Value,
    /// The workflow run it belongs to.
    pub run_id: Option<String>,
    /// Enforce or check.
    pub mode: Mode,
    /// The same key from the same agent returns the same action.
    pub idempotency_key: Option<String>,
    /// Why the agent wants it (recorded).
    pub reason: Option<String>,
    /// An `agent` field the body carried: recorded, never trusted.
    pub claimed_agent: Option<Value>,
    /// Drill traffic: set by Warden's drill runner only, never from a
    /// request body.
    pub drill: Option<DrillTag>,
}

/// Marks a proposal as drill traffic: its records carry the drill id in
/// the trigger, and its execution may be replaced by a failure or a result
/// the drill declares (for this proposal only; real traffic is never
/// touched).
#[derive(Debug, Clone, Default)]
pub struct DrillTag {
    /// `drl_…`.
    pub id: String,
    /// The connector call fails this way instead.
    pub fault: Option<warden_model::Fault>,
    /// The connector call returns this instead.
    pub result: Option<Value>,
}

/// What an agent reports after executing a `check`-mode action.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// `succeeded` or `failed`.
    #[schema(value_type = String, example = "succeeded")]
    pub status: ActionStatus,
    /// The tool's result (recorded redacted and capped).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// What went wrong, for `failed`.
    #[serde(default)]
    pub error: Option<String>,
    /// `tool_error` (default), `tool_timeout` or `retries_exhausted`, for
    /// `failed`.
    #[serde(default)]
    pub code: Option<String>,
}

/// An action as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ActionView {
    /// Action id.
    pub action_id: String,
    /// The proposing agent.
    pub agent: String,
    /// The tool.
    pub tool: String,
    /// The run, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The workflow step it was matched to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Enforce or check.
    pub mode: Mode,
    /// Decided in shadow mode: never blocked; `decision.shadow` holds what
    /// enforcement would have done.
    pub shadow: bool,
    /// Lifecycle status: proposed, denied, awaiting_approval, approved,
    /// executing, succeeded, failed, expired, cancelled, escalated.
    #[schema(value_type = String, example = "succeeded")]
    pub status: ActionStatus,
    /// Standardized code when it did not succeed.
    pub code: Option<String>,
    /// The decision (outcome, code, message, determining policies, version).
    #[schema(value_type = Object)]
    pub decision: Value,
    /// The execution: result or error, attempts, HTTP status, time.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<Value>,
    /// The agent's idempotency key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The approval request, when the action needed one
    /// (`GET /v1/approvals/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// When proposed (RFC 3339).
    pub created: String,
    /// Last change (RFC 3339).
    pub updated: String,
}

impl ActionView {
    /// The view of a stored row.
    pub fn from_row(row: &ActionRow) -> Self {
        let decision = serde_json::from_str(&row.decision).unwrap_or(Value::Null);
        Self::with_decision(row, decision)
    }

    /// The view of a row whose decision the caller already holds as JSON
    /// (no parse of `row.decision`).
    pub(crate) fn with_decision(row: &ActionRow, decision: Value) -> Self {
        Self {
            action_id: row.id.clone(),
            agent: row.agent.clone(),
            tool: row.tool.clone(),
            run_id: row.run_id.clone(),
            step: row.step.clone(),
            mode: if row.mode == "enforce" {
                Mode::Enforce
            } else {
                Mode::Check
            },
            shadow: row.shadow,
            status: row.state,
            code: row.code.clone(),
            outcome: row
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            idempotency_key: row.idempotency_key.clone(),
            approval_id: decision
                .get("approval_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            created: warden_evidence::time_from_micros(row.created_us),
            updated: warden_evidence::time_from_micros(row.updated_us),
            decision,
        }
    }

    /// Whether the action can no longer change.
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }

    /// Whether Warden has nothing more to do for the agent: the action is
    /// final, or approved after an approval request in `check` mode (the
    /// agent's turn to execute). Long-polls return then.
    pub fn is_settled(&self) -> bool {
        self.is_final()
            || (self.status == ActionStatus::Approved
                && self.mode == Mode::Check
                && self.approval_id.is_some())
    }
}

/// A workflow run as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RunView {
    /// Run id.
    pub run_id: String,
    /// The workflow.
    pub workflow: String,
    /// The agent that started it.
    pub agent: String,
    /// `running`, `completed`, `cancelled` or `timed_out`.
    #[schema(value_type = String, example = "running")]
    pub state: RunStatus,
    /// What started it: source, reference, requester.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub trigger: Option<Trigger>,
    /// Step ids that succeeded, in workflow order.
    pub done_steps: Vec<String>,
    /// Steps that may run now.
    pub next_steps: Vec<String>,
    /// Its actions, oldest first.
    pub actions: Vec<ActionView>,
    /// When started (RFC 3339).
    pub created: String,
    /// Last change (RFC 3339).
    pub updated: String,
}

impl RunView {
    pub(crate) fn from_row(
        row: &RunRow,
        next_steps: Vec<String>,
        actions: Vec<ActionView>,
    ) -> Self {
        Self {
            run_id: row.id.clone(),
            workflow: row.workflow.clone(),
            agent: row.agent.clone(),
            state: row.state,
            trigger: row
                .trigger
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            done_steps: serde_json::from_str(&row.done_steps).unwrap_or_default(),
            next_steps,
            actions,
            created: warden_evidence::time_from_micros(row.created_us),
            updated: warden_evidence::time_from_micros(row.updated_us),
        }
    }
}

/// The answer to a proposal.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The action now.
    pub action: ActionView,
    /// An earlier action returned again for the same idempotency key.
    pub replayed: bool,
    /// Position of the `action_decided` record (not for replays).
    pub evidence_seq: Option<u64>,
}
