//! Turning the raw manifest entries into the pack's typed entries.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::references::{Ref, find_cycle};
use super::*;

impl Cx {
    pub(super) fn resolve(&mut self, raw: RawManifest, pack: &mut Pack) {
        match raw.pack {
            Some(info) => {
                pack.name = info.name.into_inner();
                pack.description = info.description;
                let mut problems = Vec::new();
                pack.retention = crate::execute::parse_duration(
                    info.retention.as_ref(),
                    crate::pack::DEFAULT_RETENTION,
                    &mut problems,
                );
                for (message, span) in problems {
                    self.push(ModelProblem::Shape { message }, span);
                }
            }
            None => {
                if !self.diags.iter().any(|d| d.code() == "invalid_value") {
                    self.push(ModelProblem::MissingPackInfo, 0..0);
                }
            }
        }
        pack.redaction = self.resolve_redaction(raw.redaction);
        self.pattern_names = pack
            .redaction
            .patterns
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let mut token_owners: BTreeMap<String, String> = BTreeMap::new();
        let mut slack_ids: BTreeMap<String, String> = BTreeMap::new();
        for p in raw.people {
            let slack = p
                .slack
                .and_then(|s| self.person_slack(p.id.get_ref(), s, &mut slack_ids));
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
                        slack,
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
        let mut raw_facts = Vec::new();
        for (mut t, span) in raw.tools {
            if !t.facts.is_empty() {
                raw_facts.push((t.id.get_ref().clone(), std::mem::take(&mut t.facts)));
            }
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
        self.resolve_facts(raw_facts, pack);
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
        self.check_exposed_steps(pack);
        self.resolve_oversight(raw.routes, raw.playbooks, pack);
        self.resolve_drills(raw.drills, pack);
        self.resolve_slack(raw.slack, pack);
        self.resolve_reference_data(raw.reference_data, pack);
        self.resolve_counters(raw.counters, pack);
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
        let sensitive_result = self.result_pointers(&id, t.sensitive_result);
        let result = match t.result {
            Some(r) if r.get_ref().get("type").and_then(|v| v.as_str()) != Some("object") => {
                self.push(
                    ModelProblem::Shape {
                        message: format!(
                            "the result schema of `{id}` must be an object schema (`type = \"object\"` with `[tools.result.properties]`)"
                        ),
                    },
                    r.span(),
                );
                None
            }
            Some(r) => Some(r.into_inner()),
            None => None,
        };
        let mut output_may_contain = Vec::new();
        for k in t.output_may_contain {
            if crate::oversight::OUTPUT_DATA_KINDS.contains(&k.get_ref().as_str())
                || self.pattern_names.contains(k.get_ref())
            {
                output_may_contain.push(k.into_inner());
            } else {
                self.push(
                    ModelProblem::Shape {
                        message: format!(
                            "unknown kind of output data `{}`; expected one of: {}, or a `[redaction]` pattern's name",
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
            result,
            facts: Vec::new(),
            at: self.loc(t.id.span()),
            id,
            system: t.system.into_inner(),
            access: t.access,
            risk: t.risk,
            description: t.description,
            args,
            args_at,
            sensitive,
            sensitive_result,
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

    /// Step data is typed by step id (`context.run.steps.<id>`): two
    /// workflows' exposing steps with one id must run one tool and expose
    /// the same fields.
    fn check_exposed_steps(&mut self, pack: &Pack) {
        let mut seen: BTreeMap<&str, &Step> = BTreeMap::new();
        for wf in pack.workflows.values() {
            for s in wf.steps.iter().filter(|s| !s.expose.is_empty()) {
                match seen.get(s.id.as_str()) {
                    Some(first) if first.tool != s.tool || first.expose != s.expose => {
                        let d = Diagnostic::new(&ModelProblem::Expose {
                            message: format!(
                                "step `{}` exposes other data than the step of the same id at {}",
                                s.id, first.at
                            ),
                        })
                        .at(s.at.clone())
                        .help("give one of the steps another `id`: policies read step data as `context.run.steps.<id>`");
                        self.report(d);
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(&s.id, s);
                    }
                }
            }
        }
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
            let expose =
                self.resolve_expose(id.get_ref(), pack.tools.get(s.tool.get_ref()), &s.expose);
            steps.push(Step {
                expose,
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
        let timeout = match &w.timeout {
            Some(t) => match humantime::parse_duration(t.get_ref()) {
                Ok(d) if !d.is_zero() => Some(d),
                _ => {
                    let d = Diagnostic::new(&ModelProblem::InvalidDuration {
                        value: t.get_ref().clone(),
                    })
                    .at(self.loc(t.span()))
                    .help("write a duration above zero such as `30m`, `4h` or `2d`");
                    self.report(d);
                    None
                }
            },
            None => None,
        };
        let correlate = w.correlate.as_ref().and_then(|c| {
            let field = c.get_ref();
            let bad: Vec<String> = steps
                .iter()
                .filter_map(|s| pack.tools.get(&s.tool))
                .filter(|t| {
                    !matches!(
                        crate::facts::property(&t.args, field),
                        Some((Some(ty), true)) if ty == "string" || ty == "integer"
                    )
                })
                .map(|t| format!("`{}`", t.id))
                .collect();
            if bad.is_empty() {
                Some(field.clone())
            } else {
                self.push(
                    ModelProblem::Correlate {
                        message: format!(
                            "workflow `{wid}` correlates runs by `{field}`, which is not a required string or integer argument of {}",
                            bad.join(", ")
                        ),
                    },
                    c.span(),
                );
                None
            }
        });
        Workflow {
            correlate,
            id: wid,
            owner: w.owner.map(Spanned::into_inner),
            business_impact: w.business_impact,
            description: w.description,
            shadow: w.shadow,
            timeout,
            steps,
            at,
        }
    }
}
