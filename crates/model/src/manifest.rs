//! The raw shape of `warden.toml`, as written by users (with spans).
//!
//! Entries are deserialized one by one, so a broken entry is reported and the
//! rest of the manifest is still checked.

use serde::Deserialize;
use toml::Spanned;

use crate::vocab::{Access, Risk};

/// `[pack]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPackInfo {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// How long the audit log must keep records (`warden check`).
    #[serde(default)]
    pub retention: Option<Spanned<String>>,
}

/// `[[people]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPerson {
    pub id: Spanned<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Other names the person goes by in triggers (`dave.l@corp.example`).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub team: Option<Spanned<String>>,
    /// Hashes of the person's bearer tokens (`sha256:<hex>`).
    #[serde(default)]
    pub tokens: Vec<Spanned<String>>,
    /// An environment variable holding a token, read when the server starts.
    #[serde(default)]
    pub token_env: Option<Spanned<String>>,
    /// `operator`, `auditor`.
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
    /// On-call routes, first one paged first.
    #[serde(default)]
    pub routes: Vec<Spanned<String>>,
    /// Slack user id (`U…`), matched when the person presses a button.
    #[serde(default)]
    pub slack: Option<Spanned<String>>,
}

/// `[[teams]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTeam {
    pub id: Spanned<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub owner: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// On-call routes, paged after the person on call's.
    #[serde(default)]
    pub routes: Vec<Spanned<String>>,
    /// Who of the team is on call when.
    #[serde(default)]
    pub rotation: Option<Spanned<crate::oversight::RawRotation>>,
}

/// `[[agents]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub id: Spanned<String>,
    pub team: Spanned<String>,
    pub owner: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Hashes of the agent's bearer tokens (`sha256:<hex>`).
    #[serde(default)]
    pub tokens: Vec<Spanned<String>>,
    /// An environment variable holding a token, read when the server starts.
    #[serde(default)]
    pub token_env: Option<Spanned<String>>,
    /// Shadow mode: decide and record, never block.
    #[serde(default)]
    pub shadow: bool,
    /// People who operate the agent day to day (they may not approve its
    /// requests).
    #[serde(default)]
    pub operators: Vec<Spanned<String>>,
}

/// `[[systems]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSystem {
    pub id: Spanned<String>,
    pub owner: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `[[tools]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTool {
    pub id: Spanned<String>,
    pub system: Spanned<String>,
    pub access: Access,
    pub risk: Risk,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub args: Option<Spanned<serde_json::Value>>,
    #[serde(default)]
    pub sensitive: Vec<Spanned<String>>,
    /// JSON Pointers of result values redacted in evidence.
    #[serde(default)]
    pub sensitive_result: Vec<Spanned<String>>,
    /// How Warden executes it in enforce mode.
    #[serde(default)]
    pub execute: Option<crate::execute::RawExecute>,
    /// The name `/mcp` lists it under (default: the id with `.` → `_`).
    #[serde(default)]
    pub mcp_name: Option<Spanned<String>>,
    /// Kinds of personal or secret data its results may contain.
    #[serde(default)]
    pub output_may_contain: Vec<Spanned<String>>,
    /// JSON Schema of its result (facts and exposed step data name its fields).
    #[serde(default)]
    pub result: Option<Spanned<serde_json::Value>>,
    /// Values fetched before deciding.
    #[serde(default)]
    pub facts: Vec<crate::facts::RawFact>,
}

/// `[[approver_groups]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApproverGroup {
    pub id: Spanned<String>,
    pub members: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub quorum: Option<Spanned<u32>>,
    #[serde(default)]
    pub escalation: Option<RawEscalation>,
    /// How long a request waits at this group, when it is the end of its
    /// chain, before it expires.
    #[serde(default)]
    pub expires_after: Option<Spanned<String>>,
    /// `false` lets the requesting agent's owner and operators approve
    /// through this group (recorded in evidence).
    #[serde(default)]
    pub separation_of_duties: Option<bool>,
    /// A signed webhook told of new and escalated requests.
    #[serde(default)]
    pub notify: Option<Spanned<crate::group::RawWebhook>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `escalation = { to = "group", after = "30m" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEscalation {
    pub to: Spanned<String>,
    pub after: Spanned<String>,
}

/// `[[workflows]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkflow {
    pub id: Spanned<String>,
    #[serde(default)]
    pub owner: Option<Spanned<String>>,
    #[serde(default)]
    pub business_impact: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Shadow mode: decide and record, never block.
    #[serde(default)]
    pub shadow: bool,
    /// How long a run may stay open before Warden ends it (`4h`).
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// The argument that correlates calls without a run id into runs.
    #[serde(default)]
    pub correlate: Option<Spanned<String>>,
    pub steps: Vec<RawStep>,
}

/// `[[workflows.steps]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    pub tool: Spanned<String>,
    #[serde(default)]
    pub risk: Option<Risk>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    /// Arguments and `result.<field>`s later steps and policies see.
    #[serde(default)]
    pub expose: Vec<Spanned<String>>,
}

/// The top-level keys of `warden.toml`, in the order they are documented.
pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "pack",
    "people",
    "teams",
    "agents",
    "systems",
    "tools",
    "mcp_servers",
    "approver_groups",
    "workflows",
    "routes",
    "playbooks",
    "drills",
    "redaction",
    "slack",
    "reference_data",
    "counters",
];
