//! Detectors on synthetic records, with the example pack's playbooks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use warden_evidence::{Record, time_from_micros};
use warden_model::{IncidentSeverity, Pack};

use super::{Detectors, Event, Trigger};

fn pack() -> Pack {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds");
    warden_model::load(dir).unwrap().pack
}

/// A record at `t` seconds from `fields`.
fn rec(seq: u64, t: i64, fields: Value) -> Record {
    let mut v = json!({ "v": 1, "seq": seq, "kind": "action_decided", "time": time_from_micros(1_800_000_000_000_000 + t * 1_000_000) });
    for (k, x) in fields.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn denied(seq: u64, t: i64, agent: &str, policy: Value) -> Record {
    rec(
        seq,
        t,
        json!({
            "agent": agent, "tool": "stripe.refund", "status": "denied", "code": "policy_denied",
            "args_sha256": format!("sha256:{seq}"),
            "checks": [{ "policy_version": "sha256:x", "decision": "deny", "code": "forbidden", "policies": [policy] }],
        }),
    )
}

fn executed(seq: u64, t: i64, tool: &str, status: &str, detail: Value) -> Record {
    rec(
        seq,
        t,
        json!({ "kind": "action_executed", "agent": "support-bot", "tool": tool, "status": status, "detail": detail }),
    )
}

fn feed(d: &mut Detectors, pack: &Pack, r: &Record) -> Vec<Trigger> {
    d.observe(&Event::new(r, pack), pack)
}

fn of<'a>(ts: &'a [Trigger], playbook: &str) -> Option<&'a Trigger> {
    ts.iter().find(|t| t.playbook == playbook)
}

#[test]
fn violations_count_per_agent_within_the_window() {
    let pack = pack();
    let mut d = Detectors::new(&pack);
    let plain = json!({ "id": "refund-over-100-needs-finance", "effect": "forbid" });
    // Four denials, then a fifth after the 10-minute window: no incident.
    for i in 0..4 {
        assert!(
            of(
                &feed(
                    &mut d,
                    &pack,
                    &denied(i, i as i64, "billing-bot", plain.clone())
                ),
                "policy-violations"
            )
            .is_none()
        );
    }
    assert!(
        of(
            &feed(&mut d, &pack, &denied(4, 700, "billing-bot", plain.clone())),
            "policy-violations"
        )
        .is_none()
    );
    // Another agent's denials do not count towards billing-bot's.
    for i in 0..4 {
        feed(
            &mut d,
            &pack,
            &denied(10 + i, 701, "support-bot", plain.clone()),
        );
    }
    let mut fired = None;
    for i in 0..4 {
        let ts = feed(
            &mut d,
            &pack,
            &denied(20 + i, 702 + i as i64, "billing-bot", plain.clone()),
        );
        if let Some(t) = of(&ts, "policy-violations") {
            fired = Some((i, t.clone()));
        }
    }
    let (i, t) = fired.expect("five denials within the window fire");
    assert_eq!(i, 3, "fired on the fifth denial in the window");
    assert_eq!(t.dedup_key, "agent:billing-bot");
    assert_eq!(t.first_seq, Some(4), "the window's first denial");
    assert_eq!(t.severity, None);
}

#[test]
fn a_critical_policy_fires_at_once() {
    let pack = pack();
    let mut d = Detectors::new(&pack);
    let critical = json!({ "id": "refund-cap-5000", "effect": "forbid", "annotations": { "severity": "critical" } });
    let ts = feed(&mut d, &pack, &denied(1, 0, "support-bot", critical));
    let t = of(&ts, "policy-violations").expect("fires on one denial");
    assert_eq!(t.severity, Some(IncidentSeverity::Critical));
    assert!(t.summary.contains("refund-cap-5000"), "{}", t.summary);
    // The intern playbook is scoped to intern-bot.
    assert!(of(&ts, "intern-write-attempts").is_none());
}

#[test]
fn identical_proposals_again_and_again_are_a_retry_storm() {
    let pack = pack();
    let mut d = Detectors::new(&pack);
    let same = |seq, t| {
        rec(
            seq,
            t,
            json!({ "agent": "support-bot", "tool": "crm.lookup_customer", "args_sha256": "sha256:same", "status": "approved" }),
        )
    };
    let mut fired_at = None;
    for i in 0..8 {
        if of(&feed(&mut d, &pack, &same(i, i as i64)), "retry-storm").is_some() {
            fired_at.get_or_insert(i);
        }
    }
    assert_eq!(fired_at, Some(5), "the sixth proposal is the fifth retry");
    // Different arguments are not retries.
    let mut d = Detectors::new(&pack);
    for i in 0..20u64 {
        let r = rec(
            i,
            i as i64,
            json!({ "agent": "support-bot", "tool": "crm.lookup_customer", "args_sha256": format!("sha256:{i}") }),
        );
        assert!(of(&feed(&mut d, &pack, &r), "retry-storm").is_none());
    }
    // Connector re-sends count by their attempts.
    let r = executed(1, 0, "stripe.refund", "succeeded", json!({ "attempts": 6 }));
    let ts = feed(&mut d, &pack, &r);
    assert!(of(&ts, "retry-storm").is_some(), "{ts:?}");
}

#[test]
fn a_failing_tool_trips_the_cascade_only_past_the_rate_and_the_minimum() {
    let pack = pack();
    let mut d = Detectors::new(&pack);
    // 4 of 10 failing: under 50%.
    for i in 0..10u64 {
        let status = if i % 5 < 2 { "failed" } else { "succeeded" };
        let ts = feed(
            &mut d,
            &pack,
            &executed(i, i as i64, "crm.lookup_customer", status, json!({})),
        );
        assert!(of(&ts, "tool-failure-cascade").is_none(), "at {i}");
    }
    // Five failures more within the window: 9 of 15.
    let mut fired = None;
    for i in 10..15u64 {
        let ts = feed(
            &mut d,
            &pack,
            &executed(i, i as i64, "crm.lookup_customer", "failed", json!({})),
        );
        if let Some(t) = of(&ts, "tool-failure-cascade") {
            fired.get_or_insert(t.clone());
        }
    }
    let t = fired.expect("fires at 50%");
    assert_eq!(t.dedup_key, "tool:crm.lookup_customer");
    assert_eq!(t.subject.tool.as_deref(), Some("crm.lookup_customer"));
}

#[test]
fn two_tools_of_one_system_failing_together_trip_the_system() {
    let pack = pack();
    let mut d = Detectors::new(&pack);
    let a = feed(
        &mut d,
        &pack,
        &executed(1, 0, "crm.lookup_customer", "failed", json!({})),
    );
    assert!(of(&a, "tool-failure-cascade").is_none());
    let b = feed(
        &mut d,
        &pack,
        &executed(2, 1, "crm.update_notes", "failed", json!({})),
    );
    let t = of(&b, "tool-failure-cascade").expect("two crm tools failing");
    assert_eq!(t.dedup_key, "system:crm");
    assert_eq!(t.subject.tools, ["crm.lookup_customer", "crm.update_notes"]);
}

#[test]
fn outputs_outside_the_learned_band_or_holding_secrets_fire() {
    let pack = pack();
    let mut d = Detectors::new(&pack);
    // 30 results of about 100 bytes and 2 ms teach the band.
    for i in 0..30u64 {
        let size = 95 + (i % 10);
        let ts = feed(
            &mut d,
            &pack,
            &executed(
                i,
                i as i64,
                "kb.get_article",
                "succeeded",
                json!({ "result_bytes": size, "elapsed_ms": 2 }),
            ),
        );
        assert!(of(&ts, "data-in-output").is_none(), "learning, at {i}");
    }
    let ts = feed(
        &mut d,
        &pack,
        &executed(
            30,
            30,
            "kb.get_article",
            "succeeded",
            json!({ "result_bytes": 104, "elapsed_ms": 3 }),
        ),
    );
    assert!(of(&ts, "data-in-output").is_none(), "inside the band");
    let ts = feed(
        &mut d,
        &pack,
        &executed(
            31,
            31,
            "kb.get_article",
            "succeeded",
            json!({ "result_bytes": 50_000, "elapsed_ms": 2 }),
        ),
    );
    let t = of(&ts, "data-in-output").expect("a 50 kB result");
    assert_eq!(t.dedup_key, "tool:kb.get_article:size");
    // A declared kind is not a finding; an undeclared one is.
    let with = |v: Value| {
        executed(
            40,
            40,
            "crm.lookup_customer",
            "succeeded",
            json!({ "result": v }),
        )
    };
    let ts = feed(&mut d, &pack, &with(json!({ "email": "ada@example.com" })));
    assert!(of(&ts, "data-in-output").is_none(), "{ts:?}");
    let ts = feed(
        &mut d,
        &pack,
        &with(json!({ "notes": ["key: AKIAIOSFODNN7EXAMPLE"] })),
    );
    let t = of(&ts, "data-in-output").expect("an API key");
    assert_eq!(t.detail["found"][0]["kind"], "api_key");
    assert_eq!(t.detail["found"][0]["at"], "/notes/0");
    assert!(
        !t.detail.to_string().contains("AKIAIOSFODNN7EXAMPLE"),
        "unmasked: {}",
        t.detail
    );
    // Failed calls teach nothing and are not scanned.
    let r = executed(
        41,
        41,
        "crm.lookup_customer",
        "failed",
        json!({ "result": { "card": "4111111111111111" } }),
    );
    assert!(of(&feed(&mut d, &pack, &r), "data-in-output").is_none());
}

#[test]
fn re_proposals_answered_from_a_pending_request_are_not_retries() {
    let pack = pack();
    let mut d = Detectors::new(&pack);
    for i in 0..20u64 {
        let r = rec(
            i,
            i as i64,
            json!({ "kind": "action_reproposed", "agent": "support-bot", "tool": "stripe.refund", "args_sha256": "sha256:same", "status": "awaiting_approval" }),
        );
        assert!(of(&feed(&mut d, &pack, &r), "retry-storm").is_none(), "{i}");
    }
}

#[test]
fn would_be_denials_in_shadow_open_a_shadow_incident_of_their_own() {
    let pack = pack();
    let mut d = Detectors::new(&pack);
    let would_be = |seq: u64| {
        rec(
            seq,
            seq as i64,
            json!({
                "agent": "billing-bot", "tool": "crm.update_notes", "status": "approved",
                "args_sha256": format!("sha256:{seq}"),
                "detail": { "shadow": true, "would_be": { "status": "denied", "code": "policy_denied" } },
            }),
        )
    };
    let mut fired = None;
    for i in 0..5u64 {
        if let Some(t) = of(&feed(&mut d, &pack, &would_be(i)), "policy-violations") {
            fired.get_or_insert((i, t.clone()));
        }
    }
    let (at, t) = fired.expect("five would-be denials reach the threshold");
    assert_eq!(at, 4);
    assert!(t.shadow);
    assert_eq!(t.dedup_key, "shadow:agent:billing-bot");
    assert!(t.summary.starts_with("shadow:"), "{}", t.summary);
    // An allowed proposal with no would-be outcome is not a violation.
    let plain = rec(
        9,
        9,
        json!({ "agent": "billing-bot", "tool": "crm.update_notes", "status": "approved" }),
    );
    assert!(of(&feed(&mut d, &pack, &plain), "policy-violations").is_none());
}
