//! JSON `number` arguments reach policies as Cedar decimals, compared
//! exactly; a number a decimal cannot hold is `invalid_arguments`.

use serde_json::json;
use warden_model::{DenyCode, Outcome};

use crate::common::{MANIFEST, pack_with};

const POLICIES: &str = r#"
@id("pay-ok")
permit (principal, action == Action::"pay", resource);

@id("over-1000")
@approval("fin")
forbid (principal, action == Action::"pay", resource)
when { context.args.amount.greaterThan(decimal("1000.00")) }
unless { context.approvals.contains("fin") };
"#;

fn manifest() -> String {
    let m = MANIFEST.replace(
        r#"amount = { type = "integer", minimum = 0 }"#,
        r#"amount = { type = "number", minimum = 0 }"#,
    );
    assert_ne!(m, MANIFEST, "the test manifest changed");
    m
}

#[test]
fn a_decimal_amount_is_compared_exactly_at_the_boundary() {
    let p = pack_with(&manifest(), POLICIES);
    for (amount, outcome) in [
        (json!(12.5), Outcome::Allow),
        (json!(1000), Outcome::Allow),
        (json!(1000.0), Outcome::Allow),
        (json!(1000.00), Outcome::Allow),
        (json!(1000.0001), Outcome::ApprovalRequired),
        (json!(1000.01), Outcome::ApprovalRequired),
        (json!(999.9999), Outcome::Allow),
        (json!(0.1), Outcome::Allow),
        (json!(92233720368.4775), Outcome::ApprovalRequired),
    ] {
        let d = p.decide("bot", "pay", json!({ "amount": amount }), &[]);
        assert_eq!(d.outcome, outcome, "amount {amount}: {d:?}");
    }
    // An approval lifts the gate as for integers.
    let d = p.decide("bot", "pay", json!({"amount": 1000.5}), &["fin"]);
    assert_eq!(d.outcome, Outcome::Allow);
}

#[test]
fn numbers_a_decimal_cannot_hold_are_invalid_arguments_never_rounded() {
    let p = pack_with(&manifest(), POLICIES);
    for amount in [
        json!(1000.00001), // a fifth digit after the point
        json!(0.123456),
        json!(1e-7),
        json!(1234567890123.4567),     // 17 significant digits
        json!(1e300),                  // beyond the decimal's range
        json!(9223372036854775807u64), // an integer beyond it
        json!(18446744073709551615u64),
    ] {
        let d = p.decide("bot", "pay", json!({ "amount": amount }), &[]);
        assert_eq!(
            (d.outcome, d.code),
            (Outcome::Deny, Some(DenyCode::InvalidArguments)),
            "amount {amount}: {d:?}"
        );
        let why = d.errors.join(" ");
        assert!(why.contains("cannot be held exactly as a decimal"), "{why}");
    }
}

#[test]
fn a_policy_comparing_a_decimal_with_an_integer_is_a_validation_error() {
    let bad = r#"
@id("pay-ok")
permit (principal, action == Action::"pay", resource)
when { context.args.amount > 1000 };
"#;
    let dir = crate::common::write(&manifest(), bad);
    match warden_policy::Engine::load(dir.path()) {
        Err(warden_policy::EngineError::Invalid(d)) => {
            let all: Vec<String> = d.all().iter().map(|d| d.message().to_string()).collect();
            assert!(all.iter().any(|m| m.contains("decimal")), "{all:?}");
        }
        Ok(_) => panic!("a decimal compared with `>` must not validate"),
        Err(e) => panic!("{e}"),
    }
}
