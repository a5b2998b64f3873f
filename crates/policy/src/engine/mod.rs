//! The decision engine: a pack compiled for deciding, and `decide`.

mod compile;
mod decide;
mod replay;

pub(crate) use compile::action_index;
pub use compile::compile;
pub use replay::Replayed;

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
    /// Top-level argument fields no policy of the slice reads (replay
    /// decides exactly without their values).
    pub unread: Vec<String>,
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
    /// The counters its actions count (`context.usage`).
    pub counters: Vec<context::ToolCounter>,
    /// The steps whose data its requests see (`context.run.steps`).
    pub run_steps: Vec<ArgField>,
    /// Its facts (`context.facts`).
    pub facts: Vec<ArgField>,
}

impl ToolEntry {
    /// A request's context but for `approvals`, from its typed arguments.
    /// `Err`: run data or facts that do not have their declared types.
    pub(crate) fn base(&self, args: ast::Value, req: &Request<'_>) -> Result<BaseContext, String> {
        BaseContext::new(args, self.risk.as_str(), self.access.as_str(), req.context)
            .with_usage(&self.counters, req.args, &req.context.usage)
            .with_run(&self.run_steps, req.context)?
            .with_facts(&self.facts, req.context)
    }
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

    /// Whether `args` are valid arguments of `tool` (its JSON Schema and
    /// the typing policies see): what `decide` checks before any policy.
    /// The runtime asks first when a valid request is about to cause work
    /// of its own (a correlated run started, a fact fetched).
    pub fn arguments_valid(&self, tool: &str, args: &serde_json::Value) -> bool {
        self.0.tools.get(tool).is_some_and(|t| {
            t.validator.is_valid(args) && context::args_value(&t.fields, args).is_ok()
        })
    }

    /// What the engine compiled for `tool`.
    pub(crate) fn tool_entry(&self, tool: &str) -> Option<&ToolEntry> {
        self.0.tools.get(tool)
    }

    /// The Cedar request of a Warden request's first pass and its tool's
    /// policy slice, through Cedar's public API: for benchmarks and for the
    /// tests that prove Warden's evaluation equals `Authorizer::is_authorized`.
    #[doc(hidden)]
    pub fn raw_parts(&self, req: &Request<'_>) -> Option<RawParts> {
        let agent = self.0.agents.get(req.agent)?;
        let tool = self.0.tools.get(req.tool)?;
        let args = context::args_value(&tool.fields, req.args).ok()?;
        let base = tool.base(args, req).ok()?;
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
        let base = tool.base(args, req).ok()?;
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

    /// The policies whose action scope names `tool` itself (`action ==`
    /// or `action in [...]` listing it), not only an action group or every
    /// action: the explicit checks of a tool.
    pub fn policies_naming(&self, tool: &str) -> Vec<String> {
        use cedar_policy::ActionConstraint;
        self.0
            .all
            .policies()
            .filter(|p| {
                let is = |uid: &EntityUid| uid.id().unescaped() == tool;
                match p.action_constraint() {
                    ActionConstraint::Eq(uid) => is(&uid),
                    ActionConstraint::In(uids) => uids.iter().any(is),
                    ActionConstraint::Any => false,
                }
            })
            .map(|p| {
                p.annotation("id")
                    .map_or_else(|| p.id().to_string(), str::to_owned)
            })
            .collect()
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

/// The Cedar request and policy slice of one Warden request.
#[doc(hidden)]
pub struct RawParts {
    /// The Cedar request.
    pub request: CedarRequest,
    /// The tool's policy slice.
    pub slice: PolicySet,
}

/// An approval gate whose condition compares a numeric argument with a
/// constant (`context.args.amount_cents > 10000`): what `warden tune` can
/// suggest raising.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Threshold {
    /// The gate's policy id.
    pub policy: String,
    /// The approver group it asks.
    pub group: String,
    /// The top-level argument compared.
    pub field: String,
    /// `>` or `>=`: the gate fires when the argument is above (or at) the
    /// constant.
    pub op: &'static str,
    /// The constant.
    pub value: i64,
}

impl Engine {
    /// Every approval gate with a numeric threshold on an argument, in pack
    /// order. Only a `when` clause that is the comparison, or a conjunction
    /// (`&&`) holding it, counts.
    pub fn thresholds(&self) -> Vec<Threshold> {
        let mut out = Vec::new();
        for p in self.0.ordered.iter() {
            let Some(gate) = &p.gate else { continue };
            let Some(policy) =
                self.0.all.policies().find(|c| {
                    c.id().to_string() == p.id || c.annotation("id") == Some(p.id.as_str())
                })
            else {
                continue;
            };
            let Ok(est) = policy.to_json() else { continue };
            let conds = est
                .get("conditions")
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default();
            for c in conds {
                if c.get("kind").and_then(serde_json::Value::as_str) != Some("when") {
                    continue;
                }
                let Some(body) = c.get("body") else { continue };
                if let Some((field, op, value)) = comparison(body) {
                    out.push(Threshold {
                        policy: p.id.clone(),
                        group: gate.group.clone(),
                        field,
                        op,
                        value,
                    });
                    break;
                }
            }
        }
        out
    }
}

/// `context.args.<field> > <n>` (or `>=`), alone or inside `&&`.
fn comparison(e: &serde_json::Value) -> Option<(String, &'static str, i64)> {
    if let Some(and) = e.get("&&") {
        return ["left", "right"]
            .iter()
            .find_map(|side| and.get(*side).and_then(comparison));
    }
    let (op, cmp) = [(">", ">"), (">=", ">=")]
        .iter()
        .find_map(|(k, op)| e.get(*k).map(|c| (*op, c)))?;
    let field = args_field(cmp.get("left")?)?;
    let value = cmp.get("right")?.get("Value")?.as_i64()?;
    Some((field, op, value))
}

/// The field name of `context.args.<field>`.
fn args_field(e: &serde_json::Value) -> Option<String> {
    let outer = e.get(".")?;
    let inner = outer.get("left")?.get(".")?;
    let is_context = inner.get("left")?.get("Var")?.as_str()? == "context";
    let is_args = inner.get("attr")?.as_str()? == "args";
    (is_context && is_args).then(|| outer.get("attr")?.as_str().map(str::to_owned))?
}
