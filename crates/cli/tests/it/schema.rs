//! `warden schema`: the generated Cedar schema.

use crate::common::warden;

#[test]
fn prints_entity_types_and_typed_actions() {
    let out = warden(&["schema", "examples/support-refunds"]);
    assert_eq!(out.code, 0, "{}", out.snapshot());
    for needle in [
        "entity Agent in [Team]",
        "entity System",
        "action \"stripe.refund\" in [Action::\"access:write\", Action::\"risk:high\", Action::\"system:stripe\"]",
        "amount_cents: __cedar::Long",
        "approvals: Set<__cedar::String>",
        "workflow?: __cedar::String",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle:?} in:\n{}",
            out.stdout
        );
    }
    let json = warden(&["schema", "examples/support-refunds", "--json"]).json();
    let ctx = &json[""]["actions"]["stripe.refund"]["appliesTo"]["context"]["attributes"];
    assert_eq!(ctx["args"]["attributes"]["amount_cents"]["type"], "Long");
}
