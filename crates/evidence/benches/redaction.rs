//! What recording a tool result costs: redaction of a typical CRM profile
//! (declared pointer + scan, one IBAN found) and of a 100-row result with
//! nothing to find.
//!
//! `cargo bench -p warden-evidence --bench redaction`

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden_evidence::{Redactor, ResultRules};

fn bench(c: &mut Criterion) {
    let r = Redactor::new([7; 32]);
    let pointers = vec!["/date_of_birth".to_owned()];
    let rules = ResultRules {
        fields: &[],
        pointers: &pointers,
        scan: true,
        patterns: &[],
    };
    let profile = json!({
        "customer_id": "cus_1", "name": "Ada Lovelace", "email": "ada@example.com",
        "date_of_birth": "1815-12-10", "payout_iban": "GB82 WEST 1234 5698 7654 32",
        "tier": "gold", "recent_orders": ["ord_1", "ord_2"],
    });
    c.bench_function("redact_result/profile", |b| {
        b.iter(|| r.redact_result(std::hint::black_box(&profile), &rules))
    });
    let rows: Vec<_> = (0..100)
        .map(|i| json!({ "order_id": format!("ord_{i}"), "status": "shipped", "amount_cents": 1000 + i, "note": "left at the front door" }))
        .collect();
    let table = json!({ "orders": rows });
    c.bench_function("redact_result/100_rows_clean", |b| {
        b.iter(|| r.redact_result(std::hint::black_box(&table), &rules))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
