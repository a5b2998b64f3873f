//! `warden validate`: every example is valid; every broken pack reports each
//! of its problems at the exact file, line and column.

use crate::common::{cases, root, warden};

#[test]
fn every_example_pack_is_valid() {
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let out = warden(&["validate", &format!("examples/{name}"), "--deny-warnings"]);
        assert_eq!(out.code, 0, "examples/{name}:\n{}", out.snapshot());
        assert!(out.stdout.contains("is valid"), "{}", out.stdout);
        let out = warden(&["test", &format!("examples/{name}")]);
        assert_eq!(out.code, 0, "examples/{name}:\n{}", out.snapshot());
        seen += 1;
    }
    assert!(seen >= 2);
}

#[test]
fn valid_pack_summary() {
    let out = warden(&["validate", "examples/support-refunds"]);
    insta::assert_snapshot!(out.snapshot(), @r"
    exit: 0
    --- stdout
    pack `support-refunds` is valid: 3 agents, 7 tools, 11 policies, 1 workflow, 2 approver groups, 7 playbooks, 7 drills, 34 test cases (0 warnings); version [VERSION]
    --- stderr
    ");
}

/// Each case under tests/packs holds `expected.json`: the exit code and the
/// JSON report. `WARDEN_BLESS=1` rewrites them (review the diff!).
#[test]
fn broken_packs_report_every_problem_where_it_is() {
    let bless = std::env::var_os("WARDEN_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases() {
        let out = warden(&["validate", &case, "--error-format", "json"]);
        let actual = serde_json::json!({"exit": out.code, "report": out.json()});
        let path = root().join(&case).join("expected.json");
        if bless {
            std::fs::write(&path, format!("{actual:#}\n")).unwrap();
            continue;
        }
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{case}: no expected.json")),
        )
        .unwrap();
        if actual != expected {
            failures.push(format!("{case}:\nexpected {expected:#}\nactual {actual:#}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(cases().len() >= 10, "at least ten kinds of broken pack");
}

#[test]
fn human_errors_point_at_the_fault_with_a_caret() {
    let out = warden(&["validate", "crates/cli/tests/packs/cedar-unknown-argument"]);
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 1
    --- stdout
    --- stderr
    cedar_validation

      × for policy `refund-gate`, attribute `args.amount_cent` in context for Action::"stripe.refund"
      │ not found
       ╭─[policies/refunds.cedar:7:8]
     6 │ forbid (principal, action == Action::"stripe.refund", resource)
     7 │ when { context.args.amount_cent > 10000 }
       ·        ────────────────────────
     8 │ unless { context.approvals.contains("finance") };
       ╰────
      help: did you mean `amount_cents`?

    error: pack `crates/cli/tests/packs/cedar-unknown-argument` has 1 error
    "#);
}

#[test]
fn warnings_pass_unless_denied() {
    let case = "crates/cli/tests/packs/readiness-warnings";
    let out = warden(&["validate", case]);
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("critical-risk tool `stripe.payout` is not covered by any approval gate")
    );
    assert!(out.stderr.contains("workflow `payouts` has no owner"));
    let out = warden(&["validate", case, "--deny-warnings"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("has 0 errors and 4 warnings"),
        "{}",
        out.stderr
    );
}

#[test]
fn unreadable_packs_are_a_usage_error() {
    let out = warden(&["validate", "no/such/pack"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: pack directory `no/such/pack` does not exist or is not a directory\n"
    );
    let out = warden(&["validate", "crates"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: `crates` is not a governance pack: it has no `warden.toml`\n"
    );
}
