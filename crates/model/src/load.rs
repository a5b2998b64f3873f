//! Reading a pack directory: the manifest, policy files and test files.
//!
//! Loading reports every problem it finds rather than stopping at the first:
//! a broken entry is skipped and recorded as a diagnostic, and the checks go on
//! over what did load.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::error::{LoadError, ModelProblem};
use crate::manifest::{
    RawAgent, RawApproverGroup, RawPackInfo, RawPerson, RawSystem, RawTeam, RawTool, RawWorkflow,
    TOP_LEVEL_KEYS,
};
use crate::pack::{
    Agent, ApproverGroup, Credentials, Escalation, Pack, PackVersion, Person, Step, System, Team,
    Tool, Workflow,
};
use crate::source::{Location, SourceFile};
use crate::vocab::Role;

/// The manifest's file name.
pub const MANIFEST: &str = "warden.toml";
/// Folder of `*.cedar` files.
pub const POLICY_DIR: &str = "policies";
/// Folder of decision test files.
pub const TEST_DIR: &str = "tests";

/// A pack as loaded, with every problem found in the manifest.
#[derive(Debug)]
pub struct Loaded {
    /// What loaded; broken entries are left out.
    pub pack: Pack,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads the pack in `dir`. Fails only when it cannot be read; problems in its
/// content come back as diagnostics.
pub fn load(dir: impl AsRef<Path>) -> Result<Loaded, LoadError> {
    let root = dir.as_ref();
    if !root.is_dir() {
        return Err(LoadError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let manifest_path = root.join(MANIFEST);
    if !manifest_path.is_file() {
        return Err(LoadError::NoManifest {
            path: root.to_path_buf(),
        });
    }
    let manifest = Arc::new(read_source(root, &manifest_path)?);
    let policy_files = read_tree(root, POLICY_DIR, "cedar")?;
    let test_files = read_tree(root, TEST_DIR, "toml")?;
    let version = version_of(&manifest, &policy_files);

    let mut cx = Cx {
        file: Arc::clone(&manifest),
        diags: Vec::new(),
        refs: Vec::new(),
        unloaded_tools: Default::default(),
        unloaded_routes: Default::default(),
    };
    let raw = cx.parse_manifest();
    let mut pack = Pack {
        root: root.to_path_buf(),
        name: String::new(),
        description: None,
        manifest,
        people: BTreeMap::new(),
        teams: BTreeMap::new(),
        agents: BTreeMap::new(),
        systems: BTreeMap::new(),
        tools: BTreeMap::new(),
        mcp_servers: BTreeMap::new(),
        mcp_names: BTreeMap::new(),
        approver_groups: BTreeMap::new(),
        workflows: BTreeMap::new(),
        routes: BTreeMap::new(),
        playbooks: BTreeMap::new(),
        policy_files,
        test_files,
        version,
        unloaded_tools: std::mem::take(&mut cx.unloaded_tools),
    };
    cx.resolve(raw, &mut pack);
    cx.check_references(&pack);
    cx.check_paging(&pack);
    Ok(Loaded {
        pack,
        diagnostics: cx.diags,
    })
}

#[derive(Default)]
struct RawManifest {
    pack: Option<RawPackInfo>,
    people: Vec<RawPerson>,
    teams: Vec<RawTeam>,
    agents: Vec<RawAgent>,
    systems: Vec<RawSystem>,
    tools: Vec<(RawTool, Range<usize>)>,
    mcp_servers: Vec<(crate::mcp::RawMcpServer, Range<usize>)>,
    groups: Vec<RawApproverGroup>,
    workflows: Vec<RawWorkflow>,
    routes: Vec<(crate::oversight::RawRoute, Range<usize>)>,
    playbooks: Vec<(crate::oversight::RawPlaybook, Range<usize>)>,
}

pub(crate) struct Cx {
    file: Arc<SourceFile>,
    diags: Vec<Diagnostic>,
    /// References between top-level entries, checked once all are known.
    refs: Vec<Ref>,
    /// Ids of tool entries that failed to load.
    unloaded_tools: std::collections::BTreeSet<String>,
    /// Ids of route entries that failed to load (reported once, where
    /// they are declared, not again where they are named).
    pub(crate) unloaded_routes: std::collections::BTreeSet<String>,
}

impl Cx {
    pub(crate) fn loc(&self, span: Range<usize>) -> Location {
        Location::new(&self.file, span)
    }

    pub(crate) fn push(&mut self, problem: ModelProblem, span: Range<usize>) {
        let d = Diagnostic::new(&problem).at(self.loc(span));
        self.diags.push(d);
    }

    /// Checks a principal's token hashes and token variable.
    fn credentials(
        &mut self,
        owner: &str,
        tokens: Vec<Spanned<String>>,
        env: Option<Spanned<String>>,
        seen: &mut BTreeMap<String, String>,
    ) -> Credentials {
        let mut out = Credentials::default();
        for t in tokens {
            let value = t.get_ref();
            let ok = value
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                // Never echo the value: it may be a pasted secret.
                self.push(ModelProblem::InvalidTokenHash, t.span());
                continue;
            }
            let hash = value.to_ascii_lowercase();
            if let Some(other) = seen.get(&hash) {
                let other = other.clone();
                self.push(ModelProblem::DuplicateToken { other }, t.span());
                continue;
            }
            seen.insert(hash.clone(), owner.to_owned());
            out.token_hashes.push(hash);
        }
        if let Some(e) = env {
            let name = e.get_ref();
            if valid_env_name(name) {
                out.token_env = Some(name.clone());
            } else {
                self.push(
                    ModelProblem::InvalidEnvName { name: name.clone() },
                    e.span(),
                );
            }
        }
        out
    }

    pub(crate) fn report(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn parse_manifest(&mut self) -> RawManifest {
        let file = Arc::clone(&self.file);
        let (doc, errors) = DeTable::parse_recoverable(file.text());
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            self.push(
                ModelProblem::Syntax {
                    message: e.message().trim_end_matches('\n').to_owned(),
                },
                span,
            );
        }
        let mut raw = RawManifest::default();
        for (key, value) in doc.get_ref() {
            match key.get_ref().as_ref() {
                "pack" => raw.pack = self.one(value),
                "people" => raw.people = self.many(key, value),
                "teams" => raw.teams = self.many(key, value),
                "agents" => raw.agents = self.many(key, value),
                "systems" => raw.systems = self.many(key, value),
                "tools" => {
                    raw.tools = self
                        .many_spanned(key, value)
                        .into_iter()
                        .collect::<Vec<_>>();
                }
                "mcp_servers" => raw.mcp_servers = self.many_spanned(key, value),
                "approver_groups" => raw.groups = self.many(key, value),
                "workflows" => raw.workflows = self.many(key, value),
                "routes" => raw.routes = self.many_spanned(key, value),
                "playbooks" => raw.playbooks = self.many_spanned(key, value),
                other => {
                    let help = did_you_mean(other, TOP_LEVEL_KEYS.iter().copied()).map_or_else(
                        || format!("known keys: {}", TOP_LEVEL_KEYS.join(", ")),
                        |s| format!("did you mean `{s}`?"),
                    );
                    let d = Diagnostic::new(&ModelProblem::UnknownSection {
                        key: other.to_owned(),
                    })
                    .at(self.loc(key.span()))
                    .help(help);
                    self.report(d);
                }
            }
        }
        raw
    }

    fn deserialize<T: DeserializeOwned>(&mut self, value: &Spanned<DeValue<'_>>) -> Option<T> {
        let whole = value.span();
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => Some(v),
            Err(e) => {
                let span = e.span().unwrap_or(whole);
                self.push(
                    ModelProblem::Shape {
                        message: e.message().trim_end_matches('\n').to_owned(),
                    },
                    span,
                );
                None
            }
        }
    }

    fn one<T: DeserializeOwned>(&mut self, value: &Spanned<DeValue<'_>>) -> Option<T> {
        self.deserialize(value)
    }

    fn many_spanned<T: DeserializeOwned>(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Vec<(T, Range<usize>)> {
        let Some(items) = value.get_ref().as_array() else {
            self.push(
                ModelProblem::SectionType {
                    key: key.get_ref().to_string(),
                    expected: "an array of tables, written `[[key]]`",
                },
                value.span(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match self.deserialize(item) {
                Some(v) => out.push((v, item.span())),
                None if key.get_ref() == "tools" => {
                    if let Some(id) = item.get_ref().get("id").and_then(|v| v.get_ref().as_str()) {
                        self.unloaded_tools.insert(id.to_owned());
                    }
                }
                None => {}
            }
        }
        out
    }

    fn many<T: DeserializeOwned>(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Vec<T> {
        self.many_spanned(key, value)
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// Checks an id's spelling and that it is new in `seen`; true when usable.
    pub(crate) fn check_id<V>(
        &mut self,
        kind: &'static str,
        id: &Spanned<String>,
        seen: &BTreeMap<String, V>,
        at: impl Fn(&V) -> &Location,
    ) -> bool {
        if !valid_id(id.get_ref()) {
            self.push(
                ModelProblem::InvalidId {
                    kind,
                    id: id.get_ref().clone(),
                },
                id.span(),
            );
            return false;
        }
        if let Some(first) = seen.get(id.get_ref()) {
            let d = Diagnostic::new(&ModelProblem::DuplicateId {
                kind,
                id: id.get_ref().clone(),
            })
            .at(self.loc(id.span()))
            .label("declared again here")
            .help(format!("first declared at {}", at(first)));
            self.report(d);
            return false;
        }
        true
    }

    fn resolve(&mut self, raw: RawManifest, pack: &mut Pack) {
        match raw.pack {
            Some(info) => {
                pack.name = info.name.into_inner();
                pack.description = info.description;
            }
            None => {
                if !self.diags.iter().any(|d| d.code() == "invalid_value") {
                    self.push(ModelProblem::MissingPackInfo, 0..0);
                }
            }
        }
        let mut token_owners: BTreeMap<String, String> = BTreeMap::new();
        for p in raw.people {
            self.reference(RefKind::Team, p.team.as_ref());
            for r in &p.routes {
                self.reference(RefKind::Route, Some(r));
            }
            let credentials =
                self.credentials(p.id.get_ref(), p.tokens, p.token_env, &mut token_owners);
            let mut roles = Vec::new();
            for r in p.roles {
                match r.get_ref().parse::<Role>() {
                    Ok(role) => roles.push(role),
                    Err(_) => self.push(
                        ModelProblem::UnknownRole {
                            role: r.get_ref().clone(),
                        },
                        r.span(),
                    ),
                }
            }
            if self.check_id("person", &p.id, &pack.people, |v| &v.at) {
                let at = self.loc(p.id.span());
                let id = p.id.into_inner();
                pack.people.insert(
                    id.clone(),
                    Person {
                        id,
                        name: p.name,
                        email: p.email,
                        aliases: p.aliases,
                        team: p.team.map(Spanned::into_inner),
                        credentials,
                        roles,
                        routes: p.routes.into_iter().map(Spanned::into_inner).collect(),
                        at,
                    },
                );
            }
        }
        for t in raw.teams {
            self.reference(RefKind::Person, t.owner.as_ref());
            for r in &t.routes {
                self.reference(RefKind::Route, Some(r));
            }
            let rotation = t.rotation.and_then(|r| self.rotation(r));
            if self.check_id("team", &t.id, &pack.teams, |v| &v.at) {
                let at = self.loc(t.id.span());
                let id = t.id.into_inner();
                pack.teams.insert(
                    id.clone(),
                    Team {
                        id,
                        name: t.name,
                        owner: t.owner.map(Spanned::into_inner),
                        description: t.description,
                        routes: t.routes.into_iter().map(Spanned::into_inner).collect(),
                        rotation,
                        at,
                    },
                );
            }
        }
        for a in raw.agents {
            self.reference(RefKind::Team, Some(&a.team));
            self.reference(RefKind::Owner, Some(&a.owner));
            for o in &a.operators {
                self.reference(RefKind::Person, Some(o));
            }
            let credentials =
                self.credentials(a.id.get_ref(), a.tokens, a.token_env, &mut token_owners);
            if self.check_id("agent", &a.id, &pack.agents, |v| &v.at) {
                let at = self.loc(a.id.span());
                let id = a.id.into_inner();
                pack.agents.insert(
                    id.clone(),
                    Agent {
                        id,
                        team: a.team.into_inner(),
                        owner: a.owner.into_inner(),
                        description: a.description,
                        credentials,
                        shadow: a.shadow,
                        operators: a.operators.into_iter().map(Spanned::into_inner).collect(),
                        at,
                    },
                );
            }
        }
        for s in raw.systems {
            self.reference(RefKind::Owner, Some(&s.owner));
            if self.check_id("system", &s.id, &pack.systems, |v| &v.at) {
                let at = self.loc(s.id.span());
                let id = s.id.into_inner();
                pack.systems.insert(
                    id.clone(),
                    System {
                        id,
                        owner: s.owner.into_inner(),
                        description: s.description,
                        at,
                    },
                );
            }
        }
        for (m, span) in raw.mcp_servers {
            if self.check_id("MCP server", &m.id, &pack.mcp_servers, |v| &v.at) {
                let at = self.loc(span);
                match m.resolve(at) {
                    Ok(server) => {
                        pack.mcp_servers.insert(server.id.clone(), server);
                    }
                    Err(problems) => {
                        for (message, span) in problems {
                            self.push(ModelProblem::McpServer { message }, span);
                        }
                    }
                }
            }
        }
        for (t, span) in raw.tools {
            self.reference(RefKind::System, Some(&t.system));
            if let Some(e) = &t.execute
                && e.connector.get_ref() == "mcp"
            {
                self.reference(RefKind::McpServer, e.server.as_ref());
            }
            if self.check_id("tool", &t.id, &pack.tools, |v| &v.at) {
                let id = t.id.get_ref().clone();
                match self.resolve_tool(t, span) {
                    Some(tool) => {
                        pack.tools.insert(tool.id.clone(), tool);
                    }
                    None => {
                        self.unloaded_tools.insert(id);
                    }
                }
            }
        }
        self.check_mcp_names(pack);
        for g in raw.groups {
            for m in g.members.get_ref() {
                self.reference(RefKind::Person, Some(m));
            }
            self.reference(RefKind::Group, g.escalation.as_ref().map(|e| &e.to));
            if self.check_id("approver group", &g.id, &pack.approver_groups, |v| &v.at)
                && let Some(group) = self.resolve_group(g)
            {
                pack.approver_groups.insert(group.id.clone(), group);
            }
        }
        for w in raw.workflows {
            if self.check_id("workflow", &w.id, &pack.workflows, |v| &v.at) {
                let wf = self.resolve_workflow(w, pack);
                pack.workflows.insert(wf.id.clone(), wf);
            }
        }
        self.resolve_oversight(raw.routes, raw.playbooks, pack);
    }

    pub(crate) fn reference(&mut self, kind: RefKind, id: Option<&Spanned<String>>) {
        if let Some(id) = id {
            self.refs.push(Ref {
                kind,
                id: id.clone(),
            });
        }
    }

    /// Every tool's `/mcp` name is model-safe and answers for one tool only
    /// (names and canonical ids together: `tools/call` accepts both).
    fn check_mcp_names(&mut self, pack: &mut Pack) {
        let mut taken: BTreeMap<&str, &str> = pack
            .tools
            .keys()
            .map(|id| (id.as_str(), id.as_str()))
            .collect();
        for tool in pack.tools.values() {
            if !crate::mcp::is_model_safe_name(&tool.mcp_name) {
                self.report(
                    Diagnostic::new(&ModelProblem::InvalidMcpName {
                        name: tool.mcp_name.clone(),
                    })
                    .at(tool.at.clone()),
                );
                continue;
            }
            match taken.get(tool.mcp_name.as_str()) {
                Some(other) if *other != tool.id => {
                    let d = Diagnostic::new(&ModelProblem::McpNameCollision {
                        name: tool.mcp_name.clone(),
                        tool: tool.id.clone(),
                        other: (*other).to_owned(),
                    })
                    .at(tool.at.clone())
                    .help("give one of them another name with `mcp_name = \"...\"`");
                    self.report(d);
                }
                _ => {
                    taken.insert(&tool.mcp_name, &tool.id);
                }
            }
        }
        let names = taken
            .into_iter()
            .filter(|(name, id)| name != id)
            .map(|(name, id)| (name.to_owned(), id.to_owned()))
            .collect();
        pack.mcp_names = names;
    }

    fn resolve_tool(&mut self, t: RawTool, span: Range<usize>) -> Option<Tool> {
        let id = t.id.get_ref().clone();
        let (args, args_at) = match t.args {
            Some(args) => {
                let at = self.loc(args.span());
                (args.into_inner(), at)
            }
            None => (
                serde_json::json!({"type": "object", "properties": {}, "additionalProperties": false}),
                self.loc(span),
            ),
        };
        if args.get("type").and_then(|v| v.as_str()) != Some("object") {
            let d = Diagnostic::new(&ModelProblem::ArgsNotObject { tool: id })
                .at(args_at)
                .help("declare the arguments under `[tools.args]` with `type = \"object\"` and `[tools.args.properties]`");
            self.report(d);
            return None;
        }
        let execute = match t.execute {
            None => None,
            Some(raw) => match raw.resolve() {
                Ok(e) => Some(e),
                Err(problems) => {
                    for (message, span) in problems {
                        self.push(ModelProblem::Execute { message }, span);
                    }
                    return None;
                }
            },
        };
        let properties = args.get("properties").and_then(|p| p.as_object());
        let mut sensitive = Vec::new();
        for field in t.sensitive {
            if properties.is_some_and(|p| p.contains_key(field.get_ref())) {
                sensitive.push(field.into_inner());
            } else {
                self.push(
                    ModelProblem::UnknownSensitiveField {
                        tool: id.clone(),
                        field: field.get_ref().clone(),
                    },
                    field.span(),
                );
            }
        }
        let mut output_may_contain = Vec::new();
        for k in t.output_may_contain {
            if crate::oversight::OUTPUT_DATA_KINDS.contains(&k.get_ref().as_str()) {
                output_may_contain.push(k.into_inner());
            } else {
                self.push(
                    ModelProblem::Shape {
                        message: format!(
                            "unknown kind of output data `{}`; expected one of: {}",
                            k.get_ref(),
                            crate::oversight::OUTPUT_DATA_KINDS.join(", ")
                        ),
                    },
                    k.span(),
                );
            }
        }
        Some(Tool {
            output_may_contain,
            at: self.loc(t.id.span()),
            id,
            system: t.system.into_inner(),
            access: t.access,
            risk: t.risk,
            description: t.description,
            args,
            args_at,
            sensitive,
            execute,
            mcp_name: t.mcp_name.map_or_else(
                || crate::mcp::default_mcp_name(t.id.get_ref()),
                Spanned::into_inner,
            ),
        })
    }

    fn resolve_group(&mut self, g: RawApproverGroup) -> Option<ApproverGroup> {
        let id = g.id.get_ref().clone();
        let members_span = g.members.span();
        let members: Vec<String> = g
            .members
            .into_inner()
            .into_iter()
            .map(Spanned::into_inner)
            .collect();
        if members.is_empty() {
            self.push(ModelProblem::EmptyGroup { group: id.clone() }, members_span);
        }
        let quorum = match g.quorum {
            Some(q) if *q.get_ref() == 0 => {
                self.push(
                    ModelProblem::Shape {
                        message: "quorum must be at least 1".to_owned(),
                    },
                    q.span(),
                );
                1
            }
            Some(q) if *q.get_ref() as usize > members.len() && !members.is_empty() => {
                self.push(
                    ModelProblem::QuorumTooLarge {
                        group: id.clone(),
                        quorum: *q.get_ref(),
                        members: members.len(),
                    },
                    q.span(),
                );
                1
            }
            Some(q) => *q.get_ref(),
            None => 1,
        };
        let escalation = match g.escalation {
            Some(e) => match humantime::parse_duration(e.after.get_ref()) {
                Ok(after) => Some(Escalation {
                    to: e.to.into_inner(),
                    after,
                }),
                Err(_) => {
                    let d = Diagnostic::new(&ModelProblem::InvalidDuration {
                        value: e.after.get_ref().clone(),
                    })
                    .at(self.loc(e.after.span()))
                    .help("write a duration such as `30m`, `2h` or `1d`");
                    self.report(d);
                    None
                }
            },
            None => None,
        };
        let expires_after = match &g.expires_after {
            Some(e) => match humantime::parse_duration(e.get_ref()) {
                Ok(d) if !d.is_zero() => d,
                _ => {
                    let d = Diagnostic::new(&ModelProblem::InvalidDuration {
                        value: e.get_ref().clone(),
                    })
                    .at(self.loc(e.span()))
                    .help("write a duration above zero such as `30m`, `4h` or `1d`");
                    self.report(d);
                    crate::group::DEFAULT_EXPIRES_AFTER
                }
            },
            None => crate::group::DEFAULT_EXPIRES_AFTER,
        };
        if let (Some(e), Some(_)) = (&g.expires_after, &escalation) {
            self.push(
                ModelProblem::Shape {
                    message: "`expires_after` applies to a group that ends its chain; this one escalates (its chain ends at the last group)".to_owned(),
                },
                e.span(),
            );
        }
        let notify = match g.notify {
            Some(n) => {
                let span = n.span();
                match crate::group::webhook(n.into_inner()) {
                    Ok(w) => Some(w),
                    Err(message) => {
                        self.push(ModelProblem::Shape { message }, span);
                        None
                    }
                }
            }
            None => None,
        };
        Some(ApproverGroup {
            at: self.loc(g.id.span()),
            id,
            members,
            quorum,
            escalation,
            expires_after,
            separation_of_duties: g.separation_of_duties.unwrap_or(true),
            notify,
            description: g.description,
        })
    }

    fn resolve_workflow(&mut self, w: RawWorkflow, pack: &Pack) -> Workflow {
        let wid = w.id.get_ref().clone();
        let mut steps: Vec<Step> = Vec::new();
        let mut step_ids: BTreeMap<String, Location> = BTreeMap::new();
        for s in &w.steps {
            let id = s.id.as_ref().unwrap_or(&s.tool);
            let at = self.loc(id.span());
            if let Some(first) = step_ids.get(id.get_ref()) {
                let first = first.to_string();
                let d = Diagnostic::new(&ModelProblem::DuplicateId {
                    kind: "step",
                    id: id.get_ref().clone(),
                })
                .at(at)
                .help(format!(
                    "first declared at {first}; give repeated uses of a tool an `id`"
                ));
                self.report(d);
                continue;
            }
            step_ids.insert(id.get_ref().clone(), at.clone());
            let tool_risk = pack.tools.get(s.tool.get_ref()).map(|t| t.risk);
            steps.push(Step {
                id: id.get_ref().clone(),
                tool: s.tool.get_ref().clone(),
                risk: s.risk.or(tool_risk).unwrap_or(crate::vocab::Risk::Low),
                after: s.after.iter().map(|a| a.get_ref().clone()).collect(),
                at,
            });
        }
        // References inside the workflow: step -> tool, step -> earlier step.
        for s in &w.steps {
            if !pack.tools.contains_key(s.tool.get_ref()) {
                self.unknown("tool", &s.tool, pack.tools.keys());
            }
            for a in &s.after {
                if !step_ids.contains_key(a.get_ref()) {
                    self.unknown("step", a, step_ids.keys());
                }
            }
        }
        let at = self.loc(w.id.span());
        if steps.is_empty() && !w.steps.is_empty() {
            // Every step was a duplicate; already reported.
        } else if steps.is_empty() {
            self.push(
                ModelProblem::EmptyWorkflow {
                    workflow: wid.clone(),
                },
                w.id.span(),
            );
        }
        if let Some(cycle) = find_cycle(&steps) {
            let d = Diagnostic::new(&ModelProblem::WorkflowCycle {
                workflow: wid.clone(),
                cycle,
            })
            .at(at.clone())
            .help("`after` must name steps that come earlier; remove one link of the cycle");
            self.report(d);
        }
        if w.owner.is_none() {
            let d = Diagnostic::new(&ModelProblem::WorkflowWithoutOwner {
                workflow: wid.clone(),
            })
            .at(at.clone())
            .help("add `owner = \"<person or team>\"`: incidents in this workflow page its owner");
            self.report(d);
        }
        if let Some(owner) = &w.owner
            && !pack.is_owner(owner.get_ref())
        {
            self.unknown(
                "owner (person or team)",
                owner,
                pack.people.keys().chain(pack.teams.keys()),
            );
        }
        Workflow {
            id: wid,
            owner: w.owner.map(Spanned::into_inner),
            business_impact: w.business_impact,
            description: w.description,
            shadow: w.shadow,
            steps,
            at,
        }
    }

    fn unknown<'a>(
        &mut self,
        kind: &'static str,
        id: &Spanned<String>,
        candidates: impl IntoIterator<Item = &'a String>,
    ) {
        let mut d = Diagnostic::new(&ModelProblem::UnknownReference {
            kind,
            id: id.get_ref().clone(),
        })
        .at(self.loc(id.span()))
        .label(format!("no {kind} has this id"));
        if let Some(s) = did_you_mean(id.get_ref(), candidates.into_iter().map(String::as_str)) {
            d = d.help(format!("did you mean `{s}`?"));
        }
        self.report(d);
    }

    /// References between top-level entries, now that every entry is known.
    fn check_references(&mut self, pack: &Pack) {
        for r in std::mem::take(&mut self.refs) {
            let known = match r.kind {
                RefKind::Team => pack.teams.contains_key(r.id.get_ref()),
                RefKind::Person => pack.people.contains_key(r.id.get_ref()),
                RefKind::Owner => pack.is_owner(r.id.get_ref()),
                RefKind::System => pack.systems.contains_key(r.id.get_ref()),
                RefKind::Group => pack.approver_groups.contains_key(r.id.get_ref()),
                RefKind::McpServer => pack.mcp_servers.contains_key(r.id.get_ref()),
                RefKind::Route => {
                    pack.routes.contains_key(r.id.get_ref())
                        || self.unloaded_routes.contains(r.id.get_ref())
                }
                RefKind::Agent => pack.agents.contains_key(r.id.get_ref()),
                RefKind::Tool => {
                    pack.tools.contains_key(r.id.get_ref())
                        || pack.unloaded_tools.contains(r.id.get_ref())
                }
            };
            if known {
                continue;
            }
            match r.kind {
                RefKind::Team => self.unknown("team", &r.id, pack.teams.keys()),
                RefKind::Person => self.unknown("person", &r.id, pack.people.keys()),
                RefKind::Owner => self.unknown(
                    "owner (person or team)",
                    &r.id,
                    pack.people.keys().chain(pack.teams.keys()),
                ),
                RefKind::System => self.unknown("system", &r.id, pack.systems.keys()),
                RefKind::Group => {
                    self.unknown("approver group", &r.id, pack.approver_groups.keys())
                }
                RefKind::McpServer => self.unknown("MCP server", &r.id, pack.mcp_servers.keys()),
                RefKind::Route => self.unknown("route", &r.id, pack.routes.keys()),
                RefKind::Agent => self.unknown("agent", &r.id, pack.agents.keys()),
                RefKind::Tool => self.unknown("tool", &r.id, pack.tools.keys()),
            }
        }
        if let Some(chain) = escalation_cycle(pack) {
            let at = pack.approver_groups.get(&chain[0]).map(|g| g.at.clone());
            let d = Diagnostic::new(&ModelProblem::EscalationCycle { chain })
                .at_opt(at)
                .help("an escalation chain must end at a group that does not escalate");
            self.report(d);
        }
        self.diags
            .sort_by_key(|d| d.location().map_or(0, |l| l.span.start));
    }
}

#[derive(Clone, Copy)]
pub(crate) enum RefKind {
    Team,
    Person,
    Owner,
    System,
    Group,
    McpServer,
    Route,
    Agent,
    Tool,
}

struct Ref {
    kind: RefKind,
    id: Spanned<String>,
}

fn escalation_cycle(pack: &Pack) -> Option<Vec<String>> {
    for start in pack.approver_groups.keys() {
        let mut path = vec![start.clone()];
        let mut cur = start;
        while let Some(next) = pack
            .approver_groups
            .get(cur)
            .and_then(|g| g.escalation.as_ref())
            .map(|e| &e.to)
        {
            if let Some(pos) = path.iter().position(|p| p == next) {
                let mut cycle = path.split_off(pos);
                cycle.push(next.clone());
                // Report each loop once, from its smallest id.
                let min = cycle.iter().min().cloned();
                return (cycle.first() == min.as_ref()).then_some(cycle);
            }
            path.push(next.clone());
            cur = next;
        }
    }
    None
}

/// A cycle among `after` links, as a path whose first step is repeated at the end.
fn find_cycle(steps: &[Step]) -> Option<Vec<String>> {
    let index: BTreeMap<&str, &Step> = steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for s in steps {
        let mut stack: Vec<&str> = Vec::new();
        if let Some(c) = visit(s.id.as_str(), &index, &mut done, &mut stack) {
            return Some(c);
        }
    }
    None
}

fn visit<'a>(
    id: &'a str,
    index: &BTreeMap<&'a str, &'a Step>,
    done: &mut BTreeSet<&'a str>,
    stack: &mut Vec<&'a str>,
) -> Option<Vec<String>> {
    if let Some(pos) = stack.iter().position(|s| *s == id) {
        let mut cycle: Vec<String> = stack[pos..].iter().map(|s| (*s).to_owned()).collect();
        cycle.push(id.to_owned());
        return Some(cycle);
    }
    if done.contains(id) {
        return None;
    }
    stack.push(id);
    if let Some(step) = index.get(id) {
        for dep in &step.after {
            if let Some(c) = visit(dep.as_str(), index, done, stack) {
                return Some(c);
            }
        }
    }
    stack.pop();
    done.insert(id);
    None
}

/// Environment variable names: letters, digits and `_`, not starting with a
/// digit.
pub(crate) fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Ids: letters, digits, `_`, `-`, `.`; a letter or digit first; at most 128.
pub fn valid_id(id: &str) -> bool {
    id.len() <= 128
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn read_source(root: &Path, path: &Path) -> Result<SourceFile, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    Ok(SourceFile::new(name, path, text))
}

/// Every `*.{ext}` file under `root/dir`, recursively, sorted by name;
/// hidden files and folders are skipped.
fn read_tree(root: &Path, dir: &str, ext: &str) -> Result<Vec<Arc<SourceFile>>, LoadError> {
    let mut paths = Vec::new();
    let mut todo = vec![root.join(dir)];
    while let Some(d) = todo.pop() {
        if !d.is_dir() {
            continue;
        }
        let rd = std::fs::read_dir(&d).map_err(|source| LoadError::Io {
            path: d.clone(),
            source,
        })?;
        for entry in rd {
            let entry = entry.map_err(|source| LoadError::Io {
                path: d.clone(),
                source,
            })?;
            let p = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|e| e == ext) {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|p| read_source(root, p).map(Arc::new))
        .collect()
}

fn version_of(manifest: &SourceFile, policies: &[Arc<SourceFile>]) -> PackVersion {
    let mut h = Sha256::new();
    for f in std::iter::once(manifest).chain(policies.iter().map(AsRef::as_ref)) {
        h.update(f.name().as_bytes());
        h.update([0]);
        h.update((f.text().len() as u64).to_be_bytes());
        h.update(f.text().as_bytes());
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    PackVersion(format!("sha256:{hex}").into())
}
