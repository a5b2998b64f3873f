//! Warden's sliced, precomputed evaluation gives exactly the answers of
//! Cedar's `Authorizer::is_authorized` over the whole, unsliced policy set.

use cedar_policy::{Authorizer, Decision as CedarDecision};
use warden_model::RequestContext;
use warden_policy::{Engine, Request};

use crate::common::summary;
use crate::synth::{self, GenRequest, Size, Synth};

fn check(engine: &Engine, reqs: &[GenRequest]) -> [usize; 3] {
    let authorizer = Authorizer::new();
    let ctx = RequestContext::default();
    let whole = engine.whole_policy_set();
    let mut outcomes = [0; 3];
    for (i, r) in reqs.iter().enumerate() {
        let req = Request {
            agent: &r.agent,
            tool: &r.tool,
            args: &r.args,
            approvals: &r.approvals,
            context: &ctx,
        };
        let parts = engine.raw_parts(&req).expect("valid generated request");
        let cedar = authorizer.is_authorized(&parts.request, whole, engine.entities());
        let (allow, mut reasons) = engine.first_pass(&req).expect("valid generated request");
        let mut cedar_reasons: Vec<String> = cedar
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        cedar_reasons.sort();
        reasons.sort();
        assert!(
            cedar.diagnostics().errors().next().is_none(),
            "request {i}: Cedar error"
        );
        assert_eq!(
            allow,
            cedar.decision() == CedarDecision::Allow,
            "request {i}: {r:?}"
        );
        assert_eq!(reasons, cedar_reasons, "request {i}: {r:?}");
        let d = engine.decide(&req);
        assert_eq!(
            summary(&d),
            summary(&engine.decide_two_pass(&req)),
            "request {i}"
        );
        outcomes[d.outcome as usize] += 1;
    }
    outcomes
}

#[test]
fn example_pack_on_10000_requests() {
    let engine = Engine::load(crate::common::examples().join("support-refunds"))
        .unwrap()
        .engine;
    let outcomes = check(&engine, &synth::refund_requests(10_000, 11));
    assert!(
        outcomes.iter().all(|n| *n > 500),
        "every outcome is exercised: {outcomes:?}"
    );
}

#[test]
fn synthetic_pack_on_10000_requests() {
    let dir = tempfile::tempdir().unwrap();
    let s = Synth::new(Size::MEDIUM, 3);
    s.write(dir.path()).unwrap();
    let engine = Engine::load(dir.path()).unwrap().engine;
    let outcomes = check(&engine, &s.requests(10_000, 5));
    assert!(
        outcomes.iter().all(|n| *n > 50),
        "every outcome is exercised: {outcomes:?}"
    );
}

#[test]
fn large_pack_on_1000_requests() {
    // 1,000 agents, 5,000 tools, 2,001 policies: the whole set costs ~2 ms a
    // request, so fewer requests here; the latency bench checks 1,000 more.
    let dir = tempfile::tempdir().unwrap();
    let s = Synth::new(Size::LARGE, 42);
    s.write(dir.path()).unwrap();
    let engine = Engine::load(dir.path()).unwrap().engine;
    assert_eq!(engine.policies().len(), s.policy_count());
    check(&engine, &s.requests(1_000, 9));
}
