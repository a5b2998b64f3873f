//! Criterion benchmark of `decide` with a counter (`context.usage`) against
//! the same request on the same pack without it.
//!
//! Run: `cargo bench -p warden-policy --bench usage`. The pack is
//! `examples/support-refunds` (whose `stripe.refund` is counted per
//! customer and capped by `agent-refunds-daily-cap`) and a copy with that
//! counter and policy removed; the request is a $50 refund, decided with a
//! history of $1,500 where the counter exists.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use warden_model::RequestContext;
use warden_policy::{Engine, Request};

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn benches(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds");
    let with = Engine::load(&dir).unwrap().engine;
    // The same pack without the counter and the policy that reads it.
    let tmp = tempfile::tempdir().unwrap();
    copy(&dir, tmp.path());
    let manifest = std::fs::read_to_string(tmp.path().join("warden.toml")).unwrap();
    let start = manifest.find("[[counters]]").unwrap();
    let end = start + manifest[start..].find("[[drills]]").unwrap();
    std::fs::write(
        tmp.path().join("warden.toml"),
        format!("{}{}", &manifest[..start], &manifest[end..]),
    )
    .unwrap();
    let policies = std::fs::read_to_string(tmp.path().join("policies/refunds.cedar")).unwrap();
    let cut = policies.find("// Splitting a large refund").unwrap();
    std::fs::write(tmp.path().join("policies/refunds.cedar"), &policies[..cut]).unwrap();
    let without = Engine::load(tmp.path()).unwrap().engine;

    let args = serde_json::json!({
        "order_id": "ord_1", "customer_id": "cus_1", "amount_cents": 5000, "reason": "damaged"
    });
    let history = RequestContext {
        usage: [("agent_refunds_per_customer_day".to_owned(), 150_000)].into(),
        ..Default::default()
    };
    let none = RequestContext::default();
    let req = |context| Request {
        agent: "support-bot",
        tool: "stripe.refund",
        args: &args,
        approvals: &[],
        context,
    };
    assert_eq!(
        with.decide(&req(&history)).outcome,
        without.decide(&req(&none)).outcome
    );
    let mut g = c.benchmark_group("usage");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("refund_with_counter", |b| {
        b.iter(|| black_box(with.decide(&req(&history))))
    });
    g.bench_function("refund_without_counter", |b| {
        b.iter(|| black_box(without.decide(&req(&none))))
    });
    g.finish();
}

criterion_group!(usage, benches);
criterion_main!(usage);
