//! Approval requests as the API shows them, and the answers people give.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_model::ApprovalState;
use warden_store::ApprovalRow;

use super::{parse_slots, parse_votes};

/// `approve` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Counts toward the quorum.
    Approve,
    /// Ends the request: the action is denied with `approval_denied`.
    Deny,
}

/// The body of `POST /v1/approvals/{id}/decision`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `approve` or `deny`.
    pub decision: Verdict,
    /// Why (recorded).
    #[serde(default)]
    pub comment: Option<String>,
}

/// One person's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Vote {
    /// Who answered.
    pub approver: String,
    /// The required group it counts for.
    pub group: String,
    /// The group the approver answered through (the required group or an
    /// escalation step's).
    pub via: String,
    /// `approve` or `deny`.
    pub decision: Verdict,
    /// What they wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When (RFC 3339).
    pub at: String,
    /// Milliseconds from the request to this answer.
    pub latency_ms: u64,
    /// The approver is the agent's owner or operator and `via` relaxes
    /// separation of duties.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub separation_of_duties_relaxed: bool,
}

/// One required group of a request, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Requirement {
    /// The group the policy named.
    pub group: String,
    /// Approvals it needs.
    pub quorum: u32,
    /// Approvals it has.
    pub approvals: u32,
    /// Groups whose members may answer for it (after escalation, more).
    pub eligible: Vec<String>,
}

/// An approval request as the API shows it: what is asked, by whom, why,
/// who must answer and by when.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApprovalView {
    /// Request id.
    pub approval_id: String,
    /// The action waiting for it.
    pub action_id: String,
    /// `pending`, `approved`, `denied`, `expired` or `cancelled`.
    #[schema(value_type = String, example = "pending")]
    pub state: ApprovalState,
    /// The requesting agent.
    pub agent: String,
    /// The tool.
    pub tool: String,
    /// The run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The run's workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// What started the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub trigger: Option<Value>,
    /// The exact arguments, while the request is pending (webhooks get the
    /// recorded ones, sensitive fields redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Value>,
    /// `sha256:<hex>` of the canonical request the approval is bound to.
    pub request_sha256: String,
    /// Who must approve, and how far each group is.
    pub requires: Vec<Requirement>,
    /// The answers so far.
    pub votes: Vec<Vote>,
    /// The tool's risk class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    /// Why approval is needed (the determining gates).
    pub message: String,
    /// The gates that asked for approval, with their annotations.
    #[schema(value_type = Vec<Object>)]
    pub policies: Value,
    /// Why the agent wants it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Escalation steps taken.
    pub escalations: i64,
    /// When the next escalation or expiry happens (pending only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    /// When requested (RFC 3339).
    pub created: String,
    /// Last change (RFC 3339).
    pub updated: String,
}

impl ApprovalView {
    /// The view of a stored row, with the exact arguments when the row
    /// carries them.
    pub fn from_row(row: &ApprovalRow) -> Self {
        let mut v = Self::recorded(row);
        if row.state == ApprovalState::Pending
            && let Some(exact) = row
                .arguments
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
        {
            v.arguments = Some(exact);
        }
        v
    }

    /// The view without the exact arguments: the recorded ones, sensitive
    /// fields redacted.
    pub fn recorded(row: &ApprovalRow) -> Self {
        let ctx: Value = serde_json::from_str(&row.context).unwrap_or(Value::Null);
        let slots = parse_slots(row);
        let votes = parse_votes(row);
        let text = |k: &str| ctx.get(k).and_then(Value::as_str).map(str::to_owned);
        Self {
            approval_id: row.id.clone(),
            action_id: row.action_id.clone(),
            state: row.state,
            agent: row.agent.clone(),
            tool: row.tool.clone(),
            run_id: row.run_id.clone(),
            workflow: text("workflow"),
            trigger: ctx.get("trigger").filter(|t| !t.is_null()).cloned(),
            arguments: ctx.get("args").filter(|t| !t.is_null()).cloned(),
            request_sha256: row.request_hash.clone(),
            requires: slots
                .iter()
                .map(|s| Requirement {
                    group: s.group.clone(),
                    quorum: s.quorum,
                    approvals: s.approvals(&votes),
                    eligible: s.chain.clone(),
                })
                .collect(),
            votes,
            risk: text("risk"),
            message: text("message").unwrap_or_default(),
            policies: ctx.get("policies").cloned().unwrap_or(Value::Null),
            reason: text("reason"),
            escalations: row.escalations,
            due: row
                .due_us
                .filter(|_| row.state == ApprovalState::Pending)
                .map(warden_evidence::time_from_micros),
            created: warden_evidence::time_from_micros(row.created_us),
            updated: warden_evidence::time_from_micros(row.updated_us),
        }
    }
}
