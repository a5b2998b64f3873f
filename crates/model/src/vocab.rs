//! The shared words of Warden: access, risk class, decision outcome and codes.
//!
//! These are wire formats: their spelling appears in packs, JSON output and
//! evidence, so it never changes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether a tool reads or changes its system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Reads only.
    Read,
    /// Has side effects.
    Write,
}

/// Risk class of a tool or workflow step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Harmless if wrong.
    Low,
    /// Recoverable harm.
    Medium,
    /// Costly harm: usually needs approval.
    High,
    /// Irreversible harm.
    Critical,
}

/// The three outcomes of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Inside policy: may execute.
    Allow,
    /// Outside policy: must not execute.
    Deny,
    /// Inside policy once the named approver groups approve.
    ApprovalRequired,
}

/// Why a decision is `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// No permit policy grants the request (default deny).
    NoGrant,
    /// A forbid policy that approvals cannot lift applies.
    Forbidden,
    /// A policy failed to evaluate; Warden fails closed.
    EvaluationError,
    /// The arguments do not match the tool's JSON Schema.
    InvalidArguments,
    /// The tool is not declared in the pack.
    UnknownTool,
    /// The agent is not declared in the pack.
    UnknownAgent,
}

/// What a person may do besides approving for their approver groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs Warden: pauses agents, manages incidents, reads everything.
    Operator,
    /// Reads evidence: audit queries, timelines, verification, exports.
    Auditor,
}

/// Where an action is in its lifecycle (DESIGN.md, "Action lifecycle").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Received, not yet decided.
    Proposed,
    /// Decided `deny`: will not execute.
    Denied,
    /// Waiting for approver groups.
    AwaitingApproval,
    /// Approved; policy is evaluated again before execution.
    Approved,
    /// Running through its connector (or by the agent, in check mode).
    Executing,
    /// Executed and reported success.
    Succeeded,
    /// Executed and failed, or could not execute.
    Failed,
    /// An approval was not given in time.
    Expired,
    /// Withdrawn by the agent or an operator.
    Cancelled,
    /// Handed to the next group in the escalation chain.
    Escalated,
}

impl ActionStatus {
    /// Whether the action can no longer change.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Denied | Self::Succeeded | Self::Failed | Self::Expired | Self::Cancelled
        )
    }
}

/// Standardized, machine-readable reason an action did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// Policy decided `deny`.
    PolicyDenied,
    /// An approver refused.
    ApprovalDenied,
    /// No approval arrived before the deadline.
    ApprovalExpired,
    /// Arguments do not match the tool's JSON Schema.
    InvalidArguments,
    /// The tool is not declared in the pack.
    UnknownTool,
    /// The agent is not declared, or its credential is not valid.
    UnknownAgent,
    /// Not a legal next step of the run's workflow graph.
    StepOutOfOrder,
    /// The tool answered with an error.
    ToolError,
    /// The tool did not answer in time.
    ToolTimeout,
    /// Every retry failed.
    RetriesExhausted,
    /// The agent is paused or quarantined by oversight.
    AgentPaused,
    /// Warden stopped while the action was executing and, on restart, the
    /// tool was not safe to re-send.
    Interrupted,
    /// The upstream MCP server's definition of the tool no longer matches
    /// the one the pack adopted (or the tool is gone): not executed.
    ToolChanged,
    /// Oversight opened the tool's circuit: proposals are refused until it
    /// closes.
    ToolCircuitOpen,
    /// The agent that asked, or an operator, cancelled the action's
    /// approval request or its run.
    Cancelled,
    /// The action's run outlived its workflow's `timeout`; Warden ended it
    /// and cancelled its pending requests.
    RunTimedOut,
    /// A fact the decision needs (`[[tools.facts]]`) could not be fetched
    /// in time: denied, fail closed.
    FactsUnavailable,
}

/// Where an approval request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for answers.
    Pending,
    /// Every required group reached its quorum.
    Approved,
    /// An approver refused.
    Denied,
    /// Its chain ended unanswered.
    Expired,
    /// Withdrawn by the agent, an operator, or its run's end.
    Cancelled,
}

/// Where an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Detected; nobody has acknowledged it.
    Open,
    /// A responder took it.
    Acknowledged,
    /// Over.
    Resolved,
}

/// Where a page (an outbox notification) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet; retried until its attempts run out.
    Pending,
    /// The route accepted it.
    Delivered,
    /// Every attempt failed.
    Failed,
}

/// Where a workflow run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepts actions.
    Running,
    /// Every step succeeded.
    Completed,
    /// Cancelled by its agent or an operator.
    Cancelled,
    /// Outlived its workflow's `timeout`.
    TimedOut,
}

impl RunStatus {
    /// Whether the run still accepts actions.
    pub fn is_open(self) -> bool {
        self == Self::Running
    }
}

impl From<DenyCode> for FailureCode {
    /// The lifecycle code of an action denied by a decision with this code.
    fn from(c: DenyCode) -> Self {
        match c {
            DenyCode::NoGrant | DenyCode::Forbidden | DenyCode::EvaluationError => {
                Self::PolicyDenied
            }
            DenyCode::InvalidArguments => Self::InvalidArguments,
            DenyCode::UnknownTool => Self::UnknownTool,
            DenyCode::UnknownAgent => Self::UnknownAgent,
        }
    }
}

macro_rules! words {
    ($ty:ty { $($variant:ident => $word:literal),* $(,)? }) => {
        impl $ty {
            /// The word as written in packs and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $word),* }
            }

            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$(Self::$variant),*];
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                match s {
                    $($word => Ok(Self::$variant),)*
                    _ => Err(UnknownWord {
                        word: s.to_owned(),
                        expected: &[$($word),*],
                    }),
                }
            }
        }
    };
}

words!(Access { Read => "read", Write => "write" });
words!(Risk { Low => "low", Medium => "medium", High => "high", Critical => "critical" });
words!(Outcome { Allow => "allow", Deny => "deny", ApprovalRequired => "approval_required" });
words!(DenyCode {
    NoGrant => "no_grant",
    Forbidden => "forbidden",
    EvaluationError => "evaluation_error",
    InvalidArguments => "invalid_arguments",
    UnknownTool => "unknown_tool",
    UnknownAgent => "unknown_agent",
});

words!(Role { Operator => "operator", Auditor => "auditor" });
words!(ActionStatus {
    Proposed => "proposed",
    Denied => "denied",
    AwaitingApproval => "awaiting_approval",
    Approved => "approved",
    Executing => "executing",
    Succeeded => "succeeded",
    Failed => "failed",
    Expired => "expired",
    Cancelled => "cancelled",
    Escalated => "escalated",
});
words!(FailureCode {
    PolicyDenied => "policy_denied",
    ApprovalDenied => "approval_denied",
    ApprovalExpired => "approval_expired",
    InvalidArguments => "invalid_arguments",
    UnknownTool => "unknown_tool",
    UnknownAgent => "unknown_agent",
    StepOutOfOrder => "step_out_of_order",
    ToolError => "tool_error",
    ToolTimeout => "tool_timeout",
    RetriesExhausted => "retries_exhausted",
    AgentPaused => "agent_paused",
    Interrupted => "interrupted",
    ToolChanged => "tool_changed",
    ToolCircuitOpen => "tool_circuit_open",
    Cancelled => "cancelled",
    RunTimedOut => "run_timed_out",
    FactsUnavailable => "facts_unavailable",
});
words!(ApprovalState {
    Pending => "pending",
    Approved => "approved",
    Denied => "denied",
    Expired => "expired",
    Cancelled => "cancelled",
});
words!(IncidentState {
    Open => "open",
    Acknowledged => "acknowledged",
    Resolved => "resolved",
});
words!(DeliveryState {
    Pending => "pending",
    Delivered => "delivered",
    Failed => "failed",
});
words!(RunStatus {
    Running => "running",
    Completed => "completed",
    Cancelled => "cancelled",
    TimedOut => "timed_out",
});

/// A word that is not one of the expected ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value `{word}`; expected one of: {}", expected.join(", "))]
pub struct UnknownWord {
    /// What was given.
    pub word: String,
    /// What is accepted.
    pub expected: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for r in Risk::ALL {
            assert_eq!(r.as_str().parse::<Risk>(), Ok(*r));
            assert_eq!(serde_json::to_string(r).ok(), Some(format!("\"{r}\"")));
        }
        for c in DenyCode::ALL {
            assert_eq!(c.as_str().parse::<DenyCode>(), Ok(*c));
        }
        for c in FailureCode::ALL {
            assert_eq!(c.as_str().parse::<FailureCode>(), Ok(*c));
            assert_eq!(serde_json::to_string(c).ok(), Some(format!("\"{c}\"")));
        }
        for c in ActionStatus::ALL {
            assert_eq!(serde_json::to_string(c).ok(), Some(format!("\"{c}\"")));
        }
        let err = "urgent".parse::<Risk>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown value `urgent`; expected one of: low, medium, high, critical")
        );
    }
}
