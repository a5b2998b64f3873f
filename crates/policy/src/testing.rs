//! Running a pack's decision test cases (`warden test`).

use std::collections::BTreeSet;

use warden_model::TestCase;

use crate::decision::{Decision, Request};
use crate::engine::Engine;

/// The result of one test case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: TestCase,
    /// What the engine decided (absent when the request was unusable).
    pub decision: Option<Decision>,
    /// Each way the decision differs from the expectation; empty when it passed.
    pub failures: Vec<String>,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs one case against `engine`.
pub fn run_case(engine: &Engine, case: &TestCase) -> CaseResult {
    let req = Request {
        agent: &case.agent,
        tool: &case.tool,
        args: &case.args,
        approvals: &case.approvals,
        context: &case.context,
    };
    if let Err(e) = engine.check_request(&req) {
        return CaseResult {
            case: case.clone(),
            decision: None,
            failures: vec![format!("the request is unusable: {e}")],
        };
    }
    let d = engine.decide(&req);
    let mut failures = Vec::new();
    let exp = &case.expect;
    if d.outcome != exp.decision {
        failures.push(format!(
            "decision: expected {}, got {} ({})",
            exp.decision,
            d.outcome,
            d.message()
        ));
    }
    if let Some(code) = exp.code
        && d.code != Some(code)
    {
        let got = d
            .code
            .map_or_else(|| "no code".to_owned(), |c| c.to_string());
        failures.push(format!("code: expected {code}, got {got}"));
    }
    if let Some(want) = &exp.policies {
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = d.policies.iter().map(|p| p.id.as_str()).collect();
        if want != got {
            failures.push(format!("policies: expected {want:?}, got {got:?}"));
        }
    }
    if let Some(want) = &exp.groups {
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = d.approval.iter().flat_map(|a| a.group_ids()).collect();
        if want != got {
            failures.push(format!("approval groups: expected {want:?}, got {got:?}"));
        }
    }
    CaseResult {
        case: case.clone(),
        decision: Some(d),
        failures,
    }
}
