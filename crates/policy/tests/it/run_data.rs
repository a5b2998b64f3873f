//! Step data and facts in the generated schema and the context: on the
//! hr-payroll example, `context.run.steps.<step>.<field>` and
//! `context.facts.<name>` are typed (a typo is a validation error with
//! file:line), data of the wrong type denies (fail closed), and bad
//! `expose`, `[[tools.facts]]` and `correlate` entries are refused.

use serde_json::{Value, json};
use warden_model::{DenyCode, Outcome, RequestContext};
use warden_policy::{Engine, Request};

use crate::common::{examples, load_or_errors};

/// The hr-payroll example in a temporary directory, with `manifest` and
/// `policies` edits applied (each `(from, to)` must change something).
fn payroll_pack(
    manifest: &[(&str, &str)],
    policies: &[(&str, &str)],
) -> (tempfile::TempDir, Result<Engine, Vec<String>>) {
    let tmp = tempfile::tempdir().unwrap();
    let src = examples().join("hr-payroll");
    std::fs::create_dir_all(tmp.path().join("policies")).unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    std::fs::copy(
        src.join("data/employees.json"),
        tmp.path().join("data/employees.json"),
    )
    .unwrap();
    let edit = |text: String, edits: &[(&str, &str)]| {
        edits.iter().fold(text, |t, (from, to)| {
            assert!(t.contains(from), "`{from}` is not in the example");
            t.replacen(from, to, 1)
        })
    };
    let m = std::fs::read_to_string(src.join("warden.toml")).unwrap();
    std::fs::write(tmp.path().join("warden.toml"), edit(m, manifest)).unwrap();
    let p = std::fs::read_to_string(src.join("policies/payroll.cedar")).unwrap();
    std::fs::write(tmp.path().join("policies/payroll.cedar"), edit(p, policies)).unwrap();
    let result = load_or_errors(tmp.path());
    (tmp, result)
}

fn decide(
    e: &Engine,
    tool: &str,
    args: Value,
    context: Value,
) -> (Outcome, Option<DenyCode>, String) {
    let context: RequestContext = serde_json::from_value(context).unwrap();
    let agent = if tool == "payroll.run" {
        "payroll-bot"
    } else {
        "hr-bot"
    };
    let d = e.decide(&Request {
        agent,
        tool,
        args: &args,
        approvals: &["payroll-signoff".to_owned(), "people-leads".to_owned()],
        context: &context,
    });
    (d.outcome, d.code, d.message())
}

#[test]
fn step_data_and_facts_decide_as_written() {
    let (_tmp, e) = payroll_pack(&[], &[]);
    let e = e.unwrap();
    let run = |period: &str, status: &str| {
        json!({"workflow": "monthly-payroll", "run": {"id": "run_1", "steps": {
            "validate_timesheets": {"period": period, "result": {"status": status}}}}})
    };
    let pay = json!({"period": "2026-11", "pay_group": "monthly-salaried"});
    assert_eq!(
        decide(&e, "payroll.run", pay.clone(), run("2026-11", "ok")).0,
        Outcome::Allow
    );
    assert_eq!(
        decide(&e, "payroll.run", pay.clone(), run("2026-10", "ok")).0,
        Outcome::Deny
    );
    assert_eq!(
        decide(&e, "payroll.run", pay.clone(), run("2026-11", "errors")).0,
        Outcome::Deny
    );
    // Data of a step the tool's schema does not know is ignored.
    let mut other = run("2026-11", "ok");
    other["run"]["steps"]["unrelated"] = json!({"x": 1});
    assert_eq!(
        decide(&e, "payroll.run", pay.clone(), other).0,
        Outcome::Allow
    );
    // Data of the wrong type is not guessed at: deny, evaluation error.
    let (o, code, why) = decide(
        &e,
        "payroll.run",
        pay,
        json!({"run": {"id": "r", "steps": {"validate_timesheets": {"period": 202611, "result": {"status": "ok"}}}}}),
    );
    assert_eq!(
        (o, code),
        (Outcome::Deny, Some(DenyCode::EvaluationError)),
        "{why}"
    );
    assert!(
        why.contains("run.steps.validate_timesheets.period"),
        "{why}"
    );
    // A fact of the wrong type, or missing, denies the same way.
    let salary = json!({"employee_id": "E1001", "new_salary_cents": 8_000_000, "effective_date": "2027-01-01"});
    let (o, code, why) = decide(
        &e,
        "workday.update_salary",
        salary.clone(),
        json!({"facts": {"current_salary_cents": "80000.00"}}),
    );
    assert_eq!(
        (o, code),
        (Outcome::Deny, Some(DenyCode::EvaluationError)),
        "{why}"
    );
    let (_, code, why) = decide(&e, "workday.update_salary", salary.clone(), json!({}));
    assert_eq!(code, Some(DenyCode::EvaluationError), "{why}");
    assert!(why.contains("facts.current_salary_cents"), "{why}");
    assert_eq!(
        decide(
            &e,
            "workday.update_salary",
            salary,
            json!({"facts": {"current_salary_cents": 8_000_000}})
        )
        .0,
        Outcome::Allow
    );
}

#[test]
fn typos_in_step_data_and_facts_are_validation_errors_with_file_and_line() {
    for (from, to, want) in [
        (
            "context.run.steps.validate_timesheets.period == context.args.period",
            "context.run.steps.validate_timesheets.periode == context.args.period",
            "periode",
        ),
        (
            "context.run.steps has validate_timesheets &&\n    context.run.steps.validate_timesheets.result.status",
            "context.run.steps has validate_timesheets &&\n    context.run.steps.validate_timesheet.result.status",
            "validate_timesheet",
        ),
        ("result.status == \"ok\"", "result.errors == 0", "errors"),
        (
            "context.facts.current_salary_cents * 11",
            "context.facts.salary_cents * 11",
            "salary_cents",
        ),
    ] {
        let (_tmp, e) = payroll_pack(&[], &[(from, to)]);
        let errs = e.err().unwrap_or_else(|| panic!("`{to}` was accepted"));
        assert!(
            errs.iter().any(|e| e.starts_with("cedar_validation")
                && e.contains(want)
                && e.contains("policies/payroll.cedar:")),
            "{to}: {errs:?}"
        );
    }
}

#[test]
fn bad_expose_facts_and_correlate_entries_are_refused_with_where_and_why() {
    let cases: [(&str, &str, &str, &str); 10] = [
        (
            "expose = [\"period\", \"result.status\"]",
            "expose = [\"perod\", \"result.status\"]",
            "invalid_expose",
            "has no argument `perod`",
        ),
        (
            "expose = [\"period\", \"result.status\"]",
            "expose = [\"period\", \"result.state\"]",
            "invalid_expose",
            "has no result field `state`",
        ),
        (
            "expose = [\"period\", \"result.status\"]",
            "expose = [\"period\", \"period\"]",
            "invalid_expose",
            "listed twice",
        ),
        (
            "expose = [\"period\", \"result.status\"]",
            "expose = [\"period\", \"result\"]",
            "invalid_expose",
            "one by one",
        ),
        (
            "from = \"workday.get_employee\"",
            "from = \"workday.update_salary\"",
            "invalid_facts",
            "not a read tool Warden can execute",
        ),
        (
            "field = \"salary_cents\"",
            "field = \"salary\"",
            "invalid_facts",
            "declares no result field `salary`",
        ),
        (
            "args = { employee_id = \"args.employee_id\" }",
            "args = { employee_id = \"args.reason\" }",
            "invalid_facts",
            "`reason` is not a required argument",
        ),
        (
            "args = { employee_id = \"args.employee_id\" }",
            "args = { }",
            "invalid_facts",
            "needs argument `employee_id`",
        ),
        (
            "ttl = \"1m\"",
            "ttl = \"a minute\"",
            "invalid_facts",
            "invalid ttl",
        ),
        (
            "correlate = \"period\"",
            "correlate = \"pay_group\"",
            "invalid_correlate",
            "not a required string or integer argument of `timesheets.validate`",
        ),
    ];
    for (from, to, code, want) in cases {
        let (_tmp, e) = payroll_pack(&[(from, to)], &[]);
        let errs = e.err().unwrap_or_else(|| panic!("`{to}` was accepted"));
        assert!(
            errs.iter()
                .any(|e| e.starts_with(code) && e.contains(want) && e.contains("warden.toml:")),
            "{to}: {errs:?}"
        );
    }
    // A sensitive argument cannot be exposed: runs keep exposed values.
    let (_tmp, e) = payroll_pack(
        &[(
            "[tools.execute]\nconnector = \"http\"\nurl_env = \"WORKDAY_TIMESHEETS_URL\"",
            "sensitive = [\"period\"]\n[tools.execute]\nconnector = \"http\"\nurl_env = \"WORKDAY_TIMESHEETS_URL\"",
        )],
        &[],
    );
    let errs = e.err().unwrap();
    assert!(
        errs.iter()
            .any(|e| e.starts_with("invalid_expose") && e.contains("is sensitive")),
        "{errs:?}"
    );
}
