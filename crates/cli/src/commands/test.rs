//! `warden test PACK`: runs the pack's decision test cases.

use warden_model::load_test_cases;
use warden_policy::run_case;

use crate::cli::{Exit, TestArgs};
use crate::render;

pub fn run(args: &TestArgs) -> anyhow::Result<Exit> {
    let compiled = match super::compile(&args.pack, args.error_format)? {
        Ok(c) => c,
        Err(exit) => return Ok(exit),
    };
    let engine = compiled.engine;
    let (cases, diags) = load_test_cases(engine.pack());
    if !diags.is_empty() {
        render::print_all(&diags);
    }
    if cases.is_empty() && diags.is_empty() {
        eprintln!(
            "warning: pack `{}` has no test cases (add `[[case]]` tables under tests/)",
            args.pack.display()
        );
    }
    let mut passed = 0;
    let mut failed = 0;
    for case in &cases {
        let r = run_case(&engine, case);
        if r.passed() {
            passed += 1;
            println!("ok    {}", case.name);
        } else {
            failed += 1;
            println!("FAIL  {}  ({})", case.name, case.at);
            for f in &r.failures {
                println!("      {f}");
            }
        }
    }
    // Unreadable cases count as failures: a typo must not pass silently.
    failed += diags.iter().filter(|d| d.is_error()).count();
    println!("{passed} passed, {failed} failed");
    Ok(if failed > 0 { Exit::Failed } else { Exit::Ok })
}
