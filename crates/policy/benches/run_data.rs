//! Criterion benchmark of `decide` with step data (`context.run.steps`) and
//! with a fact (`context.facts`), each against the same request on a copy
//! of the pack without them.
//!
//! Run: `cargo bench -p warden-policy --bench run_data`. The pack is
//! `examples/hr-payroll`: `payroll.run` in a run whose validation step
//! exposed its period and status (signed off, so allowed), and
//! `workday.update_salary` with the fetched current salary (a 4 % raise,
//! allowed). The copies drop the policies that read that data, `expose` and
//! `[[tools.facts]]`, and decide the same requests without context data.
//! `payroll_with_step_data_no_rule` keeps `expose` and drops only the rule,
//! splitting the cost between building `context.run` and evaluating the
//! rule. Fetching the fact is the runtime's and is not measured here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden_model::{Outcome, RequestContext};
use warden_policy::{Engine, Request};

/// A copy of the pack at `dir` (with its data files) with this manifest
/// and policy file, loaded.
fn variant(dir: &Path, manifest: &str, policies: &str) -> Engine {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("policies")).unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    std::fs::copy(
        dir.join("data/employees.json"),
        tmp.path().join("data/employees.json"),
    )
    .unwrap();
    std::fs::write(tmp.path().join("warden.toml"), manifest).unwrap();
    std::fs::write(tmp.path().join("policies/payroll.cedar"), policies).unwrap();
    Engine::load(tmp.path()).unwrap().engine
}

fn without_run_data_and_facts(dir: &Path) -> Engine {
    let manifest = std::fs::read_to_string(dir.join("warden.toml")).unwrap();
    let start = manifest.find("[[tools.facts]]").unwrap();
    let end = start + manifest[start..].find("[[tools]]").unwrap();
    let manifest = format!("{}{}", &manifest[..start], &manifest[end..])
        .replace("expose = [\"period\", \"result.status\"]", "");
    // Keep the grants and the two approval gates; drop the rules that read
    // run data and facts.
    let policies = std::fs::read_to_string(dir.join("policies/payroll.cedar")).unwrap();
    let a = policies.find("// Payroll runs only").unwrap();
    let b = policies.find("// Every payroll submission").unwrap();
    let c = policies.find("// Raises above 5 %").unwrap();
    let policies = format!(
        "{}{}\n@id(\"lead-gate\")\n@approval(\"people-leads\")\nforbid (principal, action == Action::\"workday.update_salary\", resource)\nwhen {{ context.args.new_salary_cents > 9000000 }}\nunless {{ context.approvals.contains(\"people-leads\") }};\n",
        &policies[..a],
        &policies[b..c]
    );
    variant(dir, &manifest, &policies)
}

fn benches(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hr-payroll");
    let with = Engine::load(&dir).unwrap().engine;
    let without = without_run_data_and_facts(&dir);
    let pay = json!({"period": "2026-11", "pay_group": "monthly-salaried"});
    let run: RequestContext = serde_json::from_value(json!({
        "workflow": "monthly-payroll",
        "run": {"id": "run_1", "steps": {"validate_timesheets": {"period": "2026-11", "result": {"status": "ok"}}}}
    }))
    .unwrap();
    let raise = json!({"employee_id": "E1001", "new_salary_cents": 8_320_000, "effective_date": "2027-01-01"});
    let facts: RequestContext =
        serde_json::from_value(json!({"facts": {"current_salary_cents": 8_000_000}})).unwrap();
    let none = RequestContext::default();
    let signed = ["payroll-signoff".to_owned()];
    let req = |agent, tool, args, approvals, context| Request {
        agent,
        tool,
        args,
        approvals,
        context,
    };
    for (e, ctx_pay, ctx_raise) in [(&with, &run, &facts), (&without, &none, &none)] {
        let d = e.decide(&req("payroll-bot", "payroll.run", &pay, &signed, ctx_pay));
        assert_eq!(d.outcome, Outcome::Allow, "{}", d.message());
        let d = e.decide(&req(
            "hr-bot",
            "workday.update_salary",
            &raise,
            &[],
            ctx_raise,
        ));
        assert_eq!(d.outcome, Outcome::Allow, "{}", d.message());
    }
    // The pack with `expose` but without the rule that reads it: what
    // building `context.run` costs apart from evaluating the rule.
    let exp = {
        let manifest = std::fs::read_to_string(dir.join("warden.toml")).unwrap();
        let policies = std::fs::read_to_string(dir.join("policies/payroll.cedar")).unwrap();
        let a = policies.find("// Payroll runs only").unwrap();
        let b = policies.find("// Every payroll submission").unwrap();
        variant(
            &dir,
            &manifest,
            &format!("{}{}", &policies[..a], &policies[b..]),
        )
    };
    let mut g = c.benchmark_group("run_data");
    g.bench_function("payroll_with_step_data_no_rule", |b| {
        b.iter(|| black_box(exp.decide(&req("payroll-bot", "payroll.run", &pay, &signed, &run))))
    });
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("payroll_with_step_data", |b| {
        b.iter(|| black_box(with.decide(&req("payroll-bot", "payroll.run", &pay, &signed, &run))))
    });
    g.bench_function("payroll_without", |b| {
        b.iter(|| {
            black_box(without.decide(&req("payroll-bot", "payroll.run", &pay, &signed, &none)))
        })
    });
    g.bench_function("raise_with_fact", |b| {
        b.iter(|| {
            black_box(with.decide(&req("hr-bot", "workday.update_salary", &raise, &[], &facts)))
        })
    });
    g.bench_function("raise_without", |b| {
        b.iter(|| {
            black_box(without.decide(&req("hr-bot", "workday.update_salary", &raise, &[], &none)))
        })
    });
    g.finish();
}

criterion_group!(run_data, benches);
criterion_main!(run_data);
