//! Every gate applies to a new proposal and again at execution, after an
//! approval: one pipeline serves both paths.

use std::time::Duration;

use serde_json::json;
use warden_model::ActionStatus::{AwaitingApproval, Cancelled, Denied, Failed, Succeeded};
use warden_runtime::{Canceller, Verdict};

use crate::harness::{Expect, Harness, lookup, refund};

const BOT: &str = "support-bot";

#[tokio::test]
async fn policy_decides_and_the_connector_runs_what_is_allowed() {
    let h = Harness::support().await;
    h.check(
        BOT,
        "crm.lookup_customer",
        lookup(),
        None,
        Expect::Action(Succeeded, None),
    )
    .await;
    h.check(
        BOT,
        "stripe.refund",
        refund(50_000, "ord_1"),
        None,
        Expect::Action(AwaitingApproval, None),
    )
    .await;
    h.check(
        BOT,
        "stripe.refund",
        refund(900_000, "ord_2"),
        None,
        Expect::Action(Denied, Some("policy_denied")),
    )
    .await;
    // Bad input: a schema violation and an unknown tool are denials on
    // record; an unknown run is refused.
    h.check(
        BOT,
        "stripe.refund",
        json!({"amount_cents": "ten"}),
        None,
        Expect::Refused("invalid_arguments"),
    )
    .await;
    h.check(
        BOT,
        "no.such_tool",
        json!({}),
        None,
        Expect::Refused("unknown_tool"),
    )
    .await;
    h.check(
        BOT,
        "crm.lookup_customer",
        lookup(),
        Some("run_nope"),
        Expect::Refused("unknown_run"),
    )
    .await;
}

#[tokio::test]
async fn a_pause_applies_to_proposals_and_to_approved_actions() {
    let h = Harness::support().await;
    let waiting = h
        .check(
            BOT,
            "stripe.refund",
            refund(50_000, "ord_1"),
            None,
            Expect::Action(AwaitingApproval, None),
        )
        .await
        .unwrap();
    h.rt.controls()
        .set_paused(BOT, true, "olivia", None)
        .await
        .unwrap();
    h.check(
        BOT,
        "crm.lookup_customer",
        lookup(),
        None,
        Expect::Action(Denied, Some("agent_paused")),
    )
    .await;
    // Approved while paused: not executed.
    let apr = waiting.approval_id.clone().unwrap();
    h.answer("carol", &apr, Verdict::Approve).await.unwrap();
    let a = h.settled(h.action(&waiting.action_id).await).await;
    assert_ne!(a.status, Succeeded, "{a:?}");
    assert_eq!(a.code.as_deref(), Some("agent_paused"), "{a:?}");
    h.rt.controls()
        .set_paused(BOT, false, "olivia", None)
        .await
        .unwrap();
    h.check(
        BOT,
        "crm.lookup_customer",
        lookup(),
        None,
        Expect::Action(Succeeded, None),
    )
    .await;
}

#[tokio::test]
async fn a_circuit_applies_to_proposals_and_to_approved_actions() {
    let h = Harness::support().await;
    let waiting = h
        .check(
            BOT,
            "stripe.refund",
            refund(50_000, "ord_1"),
            None,
            Expect::Action(AwaitingApproval, None),
        )
        .await
        .unwrap();
    h.rt.controls()
        .set_circuit(
            "stripe.refund",
            Some(Duration::from_secs(600)),
            "olivia",
            None,
        )
        .await
        .unwrap();
    h.check(
        BOT,
        "stripe.refund",
        refund(5_000, "ord_2"),
        None,
        Expect::Action(Denied, Some("tool_circuit_open")),
    )
    .await;
    let apr = waiting.approval_id.clone().unwrap();
    h.answer("carol", &apr, Verdict::Approve).await.unwrap();
    let a = h.settled(h.action(&waiting.action_id).await).await;
    assert!(matches!(a.status, Denied | Failed), "{a:?}");
    assert_eq!(a.code.as_deref(), Some("tool_circuit_open"), "{a:?}");
    // Other tools are not affected.
    h.check(
        BOT,
        "crm.lookup_customer",
        lookup(),
        None,
        Expect::Action(Succeeded, None),
    )
    .await;
}

#[tokio::test]
async fn step_order_and_run_state_gate_actions_in_runs() {
    let h = Harness::support().await;
    let run =
        h.rt.start_run(BOT, "refund-request", None)
            .await
            .unwrap()
            .run_id;
    h.check(
        BOT,
        "stripe.refund",
        refund(500, "ord_1"),
        Some(&run),
        Expect::Action(Denied, Some("step_out_of_order")),
    )
    .await;
    h.check(
        BOT,
        "crm.lookup_customer",
        lookup(),
        Some(&run),
        Expect::Action(Succeeded, None),
    )
    .await;
    h.check(
        BOT,
        "stripe.refund",
        refund(500, "ord_1"),
        Some(&run),
        Expect::Action(Succeeded, None),
    )
    .await;
    // Another agent may not act in the run.
    h.check(
        "billing-bot",
        "crm.lookup_customer",
        lookup(),
        Some(&run),
        Expect::Refused("run_forbidden"),
    )
    .await;
    // A cancelled run takes no more actions, and its waiting refund ends
    // with it, unexecuted.
    let (run, waiting) = h.refund_waiting_in_run(BOT, "ord_3").await;
    h.rt.cancel_run(&run, Canceller::Operator("olivia"), None)
        .await
        .unwrap();
    h.check(
        BOT,
        "crm.lookup_customer",
        lookup(),
        Some(&run),
        Expect::Refused("run_closed"),
    )
    .await;
    let a = h.action(&waiting.action_id).await;
    assert_eq!(
        (a.status, a.code.as_deref()),
        (Cancelled, Some("cancelled")),
        "{a:?}"
    );
    let apr = waiting.approval_id.unwrap();
    let e = h.answer("carol", &apr, Verdict::Approve).await.unwrap_err();
    assert_eq!(e.code(), "approval_closed");
}

#[tokio::test]
async fn a_quarantine_sends_writes_to_its_group_and_leaves_reads_alone() {
    let h = Harness::support().await;
    h.rt.controls()
        .set_quarantine(BOT, Some("support-leads".into()), "olivia", None)
        .await
        .unwrap();
    h.check(
        BOT,
        "crm.lookup_customer",
        lookup(),
        None,
        Expect::Action(Succeeded, None),
    )
    .await;
    // A $5 refund, allowed by policy, now waits for the quarantine group.
    let a = h
        .check(
            BOT,
            "stripe.refund",
            refund(500, "ord_q1"),
            None,
            Expect::Action(AwaitingApproval, None),
        )
        .await
        .unwrap();
    let e = h
        .answer("carol", a.approval_id.as_deref().unwrap(), Verdict::Approve)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_an_approver", "{e}");
    // Bad input: an unknown group is refused and changes nothing.
    let e =
        h.rt.controls()
            .set_quarantine(BOT, Some("no-such-group".into()), "olivia", None)
            .await
            .unwrap_err();
    assert_eq!(e.code(), "unknown_group");
}

#[tokio::test]
async fn a_run_past_its_workflow_timeout_ends_with_what_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    crate::harness::copy_dir(
        &crate::harness::root().join("examples/support-refunds"),
        &pack,
    );
    let manifest = pack.join("warden.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replacen(
        "id = \"refund-request\"\nowner = \"sam\"\n",
        "id = \"refund-request\"\nowner = \"sam\"\ntimeout = \"1h\"\n",
        1,
    );
    std::fs::write(&manifest, text).unwrap();
    let h = Harness::with_pack(&pack).await;
    let (run, waiting) = h.refund_waiting_in_run(BOT, "ord_t1").await;
    let now = |plus: i64| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        i64::try_from(t).unwrap() + plus
    };
    // Before the deadline nothing ends; an hour later the run does.
    assert_eq!(h.rt.time_out_runs(now(0)).await.unwrap(), 0);
    assert!(h.rt.next_run_deadline().await.unwrap().is_some());
    assert_eq!(h.rt.time_out_runs(now(3_600_000_001)).await.unwrap(), 1);
    assert_eq!(h.rt.time_out_runs(now(3_600_000_001)).await.unwrap(), 0);
    assert_eq!(h.rt.next_run_deadline().await.unwrap(), None);
    let r = h.rt.run(&run, None).await.unwrap();
    assert_eq!(r.state, warden_model::RunStatus::TimedOut);
    let a = h.action(&waiting.action_id).await;
    assert_eq!(
        (a.status, a.code.as_deref()),
        (Cancelled, Some("run_timed_out")),
        "{a:?}"
    );
    h.check(
        BOT,
        "crm.lookup_customer",
        lookup(),
        Some(&run),
        Expect::Refused("run_closed"),
    )
    .await;
}
