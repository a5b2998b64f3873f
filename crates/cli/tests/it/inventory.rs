//! `warden inventory`: the week-1 workflow inventory from the pack.

use serde_json::json;

use crate::common::warden;
use crate::oversight::pack;

#[test]
fn the_inventory_lists_steps_gates_owners_and_gaps() {
    let out = warden(&["inventory", "--pack", "examples/support-refunds", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let w = &v["workflows"][0];
    assert_eq!(w["id"], "refund-request");
    assert_eq!(w["owner"], "sam");
    assert_eq!(w["risk"], "high");
    assert_eq!(w["on_call_routes"], json!(["support-pagerduty"]));
    let refund = &w["steps"][1];
    assert_eq!(refund["tool"], "stripe.refund");
    assert_eq!(
        refund["gated_by"],
        json!([
            "finance (refund-over-100-needs-finance)",
            "finance:2 (refund-over-1000-needs-two-finance)"
        ])
    );
    // The customer email is a medium write nobody approves: a gap.
    assert_eq!(
        w["steps"][2]["gaps"],
        json!(["medium write step without an approval gate"])
    );
    assert_eq!(v["gaps"], 1);
    let delete = v["tools_outside_workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool"] == "db.delete_rows")
        .unwrap();
    assert_eq!(
        delete["gated_by"],
        json!(["denied to every agent"]),
        "{delete}"
    );

    // CSV: one row per step (fields with commas or quotes are quoted).
    let csv = warden(&["inventory", "--pack", "examples/support-refunds", "--csv"]);
    assert_eq!(csv.code, 0);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "workflow,owner,business_impact,step,tool,system,access,risk,gated_by,gaps"
    );
    assert_eq!(lines.len(), 1 + 3 + 4, "{}", csv.stdout);
    assert!(
        lines[2].starts_with(
            "refund-request,sam,Customers wait for refunds; wrong refunds lose money,stripe.refund,"
        ),
        "{}",
        lines[2]
    );
    let md = warden(&["inventory", "--pack", "examples/it-ops", "--markdown"]);
    assert!(
        md.stdout.contains("## `alert-remediation` — high risk"),
        "{}",
        md.stdout
    );
}

#[test]
fn a_workflow_without_owner_is_a_gap_and_a_bad_pack_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pack(
        tmp.path(),
        "support-refunds",
        &[(
            "id = \"refund-request\"\nowner = \"sam\"\n",
            "id = \"refund-request\"\n",
        )],
    );
    let out = warden(&["inventory", "--pack", p.to_str().unwrap(), "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert_eq!(
        v["workflows"][0]["gaps"],
        json!(["no owner: nobody is accountable for it"])
    );
    let text = warden(&["inventory", "--pack", p.to_str().unwrap()]);
    assert!(
        text.stdout.contains("owner NONE") && text.stdout.contains("gap: no owner"),
        "{}",
        text.stdout
    );
    let missing = warden(&["inventory", "--pack", "/nonexistent/pack"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    let both = warden(&["inventory", "--pack", "examples/it-ops", "--csv", "--json"]);
    assert_eq!(both.code, 2, "{}", both.stderr);
}
