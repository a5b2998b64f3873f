//! The validated governance pack: what agents, systems, tools, workflows and
//! approver groups exist, and where each was declared.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::source::{Location, SourceFile};
use crate::vocab::{Access, Risk, Role};

/// The audit retention `warden check` expects when the pack declares
/// none: six months, the minimum EU AI Act Art. 19 and 26(6) ask of
/// providers and deployers for automatically generated logs.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(183 * 86_400);

/// A loaded governance pack. Entries that failed to load are absent; the
/// diagnostics that came with it say why.
#[derive(Debug, Clone)]
pub struct Pack {
    /// The pack directory.
    pub root: PathBuf,
    /// `[pack].name`.
    pub name: String,
    /// `[pack].description`.
    pub description: Option<String>,
    /// `warden.toml`.
    pub manifest: Arc<SourceFile>,
    /// People: owners, approvers.
    pub people: BTreeMap<String, Person>,
    /// Teams of people and agents.
    pub teams: BTreeMap<String, Team>,
    /// Agents that propose actions.
    pub agents: BTreeMap<String, Agent>,
    /// External systems agents touch.
    pub systems: BTreeMap<String, System>,
    /// Actions on systems.
    pub tools: BTreeMap<String, Tool>,
    /// Upstream MCP servers that execute tools.
    pub mcp_servers: BTreeMap<String, crate::mcp::McpServer>,
    /// Tool ids by their `/mcp` name (names that differ from the id).
    pub mcp_names: BTreeMap<String, String>,
    /// Groups whose approval lifts approval gates.
    pub approver_groups: BTreeMap<String, ApproverGroup>,
    /// Business processes, as graphs of steps.
    pub workflows: BTreeMap<String, Workflow>,
    /// Where owners are paged.
    pub routes: BTreeMap<String, crate::oversight::Route>,
    /// Detectors mapped to owners, response windows and actions.
    pub playbooks: BTreeMap<String, crate::oversight::Playbook>,
    /// How long the audit log must keep records (`[pack] retention`;
    /// default [`DEFAULT_RETENTION`]).
    pub retention: Duration,
    /// `[[drills]]`: rehearsals of playbooks with real traffic.
    pub drills: BTreeMap<String, crate::oversight::Drill>,
    /// What is kept out of recorded tool results besides declared fields.
    pub redaction: crate::redaction::Redaction,
    /// `[slack]`: approvals answered in Slack.
    pub slack: Option<crate::slack::Slack>,
    /// `[[reference_data]]`, by entity type.
    pub reference_data: BTreeMap<String, crate::refdata::ReferenceData>,
    /// `[[counters]]`: counts and sums over sliding windows
    /// (`context.usage.<name>`), in declaration order.
    pub counters: Vec<crate::counter::Counter>,
    /// `data/**/*.json`, sorted by name.
    pub data_files: Vec<Arc<SourceFile>>,
    /// `policies/**/*.cedar`, sorted by name.
    pub policy_files: Vec<Arc<SourceFile>>,
    /// `tests/**/*.toml`, sorted by name.
    pub test_files: Vec<Arc<SourceFile>>,
    /// Content hash of the manifest and the policies.
    pub version: PackVersion,
    /// Ids of `[[tools]]` entries that failed to load (already reported), so
    /// later checks do not report their absence again.
    pub unloaded_tools: std::collections::BTreeSet<String>,
}

/// Content hash of everything that can change a decision (the manifest, the
/// policy files and the reference data, not the tests): `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackVersion(pub(crate) Arc<str>);

impl PackVersion {
    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full string, shared.
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// The first 12 hex digits, for display.
    pub fn short(&self) -> &str {
        let hex = self.0.strip_prefix("sha256:").unwrap_or(&self.0);
        hex.get(..12).unwrap_or(hex)
    }
}

impl std::fmt::Display for PackVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person: owner of agents, systems, workflows; member of approver groups.
#[derive(Debug, Clone)]
pub struct Person {
    /// Id, e.g. `carol`.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Contact address.
    pub email: Option<String>,
    /// Other names the person goes by in trigger contexts (e-mail
    /// addresses, chat handles): matched case-insensitively, like the id
    /// and the e-mail.
    pub aliases: Vec<String>,
    /// The team the person belongs to.
    pub team: Option<String>,
    /// How the person authenticates.
    pub credentials: Credentials,
    /// What the person may do besides approving for their groups.
    pub roles: Vec<Role>,
    /// On-call routes, first one paged first.
    pub routes: Vec<String>,
    /// Slack user id (`U…`): how a button press in Slack is matched to them.
    pub slack: Option<String>,
    /// Where it is declared.
    pub at: Location,
}

impl Credentials {
    /// The hash a pack stores for `token`: `sha256:` and the hex SHA-256 of
    /// its bytes.
    pub fn hash_token(token: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(token.as_bytes());
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in digest {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// How a principal authenticates: bearer tokens, of which the pack holds
/// only SHA-256 hashes, or an environment variable holding one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `sha256:<64 hex>` of each accepted token.
    pub token_hashes: Vec<String>,
    /// Name of an environment variable whose value is an accepted token.
    pub token_env: Option<String>,
}

/// A team of people and agents.
#[derive(Debug, Clone)]
pub struct Team {
    /// Id, e.g. `support`.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Person accountable for the team.
    pub owner: Option<String>,
    /// What the team does.
    pub description: Option<String>,
    /// On-call routes, paged after those of the person on call.
    pub routes: Vec<String>,
    /// Who of the team is on call when.
    pub rotation: Option<crate::oversight::Rotation>,
    /// Where it is declared.
    pub at: Location,
}

/// An agent: the principal of every request it makes.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Id, e.g. `support-bot`.
    pub id: String,
    /// Team the agent works for.
    pub team: String,
    /// Person (or team) accountable for it.
    pub owner: String,
    /// What it does.
    pub description: Option<String>,
    /// How the agent authenticates.
    pub credentials: Credentials,
    /// Shadow mode: its actions are decided and recorded, never blocked.
    pub shadow: bool,
    /// People who operate it day to day: with its owner, they may not
    /// approve its requests (separation of duties).
    pub operators: Vec<String>,
    /// Where it is declared.
    pub at: Location,
}

/// An external system agents touch.
#[derive(Debug, Clone)]
pub struct System {
    /// Id, e.g. `stripe`.
    pub id: String,
    /// Person (or team) accountable for it.
    pub owner: String,
    /// What it is.
    pub description: Option<String>,
    /// Where it is declared.
    pub at: Location,
}

/// An action on a system.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Id, e.g. `stripe.refund`.
    pub id: String,
    /// The system it acts on.
    pub system: String,
    /// Read or write.
    pub access: Access,
    /// Risk class.
    pub risk: Risk,
    /// What it does.
    pub description: Option<String>,
    /// JSON Schema of its arguments (an object schema).
    pub args: serde_json::Value,
    /// Where the arguments schema is declared (the tool when it has none).
    pub args_at: Location,
    /// Argument fields redacted in evidence (and top-level result fields of
    /// the same names).
    pub sensitive: Vec<String>,
    /// JSON Pointers of result values redacted in evidence (`*` matches
    /// every element or member; `""` is the whole result).
    pub sensitive_result: Vec<String>,
    /// How Warden executes it in enforce mode (`None`: check mode only).
    pub execute: Option<crate::execute::Execution>,
    /// The name `/mcp` lists it under: model-safe, unique in the pack.
    pub mcp_name: String,
    /// Kinds of personal or secret data its results may contain
    /// (`email`, `card_number`, ...): the output scan does not flag them.
    pub output_may_contain: Vec<String>,
    /// JSON Schema of its result (an object schema), when declared: the
    /// fields facts and exposed step data can name.
    pub result: Option<serde_json::Value>,
    /// Values Warden fetches before deciding its requests
    /// (`context.facts.<name>`).
    pub facts: Vec<crate::facts::Fact>,
    /// Where it is declared.
    pub at: Location,
}

/// A group whose approval can lift approval gates.
#[derive(Debug, Clone)]
pub struct ApproverGroup {
    /// Id, e.g. `finance`.
    pub id: String,
    /// People who may approve.
    pub members: Vec<String>,
    /// Approvals needed unless a gate says otherwise with `@quorum`.
    pub quorum: u32,
    /// Where an unanswered request goes next.
    pub escalation: Option<Escalation>,
    /// How long a request waits here, when this group ends its escalation
    /// chain, before it expires.
    pub expires_after: Duration,
    /// Whether the requesting agent's owner and operators are kept from
    /// approving through this group (default `true`).
    pub separation_of_duties: bool,
    /// Told of new and escalated requests.
    pub notify: Option<crate::group::Webhook>,
    /// What the group approves.
    pub description: Option<String>,
    /// Where it is declared.
    pub at: Location,
}

/// One link of an escalation chain.
#[derive(Debug, Clone)]
pub struct Escalation {
    /// The next group.
    pub to: String,
    /// How long a request waits before it escalates.
    pub after: Duration,
}

/// A business process with a named owner.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Id, e.g. `refund-request`.
    pub id: String,
    /// Person (or team) accountable for it.
    pub owner: Option<String>,
    /// What breaks for the business when it misbehaves.
    pub business_impact: Option<String>,
    /// What it does.
    pub description: Option<String>,
    /// Shadow mode: actions in its runs are decided and recorded, never
    /// blocked.
    pub shadow: bool,
    /// How long a run may stay open: past it, Warden ends the run
    /// `timed_out` and cancels its pending requests. `None`: no limit.
    pub timeout: Option<std::time::Duration>,
    /// Its steps in declaration order.
    pub steps: Vec<Step>,
    /// The argument that joins a call without a run id to the agent's open
    /// run with the same value (or starts one at a first step).
    pub correlate: Option<String>,
    /// Where it is declared.
    pub at: Location,
}

/// One step of a workflow.
#[derive(Debug, Clone)]
pub struct Step {
    /// Id within the workflow (the tool id unless given).
    pub id: String,
    /// The tool it runs.
    pub tool: String,
    /// Risk class (the tool's unless given).
    pub risk: Risk,
    /// Steps that must have succeeded before this one.
    pub after: Vec<String>,
    /// What later steps and policies see once it succeeded
    /// (`context.run.steps.<id>.<field>`): argument names and
    /// `result.<field>`s.
    pub expose: Vec<String>,
    /// Where it is declared.
    pub at: Location,
}

/// Who is paged for an owner at a moment, and through which routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// The person paged: the owner, or the team's person on call.
    pub person: Option<String>,
    /// Routes in escalation order: the person's, then the team's, then the
    /// team owner's.
    pub routes: Vec<String>,
}

impl Pack {
    /// Who `owner` (a person or a team) pages at `unix` seconds, and the
    /// escalation chain: a person's own routes, then their team's, then
    /// the team owner's; a team pages its person on call (by rotation,
    /// else its owner) first, then its own routes, then its owner's.
    pub fn paging(&self, owner: &str, unix: i64) -> Paging {
        let mut routes: Vec<String> = Vec::new();
        let mut add = |rs: &[String]| {
            for r in rs {
                if !routes.contains(r) {
                    routes.push(r.clone());
                }
            }
        };
        let (person, team) = match (self.people.get(owner), self.teams.get(owner)) {
            (Some(p), _) => (
                Some(p.id.clone()),
                p.team.as_deref().and_then(|t| self.teams.get(t)),
            ),
            (None, Some(t)) => (
                t.rotation
                    .as_ref()
                    .and_then(|r| r.on_call(unix))
                    .map(str::to_owned)
                    .or_else(|| t.owner.clone()),
                Some(t),
            ),
            (None, None) => (None, None),
        };
        if let Some(p) = person.as_deref().and_then(|p| self.people.get(p)) {
            add(&p.routes);
        }
        if let Some(team) = team {
            add(&team.routes);
            if let Some(o) = team.owner.as_deref().and_then(|o| self.people.get(o)) {
                add(&o.routes);
            }
        }
        Paging { person, routes }
    }

    /// Whether `id` names a person or a team (the two kinds of owner).
    pub fn is_owner(&self, id: &str) -> bool {
        self.people.contains_key(id) || self.teams.contains_key(id)
    }

    /// The person a name in a trigger refers to: their id, e-mail or an
    /// alias, compared case-insensitively and ignoring surrounding spaces.
    pub fn person_named(&self, name: &str) -> Option<&Person> {
        let n = name.trim();
        if n.is_empty() {
            return None;
        }
        self.people.values().find(|p| {
            p.id.eq_ignore_ascii_case(n)
                || p.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(n))
                || p.aliases.iter().any(|a| a.trim().eq_ignore_ascii_case(n))
        })
    }

    /// Whether an unresolved name looks like `person`: its local part (before
    /// `@`), letters and digits only, equals their id, their first name or
    /// their full name. Separation of duties refuses rather than guesses.
    pub fn looks_like(name: &str, person: &Person) -> bool {
        let squash = |s: &str| -> String {
            s.chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let local = squash(name.split('@').next().unwrap_or(name));
        if local.is_empty() {
            return false;
        }
        let mut forms = vec![squash(&person.id)];
        if let Some(full) = &person.name {
            forms.push(squash(full));
            if let Some(first) = full.split_whitespace().next() {
                forms.push(squash(first));
            }
        }
        if let Some(e) = &person.email {
            forms.push(squash(e.split('@').next().unwrap_or(e)));
        }
        forms.iter().any(|f| !f.is_empty() && *f == local)
    }

    /// The people who may not approve `agent`'s requests: its owner (a
    /// team owner's person when the owner is a team) and its operators.
    pub fn agent_principals(&self, agent: &str) -> Vec<String> {
        let Some(a) = self.agents.get(agent) else {
            return Vec::new();
        };
        let mut out = vec![a.owner.clone()];
        if let Some(owner) = self.teams.get(&a.owner).and_then(|t| t.owner.clone()) {
            out.push(owner);
        }
        out.extend(a.operators.iter().cloned());
        out.sort();
        out.dedup();
        out
    }
}
