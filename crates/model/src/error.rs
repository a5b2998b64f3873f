//! Errors of the model crate: I/O failures and the problems a pack can have.

use std::path::PathBuf;

use crate::diagnostic::{Problem, Severity};

/// A pack could not be read at all (as opposed to read and found wrong).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The pack directory does not exist or is not a directory.
    #[error("pack directory `{}` does not exist or is not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The directory has no manifest.
    #[error("`{}` is not a governance pack: it has no `warden.toml`", path.display())]
    NoManifest {
        /// The pack directory.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What can be wrong in a manifest or a test file.
#[derive(Debug, thiserror::Error)]
pub enum ModelProblem {
    /// The file is not valid TOML.
    #[error("invalid TOML: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// A value has the wrong type, a key is unknown or missing.
    #[error("{message}")]
    Shape {
        /// The deserializer's message.
        message: String,
    },
    /// A top-level key that Warden does not know.
    #[error("unknown top-level key `{key}`")]
    UnknownSection {
        /// The key.
        key: String,
    },
    /// A top-level key holds the wrong kind of value.
    #[error("`{key}` must be {expected}")]
    SectionType {
        /// The key.
        key: String,
        /// What it must be.
        expected: &'static str,
    },
    /// The `[pack]` table is missing.
    #[error("the manifest has no `[pack]` table with a `name`")]
    MissingPackInfo,
    /// An id with characters Warden does not accept.
    #[error(
        "invalid {kind} id `{id}`: ids use letters, digits, `_`, `-` and `.`, start with a letter or digit, and are at most 128 characters"
    )]
    InvalidId {
        /// What the id names.
        kind: &'static str,
        /// The id.
        id: String,
    },
    /// Two definitions with the same id.
    #[error("duplicate {kind} id `{id}`")]
    DuplicateId {
        /// What the id names.
        kind: &'static str,
        /// The id.
        id: String,
    },
    /// A reference to something not declared.
    #[error("unknown {kind} `{id}`")]
    UnknownReference {
        /// What is referenced.
        kind: &'static str,
        /// The id.
        id: String,
    },
    /// A workflow's steps depend on each other in a circle.
    #[error("workflow `{workflow}` has a cycle: {}", cycle.join(" -> "))]
    WorkflowCycle {
        /// The workflow.
        workflow: String,
        /// The steps in the cycle, first repeated at the end.
        cycle: Vec<String>,
    },
    /// A workflow with no steps.
    #[error("workflow `{workflow}` has no steps")]
    EmptyWorkflow {
        /// The workflow.
        workflow: String,
    },
    /// Escalation chains that loop.
    #[error("escalation chain loops: {}", chain.join(" -> "))]
    EscalationCycle {
        /// The groups in the loop, first repeated at the end.
        chain: Vec<String>,
    },
    /// A duration Warden cannot read.
    #[error("invalid duration `{value}`")]
    InvalidDuration {
        /// What was written.
        value: String,
    },
    /// A quorum that cannot be met.
    #[error("quorum {quorum} of group `{group}` cannot be met: it has {members} member(s)")]
    QuorumTooLarge {
        /// The group.
        group: String,
        /// The quorum asked.
        quorum: u32,
        /// How many members it has.
        members: usize,
    },
    /// A group without members.
    #[error("approver group `{group}` has no members")]
    EmptyGroup {
        /// The group.
        group: String,
    },
    /// The args schema is not an object schema.
    #[error(
        "the arguments schema of tool `{tool}` must be a JSON Schema object with `type = \"object\"`"
    )]
    ArgsNotObject {
        /// The tool.
        tool: String,
    },
    /// A sensitive field that is not an argument.
    #[error("sensitive field `{field}` is not a property of the arguments of tool `{tool}`")]
    UnknownSensitiveField {
        /// The tool.
        tool: String,
        /// The field.
        field: String,
    },
    /// A problem in `[redaction]` or a tool's `sensitive_result`.
    #[error("{message}")]
    Redaction {
        /// What is wrong.
        message: String,
    },
    /// A workflow without an owner: nobody to page.
    #[error("workflow `{workflow}` has no owner")]
    WorkflowWithoutOwner {
        /// The workflow.
        workflow: String,
    },
    /// A token entry that is not a SHA-256 hash.
    #[error(
        "not a token hash: write `sha256:` and 64 hex digits (`warden token new` prints one), never the token itself"
    )]
    InvalidTokenHash,
    /// The same token hash for two principals.
    #[error("this token hash is also given to `{other}`: each token must identify one principal")]
    DuplicateToken {
        /// The other principal.
        other: String,
    },
    /// A `token_env` that is not an environment variable name.
    #[error(
        "`{name}` is not an environment variable name (letters, digits and `_`, not starting with a digit)"
    )]
    InvalidEnvName {
        /// The name.
        name: String,
    },
    /// A role Warden does not know.
    #[error(
        "unknown role `{role}`; expected operator or auditor (approvers are the members of `approver_groups`)"
    )]
    UnknownRole {
        /// The role.
        role: String,
    },
    /// A problem in a tool's `[tools.execute]` table.
    #[error("{message}")]
    Execute {
        /// What is wrong.
        message: String,
    },
    /// A problem in an `[[mcp_servers]]` entry.
    #[error("{message}")]
    McpServer {
        /// What is wrong.
        message: String,
    },
    /// A problem in a `[[routes]]` entry or a team's rotation.
    #[error("{message}")]
    Route {
        /// What is wrong.
        message: String,
    },
    /// A problem in a `[[reference_data]]` entry or its file.
    #[error("{message}")]
    ReferenceData {
        /// What is wrong.
        message: String,
    },
    /// A problem in a `[[counters]]` entry.
    #[error("{message}")]
    Counter {
        /// What is wrong.
        message: String,
    },
    /// A problem in a tool's `[[tools.facts]]` entry.
    #[error("{message}")]
    Facts {
        /// What is wrong.
        message: String,
    },
    /// A problem in a step's `expose` list.
    #[error("{message}")]
    Expose {
        /// What is wrong.
        message: String,
    },
    /// A problem with a workflow's `correlate` argument.
    #[error("{message}")]
    Correlate {
        /// What is wrong.
        message: String,
    },
    /// A problem in `[slack]` or a person's Slack id.
    #[error("{message}")]
    Slack {
        /// What is wrong.
        message: String,
    },
    /// Slack is set up but part of the approvals cannot happen there.
    #[error("{message}")]
    SlackIncomplete {
        /// What cannot happen in Slack.
        message: String,
    },
    /// A problem in a `[[playbooks]]` entry.
    #[error("{message}")]
    Playbook {
        /// What is wrong.
        message: String,
    },
    /// A problem in a `[[drills]]` entry.
    #[error("{message}")]
    Drill {
        /// What is wrong.
        message: String,
    },
    /// A drill whose scenario can no longer open a playbook it names (the
    /// playbook was narrowed): the pack loads, the drill would fail.
    #[error("{message}")]
    DrillCannotOpen {
        /// Why.
        message: String,
    },
    /// An owner whose incidents would reach nobody.
    #[error(
        "owner `{owner}` of playbook `{playbook}` has no on-call route: its incidents page nobody"
    )]
    NoRoute {
        /// The playbook.
        playbook: String,
        /// Its owner.
        owner: String,
    },
    /// A quarantine group too few of whose members may approve an agent's
    /// requests: the agent's quarantined writes could never be approved.
    #[error(
        "quarantine group `{group}` of playbook `{playbook}` cannot approve for agent `{agent}`: {eligible} of its members may (its owner and operators may not), quorum {quorum}"
    )]
    QuarantineCannotApprove {
        /// The playbook.
        playbook: String,
        /// The group.
        group: String,
        /// The agent.
        agent: String,
        /// Members who may approve.
        eligible: usize,
        /// The group's quorum.
        quorum: u32,
    },
    /// A quarantine group with nobody from the agent's team.
    #[error(
        "quarantine group `{group}` of playbook `{playbook}` has nobody from team `{team}` of agent `{agent}`"
    )]
    QuarantineOtherTeam {
        /// The playbook.
        playbook: String,
        /// The group.
        group: String,
        /// The agent.
        agent: String,
        /// The agent's team.
        team: String,
    },
    /// Two playbooks of one detector that can fire on the same event with
    /// different actions: two incidents, and actions at odds.
    #[error(
        "playbooks `{first}` and `{second}` both fire on the same `{detector}` events ({scope}) with different actions ({first_actions} / {second_actions})"
    )]
    PlaybooksOverlap {
        /// The playbook declared first.
        first: String,
        /// The other.
        second: String,
        /// The detector.
        detector: &'static str,
        /// Where they overlap, for people.
        scope: String,
        /// The first's actions.
        first_actions: String,
        /// The second's.
        second_actions: String,
    },
    /// Two tools answer to the same name on `/mcp`.
    #[error("MCP tool name `{name}` of tool `{tool}` is already used by tool `{other}`")]
    McpNameCollision {
        /// The name.
        name: String,
        /// The tool declared later.
        tool: String,
        /// The tool that has the name first.
        other: String,
    },
    /// An `mcp_name` model APIs would reject.
    #[error(
        "MCP tool name `{name}` is not accepted by model APIs: use 1 to 64 letters, digits, `_` or `-`"
    )]
    InvalidMcpName {
        /// The name.
        name: String,
    },
    /// A test case that names an unknown outcome or code.
    #[error("test case `{case}`: {message}")]
    BadTestCase {
        /// The case's name.
        case: String,
        /// What is wrong.
        message: String,
    },
}

impl Problem for ModelProblem {
    fn code(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "toml_syntax",
            Self::Shape { .. } => "invalid_value",
            Self::UnknownSection { .. } => "unknown_key",
            Self::SectionType { .. } => "invalid_value",
            Self::MissingPackInfo => "missing_pack_info",
            Self::InvalidId { .. } => "invalid_id",
            Self::Redaction { .. } => "invalid_redaction",
            Self::DuplicateId { .. } => "duplicate_id",
            Self::UnknownReference { .. } => "unknown_reference",
            Self::WorkflowCycle { .. } => "workflow_cycle",
            Self::EmptyWorkflow { .. } => "empty_workflow",
            Self::EscalationCycle { .. } => "escalation_cycle",
            Self::InvalidDuration { .. } => "invalid_duration",
            Self::QuorumTooLarge { .. } => "quorum_too_large",
            Self::EmptyGroup { .. } => "empty_group",
            Self::ArgsNotObject { .. } => "invalid_args_schema",
            Self::UnknownSensitiveField { .. } => "unknown_sensitive_field",
            Self::WorkflowWithoutOwner { .. } => "workflow_without_owner",
            Self::BadTestCase { .. } => "invalid_test_case",
            Self::InvalidTokenHash => "invalid_token_hash",
            Self::DuplicateToken { .. } => "duplicate_token",
            Self::InvalidEnvName { .. } => "invalid_env_name",
            Self::UnknownRole { .. } => "unknown_role",
            Self::Execute { .. } => "invalid_execute",
            Self::McpServer { .. } => "invalid_mcp_server",
            Self::McpNameCollision { .. } => "mcp_name_collision",
            Self::Route { .. } => "invalid_route",
            Self::Slack { .. } => "invalid_slack",
            Self::ReferenceData { .. } => "invalid_reference_data",
            Self::Counter { .. } => "invalid_counter",
            Self::Facts { .. } => "invalid_facts",
            Self::Expose { .. } => "invalid_expose",
            Self::Correlate { .. } => "invalid_correlate",
            Self::SlackIncomplete { .. } => "slack_incomplete",
            Self::Playbook { .. } => "invalid_playbook",
            Self::Drill { .. } => "invalid_drill",
            Self::DrillCannotOpen { .. } => "drill_cannot_open",
            Self::NoRoute { .. } => "playbook_without_route",
            Self::QuarantineCannotApprove { .. } => "quarantine_cannot_approve",
            Self::QuarantineOtherTeam { .. } => "quarantine_other_team",
            Self::PlaybooksOverlap { .. } => "playbooks_overlap",
            Self::InvalidMcpName { .. } => "invalid_mcp_name",
        }
    }

    fn severity(&self) -> Severity {
        match self {
            Self::WorkflowWithoutOwner { .. }
            | Self::NoRoute { .. }
            | Self::QuarantineOtherTeam { .. }
            | Self::PlaybooksOverlap { .. }
            | Self::DrillCannotOpen { .. }
            | Self::SlackIncomplete { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }
}
