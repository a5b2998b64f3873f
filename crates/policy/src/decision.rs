//! The decision: what Warden answers for a proposed action.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use warden_model::{DenyCode, Outcome, RequestContext, Risk};

use crate::policies::{Effect, PolicyInfo};

/// One request to decide. The agent is whoever the caller authenticated;
/// never a field of the request body.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The agent's id.
    pub agent: &'a str,
    /// The tool's id.
    pub tool: &'a str,
    /// The arguments, checked against the tool's JSON Schema.
    pub args: &'a serde_json::Value,
    /// Approver groups whose approval of this exact request exists.
    pub approvals: &'a [String],
    /// Workflow, run and trigger.
    pub context: &'a RequestContext,
}

/// Approvals a request needs before it may execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequirement {
    /// `(group, quorum)` in group order: each group must approve `quorum` times.
    pub groups: Vec<(String, u32)>,
}

impl ApprovalRequirement {
    /// The group ids.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|(g, _)| g.as_str())
    }
}

impl Serialize for ApprovalRequirement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let groups: Vec<&str> = self.group_ids().collect();
        let quorum: BTreeMap<&str, u32> =
            self.groups.iter().map(|(g, q)| (g.as_str(), *q)).collect();
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("groups", &groups)?;
        m.serialize_entry("quorum", &quorum)?;
        m.end()
    }
}

/// What Warden decided, and why.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Allow, deny or approval required.
    pub outcome: Outcome,
    /// Why it is `deny`; `None` otherwise.
    pub code: Option<DenyCode>,
    /// The determining policies: the permits that granted an `allow`, the
    /// forbids behind a `deny` or the gates behind `approval_required`, and
    /// the policies that failed to evaluate for `evaluation_error`.
    pub policies: Vec<Arc<PolicyInfo>>,
    /// For `approval_required`: who must approve.
    pub approval: Option<ApprovalRequirement>,
    /// The tool's risk class (unknown tools have none).
    pub risk: Option<Risk>,
    /// Content hash of the pack that decided.
    pub policy_version: Arc<str>,
    /// Argument or evaluation errors, for `invalid_arguments` and
    /// `evaluation_error`.
    pub errors: Vec<String>,
    /// What the decision would be with the policies on trial (`@shadow`)
    /// enforced, when that differs; the decision itself ignores them.
    pub trial: Option<Box<Decision>>,
}

impl Decision {
    /// A one-line account of the decision for people.
    pub fn message(&self) -> String {
        let ids = || {
            self.policies
                .iter()
                .map(|p| format!("`{}`", p.id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.outcome, self.code) {
            (Outcome::Allow, _) => format!("allowed by {}", ids()),
            (Outcome::ApprovalRequired, _) => {
                let who = self
                    .approval
                    .iter()
                    .flat_map(|a| a.groups.iter())
                    .map(|(g, q)| format!("{q} of `{g}`"))
                    .collect::<Vec<_>>()
                    .join(" and ");
                format!("needs approval by {who} ({})", ids())
            }
            (Outcome::Deny, Some(DenyCode::NoGrant)) => {
                "no policy grants this request (default deny)".to_owned()
            }
            (Outcome::Deny, Some(DenyCode::Forbidden)) => format!("forbidden by {}", ids()),
            (Outcome::Deny, Some(DenyCode::EvaluationError)) => format!(
                "denied because policy evaluation failed (fail closed): {}",
                self.errors.join("; ")
            ),
            (Outcome::Deny, Some(DenyCode::InvalidArguments)) => {
                format!("invalid arguments: {}", self.errors.join("; "))
            }
            (Outcome::Deny, Some(DenyCode::UnknownTool)) => "unknown tool".to_owned(),
            (Outcome::Deny, Some(DenyCode::UnknownAgent)) => "unknown agent".to_owned(),
            (Outcome::Deny, None) => "denied".to_owned(),
        }
    }

    /// Whether `other` answers the same: outcome, code and approvals.
    pub fn same_outcome(&self, other: &Decision) -> bool {
        self.outcome == other.outcome && self.code == other.code && self.approval == other.approval
    }

    /// Whether any determining policy is a permit (used by explanations).
    pub fn granted_by_permit(&self) -> bool {
        self.policies.iter().any(|p| p.effect == Effect::Permit)
    }
}

impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("decision", &self.outcome)?;
        m.serialize_entry("code", &self.code)?;
        m.serialize_entry("message", &self.message())?;
        m.serialize_entry("policies", &self.policies)?;
        m.serialize_entry("approval", &self.approval)?;
        m.serialize_entry("risk", &self.risk)?;
        m.serialize_entry("policy_version", &*self.policy_version)?;
        m.serialize_entry("errors", &self.errors)?;
        if let Some(t) = &self.trial {
            m.serialize_entry("trial", t)?;
        }
        m.end()
    }
}
