//! Deciding recorded requests whose sensitive fields were redacted
//! (`Engine::decide_recorded`, what `warden replay` uses): never a guess.

use serde_json::{Value, json};
use warden_model::RequestContext;
use warden_policy::{Decision, Replayed, Request};

use crate::common::{TestPack, pack};

const TOKEN: &str = "hmac-sha256:00ff";

fn recorded(p: &TestPack, args: Value, redacted: &[&str]) -> Replayed {
    let ctx = RequestContext::default();
    let redacted: Vec<String> = redacted.iter().map(|s| (*s).to_owned()).collect();
    p.engine.decide_recorded(
        &Request {
            agent: "bot",
            tool: "pay",
            args: &args,
            approvals: &[],
            context: &ctx,
        },
        &redacted,
    )
}

fn possible(r: &Replayed) -> Vec<String> {
    match r {
        Replayed::Decided(d) => vec![label(d)],
        Replayed::Indeterminate { possible, .. } => possible.iter().map(label).collect(),
    }
}

fn label(d: &Decision) -> String {
    format!(
        "{:?}{:?}",
        d.outcome,
        d.approval.as_ref().map(|a| a.groups.clone())
    )
}

const GATED: &str = r#"
@id("pay-ok") permit (principal, action == Action::"pay", resource);
@id("big-needs-fin") @approval("fin")
forbid (principal, action == Action::"pay", resource)
when { context.args.amount > 100 } unless { context.approvals.contains("fin") };
"#;

#[test]
fn a_field_no_policy_reads_replays_exactly() {
    let p = pack(GATED);
    for amount in [5, 100, 101, 5000] {
        let real = p.decide("bot", "pay", json!({ "amount": amount, "note": "x" }), &[]);
        let r = recorded(&p, json!({ "amount": amount, "note": TOKEN }), &["note"]);
        let Replayed::Decided(d) = r else {
            panic!("{amount}: {r:?}")
        };
        assert!(d.same_outcome(&real), "{amount}");
    }
}

#[test]
fn a_gate_on_a_redacted_amount_is_indeterminate_with_both_outcomes() {
    let p = pack(GATED);
    let r = recorded(&p, json!({ "amount": TOKEN }), &["amount"]);
    let Replayed::Indeterminate { fields, .. } = &r else {
        panic!("{r:?}")
    };
    assert_eq!(fields, &["amount".to_owned()]);
    let mut got = possible(&r);
    got.sort();
    assert_eq!(
        got,
        vec!["AllowNone", "ApprovalRequiredSome([(\"fin\", 1)])"]
    );
}

#[test]
fn an_unconditional_forbid_decides_whatever_the_redacted_value() {
    let p = pack(&format!(
        "{GATED}\n@id(\"no-bot\") forbid (principal == Agent::\"bot\", action == Action::\"pay\", resource);"
    ));
    let r = recorded(
        &p,
        json!({ "amount": TOKEN, "note": TOKEN }),
        &["amount", "note"],
    );
    let Replayed::Decided(d) = r else {
        panic!("{r:?}")
    };
    assert_eq!(d.outcome, warden_model::Outcome::Deny);
}

#[test]
fn the_real_decision_is_always_among_the_possible_ones() {
    // Conditions on both fields, and a permit that reads approvals in a
    // way that is not a gate (so the second pass is evaluated too).
    let p = pack(
        r#"
@id("pay-small") permit (principal, action == Action::"pay", resource)
when { context.args.amount < 1000 || context.approvals.contains("sec") };
@id("big-needs-fin") @approval("fin")
forbid (principal, action == Action::"pay", resource)
when { context.args.amount > 100 } unless { context.approvals.contains("fin") };
@id("flagged") forbid (principal, action == Action::"pay", resource)
when { context has args && context.args has note && context.args.note == "flagged" };
"#,
    );
    for amount in [0, 100, 101, 999, 1000, 50_000] {
        for note in ["ok", "flagged"] {
            let real = p.decide("bot", "pay", json!({ "amount": amount, "note": note }), &[]);
            for redacted in [&["amount"][..], &["note"], &["amount", "note"]] {
                let mut args = json!({ "amount": amount, "note": note });
                for f in redacted {
                    args[*f] = json!(TOKEN);
                }
                let r = recorded(&p, args, redacted);
                assert!(
                    possible(&r).contains(&label(&real)),
                    "{amount} {note} {redacted:?}: real {} not in {:?}",
                    label(&real),
                    possible(&r)
                );
            }
        }
    }
}

#[test]
fn other_argument_errors_still_deny() {
    let p = pack(GATED);
    let r = recorded(&p, json!({ "amount": -5, "note": TOKEN }), &["note"]);
    let Replayed::Decided(d) = r else {
        panic!("{r:?}")
    };
    assert_eq!(d.code, Some(warden_model::DenyCode::InvalidArguments));
}
