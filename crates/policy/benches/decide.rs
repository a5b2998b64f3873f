//! Criterion benchmark of `decide` against raw Cedar and regorus, on the
//! example pack and the large synthetic pack.
//!
//! Run: `cargo bench -p warden-policy --bench decide`. Times are per request,
//! cycling through 10,000 generated requests. For percentiles and the
//! agreement check, see the `latency` bench.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/peers.rs"]
mod peers;
#[path = "support/synth.rs"]
mod synth;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use cedar_policy::Authorizer;
use criterion::{Criterion, criterion_group, criterion_main};
use warden_model::RequestContext;
use warden_policy::Engine;

use synth::{GenRequest, Size, Synth};

fn bench_pack(
    c: &mut Criterion,
    name: &str,
    engine: &Engine,
    reqs: &[GenRequest],
    rego: &str,
    data: Option<serde_json::Value>,
) {
    let ctx = RequestContext::default();
    let requests = peers::requests(reqs, &ctx);
    let mut g = c.benchmark_group(name);
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));

    let mut i = 0;
    g.bench_function("warden_decide", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            black_box(engine.decide(&requests[i]))
        })
    });

    let authorizer = Authorizer::new();
    let parts: Vec<_> = requests
        .iter()
        .map(|r| engine.raw_parts(r).unwrap())
        .collect();
    let entities = engine.entities();
    let mut i = 0;
    g.bench_function("cedar_raw_sliced", |b| {
        b.iter(|| {
            i = (i + 1) % parts.len();
            black_box(authorizer.is_authorized(&parts[i].request, &parts[i].slice, entities))
        })
    });
    let whole = engine.whole_policy_set();
    let mut i = 0;
    g.bench_function("cedar_raw_whole_set", |b| {
        b.iter(|| {
            i = (i + 1) % parts.len();
            black_box(authorizer.is_authorized(&parts[i].request, whole, entities))
        })
    });

    let (mut interp, mut vm, inputs) = peers::regorus(rego, data.as_ref(), reqs);
    let mut i = 0;
    g.bench_function("regorus_interpreter", |b| {
        b.iter(|| {
            i = (i + 1) % inputs.len();
            interp.set_input(inputs[i].clone());
            black_box(interp.eval_rule(peers::RULE.into()).unwrap())
        })
    });
    let mut i = 0;
    g.bench_function("regorus_rvm", |b| {
        b.iter(|| {
            i = (i + 1) % inputs.len();
            vm.set_input(inputs[i].clone());
            black_box(vm.execute().unwrap())
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds");
    let engine = Engine::load(&dir).unwrap().engine;
    let reqs = synth::refund_requests(10_000, 7);
    bench_pack(
        c,
        "support-refunds",
        &engine,
        &reqs,
        synth::REFUNDS_REGO,
        None,
    );

    let tmp = tempfile::tempdir().unwrap();
    let s = Synth::new(Size::LARGE, 42);
    s.write(tmp.path()).unwrap();
    let engine = Engine::load(tmp.path()).unwrap().engine;
    let reqs = s.requests(10_000, 7);
    bench_pack(
        c,
        "large",
        &engine,
        &reqs,
        synth::LARGE_REGO,
        Some(s.rego_data()),
    );
}

criterion_group!(decide, benches);
criterion_main!(decide);
