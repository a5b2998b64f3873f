//! Per-request latency of `decide`, side by side with raw Cedar and regorus
//! on the same requests, plus pack load and re-validation times.
//!
//! Run: `cargo bench -p warden-policy --bench latency`. Prints markdown rows
//! for docs/PERFORMANCE.md, and checks that every engine agrees on every
//! request's outcome (the run fails if one does not).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/peers.rs"]
mod peers;
#[path = "support/synth.rs"]
mod synth;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use cedar_policy::Authorizer;
use warden_model::{Outcome, RequestContext};
use warden_policy::{Engine, ValidationCache, compile};

use synth::{GenRequest, Size, Synth};

const ROUNDS: usize = 3;

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    println!("| workload | engine | p50 µs | p99 µs | mean µs |");
    println!("|---|---|---|---|---|");
    if wanted("support-refunds") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds");
        let engine = Engine::load(&dir).expect("example pack loads").engine;
        let reqs = synth::refund_requests(10_000, 7);
        compare(
            "support-refunds",
            &engine,
            &reqs,
            synth::REFUNDS_REGO,
            None,
            10_000,
        );
    }
    if wanted("large") {
        let tmp = tempfile::tempdir().expect("temp dir");
        let synth = Synth::new(Size::LARGE, 42);
        synth.write(tmp.path()).expect("write pack");
        let engine = load_times(tmp.path(), &synth);
        let reqs = synth.requests(10_000, 7);
        let data = synth.rego_data();
        compare(
            "large",
            &engine,
            &reqs,
            synth::LARGE_REGO,
            Some(data),
            1_000,
        );
    }
}

/// Cold load and validation, then a reload after one changed policy.
fn load_times(dir: &Path, synth: &Synth) -> Engine {
    let t = Instant::now();
    let compiled = Engine::load(dir).expect("large pack loads");
    let cold = t.elapsed();
    eprintln!(
        "large pack: {} policies, {} tools, {} warnings",
        compiled.engine.policies().len(),
        compiled.engine.pack().tools.len(),
        compiled.warnings.len()
    );
    assert_eq!(compiled.engine.policies().len(), synth.policy_count());

    let cache = ValidationCache::new();
    let t = Instant::now();
    let loaded = warden_model::load(dir).unwrap();
    let load_only = t.elapsed();
    compile(loaded, Some(&cache)).unwrap();
    let filled = t.elapsed();

    let path = dir.join("policies/permits.cedar");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replacen(
        "context.args.amount <= 1000 ",
        "context.args.amount <= 1001 ",
        1,
    );
    assert_ne!(text, changed, "one policy changed");
    std::fs::write(&path, changed).unwrap();
    let t = Instant::now();
    let engine = compile(warden_model::load(dir).unwrap(), Some(&cache))
        .unwrap()
        .engine;
    let reload = t.elapsed();
    std::fs::write(&path, text).unwrap();

    println!(
        "| large pack load | cold: load + validate + slice | {} ms | (manifest parse alone {} ms) | |",
        cold.as_millis(),
        load_only.as_millis()
    );
    println!(
        "| large pack load | cold with cache fill | {} ms | | |",
        filled.as_millis()
    );
    println!(
        "| large pack load | reload after one changed policy (cached) | {} ms | | |",
        reload.as_millis()
    );
    engine
}

fn word(v: &regorus::Value) -> Option<&str> {
    v.as_string().ok().map(|s| &**s)
}

fn outcome_word(o: Outcome) -> &'static str {
    o.as_str()
}

fn compare(
    name: &str,
    engine: &Engine,
    reqs: &[GenRequest],
    rego: &str,
    data: Option<serde_json::Value>,
    unsliced_n: usize,
) {
    let ctx = RequestContext::default();
    let requests = peers::requests(reqs, &ctx);

    // Warden decide.
    let mut outcomes = Vec::with_capacity(reqs.len());
    let mut warden = Vec::new();
    let mut warden_allow_deny = Vec::new();
    for round in 0..ROUNDS {
        for r in &requests {
            let t = Instant::now();
            let d = engine.decide(r);
            let e = t.elapsed();
            warden.push(e);
            if d.outcome != Outcome::ApprovalRequired {
                warden_allow_deny.push(e);
            }
            if round == 0 {
                outcomes.push(d.outcome);
            }
            black_box(d);
        }
    }

    // Raw Cedar on the sliced and the whole policy set: the same Cedar
    // request Warden builds (its first pass), prepared before timing.
    let authorizer = Authorizer::new();
    let parts: Vec<_> = requests
        .iter()
        .map(|r| engine.raw_parts(r).expect("valid request"))
        .collect();
    let entities = engine.entities();
    let mut sliced = Vec::new();
    let mut sliced_allow_deny = Vec::new();
    for _ in 0..ROUNDS {
        for (p, o) in parts.iter().zip(&outcomes) {
            let t = Instant::now();
            let resp = authorizer.is_authorized(&p.request, &p.slice, entities);
            let e = t.elapsed();
            sliced.push(e);
            if *o != Outcome::ApprovalRequired {
                sliced_allow_deny.push(e);
            }
            black_box(resp);
        }
    }
    let whole = engine.whole_policy_set();
    let mut unsliced = Vec::new();
    let mut disagreements = 0;
    for p in parts.iter().take(unsliced_n) {
        let t = Instant::now();
        let resp = authorizer.is_authorized(&p.request, whole, entities);
        unsliced.push(t.elapsed());
        let sliced_resp = authorizer.is_authorized(&p.request, &p.slice, entities);
        if resp.decision() != sliced_resp.decision() {
            disagreements += 1;
        }
    }
    assert_eq!(disagreements, 0, "sliced and unsliced Cedar disagree");

    // regorus: interpreter and compiled bytecode (RVM), inputs prepared.
    let (mut interp, mut vm, inputs) = peers::regorus(rego, data.as_ref(), reqs);
    let mut rego_interp = Vec::new();
    let mut mismatches = 0;
    for (i, input) in inputs.iter().enumerate() {
        interp.set_input(input.clone());
        let t = Instant::now();
        let v = interp.eval_rule(peers::RULE.into()).unwrap();
        rego_interp.push(t.elapsed());
        if word(&v) != Some(outcome_word(outcomes[i])) {
            mismatches += 1;
        }
    }
    assert_eq!(
        mismatches, 0,
        "regorus and Warden disagree on {mismatches} requests"
    );

    let mut rvm = Vec::new();
    for _ in 0..ROUNDS {
        for (i, input) in inputs.iter().enumerate() {
            let input = input.clone();
            let t = Instant::now();
            vm.set_input(input);
            let v = vm.execute().unwrap();
            rvm.push(t.elapsed());
            assert_eq!(
                word(&v),
                Some(outcome_word(outcomes[i])),
                "regorus RVM and Warden disagree on request {i}"
            );
        }
    }

    // The same, converting each request from the parsed JSON Warden starts
    // from (only the conversion is timed, not the copy it consumes).
    let json_inputs: Vec<serde_json::Value> = reqs.iter().map(GenRequest::rego_input).collect();
    let mut rvm_json = Vec::new();
    for _ in 0..ROUNDS {
        let mut batch = json_inputs.clone();
        for (i, input) in batch.iter_mut().enumerate() {
            let input = input.take();
            let t = Instant::now();
            vm.set_input(regorus::Value::from(input));
            let v = vm.execute().unwrap();
            rvm_json.push(t.elapsed());
            assert_eq!(word(&v), Some(outcome_word(outcomes[i])));
        }
    }

    let counts = [Outcome::Allow, Outcome::Deny, Outcome::ApprovalRequired]
        .map(|o| outcomes.iter().filter(|x| **x == o).count());
    eprintln!(
        "{name}: {} requests: {} allow, {} deny, {} approval_required; all engines agree",
        reqs.len(),
        counts[0],
        counts[1],
        counts[2]
    );
    row(name, "warden decide (all requests)", &mut warden);
    row(
        name,
        "warden decide (allow/deny only)",
        &mut warden_allow_deny,
    );
    row(
        name,
        "raw Cedar, sliced (allow/deny only)",
        &mut sliced_allow_deny,
    );
    row(name, "raw Cedar, sliced (all requests)", &mut sliced);
    row(
        name,
        &format!("raw Cedar, whole set ({} requests)", unsliced.len()),
        &mut unsliced,
    );
    row(name, "regorus interpreter", &mut rego_interp);
    row(name, "regorus RVM (compiled), input prepared", &mut rvm);
    row(
        name,
        "regorus RVM (compiled), input from JSON",
        &mut rvm_json,
    );
    let ratio = |a: &mut Vec<Duration>, b: &mut Vec<Duration>, q: f64| pct(a, q) / pct(b, q);
    println!(
        "| {name} | ratio decide/raw sliced, allow+deny | p50 {:.2}× | p99 {:.2}× | |",
        ratio(&mut warden_allow_deny, &mut sliced_allow_deny, 0.5),
        ratio(&mut warden_allow_deny, &mut sliced_allow_deny, 0.99)
    );
    println!(
        "| {name} | ratio regorus RVM (input prepared)/decide | p50 {:.2}× | p99 {:.2}× | |",
        ratio(&mut rvm, &mut warden, 0.5),
        ratio(&mut rvm, &mut warden, 0.99)
    );
    println!(
        "| {name} | ratio regorus RVM (input from JSON)/decide | p50 {:.2}× | p99 {:.2}× | |",
        ratio(&mut rvm_json, &mut warden, 0.5),
        ratio(&mut rvm_json, &mut warden, 0.99)
    );
}

fn pct(v: &mut [Duration], q: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i].as_secs_f64() * 1e6
}

fn row(name: &str, engine: &str, v: &mut [Duration]) {
    let mean = v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64 * 1e6;
    println!(
        "| {name} | {engine} | {:.2} | {:.2} | {:.2} |",
        pct(v, 0.5),
        pct(v, 0.99),
        mean
    );
}
