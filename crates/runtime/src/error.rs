//! Errors of the runtime: proposals and reports it cannot accept.

/// Why the runtime refused a request. Each variant maps to one stable code.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The tool is not declared in the pack.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// The arguments do not match the tool's JSON Schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// No run with this id.
    #[error("unknown run `{0}`")]
    UnknownRun(String),
    /// No workflow with this id.
    #[error("unknown workflow `{0}`")]
    UnknownWorkflow(String),
    /// No action with this id (or not one the caller may see).
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    /// No agent with this id.
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    /// No approver group with this id.
    #[error("unknown approver group `{0}`")]
    UnknownGroup(String),
    /// The run belongs to another agent.
    #[error("run `{run}` was started by another agent")]
    RunNotYours {
        /// The run.
        run: String,
    },
    /// The run has ended.
    #[error("run `{run}` is {state}: it accepts no more actions")]
    RunClosed {
        /// The run.
        run: String,
        /// Its state.
        state: warden_model::RunStatus,
    },
    /// Enforce mode for a tool Warden cannot execute.
    #[error("tool `{0}` has no connector (`[tools.execute]`): propose it in `check` mode")]
    NotExecutable(String),
    /// The same idempotency key with a different request.
    #[error(
        "idempotency key `{key}` was already used by action `{action}` for a different request"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The action that holds it.
        action: String,
    },
    /// An outcome report the action's state does not allow.
    #[error("action `{action}` is {state}: {why}")]
    InvalidTransition {
        /// The action.
        action: String,
        /// Its state.
        state: warden_model::ActionStatus,
        /// What would have been needed.
        why: &'static str,
    },
    /// No approval request with this id (or not one the caller may see).
    #[error("unknown approval request `{0}`")]
    UnknownApproval(String),
    /// The request was already decided or expired: it takes no answer.
    #[error("approval request `{id}` is {state}: it takes no more answers")]
    ApprovalClosed {
        /// The request.
        id: String,
        /// Its state.
        state: warden_model::ApprovalState,
    },
    /// The person already answered this request (one person counts once).
    #[error("{person} already answered approval request `{id}`; one person counts once")]
    AlreadyAnswered {
        /// The request.
        id: String,
        /// The person.
        person: String,
    },
    /// The person is in none of the groups that may answer.
    #[error("{person} is not a member of a group that may answer this request ({groups})")]
    NotAnApprover {
        /// The person.
        person: String,
        /// The groups that may answer.
        groups: String,
    },
    /// The person owns or operates the requesting agent (or asked for the run).
    #[error("{person} may not approve requests of `{agent}`: {rule} (separation of duties)")]
    SeparationOfDuties {
        /// The person.
        person: String,
        /// The requesting agent.
        agent: String,
        /// The rule that applied, for people.
        rule: String,
    },
    /// A report with a bad value.
    #[error("{0}")]
    InvalidReport(String),
    /// The store failed; nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] warden_store::StoreError),
    /// Building evidence failed.
    #[error(transparent)]
    Evidence(#[from] warden_evidence::EvidenceError),
    /// No randomness for ids.
    #[error("cannot generate an id: {0}")]
    Random(String),
}

impl RuntimeError {
    /// Whether the runtime already recorded this refusal itself (a proposal
    /// denied for an unknown tool or invalid arguments is an
    /// `action_decided` record); the server records every other client
    /// error as `request_rejected`.
    pub fn is_recorded(&self) -> bool {
        matches!(self, Self::UnknownTool(_) | Self::InvalidArguments(_))
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownTool(_) => "unknown_tool",
            Self::InvalidArguments(_) => "invalid_arguments",
            Self::UnknownRun(_) => "unknown_run",
            Self::UnknownWorkflow(_) => "unknown_workflow",
            Self::UnknownAction(_) => "unknown_action",
            Self::UnknownAgent(_) => "unknown_agent",
            Self::UnknownGroup(_) => "unknown_group",
            Self::RunNotYours { .. } => "run_forbidden",
            Self::RunClosed { .. } => "run_closed",
            Self::NotExecutable(_) => "not_executable",
            Self::IdempotencyConflict { .. } => "idempotency_conflict",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::InvalidReport(_) => "invalid_body",
            Self::UnknownApproval(_) => "unknown_approval",
            Self::ApprovalClosed { .. } => "approval_closed",
            Self::AlreadyAnswered { .. } => "already_answered",
            Self::NotAnApprover { .. } => "not_an_approver",
            Self::SeparationOfDuties { .. } => "separation_of_duties",
            Self::Store(_) | Self::Evidence(_) | Self::Random(_) => "internal",
        }
    }

    /// Whether the fault is Warden's (5xx) rather than the caller's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Evidence(_) | Self::Random(_))
    }
}
