//! `warden decide`: prints decisions; exit 0 for any outcome, 2 for an
//! unusable request.

use crate::common::warden;

const PACK: &str = "examples/support-refunds";

fn refund(amount: u64) -> String {
    format!(
        r#"{{"order_id":"ord_1","customer_id":"cus_1","amount_cents":{amount},"reason":"damaged"}}"#
    )
}

#[test]
fn approval_required_in_human_form() {
    let out = warden(&[
        "decide",
        PACK,
        "--agent",
        "support-bot",
        "--tool",
        "stripe.refund",
        "--args",
        &refund(25_000),
    ]);
    insta::assert_snapshot!(out.snapshot(), @r"
    exit: 0
    --- stdout
    decision  approval_required
    reason    needs approval by 1 of `finance` (`refund-over-100-needs-finance`)
    risk      high
    approval  finance (quorum 1)
    policies  refund-over-100-needs-finance forbid [gate: finance x1]  policies/refunds.cedar:14:1
    version   sha256:[VERSION]
    --- stderr
    ");
}

#[test]
fn json_output_has_the_documented_keys() {
    let out = warden(&[
        "decide",
        PACK,
        "--agent",
        "billing-bot",
        "--tool",
        "stripe.refund",
        "--args",
        &refund(150_000),
        "--json",
    ]);
    assert_eq!(out.code, 0);
    let v = out.json();
    assert_eq!(v["decision"], "approval_required");
    assert_eq!(v["code"], serde_json::Value::Null);
    assert_eq!(v["approval"]["groups"], serde_json::json!(["finance"]));
    assert_eq!(v["approval"]["quorum"]["finance"], 2);
    assert_eq!(v["risk"], "high");
    let ids: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "refund-over-100-needs-finance",
            "refund-over-1000-needs-two-finance"
        ]
    );
    assert!(v["policy_version"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn approvals_and_context_flags() {
    let out = warden(&[
        "decide",
        PACK,
        "--agent",
        "support-bot",
        "--tool",
        "stripe.refund",
        "--args",
        &refund(25_000),
        "--approvals",
        "finance",
        "--context",
        r#"{"workflow":"refund-request","trigger":{"source":"ticket","reference":"ZD-1"}}"#,
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert_eq!(out.json()["decision"], "allow");
}

#[test]
fn denials_exit_zero() {
    for (agent, tool, args, code) in [
        ("intern-bot", "stripe.refund", refund(100), "forbidden"),
        (
            "support-bot",
            "db.delete_rows",
            r#"{"table":"t","where":"1=1"}"#.to_owned(),
            "forbidden",
        ),
        (
            "support-bot",
            "stripe.refund",
            refund(0),
            "invalid_arguments",
        ),
        (
            "rogue-bot",
            "crm.lookup_customer",
            r#"{"customer_id":"cus_1"}"#.to_owned(),
            "unknown_agent",
        ),
        (
            "support-bot",
            "stripe.charge",
            "{}".to_owned(),
            "unknown_tool",
        ),
    ] {
        let out = warden(&[
            "decide", PACK, "--agent", agent, "--tool", tool, "--args", &args, "--json",
        ]);
        assert_eq!(out.code, 0, "{}", out.snapshot());
        let v = out.json();
        assert_eq!(
            (v["decision"].as_str(), v["code"].as_str()),
            (Some("deny"), Some(code)),
            "{agent} {tool}"
        );
    }
}

#[test]
fn explain_says_what_would_pass() {
    let out = warden(&[
        "decide",
        PACK,
        "--agent",
        "support-bot",
        "--tool",
        "stripe.refund",
        "--args",
        &refund(150_000),
        "--explain",
    ]);
    insta::assert_snapshot!(out.snapshot(), @r"
    exit: 0
    --- stdout
    decision  approval_required
    reason    needs approval by 2 of `finance` (`refund-over-100-needs-finance`, `refund-over-1000-needs-two-finance`)
    risk      high
    approval  finance (quorum 2)
    policies  refund-over-100-needs-finance forbid [gate: finance x1]  policies/refunds.cedar:14:1
              refund-over-1000-needs-two-finance forbid [gate: finance x2]  policies/refunds.cedar:26:1
    version   sha256:[VERSION]

    policies that can apply to this tool:
      -            intern-read-only forbid  policies/access.cedar:31:1
                     intern-bot is in training and may only read
      grants       refund-agents permit  policies/refunds.cedar:4:1
                     support-bot and billing-bot refund orders
      determining  refund-over-100-needs-finance forbid [gate: finance x1]  policies/refunds.cedar:14:1
                     refunds above $100 need a finance approval
      determining  refund-over-1000-needs-two-finance forbid [gate: finance x2]  policies/refunds.cedar:26:1
                     refunds above $1,000 need two finance approvals
      -            refund-cap-5000 forbid  policies/refunds.cedar:39:1
                     refunds above $5,000 go through the finance team, never an agent
      -            agent-refunds-daily-cap forbid  policies/refunds.cedar:53:1
                     agents refund one customer at most $2,000 a day on their own; ask finance for more

    counters (context.usage = before + this request):
      agent_refunds_per_customer_day 150000 = 0 + 150000

    to pass:
      - get 2 approval(s) from group `finance` (who may approve: carol, dave, erin); then decide again with `--approvals finance`
    --- stderr
    ");
}

#[test]
fn explain_json_lists_considered_policies() {
    let out = warden(&[
        "decide",
        PACK,
        "--agent",
        "intern-bot",
        "--tool",
        "crm.update_notes",
        "--args",
        r#"{"customer_id":"cus_1","note":"x"}"#,
        "--explain",
        "--json",
    ]);
    let v = out.json();
    assert_eq!(v["code"], "forbidden");
    assert_eq!(v["granting_permits"], serde_json::json!([]));
    assert!(
        v["next_steps"][0]
            .as_str()
            .unwrap()
            .contains("cannot be lifted by approvals")
    );
    assert!(v["considered"].as_array().unwrap().len() >= 2);
}

#[test]
fn unusable_requests_exit_two_with_a_clear_message() {
    let bad_json = warden(&[
        "decide",
        PACK,
        "--agent",
        "support-bot",
        "--tool",
        "stripe.refund",
        "--args",
        "{amount: 5",
    ]);
    assert_eq!(bad_json.code, 2);
    assert!(
        bad_json
            .stderr
            .starts_with("error: `--args` is not valid JSON: `{amount: 5`"),
        "{}",
        bad_json.stderr
    );

    let bad_group = warden(&[
        "decide",
        PACK,
        "--agent",
        "support-bot",
        "--tool",
        "stripe.refund",
        "--args",
        &refund(1),
        "--approvals",
        "finanse",
    ]);
    assert_eq!(bad_group.code, 2);
    assert_eq!(
        bad_group.stderr,
        "error: unknown approver group `finanse` in approvals\n"
    );

    let bad_context = warden(&[
        "decide",
        PACK,
        "--agent",
        "support-bot",
        "--tool",
        "stripe.refund",
        "--args",
        &refund(1),
        "--context",
        r#"{"workflw":"x"}"#,
    ]);
    assert_eq!(bad_context.code, 2);
    assert!(
        bad_context.stderr.contains("unknown field `workflw`"),
        "{}",
        bad_context.stderr
    );

    let missing = warden(&["decide", PACK, "--tool", "stripe.refund"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("--agent <AGENT>"),
        "{}",
        missing.stderr
    );
}

#[test]
fn an_invalid_pack_cannot_decide() {
    let out = warden(&[
        "decide",
        "crates/cli/tests/packs/cedar-syntax",
        "--agent",
        "bot",
        "--tool",
        "stripe.refund",
        "--args",
        r#"{"amount_cents":1}"#,
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("has 1 error"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}
