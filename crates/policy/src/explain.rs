//! Explanations: which policies matched, which gate applies, and what would
//! make a request pass.

use std::sync::Arc;

use warden_model::{DenyCode, Outcome, did_you_mean};

use crate::decision::{Decision, Request};
use crate::engine::Engine;
use crate::policies::{Effect, PolicyInfo};

/// A decision with the account behind it.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The decision itself.
    pub decision: Decision,
    /// Every policy that can apply to the tool (its slice), in file order.
    pub considered: Vec<Arc<PolicyInfo>>,
    /// The permits that grant this request when forbids are set aside.
    pub granting_permits: Vec<Arc<PolicyInfo>>,
    /// What would make the request pass, in plain sentences.
    pub next_steps: Vec<String>,
    /// The counters the decision read (`context.usage`), in name order.
    pub usage: Vec<UsageUsed>,
    /// The run's step data the decision could read (`context.run.steps`),
    /// by step id: the steps the tool's schema knows that the run holds.
    pub run_steps: std::collections::BTreeMap<String, serde_json::Value>,
    /// The facts the decision read (`context.facts`).
    pub facts: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A counter's value as a decision read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageUsed {
    /// The counter.
    pub counter: String,
    /// Its value in the window before the request.
    pub before: i64,
    /// What the request adds (1 for a count).
    pub request: i64,
    /// What policies saw as `context.usage.<counter>`.
    pub value: i64,
}

impl Engine {
    /// Decides `req` and explains the decision.
    pub fn explain(&self, req: &Request<'_>) -> Explanation {
        let (decision, verdict) = self.decide_with_verdict(req, true, true);
        let considered = self.policies_for_tool(req.tool);
        let granting_permits = verdict.map(|v| v.permits).unwrap_or_default();
        let next_steps = self.next_steps(req, &decision, &considered, &granting_permits);
        let mut usage: Vec<UsageUsed> = self
            .pack()
            .counters
            .iter()
            .filter(|c| c.counts(req.tool))
            .map(|c| {
                let before = req.context.usage.get(&c.name).copied().unwrap_or(0);
                let request = c.amount(req.args);
                UsageUsed {
                    counter: c.name.clone(),
                    before,
                    request,
                    value: before.saturating_add(request),
                }
            })
            .collect();
        usage.sort_by(|a, b| a.counter.cmp(&b.counter));
        let (run_steps, facts) = match self.tool_entry(req.tool) {
            Some(t) => (
                req.context
                    .steps
                    .iter()
                    .filter(|(k, _)| t.run_steps.iter().any(|f| &f.name == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                req.context
                    .facts
                    .iter()
                    .filter(|(k, _)| t.facts.iter().any(|f| &f.name == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            None => Default::default(),
        };
        Explanation {
            run_steps,
            facts,
            decision,
            considered,
            granting_permits,
            next_steps,
            usage,
        }
    }

    fn next_steps(
        &self,
        req: &Request<'_>,
        d: &Decision,
        considered: &[Arc<PolicyInfo>],
        granting: &[Arc<PolicyInfo>],
    ) -> Vec<String> {
        let pack = self.pack();
        let ids = |ps: &[Arc<PolicyInfo>]| {
            ps.iter()
                .map(|p| format!("`{}` ({})", p.id, p.location))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (d.outcome, d.code) {
            (Outcome::Allow, _) => Vec::new(),
            (Outcome::ApprovalRequired, _) => {
                let owner = pack.agents.get(req.agent).map(|a| a.owner.as_str());
                d.approval
                    .iter()
                    .flat_map(|a| a.groups.iter())
                    .map(|(g, q)| {
                        let members = pack
                            .approver_groups
                            .get(g)
                            .map(|grp| {
                                grp.members
                                    .iter()
                                    .filter(|m| Some(m.as_str()) != owner)
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default();
                        format!(
                            "get {q} approval(s) from group `{g}` (who may approve: {members}); then decide again with `--approvals {g}`"
                        )
                    })
                    .collect()
            }
            (Outcome::Deny, Some(DenyCode::NoGrant)) => {
                let permits: Vec<Arc<PolicyInfo>> = considered
                    .iter()
                    .filter(|p| p.effect == Effect::Permit)
                    .cloned()
                    .collect();
                if permits.is_empty() {
                    vec![format!(
                        "no permit policy names tool `{}`; add one that grants it to agent `{}`",
                        req.tool, req.agent
                    )]
                } else {
                    vec![format!(
                        "permits for `{}` exist but none grants agent `{}` these arguments: {}",
                        req.tool,
                        req.agent,
                        ids(&permits)
                    )]
                }
            }
            (Outcome::Deny, Some(DenyCode::Forbidden)) => {
                let mut steps = vec![format!(
                    "{} cannot be lifted by approvals; only a different request or a policy change can pass",
                    ids(&d.policies)
                )];
                if granting.is_empty() {
                    steps.push(format!(
                        "besides, no permit grants agent `{}` tool `{}`",
                        req.agent, req.tool
                    ));
                }
                steps
            }
            (Outcome::Deny, Some(DenyCode::InvalidArguments)) => d
                .errors
                .iter()
                .map(|e| format!("fix the arguments: {e}"))
                .collect(),
            (Outcome::Deny, Some(DenyCode::UnknownTool)) => {
                let hint = did_you_mean(req.tool, pack.tools.keys().map(String::as_str))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                vec![format!(
                    "tool `{}` is not declared in the pack{hint}",
                    req.tool
                )]
            }
            (Outcome::Deny, Some(DenyCode::UnknownAgent)) => {
                let hint = did_you_mean(req.agent, pack.agents.keys().map(String::as_str))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                vec![format!(
                    "agent `{}` is not declared in the pack{hint}",
                    req.agent
                )]
            }
            (Outcome::Deny, Some(DenyCode::EvaluationError)) => d
                .errors
                .iter()
                .map(|e| format!("fix the policy: {e}"))
                .collect(),
            (Outcome::Deny, None) => Vec::new(),
        }
    }
}
