//! `warden audit ...` and `warden decide --record`, through the binary, on a
//! real SQLite file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::warden;

const PACK: &str = "examples/support-refunds";

fn seed(data: &Path, runs: &str, every: &str) {
    let d = data.to_str().unwrap();
    let out = warden(&[
        "audit", "seed", "--data", d, "--runs", runs, "--every", every,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("checkpoint at size"), "{}", out.stderr);
}

#[test]
fn seeded_log_verifies_and_answers_queries_and_timelines() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    seed(&data, "40", "1m");

    let out = warden(&["audit", "verify", "--data", d]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("ok: "), "{}", out.stdout);

    let out = warden(&["audit", "verify", "--data", d, "--json"]);
    let report = out.json();
    assert_eq!(report["findings"], serde_json::json!([]));
    let leaves = report["leaves"].as_u64().unwrap();
    assert!(leaves > 100);

    // Query: JSON records that all match the filter.
    let out = warden(&[
        "audit",
        "query",
        "--data",
        d,
        "--tool",
        "stripe.refund",
        "--decision",
        "approval_required",
        "--limit",
        "1000",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let found = out.json();
    let found = found.as_array().unwrap();
    assert!(!found.is_empty());
    for r in found {
        assert_eq!(r["tool"], "stripe.refund");
        assert_eq!(r["checks"][0]["decision"], "approval_required");
    }
    // The table form names its columns.
    let out = warden(&[
        "audit",
        "query",
        "--data",
        d,
        "--agent",
        "intern-bot",
        "--limit",
        "3",
    ]);
    assert!(out.stdout.starts_with("SEQ  TIME"), "{}", out.stdout);

    // Timeline: a run with approvals, reconstructed from records alone.
    let run = found[0]["run"].as_str().unwrap();
    let out = warden(&["audit", "timeline", run, "--data", d]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(&format!("run {run}")));
    assert!(
        out.stdout.contains("run started by ticket ZD-"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("check: approval_required"),
        "{}",
        out.stdout
    );
    let json = warden(&["audit", "timeline", run, "--data", d, "--json"]).json();
    let kinds: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
}

#[test]
fn tampering_with_the_sqlite_file_fails_verify_naming_the_leaf() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    seed(&data, "10", "1m");
    edit_sqlite(
        &data.join("warden.db"),
        "UPDATE evidence SET body = replace(body, 'refund-request', 'refund-requesT') WHERE seq = 3",
    );
    let out = warden(&["audit", "verify", "--data", d]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.starts_with(
            "FAILED: modified at leaf 3: leaf 3: the record no longer matches its leaf hash"
        ),
        "{}",
        out.stdout
    );
    let report = warden(&["audit", "verify", "--data", d, "--json"]).json();
    assert_eq!(report["findings"][0]["kind"], "modified");
    assert_eq!(report["findings"][0]["seq"], 3);
}

/// Edits the database with a connection of its own, as an intruder would.
fn edit_sqlite(file: &Path, sql: &'static str) {
    let changed = crate::common::exec_sql(&format!("sqlite://{}", file.display()), sql);
    assert!(changed > 0, "the edit changed nothing");
}

#[test]
fn export_verifies_on_a_machine_without_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    seed(&data, "15", "1m");
    let key = warden(&["audit", "public-key", "--data", d])
        .stdout
        .trim()
        .to_owned();
    assert!(key.starts_with("warden-audit-"), "{key}");
    let export = tmp.path().join("audit.jsonl");
    let out = warden(&[
        "audit",
        "export",
        "--data",
        d,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("exported"), "{}", out.stderr);

    // The database is gone; the export and the key are all there is.
    std::fs::remove_dir_all(&data).unwrap();
    let key_file = tmp.path().join("key.pub");
    std::fs::write(&key_file, &key).unwrap();
    let e = export.to_str().unwrap();
    let out = warden(&[
        "audit",
        "verify",
        "--export",
        e,
        "--public-key",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("ok: "), "{}", out.stdout);
    assert!(
        !data.exists(),
        "verifying an export must not create a data directory"
    );

    // Drop one leaf line from the export: the gap is named.
    let text = std::fs::read_to_string(&export).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains("\"seq\":5,")).collect();
    std::fs::write(&export, kept.join("\n")).unwrap();
    let out = warden(&["audit", "verify", "--export", e, "--public-key", &key]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.starts_with("FAILED: deleted at leaf 5"),
        "{}",
        out.stdout
    );

    // Without a key, or with a malformed one, it will not run.
    let out = warden(&["audit", "verify", "--export", e]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = warden(&[
        "audit",
        "verify",
        "--export",
        e,
        "--public-key",
        "not-a-key",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("invalid key"), "{}", out.stderr);
}

#[test]
fn prune_keeps_the_log_verifiable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    // 48 runs an hour apart: two days of records.
    seed(&data, "48", "1h");
    let out = warden(&["audit", "prune", "--data", d, "--older-than", "1d"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pruned: u64 = out
        .stdout
        .split_whitespace()
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    assert!(pruned > 50, "{}", out.stdout);
    let report = warden(&["audit", "verify", "--data", d, "--json"]).json();
    assert_eq!(report["findings"], serde_json::json!([]));
    assert_eq!(report["pruned"].as_u64(), Some(pruned));
    // Pruned records still show up in queries, without payload.
    let old = warden(&[
        "audit", "query", "--data", d, "--until", "1d", "--limit", "5", "--json",
    ])
    .json();
    assert!(
        old.as_array().unwrap().iter().all(|r| r["pruned"] == true),
        "{old}"
    );
    let out = warden(&[
        "audit",
        "prune",
        "--data",
        d,
        "--older-than",
        "yesterday-ish",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("neither an RFC 3339 time"),
        "{}",
        out.stderr
    );
}

#[test]
fn decide_record_writes_a_redacted_record() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    // A valid refund whose customer id is sensitive in stripe.refund...
    let out = warden(&[
        "decide",
        PACK,
        "--agent",
        "support-bot",
        "--tool",
        "stripe.refund",
        "--args",
        r#"{"order_id":"ord_77","customer_id":"cus_TOPSECRET42","amount_cents":25000,"reason":"damaged"}"#,
        "--context",
        r#"{"workflow":"refund-request","run":"run-cli-1","trigger":{"source":"ticket","reference":"ZD-9"}}"#,
        "--record",
        d,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("recorded as leaf 0"), "{}", out.stderr);
    // ...and an invalid e-mail address in a sensitive field, which the
    // argument error quotes.
    let out = warden(&[
        "decide",
        PACK,
        "--agent",
        "support-bot",
        "--tool",
        "email.send_customer",
        "--args",
        r#"{"customer_id":"cus_1","to":"jane.SECRETMAIL","template":"refund_issued"}"#,
        "--record",
        d,
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["code"], "invalid_arguments");

    let found = warden(&[
        "audit",
        "query",
        "--data",
        d,
        "--run",
        "run-cli-1",
        "--json",
    ])
    .json();
    let rec = &found[0];
    assert_eq!(rec["status"], "awaiting_approval");
    assert_eq!(rec["trigger"]["reference"], "ZD-9");
    assert!(
        rec["args"]["customer_id"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert!(rec["args_sha256"].as_str().unwrap().starts_with("sha256:"));

    // Nothing sensitive anywhere in the database files (WAL included).
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in ["TOPSECRET42", "SECRETMAIL"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} found in {}",
                path.display()
            );
        }
    }
    let out = warden(&["audit", "verify", "--data", d]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn killed_writer_loses_no_acknowledged_record() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["audit", "seed", "--data", d, "--runs", "20000", "--json"])
        .current_dir(crate::common::root())
        .env_remove("WARDEN_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 3000 {
        let Some(Ok(line)) = lines.next() else { break };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        acked.push((
            v["seq"].as_u64().unwrap(),
            v["leaf_hash"].as_str().unwrap().to_owned(),
        ));
    }
    // Kill it in the middle of appending: no shutdown, no final checkpoint.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acked.len() >= 3000, "the writer stopped early");

    let out = warden(&["audit", "verify", "--data", d, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let export = tmp.path().join("after-crash.jsonl");
    let out = warden(&[
        "audit",
        "export",
        "--data",
        d,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut stored = std::collections::HashMap::new();
    for line in std::fs::read_to_string(&export).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] == "leaf" {
            stored.insert(
                v["seq"].as_u64().unwrap(),
                v["leaf_hash"].as_str().unwrap().to_owned(),
            );
        }
    }
    for (seq, hash) in &acked {
        assert_eq!(
            stored.get(seq),
            Some(hash),
            "acknowledged leaf {seq} lost or changed"
        );
    }
    // And the log still takes appends where it stopped.
    seed(&data, "2", "1m");
    let report = warden(&["audit", "verify", "--data", d, "--json"]).json();
    assert_eq!(report["findings"], serde_json::json!([]));
}

#[test]
fn bad_audit_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let d = d.to_str().unwrap();
    let out = warden(&["audit", "query", "--data", d, "--since", "last tuesday"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("`last tuesday` is neither"),
        "{}",
        out.stderr
    );
    let out = warden(&["audit", "timeline", "run-nope", "--data", d]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no records for run `run-nope`"),
        "{}",
        out.stderr
    );
    let out = warden(&[
        "audit",
        "verify",
        "--data",
        d,
        "--database-url",
        "mysql://x/y",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unsupported database URL"),
        "{}",
        out.stderr
    );
    let out = warden(&[
        "audit",
        "verify",
        "--export",
        "/nonexistent.jsonl",
        "--public-key",
        "k+00000000+AAAA",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn rotate_key_and_checkpoint_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    seed(&data, "5", "1m");
    let old = warden(&["audit", "public-key", "--data", d])
        .stdout
        .trim()
        .to_owned();

    let out = warden(&["audit", "rotate-key", "--data", d]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("rotated: "), "{}", out.stdout);
    let new = warden(&["audit", "public-key", "--data", d])
        .stdout
        .trim()
        .to_owned();
    assert_ne!(old, new);
    assert!(out.stdout.contains(&new), "{}", out.stdout);

    // A signed checkpoint, printed as a signed note by the new key.
    let out = warden(&["audit", "checkpoint", "--data", d]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let origin = new.split('+').next().unwrap();
    assert!(
        out.stdout.starts_with(&format!("{origin}\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("\n\n\u{2014} {origin} ")),
        "{}",
        out.stdout
    );

    // The original key alone still verifies everything: it vouched for the new one.
    let out = warden(&["audit", "verify", "--data", d, "--public-key", &old]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let rotated = warden(&[
        "audit",
        "query",
        "--data",
        d,
        "--kind",
        "key_rotated",
        "--json",
    ])
    .json();
    assert_eq!(rotated.as_array().unwrap().len(), 1);
    assert_eq!(rotated[0]["detail"]["new_key"], new.as_str());
}
