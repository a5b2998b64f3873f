//! Problems the policy crate finds in a pack, and errors of unusable requests.

use warden_model::{Problem, Severity};

/// What can be wrong in a pack's policies or argument schemas.
#[derive(Debug, thiserror::Error)]
pub enum PolicyProblem {
    /// Cedar could not parse a policy file.
    #[error("{message}")]
    CedarSyntax {
        /// Cedar's message.
        message: String,
    },
    /// A reference data entity whose attributes do not match their types.
    #[error("reference data `{type_name}`: {message}")]
    InvalidReferenceData {
        /// The entity type.
        type_name: String,
        /// Cedar's message.
        message: String,
    },
    /// A policy does not type-check against the generated schema.
    #[error("{message}")]
    CedarValidation {
        /// Cedar's message.
        message: String,
    },
    /// Cedar's validator found something suspicious (e.g. a policy that can never apply).
    #[error("{message}")]
    CedarWarning {
        /// Cedar's message.
        message: String,
    },
    /// Templates need linking, which packs do not do.
    #[error("policy templates (`?principal`, `?resource`) are not supported in packs")]
    Template,
    /// Two policies with the same id.
    #[error("duplicate policy id `{id}`")]
    DuplicatePolicyId {
        /// The id.
        id: String,
    },
    /// An `@id` Warden cannot use.
    #[error("invalid policy id `{id}`: ids use letters, digits, `_`, `-` and `.`")]
    InvalidPolicyId {
        /// The id.
        id: String,
    },
    /// `@approval` on a permit: approvals lift forbids, they never grant.
    #[error("`@approval` belongs on a `forbid` (an approval gate), not on a `permit`")]
    ApprovalOnPermit,
    /// An approval gate for a group the pack does not declare.
    #[error("approval gate names unknown approver group `{group}`")]
    UnknownApprovalGroup {
        /// The group.
        group: String,
    },
    /// An approval gate that approvals cannot lift.
    #[error("approval gate `{id}` has no `unless {{ context.approvals.contains(\"{group}\") }}`")]
    GateShape {
        /// The policy.
        id: String,
        /// The group named by `@approval`.
        group: String,
    },
    /// `@quorum` without `@approval`.
    #[error("`@quorum` needs `@approval` on the same policy")]
    QuorumWithoutApproval,
    /// `@quorum` that is not a positive whole number.
    #[error("invalid `@quorum(\"{value}\")`: expected a whole number of at least 1")]
    InvalidQuorum {
        /// What was written.
        value: String,
    },
    /// `@quorum` larger than the group.
    #[error("`@quorum(\"{quorum}\")` cannot be met: group `{group}` has {members} member(s)")]
    QuorumTooLarge {
        /// The group.
        group: String,
        /// The quorum asked.
        quorum: u32,
        /// Its member count.
        members: usize,
    },
    /// `@risk` that is not a risk class.
    #[error("invalid `@risk(\"{value}\")`: expected low, medium, high or critical")]
    InvalidRisk {
        /// What was written.
        value: String,
    },
    /// An argument schema that does not compile.
    #[error("the arguments schema of tool `{tool}` is not a valid JSON Schema: {message}")]
    InvalidArgsSchema {
        /// The tool.
        tool: String,
        /// The compiler's message.
        message: String,
    },
    /// An argument policies cannot see.
    #[error("argument `{path}` of tool `{tool}` is not visible to policies: {reason}")]
    ArgNotInContext {
        /// The tool.
        tool: String,
        /// The argument path.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A policy without `@id`: its id changes when policies move.
    #[error("policy has no `@id`; it is known as `{id}` until policies move")]
    PolicyWithoutId {
        /// The generated id.
        id: String,
    },
    /// A playbook filters on a policy id no policy has.
    #[error("playbook `{playbook}` filters on policy `{policy}`, which no policy file declares")]
    UnknownPlaybookPolicy {
        /// The playbook.
        playbook: String,
        /// The id.
        policy: String,
    },
    /// A write tool no policy names by id.
    #[error("write tool `{tool}` is not named by any policy")]
    WriteToolNotNamed {
        /// The tool.
        tool: String,
    },
    /// A risky tool with no approval gate and no blanket forbid.
    #[error("{risk}-risk tool `{tool}` is not covered by any approval gate")]
    RiskyToolUngated {
        /// The tool.
        tool: String,
        /// Its risk class.
        risk: warden_model::Risk,
    },
}

impl Problem for PolicyProblem {
    fn code(&self) -> &'static str {
        match self {
            Self::CedarSyntax { .. } => "cedar_syntax",
            Self::CedarValidation { .. } => "cedar_validation",
            Self::InvalidReferenceData { .. } => "invalid_reference_data",
            Self::CedarWarning { .. } => "cedar_warning",
            Self::Template => "policy_template",
            Self::DuplicatePolicyId { .. } => "duplicate_policy_id",
            Self::InvalidPolicyId { .. } => "invalid_policy_id",
            Self::ApprovalOnPermit => "approval_on_permit",
            Self::UnknownApprovalGroup { .. } => "unknown_reference",
            Self::GateShape { .. } => "approval_gate_shape",
            Self::QuorumWithoutApproval => "quorum_without_approval",
            Self::InvalidQuorum { .. } => "invalid_quorum",
            Self::QuorumTooLarge { .. } => "quorum_too_large",
            Self::InvalidRisk { .. } => "invalid_risk",
            Self::InvalidArgsSchema { .. } => "invalid_args_schema",
            Self::ArgNotInContext { .. } => "arg_not_in_context",
            Self::PolicyWithoutId { .. } => "policy_without_id",
            Self::WriteToolNotNamed { .. } => "write_tool_not_named",
            Self::UnknownPlaybookPolicy { .. } => "unknown_reference",
            Self::RiskyToolUngated { .. } => "risky_tool_ungated",
        }
    }

    fn severity(&self) -> Severity {
        match self {
            Self::ArgNotInContext { .. }
            | Self::CedarWarning { .. }
            | Self::PolicyWithoutId { .. }
            | Self::WriteToolNotNamed { .. }
            | Self::RiskyToolUngated { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// A request that cannot be decided at all (as opposed to one that is denied).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Approvals for a group the pack does not declare.
    #[error("unknown approver group `{group}` in approvals")]
    UnknownApprovalGroup {
        /// The group.
        group: String,
    },
}
