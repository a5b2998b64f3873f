//! Deciding recorded requests again: evidence stores sensitive argument
//! fields as HMAC tokens, so a replay must decide with those fields unknown
//! (Cedar partial evaluation) and never guess their values.

use super::decide::{SliceRef, argument_error, escape_pointer};
use super::*;
use crate::eval::{Partial, depending, evaluate_partial, resolve};

/// At most this many policies of one request may depend on redacted fields;
/// beyond it the request is reported indeterminate without enumerating.
const MAX_DEPENDING: u32 = 10;

/// A recorded request decided again.
#[derive(Debug, Clone)]
pub enum Replayed {
    /// The decision does not depend on the redacted fields' values.
    Decided(Decision),
    /// The decision depends on the values of redacted fields.
    Indeterminate {
        /// The redacted fields it depends on.
        fields: Vec<String>,
        /// The distinct decisions their values could lead to.
        possible: Vec<Decision>,
    },
}

impl Engine {
    /// Decides `req`, whose top-level argument fields named in `redacted`
    /// hold redaction tokens instead of their values: those fields count as
    /// unknown. When every value they could have leads to the same outcome
    /// (outcome, deny code and approvals), that decision is returned;
    /// otherwise the request is [`Replayed::Indeterminate`], naming the
    /// fields. Policies on trial (`@shadow`) are not evaluated.
    pub fn decide_recorded(&self, req: &Request<'_>, redacted: &[String]) -> Replayed {
        if redacted.is_empty() {
            return Replayed::Decided(self.decide(req));
        }
        let (Some(agent), Some(tool)) = (self.0.agents.get(req.agent), self.0.tools.get(req.tool))
        else {
            return Replayed::Decided(self.decide(req));
        };
        let risk = Some(tool.risk);
        // A token never matches the field's schema; every other error counts.
        let errors: Vec<String> = tool
            .validator
            .iter_errors(req.args)
            .filter(|e| {
                let path = e.instance_path().to_string();
                let top = path.trim_start_matches('/').split('/').next().unwrap_or("");
                top.is_empty() || !redacted.iter().any(|f| escape_pointer(f) == top)
            })
            .map(|e| argument_error(&e, &tool.sensitive))
            .collect();
        if !errors.is_empty() {
            return Replayed::Decided(self.deny(
                DenyCode::InvalidArguments,
                risk,
                Vec::new(),
                errors,
            ));
        }
        // Redacted fields policies can read; the others are left out of
        // the context (nothing reads them).
        let typed: Vec<String> = redacted
            .iter()
            .filter(|f| tool.fields.iter().any(|a| &a.name == *f) && !tool.unread.contains(f))
            .cloned()
            .collect();
        let invalid = |e: String| {
            Replayed::Decided(self.deny(DenyCode::InvalidArguments, risk, Vec::new(), vec![e]))
        };
        let slice = SliceRef {
            policies: &tool.slice,
            second_pass_follows: tool.second_pass_follows,
        };
        if typed.is_empty() {
            // Policies cannot see the redacted fields: decide as usual.
            let mut args = req.args.clone();
            if let Some(m) = args.as_object_mut() {
                for f in redacted {
                    m.remove(f);
                }
            }
            let read: Vec<ArgField> = tool
                .fields
                .iter()
                .filter(|f| !redacted.contains(&f.name))
                .cloned()
                .collect();
            let args = match context::args_value(&read, &args) {
                Ok(a) => a,
                Err(e) => return invalid(e),
            };
            let base = match tool.base(args, req) {
                Ok(b) => b,
                Err(e) => return invalid(e),
            };
            return Replayed::Decided(
                self.decide_slice(req, agent, tool, slice, base, true, false)
                    .0,
            );
        }
        let args = match context::args_residual(&tool.fields, req.args, &typed) {
            Ok(a) => a,
            Err(e) => return invalid(e),
        };
        // Everything but the arguments is known; `args` is filled in below.
        let base = match tool.base(cedar_policy_core::ast::Value::empty_record(None), req) {
            Ok(b) => b,
            Err(e) => return invalid(e),
        };
        let who = Subject {
            principal: agent,
            action: &tool.action,
            resource: &tool.resource,
        };
        let entities = self.0.entities.as_ref();
        let pass = |approvals: &mut dyn Iterator<Item = &str>| {
            evaluate_partial(&tool.slice, &who, base.residual(&args, approvals), entities)
        };
        let first_states = pass(&mut req.approvals.iter().map(String::as_str));
        let k1 = depending(&first_states);
        let mut fields = unknown_fields(&first_states);
        if k1 > MAX_DEPENDING {
            return Replayed::Indeterminate {
                fields,
                possible: Vec::new(),
            };
        }
        let mut possible: Vec<Decision> = Vec::new();
        for a1 in 0..(1u64 << k1) {
            let first = resolve(&tool.slice, &first_states, a1);
            // The second pass may depend on the unknowns too: try each of
            // its assignments (learned on the first call).
            let mut a2 = 0u64;
            loop {
                let mut k2 = 0u32;
                let mut f = first.clone();
                let d = self.conclude(tool, &mut f, false, |needed, first| {
                    if slice.second_pass_follows {
                        return Verdict {
                            allow: !first.permits.is_empty(),
                            reasons: first.permits.clone(),
                            ..Verdict::default()
                        };
                    }
                    let states = pass(
                        &mut req
                            .approvals
                            .iter()
                            .map(String::as_str)
                            .chain(needed.keys().copied()),
                    );
                    k2 = depending(&states).min(MAX_DEPENDING);
                    for name in unknown_fields(&states) {
                        if !fields.contains(&name) {
                            fields.push(name);
                        }
                    }
                    resolve(&tool.slice, &states, a2)
                });
                if !possible.iter().any(|p| p.same_outcome(&d)) {
                    possible.push(d);
                }
                a2 += 1;
                if a2 >= (1u64 << k2) {
                    break;
                }
            }
        }
        if possible.len() == 1
            && let Some(d) = possible.pop()
        {
            return Replayed::Decided(d);
        }
        fields.sort();
        Replayed::Indeterminate { fields, possible }
    }
}

/// The argument fields named by the unknowns policies depend on.
fn unknown_fields(states: &[Partial]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in states {
        if let Partial::Depends(names) = s {
            for n in names {
                let f = n.strip_prefix("args.").unwrap_or(n).to_owned();
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
    }
    out
}
