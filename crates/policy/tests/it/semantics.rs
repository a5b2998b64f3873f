//! Decision semantics of DESIGN.md, one rule per test.

use serde_json::json;
use warden_model::{DenyCode, Outcome};

use crate::common::{ids, pack};

const PERMIT_PAY: &str = r#"
@id("pay-ok")
permit (principal, action == Action::"pay", resource);
"#;

const FIN_GATE: &str = r#"
@id("fin-gate")
@approval("fin")
forbid (principal, action == Action::"pay", resource)
when { context.args.amount > 100 }
unless { context.approvals.contains("fin") };
"#;

#[test]
fn default_deny_is_no_grant() {
    let p = pack("");
    let d = p.decide("bot", "pay", json!({"amount": 1}), &[]);
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.code, Some(DenyCode::NoGrant));
    assert!(d.policies.is_empty());
}

#[test]
fn permit_allows_and_names_itself() {
    let p = pack(PERMIT_PAY);
    let d = p.decide("bot", "pay", json!({"amount": 1}), &[]);
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.code, None);
    assert_eq!(ids(&d), ["pay-ok"]);
    assert_eq!(d.risk, Some(warden_model::Risk::High));
    assert_eq!(d.policy_version, p.engine.policy_version().into());
    assert!(d.policy_version.starts_with("sha256:"));
}

#[test]
fn forbid_beats_permit() {
    let p = pack(&format!(
        "{PERMIT_PAY}\n@id(\"no-bot\")\n@reason(\"bot is suspended\")\nforbid (principal == Agent::\"bot\", action, resource);"
    ));
    let d = p.decide("bot", "pay", json!({"amount": 1}), &[]);
    assert_eq!(
        (d.outcome, d.code),
        (Outcome::Deny, Some(DenyCode::Forbidden))
    );
    assert_eq!(ids(&d), ["no-bot"]);
    assert_eq!(d.policies[0].reason(), Some("bot is suspended"));
    // The forbid names another agent's id: other-bot is still allowed.
    let d = p.decide("other-bot", "pay", json!({"amount": 1}), &[]);
    assert_eq!(d.outcome, Outcome::Allow);
}

#[test]
fn gate_asks_for_approval_with_the_groups_default_quorum() {
    let p = pack(&format!("{PERMIT_PAY}{FIN_GATE}"));
    let d = p.decide("bot", "pay", json!({"amount": 500}), &[]);
    assert_eq!(d.outcome, Outcome::ApprovalRequired);
    assert_eq!(d.code, None);
    assert_eq!(ids(&d), ["fin-gate"]);
    let a = d.approval.expect("approval requirement");
    assert_eq!(a.groups, vec![("fin".to_owned(), 1)]);
    // Below the gate's threshold nothing is needed.
    assert_eq!(
        p.decide("bot", "pay", json!({"amount": 100}), &[]).outcome,
        Outcome::Allow
    );
}

#[test]
fn approval_lifts_the_gate() {
    let p = pack(&format!("{PERMIT_PAY}{FIN_GATE}"));
    let d = p.decide("bot", "pay", json!({"amount": 500}), &["fin"]);
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(ids(&d), ["pay-ok"]);
}

#[test]
fn quorum_annotation_overrides_and_the_highest_wins() {
    let p = pack(&format!(
        "{PERMIT_PAY}{FIN_GATE}\n@id(\"fin-gate-big\")\n@approval(\"fin\")\n@quorum(\"3\")\n\
         forbid (principal, action == Action::\"pay\", resource)\nwhen {{ context.args.amount > 1000 }}\n\
         unless {{ context.approvals.contains(\"fin\") }};\n\
         @id(\"sec-gate\")\n@approval(\"sec\")\nforbid (principal, action == Action::\"pay\", resource)\n\
         when {{ context.args.amount > 5000 }}\nunless {{ context.approvals.contains(\"sec\") }};"
    ));
    let d = p.decide("bot", "pay", json!({"amount": 2000}), &[]);
    assert_eq!(
        d.approval.expect("needs approval").groups,
        vec![("fin".to_owned(), 3)]
    );
    let d = p.decide("bot", "pay", json!({"amount": 9000}), &[]);
    let groups = d.approval.expect("needs approval").groups;
    assert_eq!(groups, vec![("fin".to_owned(), 3), ("sec".to_owned(), 2)]);
    // With fin approved, only sec is still needed.
    let d = p.decide("bot", "pay", json!({"amount": 9000}), &["fin"]);
    assert_eq!(ids(&d), ["sec-gate"]);
    assert_eq!(
        d.approval.expect("needs approval").groups,
        vec![("sec".to_owned(), 2)]
    );
    assert_eq!(
        p.decide("bot", "pay", json!({"amount": 9000}), &["fin", "sec"])
            .outcome,
        Outcome::Allow
    );
}

#[test]
fn approvals_never_grant_what_no_permit_grants() {
    // A gate alone: lifting it leaves no permit.
    let p = pack(FIN_GATE);
    for approvals in [&[][..], &["fin"][..], &["fin", "sec"][..]] {
        let d = p.decide("bot", "pay", json!({"amount": 500}), approvals);
        assert_eq!(
            (d.outcome, d.code),
            (Outcome::Deny, Some(DenyCode::NoGrant)),
            "{approvals:?}"
        );
    }
}

#[test]
fn a_plain_forbid_next_to_a_gate_is_forbidden_not_approval() {
    let p = pack(&format!(
        "{PERMIT_PAY}{FIN_GATE}\n@id(\"cap\")\nforbid (principal, action == Action::\"pay\", resource) when {{ context.args.amount > 400 }};"
    ));
    let d = p.decide("bot", "pay", json!({"amount": 500}), &[]);
    assert_eq!(
        (d.outcome, d.code),
        (Outcome::Deny, Some(DenyCode::Forbidden))
    );
    assert_eq!(
        ids(&d),
        ["cap"],
        "only the forbid that approvals cannot lift is named"
    );
    let d = p.decide("bot", "pay", json!({"amount": 500}), &["fin"]);
    assert_eq!(d.code, Some(DenyCode::Forbidden));
}

#[test]
fn evaluation_errors_fail_closed() {
    // 2^62 * amount overflows for amount >= 2: Cedar reports an error and
    // skips the forbid; Warden must deny, not allow through the permit.
    let p = pack(&format!(
        "{PERMIT_PAY}\n@id(\"overflow\")\nforbid (principal, action == Action::\"pay\", resource) when {{ context.args.amount * 4611686018427387904 > 0 }};"
    ));
    let d = p.decide("bot", "pay", json!({"amount": 2}), &[]);
    assert_eq!(
        (d.outcome, d.code),
        (Outcome::Deny, Some(DenyCode::EvaluationError))
    );
    assert_eq!(ids(&d), ["overflow"]);
    assert!(d.errors[0].contains("overflow"), "{:?}", d.errors);
    // amount 0 does not overflow: the forbid is simply false.
    assert_eq!(
        p.decide("bot", "pay", json!({"amount": 0}), &[]).outcome,
        Outcome::Allow
    );
}

#[test]
fn arguments_are_checked_before_policy() {
    let p = pack(PERMIT_PAY);
    for (args, needle) in [
        (json!({}), "amount"),
        (json!({"amount": -1}), "minimum"),
        (json!({"amount": "5"}), "integer"),
        (json!({"amount": 5, "extra": true}), "extra"),
        (json!([1, 2]), "object"),
    ] {
        let d = p.decide("bot", "pay", args.clone(), &[]);
        assert_eq!(d.code, Some(DenyCode::InvalidArguments), "{args}");
        assert!(d.policies.is_empty());
        let all = d.errors.join(" | ");
        assert!(all.contains(needle), "{args}: {all}");
    }
    // A large but valid integer outside i64 is reported, not a panic.
    let d = p.decide(
        "bot",
        "pay",
        json!({"amount": 18_446_744_073_709_551_615u64}),
        &[],
    );
    assert_eq!(d.code, Some(DenyCode::InvalidArguments));
}

#[test]
fn unknown_agents_and_tools_are_denied() {
    let p = pack(PERMIT_PAY);
    let d = p.decide("ghost", "pay", json!({"amount": 1}), &[]);
    assert_eq!(
        (d.outcome, d.code, d.risk),
        (Outcome::Deny, Some(DenyCode::UnknownAgent), None)
    );
    let d = p.decide("bot", "steal", json!({}), &[]);
    assert_eq!(d.code, Some(DenyCode::UnknownTool));
}

#[test]
fn action_groups_and_context_are_visible_to_policies() {
    let p = pack(
        r#"
@id("all")
permit (principal, action, resource);

@id("no-high-risk-from-chat")
forbid (principal, action in Action::"risk:high", resource)
when { context has trigger && context.trigger.source == "chat" };

@id("notes-need-workflow")
forbid (principal, action == Action::"pay", resource)
when { context.args has note && !(context has workflow) };
"#,
    );
    let engine = &p.engine;
    let args = json!({"amount": 1});
    let ctx: warden_model::RequestContext =
        serde_json::from_value(json!({"trigger": {"source": "chat"}})).unwrap();
    let req = warden_policy::Request {
        agent: "bot",
        tool: "pay",
        args: &args,
        approvals: &[],
        context: &ctx,
    };
    assert_eq!(
        crate::common::ids(&engine.decide(&req)),
        ["no-high-risk-from-chat"]
    );
    // The read tool is low risk: the group forbid does not apply.
    let none = json!({});
    let req = warden_policy::Request {
        tool: "read",
        args: &none,
        ..req
    };
    assert_eq!(engine.decide(&req).outcome, Outcome::Allow);
    let d = p.decide("bot", "pay", json!({"amount": 1, "note": "x"}), &[]);
    assert_eq!(ids(&d), ["notes-need-workflow"]);
}

#[test]
fn a_gate_that_is_not_canonical_still_takes_the_second_pass() {
    // The unless clause has an extra condition, so lifting `fin` does not by
    // itself lift the gate: only the real second pass can tell.
    let p = pack(&format!(
        "{PERMIT_PAY}\n@id(\"odd-gate\")\n@approval(\"fin\")\nforbid (principal, action == Action::\"pay\", resource)\n\
         when {{ context.args.amount > 100 }}\nunless {{ context.approvals.contains(\"fin\") && context.args.amount < 1000 }};"
    ));
    let d = p.decide("bot", "pay", json!({"amount": 500}), &[]);
    assert_eq!(d.outcome, Outcome::ApprovalRequired);
    let d = p.decide("bot", "pay", json!({"amount": 5000}), &[]);
    assert_eq!(
        (d.outcome, d.code),
        (Outcome::Deny, Some(DenyCode::Forbidden))
    );
    assert_eq!(ids(&d), ["odd-gate"]);
}

#[test]
fn decision_json_has_the_documented_keys() {
    let p = pack(&format!("{PERMIT_PAY}{FIN_GATE}"));
    let d = p.decide("bot", "pay", json!({"amount": 500}), &[]);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["decision"], "approval_required");
    assert_eq!(v["code"], serde_json::Value::Null);
    assert_eq!(
        v["approval"],
        json!({"groups": ["fin"], "quorum": {"fin": 1}})
    );
    assert_eq!(v["risk"], "high");
    assert_eq!(v["policies"][0]["id"], "fin-gate");
    assert_eq!(v["policies"][0]["effect"], "forbid");
    assert_eq!(v["policies"][0]["annotations"]["approval"], "fin");
    assert_eq!(
        v["policies"][0]["gate"],
        json!({"group": "fin", "quorum": 1})
    );
    assert_eq!(v["policies"][0]["location"], "policies/p.cedar:5:1");
    assert!(v["policy_version"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["message"], "needs approval by 1 of `fin` (`fin-gate`)");
}

#[test]
fn explanation_says_who_may_approve_without_the_agents_owner() {
    let p = pack(&format!("{PERMIT_PAY}{FIN_GATE}"));
    let args = json!({"amount": 500});
    let ctx = Default::default();
    let ex = p.engine.explain(&warden_policy::Request {
        agent: "bot",
        tool: "pay",
        args: &args,
        approvals: &[],
        context: &ctx,
    });
    assert_eq!(
        ex.granting_permits
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        ["pay-ok"]
    );
    assert_eq!(ex.considered.len(), 2);
    // bot's owner is ann: separation of duties leaves bob and cy.
    assert_eq!(
        ex.next_steps,
        [
            "get 1 approval(s) from group `fin` (who may approve: bob, cy); then decide again with `--approvals fin`"
        ]
    );
}
