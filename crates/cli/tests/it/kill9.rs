//! Durability end to end (issue 4): concurrent enforce-mode proposals whose
//! tools call a local HTTP receiver that counts idempotency keys; the server
//! is killed with SIGKILL mid-load and restarted. Every acknowledged
//! decision must be in the audit log, no side effect may run twice for a
//! tool that is not safe to re-send, every action must end in a final state,
//! and the log must verify.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Receiver, copy_dir, root, warden};
use crate::serve::Server;

#[test]
fn sigkill_mid_load_loses_no_decision_and_executes_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    // Slow receiver: many executions are in flight when the kill lands.
    let receiver = Receiver::start(Duration::from_millis(150), 0);
    let pack = tmp.path().join("pack");
    copy_dir(&root().join("examples/support-refunds"), &pack);
    let manifest = pack.join("warden.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // stripe.refund: not safe to repeat (a crash ends it `interrupted`);
    // crm.update_notes: re-sent after a crash with the same key.
    let text = text
        .replace(
            "connector = \"mock\"          # in production: connector = \"http\", url_env = \"STRIPE_REFUND_URL\", credential = { header = \"Authorization\", prefix = \"Bearer \", env = \"STRIPE_API_KEY\" }\nlatency = \"5ms\"\nresult = { refund_id = \"re_mock_1\", status = \"succeeded\" }",
            "connector = \"http\"\nurl_env = \"REFUND_URL\"",
        )
        .replace(
            "connector = \"mock\"\nresult = { appended = true }",
            "connector = \"http\"\nurl_env = \"NOTES_URL\"\nsafe_to_retry = true\non_interrupt = \"resend\"",
        );
    std::fs::write(&manifest, text).unwrap();
    assert_eq!(warden(&["validate", pack.to_str().unwrap()]).code, 0);
    let refund_url = format!("{}/refund", receiver.url);
    let notes_url = format!("{}/notes", receiver.url);
    let env = [
        ("REFUND_URL", refund_url.as_str()),
        ("NOTES_URL", notes_url.as_str()),
    ];
    let data = tmp.path().join("data");
    let server = Server::start_args(&data, &pack, &["--sync-wait", "30s"], &env);

    // Acknowledged answers: action id → status.
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let base = server.base.clone();
        let acked = Arc::clone(&acked);
        let stop = Arc::clone(&stop);
        workers.push(std::thread::spawn(move || {
            let client = crate::common::client();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                // Workers alternate tools out of phase, so both are in flight.
                let body = if (i + w) % 2 == 0 {
                    json!({"tool": "stripe.refund", "mode": "enforce",
                           "idempotency_key": format!("w{w}-{i}"),
                           "arguments": {"order_id": format!("ord_{w}x{i}"), "customer_id": "cus_1", "amount_cents": 5000, "reason": "damaged"}})
                } else {
                    json!({"tool": "crm.update_notes", "mode": "enforce",
                           "idempotency_key": format!("w{w}-{i}"),
                           "arguments": {"customer_id": "cus_1", "note": format!("note {w}/{i}")}})
                };
                let Ok(resp) = client
                    .post(format!("{base}/v1/actions"))
                    .bearer_auth("demo-support-bot")
                    .json(&body)
                    .send()
                else {
                    return;
                };
                if !resp.status().is_success() {
                    continue;
                }
                let Ok(v) = resp.json::<Value>() else { return };
                acked.lock().unwrap().insert(
                    v["action_id"].as_str().unwrap().to_owned(),
                    v["status"].as_str().unwrap().to_owned(),
                );
            }
        }));
    }
    // Let load build up, with executions in flight, then kill -9.
    for _ in 0..200 {
        if receiver.requests().len() >= 40 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    server.signal("-KILL");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    drop(server);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 10,
        "too little load before the kill: {}",
        acked.len()
    );
    let received_before_restart = receiver.requests().len();

    // Restart on the same data: recovery reconciles what was executing.
    let server = Server::start_args(&data, &pack, &[], &env);
    let mut finals: BTreeMap<String, Value> = BTreeMap::new();
    let (_, all) = server.get(
        "/v1/audit?kind=action_decided&limit=10000",
        Some("demo-erin"),
    );
    let decided: BTreeSet<String> = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str().map(str::to_owned))
        .collect();
    for id in &decided {
        let (status, v) = server.get(&format!("/v1/actions/{id}?wait=20s"), Some("demo-tina"));
        assert_eq!(status, 200, "{v}");
        finals.insert(id.clone(), v);
    }
    // 1. Every acknowledged decision is in the audit log.
    for id in acked.keys() {
        assert!(
            decided.contains(id),
            "acknowledged action {id} has no record"
        );
    }
    // 2. Every action ended; those the crash caught are `interrupted`
    //    (refunds) or re-sent (notes).
    let mut interrupted = 0;
    for (id, v) in &finals {
        let status = v["status"].as_str().unwrap();
        assert!(["succeeded", "failed"].contains(&status), "{id}: {v}");
        if v["code"] == "interrupted" {
            assert_eq!(v["tool"], "stripe.refund", "{v}");
            interrupted += 1;
        }
    }
    // 3. No refund's idempotency key reached the receiver twice; notes may
    //    have been re-sent, always with the key they had.
    let counts = receiver.key_counts();
    for s in receiver.requests() {
        let key = s.idempotency_key.clone().unwrap();
        assert!(
            finals.contains_key(&key),
            "request with an unknown key {key}"
        );
        if s.path == "/refund" {
            assert_eq!(
                counts[&key], 1,
                "refund {key} executed {} times",
                counts[&key]
            );
        } else {
            assert!(counts[&key] <= 2, "note {key} sent {} times", counts[&key]);
        }
    }
    let by_path = |p: &str| receiver.requests().iter().filter(|s| s.path == p).count();
    eprintln!(
        "refund calls {}, note calls {}",
        by_path("/refund"),
        by_path("/notes")
    );
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for v in finals.values() {
        *tally
            .entry(format!("{} {} {}", v["tool"], v["status"], v["code"]))
            .or_default() += 1;
    }
    eprintln!("{tally:#?}");
    // The kill caught both kinds in flight (the receiver holds each call
    // 150 ms, and the kill lands while every worker waits on one).
    assert!(interrupted > 0, "{tally:#?}");
    assert!(
        receiver.requests().len() > received_before_restart,
        "no note was re-sent after the restart"
    );
    eprintln!(
        "kill -9: {} acknowledged, {} decided, {received_before_restart} calls before the kill, {} after, {interrupted} interrupted",
        acked.len(),
        decided.len(),
        receiver.requests().len() - received_before_restart
    );
    assert!(server.stop().success());
    // 4. The log verifies.
    let report = warden(&[
        "audit",
        "verify",
        "--data",
        data.to_str().unwrap(),
        "--json",
    ])
    .json();
    assert_eq!(report["findings"], json!([]), "{report}");
}
