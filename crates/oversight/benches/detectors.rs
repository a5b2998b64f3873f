//! Criterion benchmark of the detectors' cost per event: every playbook of
//! the support-refunds example pack (six detectors) fed a realistic mix of
//! evidence records.
//!
//! Run: `cargo bench -p warden-oversight --bench detectors`.
//!
//! - `mixed`: a stream cycling through 10,000 records — proposals allowed
//!   and denied, executions succeeded and failed with small results — over
//!   50 agents and the pack's tools;
//! - `result_1kb`: one successful execution whose 1 KB result is scanned
//!   for secrets and personal data (the heaviest single event);
//! - `decided`: allowed proposals with distinct arguments (the commonest
//!   event).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use warden_evidence::{Record, time_from_micros};
use warden_model::Pack;
use warden_oversight::detect::{Detectors, Event};

fn pack() -> Pack {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds");
    warden_model::load(dir).unwrap().pack
}

fn rec(seq: u64, fields: Value) -> Record {
    let mut v = json!({ "v": 1, "seq": seq, "kind": "action_decided", "time": time_from_micros(1_800_000_000_000_000 + seq as i64 * 2_000) });
    for (k, x) in fields.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn result_1kb() -> Value {
    let notes: Vec<String> = (0..14)
        .map(|i| {
            format!(
                "2026-11-{:02} called about order ord_{i}: parcel damaged, refund requested",
                i + 1
            )
        })
        .collect();
    json!({ "customer_id": "cus_1", "name": "Ada Lovelace", "tier": "gold", "email": "ada@example.com", "notes": notes })
}

fn stream(n: u64) -> Vec<Record> {
    let tools = [
        "crm.lookup_customer",
        "stripe.refund",
        "email.send_customer",
        "kb.get_article",
        "crm.update_notes",
    ];
    (0..n)
        .map(|i| {
            let agent = format!("agent-{}", i % 50);
            let tool = tools[(i % tools.len() as u64) as usize];
            match i % 4 {
                0 => rec(i, json!({ "agent": agent, "tool": tool, "status": "approved", "args_sha256": format!("sha256:{i}") })),
                1 => rec(i, json!({ "kind": "action_executed", "agent": agent, "tool": tool, "status": if i % 20 == 1 { "failed" } else { "succeeded" },
                                    "detail": { "result": { "ok": true, "id": format!("re_{i}") }, "result_bytes": 30 + i % 7, "elapsed_ms": 2 + i % 3, "attempts": 1 } })),
                2 if i % 10 == 2 => rec(i, json!({ "agent": agent, "tool": tool, "status": "denied", "code": "policy_denied", "args_sha256": format!("sha256:{i}"),
                                    "checks": [{ "policy_version": "sha256:x", "decision": "deny", "code": "forbidden", "policies": [{ "id": "refund-over-100-needs-finance", "effect": "forbid" }] }] })),
                _ => rec(i, json!({ "kind": "run_started", "agent": agent, "run": format!("run_{i}") })),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pack = pack();
    let mut g = c.benchmark_group("detectors");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));

    let records = stream(10_000);
    let mut d = Detectors::new(&pack);
    let mut i = 0;
    g.bench_function("mixed", |b| {
        b.iter(|| {
            let r = &records[i % records.len()];
            i += 1;
            black_box(d.observe(&Event::new(r, &pack), &pack))
        })
    });

    let big = rec(
        1,
        json!({ "kind": "action_executed", "agent": "support-bot", "tool": "crm.lookup_customer", "status": "succeeded",
                             "detail": { "result": result_1kb(), "result_bytes": 1024, "elapsed_ms": 3, "attempts": 1 } }),
    );
    assert!(big.detail.as_ref().unwrap()["result"].to_string().len() >= 1000);
    let mut d = Detectors::new(&pack);
    g.bench_function("result_1kb", |b| {
        b.iter(|| black_box(d.observe(&Event::new(&big, &pack), &pack)))
    });

    let decided: Vec<Record> = (0..10_000u64)
        .map(|i| rec(i, json!({ "agent": format!("agent-{}", i % 50), "tool": "crm.lookup_customer", "status": "approved", "args_sha256": format!("sha256:{i}") })))
        .collect();
    let mut d = Detectors::new(&pack);
    let mut i = 0;
    g.bench_function("decided", |b| {
        b.iter(|| {
            let r = &decided[i % decided.len()];
            i += 1;
            black_box(d.observe(&Event::new(r, &pack), &pack))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
