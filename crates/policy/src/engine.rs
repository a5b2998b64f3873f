//! The decision engine: a pack compiled for deciding, and `decide`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Entities, Entity, EntityUid, PolicySet, Request as CedarRequest,
    RestrictedExpression,
};
use cedar_policy_core::ast;
use warden_model::{Access, DenyCode, Diagnostic, Diagnostics, Loaded, Outcome, Pack, Risk};

use crate::context::{self, BaseContext};
use crate::decision::{ApprovalRequirement, Decision, Request};
use crate::error::{PolicyProblem, RequestError};
use crate::eval::{self, SlicePolicy, Subject, Verdict};
use crate::policies::{LoadedPolicy, PolicyInfo, load_policies};
use crate::schema::{self, AGENT, ArgField, PERSON, SYSTEM, SchemaParts, TEAM};
use crate::validate::{ActionIndex, ValidationCache, validate};

/// A pack compiled for deciding. Cheap to clone (one `Arc`) and safe to share
/// across threads; to change packs, build a new one and swap it in (see
/// [`crate::EngineHandle`]).
#[derive(Clone)]
pub struct Engine(Arc<Inner>);

struct Inner {
    pack: Arc<Pack>,
    version: Arc<str>,
    agents: HashMap<String, Arc<ast::EntityUID>>,
    tools: HashMap<String, ToolEntry>,
    entities: Entities,
    /// Policies in pack order.
    ordered: Vec<Arc<PolicyInfo>>,
    /// Every policy in one set (unsliced), for equivalence tests and benchmarks.
    all: PolicySet,
    /// The full Cedar schema, as JSON (for `warden schema`).
    schema_json: serde_json::Value,
}

pub(crate) struct ToolEntry {
    pub action: Arc<ast::EntityUID>,
    pub resource: Arc<ast::EntityUID>,
    pub validator: jsonschema::Validator,
    pub fields: Vec<ArgField>,
    /// The policies whose action scope can match this tool, in pack order,
    /// without those on trial (`@shadow`).
    pub slice: Vec<SlicePolicy>,
    /// See [`eval::second_pass_follows`].
    pub second_pass_follows: bool,
    /// When policies on trial can match this tool: the slice with them,
    /// whose decision is reported as [`Decision::trial`] when it differs.
    pub trial: Option<Trial>,
    pub risk: Risk,
    pub access: Access,
    /// Top-level argument fields declared sensitive: argument errors never
    /// quote their values.
    pub sensitive: Vec<String>,
}

/// A tool's slice with its policies on trial included.
pub(crate) struct Trial {
    pub slice: Vec<SlicePolicy>,
    pub second_pass_follows: bool,
}

/// An engine and the warnings found while compiling it.
#[derive(Debug)]
pub struct Compiled {
    /// The engine.
    pub engine: Engine,
    /// Readiness gaps and other warnings.
    pub warnings: Vec<Diagnostic>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pack", &self.0.pack.name)
            .field("version", &self.0.version)
            .field("tools", &self.0.tools.len())
            .field("policies", &self.0.ordered.len())
            .finish()
    }
}

/// Compiles a loaded pack: checks argument schemas, parses and validates every
/// policy, and slices the policy set by tool. Returns every error found, with
/// the loader's, or the engine and its warnings.
pub fn compile(loaded: Loaded, cache: Option<&ValidationCache>) -> Result<Compiled, Diagnostics> {
    let Loaded {
        pack,
        mut diagnostics,
    } = loaded;
    let mut fields: BTreeMap<String, Vec<ArgField>> = BTreeMap::new();
    let mut validators: BTreeMap<String, jsonschema::Validator> = BTreeMap::new();
    // Tools already reported broken: policies naming them are not validated,
    // so one fault is reported once, not again in every policy.
    let mut broken: HashSet<String> = pack.unloaded_tools.iter().cloned().collect();
    for tool in pack.tools.values() {
        let (f, omitted) = schema::arg_fields(tool);
        match jsonschema::options()
            .should_validate_formats(true)
            .build(&tool.args)
        {
            Ok(v) => {
                validators.insert(tool.id.clone(), v);
                for o in omitted {
                    diagnostics.push(
                        Diagnostic::new(&PolicyProblem::ArgNotInContext {
                            tool: tool.id.clone(),
                            path: o.path,
                            reason: o.reason,
                        })
                        .at(tool.args_at.clone()),
                    );
                }
            }
            Err(e) => {
                broken.insert(tool.id.clone());
                diagnostics.push(
                    Diagnostic::new(&PolicyProblem::InvalidArgsSchema {
                        tool: tool.id.clone(),
                        message: e.to_string(),
                    })
                    .at(tool.args_at.clone()),
                );
            }
        }
        fields.insert(tool.id.clone(), f);
    }
    let parts = SchemaParts::new(&pack, &fields);
    let policies = load_policies(&pack, &mut diagnostics);
    let index = action_index(&pack);
    let checkable: Vec<LoadedPolicy> = policies
        .iter()
        .filter(|lp| !index.names_any(lp, &broken))
        .cloned()
        .collect();
    diagnostics.extend(validate(&parts, &index, &checkable, cache));
    // Readiness gaps are judged on a pack that loads: next to errors they
    // would mostly be echoes of them (a rejected gate leaves its tool ungated).
    if !diagnostics.iter().any(Diagnostic::is_error) {
        readiness(&pack, &policies, &mut diagnostics);
    }
    diagnostics.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.location()
                .map(|l| (l.file.name().to_owned(), l.span.start))
        };
        key(a).cmp(&key(b))
    });
    let warnings = Diagnostics::from_all(diagnostics)?;
    let engine = build(pack, &parts, fields, validators, &policies).map_err(|message| {
        Diagnostics::one(Diagnostic::new(&PolicyProblem::CedarValidation {
            message: format!("internal error while building the engine: {message}"),
        }))
    })?;
    Ok(Compiled { engine, warnings })
}

pub(crate) fn action_index(pack: &Pack) -> ActionIndex {
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    for tool in pack.tools.values() {
        for g in schema::groups_of(pack, tool) {
            members.entry(g).or_default().push(tool.id.clone());
        }
    }
    ActionIndex {
        tools: pack.tools.keys().cloned().collect(),
        members,
    }
}

/// The tools a policy's action scope can match; `None` for an unconstrained scope.
fn scope_tools(lp: &LoadedPolicy, index: &ActionIndex) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut add = |id: &str| {
        if index.tools.contains(id) {
            out.push(id.to_owned());
        } else if let Some(m) = index.members.get(id) {
            out.extend(m.iter().cloned());
        }
    };
    match lp.policy.action_constraint() {
        ActionConstraint::Any => return None,
        ActionConstraint::Eq(uid) => add(uid.id().unescaped()),
        ActionConstraint::In(uids) => uids.iter().for_each(|u| add(u.id().unescaped())),
    }
    Some(out)
}

/// Tools a policy names by id in its action scope (not through a group).
fn named_tools(lp: &LoadedPolicy) -> Vec<String> {
    match lp.policy.action_constraint() {
        ActionConstraint::Any => Vec::new(),
        ActionConstraint::Eq(uid) => vec![uid.id().unescaped().to_owned()],
        ActionConstraint::In(uids) => uids.iter().map(|u| u.id().unescaped().to_owned()).collect(),
    }
}

fn readiness(pack: &Pack, policies: &[LoadedPolicy], diags: &mut Vec<Diagnostic>) {
    let index = action_index(pack);
    let named: HashSet<String> = policies.iter().flat_map(named_tools).collect();
    let mut gated: HashSet<String> = HashSet::new();
    for lp in policies {
        let blanket_forbid = lp.info.effect == crate::Effect::Forbid
            && !lp.policy.has_non_scope_constraint()
            && matches!(
                lp.policy.principal_constraint(),
                cedar_policy::PrincipalConstraint::Any
            );
        if lp.info.gate.is_some() || blanket_forbid {
            match scope_tools(lp, &index) {
                Some(t) => gated.extend(t),
                None => gated.extend(index.tools.iter().cloned()),
            }
        }
    }
    for tool in pack.tools.values() {
        if tool.access == Access::Write && !named.contains(&tool.id) {
            diags.push(
                Diagnostic::new(&PolicyProblem::WriteToolNotNamed {
                    tool: tool.id.clone(),
                })
                .at(tool.at.clone())
                .help("name it in a policy's scope (`action == Action::\"...\"`) so who may change this system is explicit"),
            );
        }
        if tool.risk >= Risk::High && !gated.contains(&tool.id) {
            diags.push(
                Diagnostic::new(&PolicyProblem::RiskyToolUngated {
                    tool: tool.id.clone(),
                    risk: tool.risk,
                })
                .at(tool.at.clone())
                .help("add an approval gate (`@approval(\"group\") forbid ... unless { context.approvals.contains(\"group\") }`) or forbid it outright"),
            );
        }
    }
}

fn uid(ty: &str, id: &str) -> Result<EntityUid, String> {
    let ty = cedar_policy::EntityTypeName::from_str(ty).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(
        ty,
        cedar_policy::EntityId::new(id),
    ))
}

fn build(
    pack: Pack,
    parts: &SchemaParts,
    fields: BTreeMap<String, Vec<ArgField>>,
    mut validators: BTreeMap<String, jsonschema::Validator>,
    policies: &[LoadedPolicy],
) -> Result<Engine, String> {
    let mut entities: Vec<Entity> = Vec::new();
    for t in pack.teams.keys() {
        entities.push(Entity::new_no_attrs(uid(TEAM, t)?, HashSet::new()));
    }
    for p in pack.people.values() {
        let parents = p
            .team
            .iter()
            .map(|t| uid(TEAM, t))
            .collect::<Result<_, _>>()?;
        entities.push(Entity::new_no_attrs(uid(PERSON, &p.id)?, parents));
    }
    let mut agents = HashMap::new();
    for a in pack.agents.values() {
        let u = uid(AGENT, &a.id)?;
        let team = uid(TEAM, &a.team)?;
        let attrs = HashMap::from([
            (
                "owner".to_owned(),
                RestrictedExpression::new_string(a.owner.clone()),
            ),
            (
                "team".to_owned(),
                RestrictedExpression::new_entity_uid(team.clone()),
            ),
        ]);
        entities
            .push(Entity::new(u.clone(), attrs, HashSet::from([team])).map_err(|e| e.to_string())?);
        agents.insert(a.id.clone(), Arc::new(ast::EntityUID::from(u)));
    }
    for s in pack.systems.values() {
        let attrs = HashMap::from([(
            "owner".to_owned(),
            RestrictedExpression::new_string(s.owner.clone()),
        )]);
        entities.push(
            Entity::new(uid(SYSTEM, &s.id)?, attrs, HashSet::new()).map_err(|e| e.to_string())?,
        );
    }
    for g in parts.groups.keys() {
        entities.push(Entity::new_no_attrs(uid("Action", g)?, HashSet::new()));
    }
    for tool in pack.tools.values() {
        let parents = schema::groups_of(&pack, tool)
            .iter()
            .map(|g| uid("Action", g))
            .collect::<Result<_, _>>()?;
        entities.push(Entity::new_no_attrs(uid("Action", &tool.id)?, parents));
    }
    let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;

    let index = action_index(&pack);
    let mut per_tool: HashMap<&str, Vec<&LoadedPolicy>> = HashMap::new();
    let mut everywhere: Vec<&LoadedPolicy> = Vec::new();
    for lp in policies {
        match scope_tools(lp, &index) {
            None => everywhere.push(lp),
            Some(tools) => {
                for t in tools {
                    if let Some(tool) = pack.tools.get_key_value(&t) {
                        per_tool.entry(tool.0.as_str()).or_default().push(lp);
                    }
                }
            }
        }
    }
    let mut tools = HashMap::new();
    for tool in pack.tools.values() {
        let mut members: Vec<&LoadedPolicy> = per_tool
            .get(tool.id.as_str())
            .into_iter()
            .flatten()
            .chain(everywhere.iter())
            .copied()
            .collect();
        members.sort_by_key(|lp| lp.info.ordinal);
        members.dedup_by_key(|lp| lp.info.ordinal);
        let to_slice = |lps: &[&LoadedPolicy]| {
            lps.iter()
                .map(|lp| {
                    SlicePolicy::new(Arc::clone(&lp.info), lp.policy.clone(), lp.approvals_use)
                })
                .collect::<Vec<_>>()
        };
        let enforced: Vec<&LoadedPolicy> = members
            .iter()
            .copied()
            .filter(|lp| !lp.info.is_shadow())
            .collect();
        let trial = (enforced.len() < members.len()).then(|| {
            let slice = to_slice(&members);
            Trial {
                second_pass_follows: eval::second_pass_follows(&slice),
                slice,
            }
        });
        let slice = to_slice(&enforced);
        let Some(validator) = validators.remove(&tool.id) else {
            return Err(format!("tool `{}` has no compiled schema", tool.id));
        };
        tools.insert(
            tool.id.clone(),
            ToolEntry {
                action: Arc::new(uid("Action", &tool.id)?.into()),
                resource: Arc::new(uid(SYSTEM, &tool.system)?.into()),
                validator,
                fields: fields.get(&tool.id).cloned().unwrap_or_default(),
                second_pass_follows: eval::second_pass_follows(&slice),
                slice,
                trial,
                risk: tool.risk,
                access: tool.access,
                sensitive: tool.sensitive.clone(),
            },
        );
    }
    let ordered: Vec<Arc<PolicyInfo>> = policies.iter().map(|p| Arc::clone(&p.info)).collect();
    // Policies on trial never decide: the unsliced set leaves them out too.
    let mut all = PolicySet::new();
    for lp in policies.iter().filter(|lp| !lp.info.is_shadow()) {
        all.add(lp.policy.clone()).map_err(|e| e.to_string())?;
    }
    Ok(Engine(Arc::new(Inner {
        version: pack.version.shared(),
        pack: Arc::new(pack),
        agents,
        tools,
        entities,
        ordered,
        all,
        schema_json: parts.json(),
    })))
}

impl Engine {
    /// Loads and compiles the pack in `dir`.
    pub fn load(dir: impl AsRef<std::path::Path>) -> Result<Compiled, crate::EngineError> {
        let loaded = warden_model::load(dir)?;
        Ok(compile(loaded, None)?)
    }

    /// The pack this engine decides for.
    pub fn pack(&self) -> &Pack {
        &self.0.pack
    }

    /// Content hash of the pack (`sha256:<hex>`).
    pub fn policy_version(&self) -> &str {
        &self.0.version
    }

    /// Every policy, in pack order.
    pub fn policies(&self) -> &[Arc<PolicyInfo>] {
        &self.0.ordered
    }

    /// The generated Cedar schema, in Cedar's JSON schema format.
    pub fn schema_json(&self) -> &serde_json::Value {
        &self.0.schema_json
    }

    /// The generated Cedar schema in Cedar's human-readable syntax.
    pub fn schema_text(&self) -> Result<String, String> {
        cedar_policy::SchemaFragment::from_json_value(self.0.schema_json.clone())
            .map_err(|e| e.to_string())?
            .to_cedarschema()
            .map_err(|e| e.to_string())
    }

    /// Checks the parts of a request that make it unusable rather than denied.
    pub fn check_request(&self, req: &Request<'_>) -> Result<(), RequestError> {
        for g in req.approvals {
            if !self.0.pack.approver_groups.contains_key(g) {
                return Err(RequestError::UnknownApprovalGroup { group: g.clone() });
            }
        }
        Ok(())
    }

    /// The policies that can apply to `tool` (its slice), in pack order.
    pub fn policies_for_tool(&self, tool: &str) -> Vec<Arc<PolicyInfo>> {
        self.0
            .tools
            .get(tool)
            .map(|t| t.slice.iter().map(|p| Arc::clone(&p.info)).collect())
            .unwrap_or_default()
    }

    /// Decides a request. Never fails: problems with the request are
    /// decisions (`deny` with a code), and evaluation errors deny (fail closed).
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        self.decide_with_verdict(req, true, false).0
    }

    /// The decision of `req` by the policies on trial too, when the tool
    /// has any; the caller attaches it as [`Decision::trial`] if it differs.
    fn decide_trial(
        &self,
        req: &Request<'_>,
        tool: &ToolEntry,
        shortcut: bool,
    ) -> Option<Decision> {
        let trial = tool.trial.as_ref()?;
        let agent = self.0.agents.get(req.agent)?;
        let args = context::args_value(&tool.fields, req.args).ok()?;
        let base = BaseContext::new(args, tool.risk.as_str(), tool.access.as_str(), req.context);
        let slice = SliceRef {
            policies: &trial.slice,
            second_pass_follows: trial.second_pass_follows,
        };
        Some(
            self.decide_slice(req, agent, tool, slice, base, shortcut, false)
                .0,
        )
    }

    /// Decides always evaluating the second pass for real: for the tests that
    /// prove the shortcut of [`eval::second_pass_follows`] changes nothing.
    #[doc(hidden)]
    pub fn decide_two_pass(&self, req: &Request<'_>) -> Decision {
        self.decide_with_verdict(req, false, false).0
    }

    /// Decides; with `keep`, returns the first pass's verdict too (for
    /// explanations). `shortcut` allows skipping a second pass that cannot
    /// change the outcome.
    pub(crate) fn decide_with_verdict(
        &self,
        req: &Request<'_>,
        shortcut: bool,
        keep: bool,
    ) -> (Decision, Option<Verdict>) {
        let Some(agent) = self.0.agents.get(req.agent) else {
            return (
                self.deny(DenyCode::UnknownAgent, None, Vec::new(), Vec::new()),
                None,
            );
        };
        let Some(tool) = self.0.tools.get(req.tool) else {
            return (
                self.deny(DenyCode::UnknownTool, None, Vec::new(), Vec::new()),
                None,
            );
        };
        let risk = Some(tool.risk);
        if !tool.validator.is_valid(req.args) {
            let errors = tool
                .validator
                .iter_errors(req.args)
                .map(|e| argument_error(&e, &tool.sensitive))
                .collect();
            return (
                self.deny(DenyCode::InvalidArguments, risk, Vec::new(), errors),
                None,
            );
        }
        let args = match context::args_value(&tool.fields, req.args) {
            Ok(a) => a,
            Err(e) => {
                return (
                    self.deny(DenyCode::InvalidArguments, risk, Vec::new(), vec![e]),
                    None,
                );
            }
        };
        let base = BaseContext::new(args, tool.risk.as_str(), tool.access.as_str(), req.context);
        let slice = SliceRef {
            policies: &tool.slice,
            second_pass_follows: tool.second_pass_follows,
        };
        let (mut d, v) = self.decide_slice(req, agent, tool, slice, base, shortcut, keep);
        if let Some(t) = self.decide_trial(req, tool, shortcut)
            && !t.same_outcome(&d)
        {
            d.trial = Some(Box::new(t));
        }
        (d, v)
    }

    /// Decides `req` over one slice of policies (Cedar's two passes).
    #[allow(clippy::too_many_arguments)]
    fn decide_slice(
        &self,
        req: &Request<'_>,
        agent: &Arc<ast::EntityUID>,
        tool: &ToolEntry,
        slice: SliceRef<'_>,
        base: BaseContext,
        shortcut: bool,
        keep: bool,
    ) -> (Decision, Option<Verdict>) {
        let risk = Some(tool.risk);
        let who = Subject {
            principal: agent,
            action: &tool.action,
            resource: &tool.resource,
        };
        let entities = self.0.entities.as_ref();
        // The base is kept for a second pass only when one may be needed.
        let needs_base = !(shortcut && slice.second_pass_follows);
        let approvals = req.approvals.iter().map(String::as_str);
        let (first_ctx, base) = if needs_base {
            (base.with_approvals(approvals), Some(base))
        } else {
            (base.into_context(approvals), None)
        };
        let mut first = eval::evaluate(slice.policies, &who, first_ctx, entities);
        // The decision takes the reasons; explanations keep a copy.
        let take_reasons = |v: &mut Verdict| {
            if keep {
                v.reasons.clone()
            } else {
                std::mem::take(&mut v.reasons)
            }
        };
        if let Some(d) = self.evaluation_errors(&first, risk) {
            return (d, keep.then_some(first));
        }
        if first.allow
            || first.reasons.is_empty()
            || !first.reasons.iter().all(|p| p.gate.is_some())
        {
            let d = if first.allow {
                let reasons = take_reasons(&mut first);
                self.outcome(Outcome::Allow, reasons, None, tool.risk)
            } else if first.reasons.is_empty() {
                self.deny(DenyCode::NoGrant, risk, Vec::new(), Vec::new())
            } else {
                let forbids = first
                    .reasons
                    .iter()
                    .filter(|p| p.gate.is_none())
                    .cloned()
                    .collect();
                self.deny(DenyCode::Forbidden, risk, forbids, Vec::new())
            };
            return (d, keep.then_some(first));
        }
        // Every determining policy is an approval gate: would the approvals
        // they ask for be enough?
        let mut needed: BTreeMap<&str, u32> = BTreeMap::new();
        for g in first.reasons.iter().filter_map(|p| p.gate.as_ref()) {
            let q = needed.entry(g.group.as_str()).or_insert(0);
            *q = (*q).max(g.quorum);
        }
        let second = match base {
            None => Verdict {
                allow: !first.permits.is_empty(),
                reasons: first.permits.clone(),
                ..Verdict::default()
            },
            Some(base) => {
                let lifted = req
                    .approvals
                    .iter()
                    .map(String::as_str)
                    .chain(needed.keys().copied());
                eval::evaluate(slice.policies, &who, base.into_context(lifted), entities)
            }
        };
        if let Some(d) = self.evaluation_errors(&second, risk) {
            return (d, keep.then_some(first));
        }
        let d = if second.allow {
            let approval = ApprovalRequirement {
                groups: needed.into_iter().map(|(g, q)| (g.to_owned(), q)).collect(),
            };
            let reasons = take_reasons(&mut first);
            self.outcome(
                Outcome::ApprovalRequired,
                reasons,
                Some(approval),
                tool.risk,
            )
        } else if second.reasons.is_empty() {
            self.deny(DenyCode::NoGrant, risk, Vec::new(), Vec::new())
        } else {
            self.deny(DenyCode::Forbidden, risk, second.reasons, Vec::new())
        };
        (d, keep.then_some(first))
    }

    fn evaluation_errors(&self, v: &Verdict, risk: Option<Risk>) -> Option<Decision> {
        if v.errors.is_empty() {
            return None;
        }
        let policies = v.errors.iter().map(|(p, _)| Arc::clone(p)).collect();
        let messages = v.errors.iter().map(|(_, m)| m.clone()).collect();
        Some(self.deny(DenyCode::EvaluationError, risk, policies, messages))
    }

    fn deny(
        &self,
        code: DenyCode,
        risk: Option<Risk>,
        policies: Vec<Arc<PolicyInfo>>,
        errors: Vec<String>,
    ) -> Decision {
        Decision {
            outcome: Outcome::Deny,
            code: Some(code),
            policies,
            approval: None,
            risk,
            policy_version: Arc::clone(&self.0.version),
            errors,
            trial: None,
        }
    }

    fn outcome(
        &self,
        outcome: Outcome,
        policies: Vec<Arc<PolicyInfo>>,
        approval: Option<ApprovalRequirement>,
        risk: Risk,
    ) -> Decision {
        Decision {
            outcome,
            code: None,
            policies,
            approval,
            risk: Some(risk),
            policy_version: Arc::clone(&self.0.version),
            errors: Vec::new(),
            trial: None,
        }
    }

    /// The Cedar request of a Warden request's first pass and its tool's
    /// policy slice, through Cedar's public API: for benchmarks and for the
    /// tests that prove Warden's evaluation equals `Authorizer::is_authorized`.
    #[doc(hidden)]
    pub fn raw_parts(&self, req: &Request<'_>) -> Option<RawParts> {
        let agent = self.0.agents.get(req.agent)?;
        let tool = self.0.tools.get(req.tool)?;
        let args = context::args_value(&tool.fields, req.args).ok()?;
        let base = BaseContext::new(args, tool.risk.as_str(), tool.access.as_str(), req.context);
        let ctx = cedar_policy::Context::from(
            base.with_approvals(req.approvals.iter().map(String::as_str)),
        );
        let request = CedarRequest::new(
            EntityUid::from(ast::EntityUID::clone(agent)),
            EntityUid::from(ast::EntityUID::clone(&tool.action)),
            EntityUid::from(ast::EntityUID::clone(&tool.resource)),
            ctx,
            None,
        )
        .ok()?;
        let slice = PolicySet::from_policies(tool.slice.iter().map(|p| p.policy.clone())).ok()?;
        Some(RawParts { request, slice })
    }

    /// Warden's first-pass verdict (allow, determining policy ids) for a
    /// valid request: what `Authorizer::is_authorized` must also answer.
    #[doc(hidden)]
    pub fn first_pass(&self, req: &Request<'_>) -> Option<(bool, Vec<String>)> {
        let agent = self.0.agents.get(req.agent)?;
        let tool = self.0.tools.get(req.tool)?;
        let args = context::args_value(&tool.fields, req.args).ok()?;
        let base = BaseContext::new(args, tool.risk.as_str(), tool.access.as_str(), req.context);
        let who = Subject {
            principal: agent,
            action: &tool.action,
            resource: &tool.resource,
        };
        let v = eval::evaluate(
            &tool.slice,
            &who,
            base.with_approvals(req.approvals.iter().map(String::as_str)),
            self.0.entities.as_ref(),
        );
        Some((v.allow, v.reasons.iter().map(|p| p.id.clone()).collect()))
    }

    /// Whether some policy could permit `agent` to use `tool`, whatever the
    /// arguments, context and approvals: Cedar partial evaluation of the
    /// tool's slice with the context unknown. `false` means every request
    /// would be denied (no permit can apply, or a forbid without conditions
    /// on the context does), so `/mcp` does not list the tool to the agent.
    pub fn could_permit(&self, agent: &str, tool: &str) -> bool {
        let (Some(principal), Some(entry)) = (self.0.agents.get(agent), self.0.tools.get(tool))
        else {
            return false;
        };
        let request = cedar_policy::RequestBuilder::default()
            .principal(EntityUid::from(ast::EntityUID::clone(principal)))
            .action(EntityUid::from(ast::EntityUID::clone(&entry.action)))
            .resource(EntityUid::from(ast::EntityUID::clone(&entry.resource)))
            .build();
        let Ok(slice) = PolicySet::from_policies(entry.slice.iter().map(|p| p.policy.clone()))
        else {
            return false;
        };
        let partial = cedar_policy::Authorizer::new().is_authorized_partial(
            &request,
            &slice,
            &self.0.entities,
        );
        partial.decision() != Some(cedar_policy::Decision::Deny)
    }

    /// Every policy in one set (unsliced).
    #[doc(hidden)]
    pub fn whole_policy_set(&self) -> &PolicySet {
        &self.0.all
    }

    /// The engine's entity store.
    #[doc(hidden)]
    pub fn entities(&self) -> &Entities {
        &self.0.entities
    }
}

/// One argument error for people and evidence. Redaction is structural:
/// when the value the error is about holds a sensitive field (the field
/// itself, or the whole arguments object), the message is rendered with a
/// placeholder instead of the value, so no escaping of the value can leak it.
fn argument_error(e: &jsonschema::ValidationError<'_>, sensitive: &[String]) -> String {
    let path = e.instance_path().to_string();
    let top = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let holds_sensitive = !sensitive.is_empty()
        && (top.is_empty() || sensitive.iter().any(|f| escape_pointer(f) == top));
    let text = if holds_sensitive {
        e.masked_with("[sensitive value]").to_string()
    } else {
        e.to_string()
    };
    if path.is_empty() {
        text
    } else {
        format!("{path}: {text}")
    }
}

/// A field name as one JSON Pointer segment (RFC 6901).
fn escape_pointer(field: &str) -> String {
    field.replace('~', "~0").replace('/', "~1")
}

/// The policies one evaluation runs over.
#[derive(Clone, Copy)]
struct SliceRef<'a> {
    policies: &'a [SlicePolicy],
    second_pass_follows: bool,
}

/// The Cedar request and policy slice of one Warden request.
#[doc(hidden)]
pub struct RawParts {
    /// The Cedar request.
    pub request: CedarRequest,
    /// The tool's policy slice.
    pub slice: PolicySet,
}
