//! `decide`: one or two Cedar passes over a tool's slice, and the decision.

use super::*;

impl Engine {
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
        let base = tool.base(args, req).ok()?;
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
        let base = match tool.base(args, req) {
            Ok(b) => b,
            Err(e) => {
                return (
                    self.deny(DenyCode::EvaluationError, risk, Vec::new(), vec![e]),
                    None,
                );
            }
        };
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
    pub(super) fn decide_slice(
        &self,
        req: &Request<'_>,
        agent: &Arc<ast::EntityUID>,
        tool: &ToolEntry,
        slice: SliceRef<'_>,
        base: BaseContext,
        shortcut: bool,
        keep: bool,
    ) -> (Decision, Option<Verdict>) {
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
        let d = self.conclude(tool, &mut first, keep, |needed, first| match base {
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
        });
        (d, keep.then_some(first))
    }

    /// Warden's outcome from Cedar's passes: `first` is the verdict with the
    /// request's approvals; `second` gives the verdict with the groups the
    /// gates ask for lifted, and is called only when every determining
    /// policy of `first` is an approval gate. With `keep`, `first` keeps its
    /// reasons (for explanations).
    pub(super) fn conclude(
        &self,
        tool: &ToolEntry,
        first: &mut Verdict,
        keep: bool,
        second: impl FnOnce(&BTreeMap<&str, u32>, &Verdict) -> Verdict,
    ) -> Decision {
        let risk = Some(tool.risk);
        // The decision takes the reasons; explanations keep a copy.
        let take_reasons = |v: &mut Verdict| {
            if keep {
                v.reasons.clone()
            } else {
                std::mem::take(&mut v.reasons)
            }
        };
        if let Some(d) = self.evaluation_errors(first, risk) {
            return d;
        }
        if first.allow
            || first.reasons.is_empty()
            || !first.reasons.iter().all(|p| p.gate.is_some())
        {
            return if first.allow {
                let reasons = take_reasons(first);
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
        }
        // Every determining policy is an approval gate: would the approvals
        // they ask for be enough?
        let mut needed: BTreeMap<&str, u32> = BTreeMap::new();
        for g in first.reasons.iter().filter_map(|p| p.gate.as_ref()) {
            let q = needed.entry(g.group.as_str()).or_insert(0);
            *q = (*q).max(g.quorum);
        }
        let second = second(&needed, first);
        if let Some(d) = self.evaluation_errors(&second, risk) {
            return d;
        }
        if second.allow {
            let approval = ApprovalRequirement {
                groups: needed.into_iter().map(|(g, q)| (g.to_owned(), q)).collect(),
            };
            let reasons = take_reasons(first);
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
        }
    }

    pub(super) fn evaluation_errors(&self, v: &Verdict, risk: Option<Risk>) -> Option<Decision> {
        if v.errors.is_empty() {
            return None;
        }
        let policies = v.errors.iter().map(|(p, _)| Arc::clone(p)).collect();
        let messages = v.errors.iter().map(|(_, m)| m.clone()).collect();
        Some(self.deny(DenyCode::EvaluationError, risk, policies, messages))
    }

    pub(super) fn deny(
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
}

/// One argument error for people and evidence. Redaction is structural:
/// when the value the error is about holds a sensitive field (the field
/// itself, or the whole arguments object), the message is rendered with a
/// placeholder instead of the value, so no escaping of the value can leak it.
pub(super) fn argument_error(e: &jsonschema::ValidationError<'_>, sensitive: &[String]) -> String {
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
pub(super) fn escape_pointer(field: &str) -> String {
    field.replace('~', "~0").replace('/', "~1")
}

/// The policies one evaluation runs over.
#[derive(Clone, Copy)]
pub(super) struct SliceRef<'a> {
    pub(super) policies: &'a [SlicePolicy],
    pub(super) second_pass_follows: bool,
}
