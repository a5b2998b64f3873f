//! Properties over generated requests: approvals only lift gates.

use proptest::prelude::*;
use serde_json::json;
use warden_model::{DenyCode, Outcome};
use warden_policy::Engine;

use crate::common::{decide, examples};

fn refunds() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::load(examples().join("support-refunds"))
            .unwrap()
            .engine
    })
}

fn ops() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Engine::load(examples().join("it-ops")).unwrap().engine)
}

fn refund_call() -> impl Strategy<Value = (String, String, serde_json::Value)> {
    let agent = prop::sample::select(vec!["support-bot", "billing-bot", "intern-bot"]);
    let refund = (1u64..1_000_000).prop_map(|a| {
        ("stripe.refund", json!({"order_id": "ord_1", "customer_id": "cus_1", "amount_cents": a, "reason": "damaged"}))
    });
    let other = prop::sample::select(vec![
        ("crm.lookup_customer", json!({"customer_id": "cus_1"})),
        (
            "crm.update_notes",
            json!({"customer_id": "cus_1", "note": "hi"}),
        ),
        ("db.delete_rows", json!({"table": "t", "where": "1=1"})),
    ]);
    (agent, prop_oneof![3 => refund, 1 => other])
        .prop_map(|(a, (t, args))| (a.to_owned(), t.to_owned(), args))
}

fn ops_call() -> impl Strategy<Value = (String, String, serde_json::Value)> {
    let agent = prop::sample::select(vec!["sre-bot", "report-bot"]);
    let env = prop::sample::select(vec!["staging", "production"]);
    let call = (env, 0u64..=100, 0usize..3).prop_map(|(env, n, which)| match which {
        0 => (
            "k8s.scale",
            json!({"environment": env, "service": "api", "replicas": n}),
        ),
        1 => (
            "k8s.restart_service",
            json!({"environment": env, "service": "api"}),
        ),
        _ => (
            "storage.delete_volume",
            json!({"environment": env, "volume_id": "v1"}),
        ),
    });
    (agent, call).prop_map(|(a, (t, args))| (a.to_owned(), t.to_owned(), args))
}

/// Approvals that only a non-lifting reason denied can never be turned into
/// an allow, and removing approvals never turns a deny into an allow.
fn approvals_only_lift_gates(
    engine: &Engine,
    agent: &str,
    tool: &str,
    args: serde_json::Value,
    groups: &[&str],
    mask: u8,
) -> Result<(), TestCaseError> {
    let given: Vec<&str> = groups
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, g)| *g)
        .collect();
    let none = decide(engine, agent, tool, args.clone(), &[]);
    let with = decide(engine, agent, tool, args.clone(), &given);
    if none.outcome == Outcome::Deny
        && matches!(none.code, Some(DenyCode::NoGrant | DenyCode::Forbidden))
    {
        prop_assert_ne!(
            with.outcome,
            Outcome::Allow,
            "approvals {:?} turned {:?} into allow",
            given,
            none.code
        );
    }
    if with.outcome == Outcome::Deny {
        // Every subset of the approvals also denies.
        for sub in 0..(1u8 << given.len()) {
            let fewer: Vec<&str> = given
                .iter()
                .enumerate()
                .filter(|(i, _)| sub & (1 << i) != 0)
                .map(|(_, g)| *g)
                .collect();
            let d = decide(engine, agent, tool, args.clone(), &fewer);
            prop_assert_ne!(
                d.outcome,
                Outcome::Allow,
                "removing approvals turned deny into allow"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn refunds_approvals_only_lift_gates((agent, tool, args) in refund_call(), mask in 0u8..4) {
        approvals_only_lift_gates(refunds(), &agent, &tool, args, &["finance", "support-leads"], mask)?;
    }

    #[test]
    fn ops_approvals_only_lift_gates((agent, tool, args) in ops_call(), mask in 0u8..4) {
        approvals_only_lift_gates(ops(), &agent, &tool, args, &["sre-oncall", "sre-leads"], mask)?;
    }
}
