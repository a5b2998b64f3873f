//! `warden test`: runs the pack's cases, reports failures, ends with the
//! `N passed, M failed` line.

use crate::common::warden;

#[test]
fn example_tests_pass() {
    let out = warden(&["test", "examples/support-refunds"]);
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert!(
        out.stdout.ends_with("34 passed, 0 failed\n"),
        "{}",
        out.stdout
    );
    let out = warden(&["test", "examples/it-ops"]);
    assert!(
        out.stdout.ends_with("16 passed, 0 failed\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn failures_show_expected_and_actual() {
    let dir = tempfile::tempdir().unwrap();
    copy(
        &crate::common::root().join("examples/support-refunds"),
        dir.path(),
    );
    std::fs::remove_dir_all(dir.path().join("tests")).unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/wrong.toml"),
        r#"[[case]]
name = "a big refund is wrongly expected to pass"
agent = "support-bot"
tool = "stripe.refund"
args = { order_id = "ord_1", customer_id = "cus_1", amount_cents = 900000, reason = "damaged" }
expect = "allow"
policies = ["refund-agents"]

[[case]]
name = "lookup passes"
agent = "intern-bot"
tool = "crm.lookup_customer"
args = { customer_id = "cus_1" }
expect = "allow"

[[case]]
name = "wrong group expectation"
agent = "billing-bot"
tool = "stripe.refund"
args = { order_id = "ord_1", customer_id = "cus_1", amount_cents = 20000, reason = "damaged" }
expect = "approval_required"
groups = ["support-leads"]
"#,
    )
    .unwrap();
    let out = warden(&["test", dir.path().to_str().unwrap()]);
    let text = out
        .snapshot()
        .replace(dir.path().to_str().unwrap(), "[PACK]");
    insta::assert_snapshot!(text, @r#"
    exit: 1
    --- stdout
    FAIL  a big refund is wrongly expected to pass  (tests/wrong.toml:2:8)
          decision: expected allow, got deny (forbidden by `refund-cap-5000`)
          policies: expected {"refund-agents"}, got {"refund-cap-5000"}
    ok    lookup passes
    FAIL  wrong group expectation  (tests/wrong.toml:17:8)
          approval groups: expected {"support-leads"}, got {"finance"}
    1 passed, 2 failed
    --- stderr
    "#);
}

fn copy(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn unreadable_cases_count_as_failures() {
    let out = warden(&["test", "crates/cli/tests/packs/bad-test-case"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.ends_with("0 passed, 2 failed\n"),
        "{}",
        out.snapshot()
    );
    assert!(
        out.stderr.contains("tests/refunds.toml:6:10"),
        "{}",
        out.stderr
    );
}
