//! Evaluating a tool's policy slice with Cedar's own evaluator.
//!
//! `cedar_policy::Authorizer` rebuilds every policy's condition expression and
//! runs the partial evaluator on each request; that is most of its cost. Warden
//! keeps each policy's condition built once and evaluates it with Cedar's
//! evaluator (`cedar_policy_core::evaluator::Evaluator::interpret`), then applies
//! Cedar's decision rule itself: any satisfied forbid denies (those forbids
//! are the reasons); otherwise any satisfied permit allows (those permits are
//! the reasons); otherwise deny with no reasons. A policy that errors counts as
//! not satisfied and its error is reported, exactly as the authorizer does
//! (Warden then fails closed on any error).
//!
//! INVARIANT: the verdict equals `Authorizer::is_authorized` on the same
//! request and policies. `tests/it/equivalence.rs` checks it on 10,000
//! requests against the whole, unsliced policy set.
//!
//! This module and `context.rs` are the only users of `cedar_policy_core`,
//! whose version is pinned to the exact `cedar-policy` version.

use std::sync::Arc;

use cedar_policy_core::ast::{
    self, EntityUIDEntry, Expr, Literal, PrincipalOrResourceConstraint, ValueKind,
};
use cedar_policy_core::entities::Entities;
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

use crate::policies::{ApprovalsUse, PolicyInfo};

/// One policy of a tool's slice, ready to evaluate.
pub(crate) struct SlicePolicy {
    pub info: Arc<PolicyInfo>,
    pub policy: cedar_policy::Policy,
    pub permit: bool,
    /// Set when the principal scope is `principal == <uid>`: the condition
    /// starts with that test and short-circuits, so other agents skip it.
    pub only_principal: Option<ast::EntityUID>,
    /// The policy's condition without its action scope, built once. The
    /// slice holds the policy only for tools its action scope matches, so
    /// that test (an entity-hierarchy lookup for `action in [...]`) always
    /// holds here and is left out; it cannot error.
    pub condition: Expr,
    pub approvals_use: ApprovalsUse,
}

impl SlicePolicy {
    pub fn new(
        info: Arc<PolicyInfo>,
        policy: cedar_policy::Policy,
        approvals_use: ApprovalsUse,
    ) -> Self {
        let core: &ast::Policy = policy.as_ref();
        let only_principal = match core.principal_constraint().as_inner() {
            PrincipalOrResourceConstraint::Eq(ast::EntityReference::EUID(uid)) => {
                Some(uid.as_ref().clone())
            }
            _ => None,
        };
        Self {
            permit: core.effect() == ast::Effect::Permit,
            condition: Expr::and(
                core.principal_constraint().as_expr(),
                Expr::and(
                    core.resource_constraint().as_expr(),
                    core.non_scope_constraints()
                        .cloned()
                        .unwrap_or_else(|| Expr::val(true)),
                ),
            ),
            only_principal,
            approvals_use,
            info,
            policy,
        }
    }
}

/// Whether the second pass of a slice (approvals lifted) is decided by the
/// first: true when every policy that reads `context.approvals` is a
/// canonical gate. Then lifting the gates that fired changes nothing else,
/// and the second pass allows exactly when the first found a satisfied
/// permit (with no error, no other forbid: the caller checks both first).
pub(crate) fn second_pass_follows(slice: &[SlicePolicy]) -> bool {
    slice.iter().all(|p| p.approvals_use != ApprovalsUse::Other)
}

/// What Cedar's decision rule gives for one evaluation.
#[derive(Debug, Default, Clone)]
pub(crate) struct Verdict {
    pub allow: bool,
    /// The determining policies: satisfied forbids for a deny by forbid,
    /// satisfied permits for an allow, none for a default deny.
    pub reasons: Vec<Arc<PolicyInfo>>,
    /// Satisfied permits (also when a forbid wins), for explanations.
    pub permits: Vec<Arc<PolicyInfo>>,
    /// Policies that failed to evaluate, with Cedar's message.
    pub errors: Vec<(Arc<PolicyInfo>, String)>,
}

/// The fixed parts of a request: who, what, on which system.
pub(crate) struct Subject<'a> {
    pub principal: &'a Arc<ast::EntityUID>,
    pub action: &'a Arc<ast::EntityUID>,
    pub resource: &'a Arc<ast::EntityUID>,
}

impl Subject<'_> {
    /// The Cedar request of this subject with `context`.
    fn request(&self, context: ast::Context) -> ast::Request {
        let known = |euid: &Arc<ast::EntityUID>| EntityUIDEntry::Known {
            euid: Arc::clone(euid),
            loc: None,
        };
        ast::Request::new_unchecked(
            known(self.principal),
            known(self.action),
            known(self.resource),
            Some(context),
        )
    }
}

impl SlicePolicy {
    /// Whether the policy names another principal (`principal == <uid>`)
    /// and so cannot be satisfied for `principal`.
    fn skips(&self, principal: &ast::EntityUID) -> bool {
        self.only_principal.as_ref().is_some_and(|u| u != principal)
    }
}

pub(crate) fn evaluate(
    slice: &[SlicePolicy],
    who: &Subject<'_>,
    context: ast::Context,
    entities: &Entities,
) -> Verdict {
    let eval = Evaluator::new(who.request(context), entities, Extensions::all_available());
    let env = ast::SlotEnv::new();
    let mut forbids = Vec::new();
    let mut v = Verdict::default();
    for p in slice {
        if p.skips(who.principal) {
            continue;
        }
        match eval.interpret(&p.condition, &env) {
            Ok(val) => {
                if matches!(val.value_kind(), ValueKind::Lit(Literal::Bool(true))) {
                    if p.permit {
                        v.permits.push(Arc::clone(&p.info));
                    } else {
                        forbids.push(Arc::clone(&p.info));
                    }
                } else if !matches!(val.value_kind(), ValueKind::Lit(Literal::Bool(false))) {
                    v.errors.push((
                        Arc::clone(&p.info),
                        format!("policy `{}` did not evaluate to a boolean", p.info.id),
                    ));
                }
            }
            Err(e) => v.errors.push((
                Arc::clone(&p.info),
                format!("error while evaluating policy `{}`: {e}", p.info.id),
            )),
        }
    }
    v.decide(forbids);
    v
}

impl Verdict {
    /// Cedar's decision rule over the satisfied policies: any satisfied
    /// forbid denies (the forbids are the reasons); otherwise any satisfied
    /// permit allows (the permits are the reasons).
    fn decide(&mut self, forbids: Vec<Arc<PolicyInfo>>) {
        if !forbids.is_empty() {
            self.reasons = forbids;
        } else if !self.permits.is_empty() {
            self.allow = true;
            self.reasons.clone_from(&self.permits);
        }
    }
}

/// A policy's condition evaluated with some of the context unknown.
#[derive(Debug, Clone)]
pub(crate) enum Partial {
    /// Satisfied whatever the unknowns are.
    Holds,
    /// Not satisfied whatever the unknowns are (or not for this principal).
    Fails,
    /// Failed to evaluate.
    Error(String),
    /// Depends on these unknowns.
    Depends(Vec<smol_str::SmolStr>),
}

/// Partial evaluation of every policy of `slice` (Cedar's evaluator, with
/// the unknowns `context` holds): one state per policy, in slice order.
pub(crate) fn evaluate_partial(
    slice: &[SlicePolicy],
    who: &Subject<'_>,
    context: ast::Context,
    entities: &Entities,
) -> Vec<Partial> {
    let eval = Evaluator::new(who.request(context), entities, Extensions::all_available());
    let env = ast::SlotEnv::new();
    slice
        .iter()
        .map(|p| {
            if p.skips(who.principal) {
                return Partial::Fails;
            }
            match eval.partial_interpret(&p.condition, &env) {
                Ok(ast::PartialValue::Value(val)) => match val.value_kind() {
                    ValueKind::Lit(Literal::Bool(true)) => Partial::Holds,
                    ValueKind::Lit(Literal::Bool(false)) => Partial::Fails,
                    _ => Partial::Error(format!(
                        "policy `{}` did not evaluate to a boolean",
                        p.info.id
                    )),
                },
                Ok(ast::PartialValue::Residual(r)) => {
                    let mut names: Vec<smol_str::SmolStr> =
                        r.unknowns().map(|u| u.name.clone()).collect();
                    names.sort();
                    names.dedup();
                    Partial::Depends(names)
                }
                Err(e) => Partial::Error(format!(
                    "error while evaluating policy `{}`: {e}",
                    p.info.id
                )),
            }
        })
        .collect()
}

/// The verdict of `states` when the `i`-th policy that depends on unknowns
/// is satisfied exactly when bit `i` of `assignment` is set.
pub(crate) fn resolve(slice: &[SlicePolicy], states: &[Partial], assignment: u64) -> Verdict {
    let mut v = Verdict::default();
    let mut forbids = Vec::new();
    let mut bit = 0u32;
    for (p, state) in slice.iter().zip(states) {
        let holds = match state {
            Partial::Holds => true,
            Partial::Fails => false,
            Partial::Error(m) => {
                v.errors.push((Arc::clone(&p.info), m.clone()));
                false
            }
            Partial::Depends(_) => {
                let set = assignment >> bit & 1 == 1;
                bit += 1;
                set
            }
        };
        if holds {
            if p.permit {
                v.permits.push(Arc::clone(&p.info));
            } else {
                forbids.push(Arc::clone(&p.info));
            }
        }
    }
    v.decide(forbids);
    v
}

/// How many policies of `states` depend on unknowns.
pub(crate) fn depending(states: &[Partial]) -> u32 {
    states
        .iter()
        .filter(|s| matches!(s, Partial::Depends(_)))
        .count() as u32
}
