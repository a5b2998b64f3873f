//! Issue 16, "safety first": each defect found by a new team, reproduced
//! through the real server on loopback, and shown fixed. Tests are named
//! `i16_<defect>`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{copy_dir, root, warden};
use crate::gateway::refund;
use crate::oversight::{incident, wait};
use crate::serve::Server;

/// A copy of the support-refunds pack with `edits` applied to
/// `warden.toml` and `policy_edits` to `policies/access.cedar`, plus extra
/// policy files; it must validate.
pub(crate) fn support_pack(
    tmp: &Path,
    edits: &[(&str, &str)],
    policy_edits: &[(&str, &str)],
    extra_policies: &[(&str, &str)],
) -> PathBuf {
    let dir = tmp.join("pack");
    copy_dir(&root().join("examples/support-refunds"), &dir);
    let apply = |file: PathBuf, edits: &[(&str, &str)]| {
        let mut text = std::fs::read_to_string(&file).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "`{from}` is not in {}", file.display());
            text = text.replacen(from, to, 1);
        }
        std::fs::write(&file, text).unwrap();
    };
    apply(dir.join("warden.toml"), edits);
    apply(dir.join("policies/access.cedar"), policy_edits);
    for (name, text) in extra_policies {
        std::fs::write(dir.join("policies").join(name), text).unwrap();
    }
    let v = warden(&["validate", dir.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{}", v.snapshot());
    dir
}

fn post(server: &Server, token: &str, body: &str) -> Value {
    let (status, v) = server.post("/v1/actions", token, body);
    assert!(status == 201 || status == 202, "{status} {v}");
    v
}

fn delete_rows() -> String {
    json!({
        "tool": "db.delete_rows",
        "mode": "enforce",
        "arguments": {"table": "orders", "where": "id < 100"},
    })
    .to_string()
}

fn notes(customer: &str) -> String {
    json!({
        "tool": "crm.update_notes",
        "mode": "enforce",
        "arguments": {"customer_id": customer, "note": "called back"},
    })
    .to_string()
}

/// The `action_executed` records of action `id`.
fn executed(server: &Server, id: &str) -> Vec<Value> {
    let (_, found) = server.get(
        "/v1/audit?kind=action_executed&limit=1000",
        Some("demo-erin"),
    );
    found["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == id)
        .cloned()
        .collect()
}

#[test]
fn i16_shadow_mode_never_lifts_an_explicit_forbid() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = support_pack(
        tmp.path(),
        &[
            (
                "description = \"Answers support tickets; refunds damaged or missing orders\"",
                "description = \"Answers support tickets; refunds damaged or missing orders\"\nshadow = true",
            ),
            // Three would-be denials are enough to open a violation incident,
            // and its playbook would pause the agent were it not shadow.
            ("denials = 5", "denials = 3"),
            (
                "pages at once\"\nactions = [\"notify\"]",
                "pages at once\"\nactions = [\"pause\", \"notify\"]",
            ),
        ],
        // support-bot loses its grant for notes: a missing grant, not a forbid.
        &[(
            "unless { principal == Agent::\"intern-bot\" };\n\n@id(\"email",
            "unless { principal in [Agent::\"intern-bot\", Agent::\"support-bot\"] };\n\n@id(\"email",
        )],
        &[],
    );
    let server = Server::start_with(&tmp.path().join("data"), &pack);

    // An explicit forbid blocks in every mode: nothing is executed.
    let a = post(&server, "demo-support-bot", &delete_rows());
    assert_eq!(
        (
            a["status"].as_str(),
            a["code"].as_str(),
            a["shadow"].as_bool()
        ),
        (Some("denied"), Some("policy_denied"), Some(true)),
        "{a}"
    );
    assert!(a["decision"].get("shadow").is_none(), "{a}");
    assert!(executed(&server, a["action_id"].as_str().unwrap()).is_empty());

    // An approval gate is recorded as the would-be outcome and proceeds.
    let a = post(
        &server,
        "demo-support-bot",
        &refund(25_000, "ord_7", None, "enforce"),
    );
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(
        a["decision"]["shadow"]["status"], "awaiting_approval",
        "{a}"
    );

    // A missing grant too; and these would-be denials reach the detectors.
    for c in ["cus_1", "cus_2", "cus_3"] {
        let a = post(&server, "demo-support-bot", &notes(c));
        assert_eq!(a["status"], "succeeded", "{a}");
        assert_eq!(a["decision"]["shadow"]["code"], "policy_denied", "{a}");
    }
    let i = incident(&server, "policy-violations", "shadow:agent:support-bot");
    assert!(i["summary"].as_str().unwrap().starts_with("shadow:"), "{i}");
    // A shadow incident pages but does not pause the agent.
    let a = post(&server, "demo-support-bot", &notes("cus_4"));
    assert_eq!(a["status"], "succeeded", "{a}");
    assert!(server.stop().success());
}

#[test]
fn i16_a_policy_on_trial_is_reported_and_not_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let trial = r#"
@id("trial-refunds-over-50")
@shadow
@reason("trial: refunds above $50 may need a lower cap")
forbid (principal, action == Action::"stripe.refund", resource)
when { context.args.amount_cents > 5000 };
"#;
    let pack = support_pack(tmp.path(), &[], &[], &[("trial.cedar", trial)]);

    // `warden decide` shows the trial beside the decision in force.
    let out = warden(&[
        "decide",
        pack.to_str().unwrap(),
        "--agent",
        "support-bot",
        "--tool",
        "stripe.refund",
        "--args",
        r#"{"order_id":"ord_1","customer_id":"cus_1","amount_cents":8000,"reason":"damaged"}"#,
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.snapshot());
    let d = out.json();
    assert_eq!(d["decision"], "allow", "{d}");
    assert_eq!(d["trial"]["decision"], "deny", "{d}");
    assert_eq!(
        d["trial"]["policies"][0]["id"], "trial-refunds-over-50",
        "{d}"
    );

    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let a = post(
        &server,
        "demo-support-bot",
        &refund(8000, "ord_1", None, "enforce"),
    );
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(a["decision"]["shadow"]["code"], "policy_denied", "{a}");
    assert_eq!(
        a["decision"]["shadow"]["trial"],
        json!(["trial-refunds-over-50"]),
        "{a}"
    );
    // Below the trial's threshold nothing is reported.
    let a = post(
        &server,
        "demo-support-bot",
        &refund(3000, "ord_2", None, "enforce"),
    );
    assert_eq!(a["status"], "succeeded", "{a}");
    assert!(a["decision"].get("shadow").is_none(), "{a}");
    assert!(server.stop().success());
}

fn approve(server: &Server, id: &str, token: &str) -> Value {
    let (status, v) = server.post(
        &format!("/v1/approvals/{id}/decision"),
        token,
        r#"{"decision":"approve","comment":"ok"}"#,
    );
    assert_eq!(status, 200, "{v}");
    v
}

pub(crate) fn action(server: &Server, id: &str) -> Value {
    let (status, v) = server.get(&format!("/v1/actions/{id}"), Some("demo-support-bot"));
    assert_eq!(status, 200, "{v}");
    v
}

pub(crate) fn pending_refund(server: &Server, order: &str) -> (String, String) {
    let a = post(
        server,
        "demo-support-bot",
        &refund(50_000, order, None, "enforce"),
    );
    assert_eq!(a["status"], "awaiting_approval", "{a}");
    (
        a["action_id"].as_str().unwrap().to_owned(),
        a["approval_id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn i16_an_approval_never_carries_an_action_past_a_gate_that_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));

    // The circuit opens while the refund waits: approving does not run it.
    let (act, apr) = pending_refund(&server, "ord_circuit");
    let (status, v) = server.post(
        "/v1/tools/stripe.refund/circuit",
        "demo-olivia",
        r#"{"open_for":"10m","reason":"stripe incident"}"#,
    );
    assert_eq!(status, 200, "{v}");
    approve(&server, &apr, "demo-carol");
    let a = action(&server, &act);
    assert_eq!(
        (a["status"].as_str(), a["code"].as_str()),
        (Some("denied"), Some("tool_circuit_open")),
        "{a}"
    );
    assert!(
        executed(&server, &act).is_empty(),
        "executed past the circuit"
    );
    let (status, _) = server.post(
        "/v1/tools/stripe.refund/circuit",
        "demo-olivia",
        r#"{"open_for":"0s"}"#,
    );
    assert_eq!(status, 200);

    // The agent is paused while the refund waits.
    let (act, apr) = pending_refund(&server, "ord_paused");
    assert_eq!(
        server
            .post("/v1/agents/support-bot/pause", "demo-olivia", "{}")
            .0,
        200
    );
    approve(&server, &apr, "demo-carol");
    let a = action(&server, &act);
    assert_eq!(a["code"], "agent_paused", "{a}");
    assert!(executed(&server, &act).is_empty());
    assert_eq!(
        server
            .post("/v1/agents/support-bot/resume", "demo-olivia", "{}")
            .0,
        200
    );

    // Quarantined while it waits: finance's approval is not enough, the
    // quarantine group must approve too; then it executes once.
    let (act, apr) = pending_refund(&server, "ord_quarantine");
    let (status, v) = server.post(
        "/v1/agents/support-bot/quarantine",
        "demo-olivia",
        r#"{"group":"support-leads","reason":"odd output"}"#,
    );
    assert_eq!(status, 200, "{v}");
    let v = approve(&server, &apr, "demo-carol");
    assert_eq!(v["state"], "pending", "{v}");
    assert_eq!(action(&server, &act)["status"], "awaiting_approval");
    let v = approve(&server, &apr, "demo-tina");
    assert_eq!(v["state"], "approved", "{v}");
    let a = wait("the refund to execute", || {
        let a = action(&server, &act);
        (a["status"] == "succeeded").then_some(a)
    });
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(executed(&server, &act).len(), 1);
    assert!(server.stop().success());
}

#[test]
fn i16_concurrent_outcome_reports_one_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let a = post(
        &server,
        "demo-support-bot",
        r#"{"tool":"crm.lookup_customer","mode":"check","arguments":{"customer_id":"cus_1"}}"#,
    );
    assert_eq!(a["status"], "approved", "{a}");
    let id = a["action_id"].as_str().unwrap().to_owned();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    server
                        .post(
                            &format!("/v1/actions/{id}/outcome"),
                            "demo-support-bot",
                            r#"{"status":"succeeded","result":{"name":"Ada"}}"#,
                        )
                        .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(executed(&server, &id).len(), 1);
    assert!(server.stop().success());
}

#[test]
fn i16_identical_proposals_share_one_request_and_every_attempt_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let body = refund(35_000, "ord_same", None, "enforce");
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| server.post("/v1/actions", "demo-support-bot", &body)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut approvals: Vec<&str> = answers
        .iter()
        .map(|(_, a)| a["approval_id"].as_str().unwrap_or("none"))
        .collect();
    approvals.sort_unstable();
    approvals.dedup();
    assert_eq!(approvals.len(), 1, "{answers:?}");
    let mut actions: Vec<&str> = answers
        .iter()
        .map(|(_, a)| a["action_id"].as_str().unwrap())
        .collect();
    actions.dedup();
    assert_eq!(actions.len(), 1, "{answers:?}");
    // Every attempt left a record: one decision, nineteen re-proposals
    // pointing at the same request.
    let (_, found) = server.get(
        "/v1/audit?kind=action_reproposed&limit=1000",
        Some("demo-erin"),
    );
    let again = found["records"].as_array().unwrap();
    assert_eq!(again.len(), 19, "{found}");
    assert!(
        again
            .iter()
            .all(|r| r["detail"]["approval_id"] == approvals[0])
    );
    // Approved once, executed once.
    approve(&server, approvals[0], "demo-carol");
    let act = actions[0];
    wait("the refund to execute", || {
        (action(&server, act)["status"] == "succeeded").then_some(())
    });
    assert_eq!(executed(&server, act).len(), 1);
    // The documented way to learn the outcome: the same call answers the
    // same action, recorded as another attempt, with no retry storm.
    let (_, a) = server.post("/v1/actions", "demo-support-bot", &body);
    assert_eq!(a["action_id"], act, "{a}");
    let (_, list) = server.get("/v1/incidents", Some("demo-olivia"));
    assert!(
        !list.to_string().contains("retry-storm"),
        "re-proposals counted as retries: {list}"
    );
    assert!(server.stop().success());
}

/// Starts a refund run whose trigger names `requester`, does its lookup,
/// and proposes a $500 refund in it; returns the approval id.
pub(crate) fn refund_requested_by(server: &Server, requester: &str, order: &str) -> String {
    let (status, run) = server.post(
        "/v1/runs",
        "demo-support-bot",
        &json!({"workflow": "refund-request", "trigger": {"source": "ticket", "reference": "T-9", "requester": requester}}).to_string(),
    );
    assert_eq!(status, 201, "{run}");
    let run = run["run_id"].as_str().unwrap();
    let a = post(
        server,
        "demo-support-bot",
        &json!({"tool": "crm.lookup_customer", "mode": "enforce", "arguments": {"customer_id": "cus_1"}, "run_id": run}).to_string(),
    );
    assert_eq!(a["status"], "succeeded", "{a}");
    let a = post(
        server,
        "demo-support-bot",
        &refund(50_000, order, Some(run), "enforce"),
    );
    assert_eq!(a["status"], "awaiting_approval", "{a}");
    a["approval_id"].as_str().unwrap().to_owned()
}

#[test]
fn i16_separation_of_duties_knows_requesters_by_email_alias_and_case() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = support_pack(
        tmp.path(),
        &[(
            "email = \"dave@example.com\"",
            "email = \"dave@example.com\"\naliases = [\"U024BE7LH\"]",
        )],
        &[],
        &[],
    );
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    for (n, requester) in [
        "dave@example.com",
        "Dave@Example.com",
        "DAVE",
        " u024be7lh ",
        "dave.lindqvist@corp.example",
    ]
    .iter()
    .enumerate()
    {
        let apr = refund_requested_by(&server, requester, &format!("ord_{n}"));
        let (status, e) = server.post(
            &format!("/v1/approvals/{apr}/decision"),
            "demo-dave",
            r#"{"decision":"approve"}"#,
        );
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (403, Some("separation_of_duties")),
            "{requester}: {e}"
        );
        let why = e["error"]["message"].as_str().unwrap();
        assert!(why.contains("request"), "{requester}: {why}");
        // Another member of finance may.
        approve(&server, &apr, "demo-carol");
    }
    // A requester who is somebody else does not bind dave.
    let apr = refund_requested_by(&server, "ada@example.com", "ord_ada");
    approve(&server, &apr, "demo-dave");
    assert!(server.stop().success());
}

#[test]
fn i16_sensitive_values_never_reach_evidence_whatever_their_escaping() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let shapes = [
        "cus_X\"q",
        "cus_X\\q",
        "cus_X\nq",
        "cus_X\tq",
        "cus_X\r\nq",
        "cus_X\u{0}q",
        "cus_X\u{1f}q",
        "cus_X\u{7f}q",
        "cus_X\u{2028}q",
        "cus_Xé q",
        "cus_X</script>q",
        "cus_X'q",
        "cus_X q",
        " cus_Xq",
        "cus_X😀q",
    ];
    let mut secrets: Vec<String> = Vec::new();
    for (n, s) in shapes.iter().enumerate() {
        let secret = format!("{s}{n}SECRET");
        let body = json!({"tool": "stripe.refund", "arguments": {"order_id": "ord_1", "customer_id": secret, "amount_cents": 100, "reason": "damaged"}});
        let (status, e) = server.post("/v1/actions", "demo-support-bot", &body.to_string());
        assert_eq!(status, 400, "{e}");
        secrets.push(secret);
    }
    for (n, to) in [
        "a@example.com\n",
        "a@example.com\r\n",
        "a\"b@example.com ",
        "not an email",
        "a@example.com\u{0}",
    ]
    .iter()
    .enumerate()
    {
        let to = format!("{n}SECRET{to}");
        let body = json!({"tool": "email.send_customer", "arguments": {"customer_id": "cus_1", "to": to, "template": "refund_issued"}});
        let (status, e) = server.post("/v1/actions", "demo-support-bot", &body.to_string());
        assert_eq!(status, 400, "{e}");
        secrets.push(to);
    }
    let (_, found) = server.get("/v1/audit?limit=1000", Some("demo-erin"));
    let records = found.to_string();
    assert!(records.contains("invalid_arguments"), "{records}");
    for secret in &secrets {
        let escaped = serde_json::to_string(secret).unwrap();
        let inner = &escaped[1..escaped.len() - 1];
        assert!(!records.contains(secret.as_str()), "{secret:?} in clear");
        assert!(!records.contains(inner), "{secret:?} escaped as {inner}");
    }
    assert!(
        !records.contains("SECRET"),
        "a sensitive value leaked: {records}"
    );
    assert!(server.stop().success());
    // Nor anywhere in the stored files (database, WAL, keys).
    for entry in std::fs::read_dir(tmp.path().join("data")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"SECRET"),
            "a sensitive value is stored in clear"
        );
    }
}

/// Runs `warden ARGS`, reads one line of its output and closes the pipe.
fn first_line_then_close(args: &[&str]) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(root())
        .env_remove("WARDEN_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.is_empty());
    // The reader is gone: the pipe is closed.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code(), stderr)
}

#[test]
fn i16_cut_short_output_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let seeded = warden(&["audit", "seed", "--data", d, "--runs", "3000"]);
    assert_eq!(seeded.code, 0, "{}", seeded.snapshot());
    for args in [
        vec!["audit", "query", "--data", d, "--limit", "100000"],
        vec!["audit", "query", "--data", d, "--limit", "100000", "--json"],
        vec!["audit", "timeline", "run-0000001", "--data", d],
    ] {
        let (code, stderr) = first_line_then_close(&args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        // Ended by SIGPIPE (no code) or a clean exit, like `cat`.
        assert!(
            matches!(code, None | Some(0)),
            "{args:?}: {code:?} {stderr}"
        );
    }
}

#[test]
fn i16_a_refused_reload_is_visible_in_health_metrics_and_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = support_pack(tmp.path(), &[], &[], &[]);
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let (_, h) = server.get("/healthz", None);
    assert_eq!(h["status"], "ok", "{h}");
    let version = h["policy_version"].clone();

    let broken = pack.join("policies/broken.cedar");
    std::fs::write(
        &broken,
        "@id(\"oops\")\npermit (principal, action == Action::\"no.such\", resource);\n",
    )
    .unwrap();
    server.signal("-HUP");
    let h = wait("/healthz to say degraded", || {
        let (_, h) = server.get("/healthz", None);
        (h["status"] == "degraded").then_some(h)
    });
    assert_eq!(
        h["policy_version"], version,
        "the old pack keeps serving: {h}"
    );
    assert!(
        h["reload_refused"]["error"]
            .as_str()
            .unwrap()
            .contains("no.such"),
        "{h}"
    );
    assert!(h["reload_refused"]["refused_version"].is_string(), "{h}");
    let (_, m) = server.get_text("/metrics");
    assert!(m.contains("warden_pack_reload_refused 1"), "{m}");
    let rec = &server.wait_for("pack_reloaded", 1)[0];
    assert_eq!(rec["code"], "pack_invalid", "{rec}");
    assert_eq!(
        rec["detail"]["refused_version"],
        h["reload_refused"]["refused_version"]
    );

    // Fixed: healthy again.
    std::fs::remove_file(&broken).unwrap();
    server.signal("-HUP");
    wait("/healthz to say ok", || {
        let (_, h) = server.get("/healthz", None);
        (h["status"] == "ok").then_some(())
    });
    let (_, m) = server.get_text("/metrics");
    assert!(m.contains("warden_pack_reload_refused 0"), "{m}");
    assert!(server.stop().success());
}

#[test]
fn i16_responders_act_on_their_own_incidents_and_systems() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    // carol owns `stripe`: she may open and close its tools' circuits.
    let (status, v) = server.post(
        "/v1/tools/stripe.refund/circuit",
        "demo-carol",
        r#"{"open_for":"5m","reason":"stripe degraded"}"#,
    );
    assert_eq!(status, 200, "{v}");
    let (status, _) = server.post(
        "/v1/tools/stripe.refund/circuit",
        "demo-carol",
        r#"{"open_for":"0s"}"#,
    );
    assert_eq!(status, 200);
    // Not another system's.
    let (status, v) = server.post("/v1/tools/db.delete_rows/circuit", "demo-carol", "{}");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );

    // A critical attempt pages olivia at once; sam, her teammate, may
    // acknowledge it; carol, of another team, may not.
    let a = post(
        &server,
        "demo-support-bot",
        &refund(600_000, "ord_big", None, "enforce"),
    );
    assert_eq!(a["code"], "policy_denied", "{a}");
    let i = incident(&server, "policy-violations", "agent:support-bot");
    let id = i["id"].as_str().unwrap();
    let (status, v) = server.post(&format!("/v1/incidents/{id}/ack"), "demo-carol", "{}");
    assert_eq!(status, 403, "{v}");
    let (status, v) = server.post(&format!("/v1/incidents/{id}/ack"), "demo-sam", "{}");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("acknowledged")),
        "{v}"
    );
    assert!(server.stop().success());
}

/// Files of the data directory, as bytes: the SQLite database and its WAL.
fn data_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("warden.db"))
        {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn i16_results_are_recorded_redacted_and_a_subject_can_be_erased() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = support_pack(
        tmp.path(),
        &[(
            "payout_iban = \"GB82 WEST 1234 5698 7654 32\",",
            "payout_iban = \"GB82 WEST 1234 5698 7654 32\", ssn = \"123-45-6789\", card = \"4111 1111 1111 1111\", note = \"gift card GC-AB12-CD34-EF56 sent\",",
        )],
        &[],
        &[],
    );
    let data = tmp.path().join("data");
    let server = Server::start_with(&data, &pack);
    let settled = |v: Value, token: &str| -> Value {
        if v["status"] == "executing" {
            let path = format!("/v1/actions/{}?wait=10s", v["action_id"].as_str().unwrap());
            server.get(&path, Some(token)).1
        } else {
            v
        }
    };
    // A refund for cus_SECRET7, whose customer_id is a sensitive argument.
    let r = settled(
        post(
            &server,
            "demo-support-bot",
            &refund(1500, "ord_9", None, "enforce"),
        ),
        "demo-support-bot",
    );
    assert_eq!(r["status"], "succeeded", "{r}");
    let lookup = |customer: &str| {
        let body = json!({"tool": "crm.lookup_customer", "mode": "enforce", "arguments": {"customer_id": customer}});
        settled(
            post(&server, "demo-support-bot", &body.to_string()),
            "demo-support-bot",
        )
    };
    let a = lookup("cus_1");
    // The agent gets the whole result.
    assert_eq!(a["outcome"]["result"]["ssn"], "123-45-6789", "{a}");
    // The record keeps none of it in clear, and says what it found.
    let rec = &executed(&server, a["action_id"].as_str().unwrap())[0];
    let recorded = rec["detail"]["result"].to_string();
    for clear in ["123-45-6789", "4111", "GB82", "1815-12-10", "GC-AB12"] {
        assert!(!recorded.contains(clear), "{clear} in {recorded}");
    }
    assert_eq!(
        rec["detail"]["result"]["email"], "ada@example.com",
        "flagged, not redacted"
    );
    assert_eq!(rec["detail"]["result"]["name"], "Ada Lovelace");
    let kinds: Vec<&str> = rec["detail"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for k in [
        "declared",
        "iban",
        "us_ssn",
        "card_number",
        "gift_card_code",
        "email",
    ] {
        assert!(kinds.contains(&k), "{k} not in {kinds:?}");
    }
    // Nowhere in the database files either: not in the log, not in the
    // action's row.
    let bytes = data_bytes(&data);
    for clear in ["123-45-6789", "4111 1111 1111 1111", "GC-AB12-CD34-EF56"] {
        assert!(!contains(&bytes, clear), "{clear} is in the database");
    }
    // Kinds the tool does not declare still open an incident.
    let inc = incident(&server, "data-in-output", "content");
    assert!(inc["summary"].as_str().unwrap().contains("us_ssn"), "{inc}");
    let other = lookup("cus_2");

    // Which records hold cus_SECRET7: the refund's.
    let all = |server: &Server| -> Vec<Value> {
        let (_, q) = server.get("/v1/audit?limit=10000", Some("demo-erin"));
        q["records"].as_array().unwrap().clone()
    };
    let of = |records: &[Value], action: &Value| -> Vec<u64> {
        records
            .iter()
            .filter(|x| &x["action"] == action)
            .map(|x| x["seq"].as_u64().unwrap())
            .collect()
    };
    let before = all(&server);
    let refund_seqs = of(&before, &r["action_id"]);
    let kept_seqs = [
        of(&before, &a["action_id"]),
        of(&before, &other["action_id"]),
    ]
    .concat();
    assert!(!refund_seqs.is_empty() && !kept_seqs.is_empty());

    // Bad requests are refused and erase nothing.
    let url = server.base.clone();
    let cli = |args: &[&str], token: &str| {
        let mut all = vec!["audit", "erase", "--server", url.as_str(), "--token", token];
        all.extend_from_slice(args);
        warden(&all)
    };
    let no_eq = cli(
        &["--where", "customer_id", "--reason", "DSR-1"],
        "demo-erin",
    );
    assert_ne!(no_eq.code, 0);
    assert!(no_eq.stderr.contains("FIELD=VALUE"), "{}", no_eq.snapshot());
    let agent = cli(
        &["--where", "customer_id=cus_SECRET7", "--reason", "DSR-1"],
        "demo-support-bot",
    );
    assert_ne!(agent.code, 0);
    assert!(agent.stderr.contains("forbidden"), "{}", agent.snapshot());
    for body in [
        json!({"field": "customer_id", "value": "cus_SECRET7", "reason": " "}),
        json!({"field": "customer_id", "value": {"a": 1}, "reason": "DSR-1"}),
        json!({"field": "customer_id", "value": "cus_SECRET7"}),
    ] {
        let (status, e) = server.post("/v1/audit/erase", "demo-erin", &body.to_string());
        assert!(status == 400 || status == 422, "{status} {e}");
        assert!(e["error"]["code"].is_string(), "{e}");
    }
    let pruned = |records: &[Value]| records.iter().filter(|x| x["pruned"] == true).count();
    assert_eq!(pruned(&all(&server)), 0);

    let out = cli(
        &[
            "--where",
            "customer_id=cus_SECRET7",
            "--reason",
            "DSR-2026-118",
        ],
        "demo-erin",
    );
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert!(
        out.stdout.contains("erased the payloads of"),
        "{}",
        out.snapshot()
    );
    let (_, q) = server.get("/v1/audit?kind=records_erased", Some("demo-erin"));
    let erased = q["records"][0].clone();
    assert_eq!(erased["detail"]["reason"], "DSR-2026-118");
    assert_eq!(erased["detail"]["by"], "erin");
    assert!(!erased.to_string().contains("cus_SECRET7"), "{erased}");
    let seqs: Vec<u64> = erased["detail"]["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    // The refund's decision held the (tokenised) customer id; its
    // execution record holds only the refund id, and is kept.
    let decided: Vec<u64> = before
        .iter()
        .filter(|x| x["action"] == r["action_id"] && x["kind"] == "action_decided")
        .map(|x| x["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, decided, "exactly the records holding the value");
    assert!(refund_seqs.len() > seqs.len());
    let after = all(&server);
    assert_eq!(pruned(&after), seqs.len());
    for s in &kept_seqs {
        assert!(
            after
                .iter()
                .any(|x| x["seq"] == *s && x["pruned"].is_null()),
            "#{s} kept"
        );
    }
    // The refund's action row keeps no arguments or result.
    let (_, view) = server.get(
        &format!("/v1/actions/{}", r["action_id"].as_str().unwrap()),
        Some("demo-support-bot"),
    );
    assert!(
        view["outcome"].is_null() || view["outcome"].get("result").is_none(),
        "{view}"
    );
    // The log still verifies, with the erased leaves counted as pruned.
    let (_, v) = server.get("/v1/audit/verify", Some("demo-erin"));
    assert_eq!(v["ok"], true, "{v}");
    assert!(server.stop().success());
    let verify = warden(&["audit", "verify", "--data", data.to_str().unwrap()]);
    assert_eq!(verify.code, 0, "{}", verify.snapshot());
    assert!(
        verify.stdout.contains(&format!("({} pruned)", seqs.len())),
        "{}",
        verify.snapshot()
    );
}

#[test]
fn i16_validate_warns_of_playbooks_that_fire_together_and_groups_that_cannot_approve() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pack");
    copy_dir(&root().join("examples/support-refunds"), &dir);
    let manifest = dir.join("warden.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    for (from, to) in [
        // Every policy_violation playbook sees intern-bot's denials again.
        (
            "agents = [\"support-bot\", \"billing-bot\"]   # intern-bot",
            "# intern-bot",
        ),
        // The support leads would hold billing-bot too.
        (
            "agents = [\"support-bot\", \"intern-bot\"]   # the support",
            "# the support",
        ),
        // Filters on a policy that does not exist, and on a detector that
        // has no policies.
        (
            "description = \"An agent keeps trying what policy forbids; a critical",
            "policies = [\"refund-cap-500\"]\ndescription = \"An agent keeps trying what policy forbids; a critical",
        ),
        (
            "description = \"A run or tool retries over and over",
            "severities = [\"critical\"]\ndescription = \"A run or tool retries over and over",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    // A quarantine group whose only member owns the agent it would hold.
    text.push_str(
        "\n[[approver_groups]]\nid = \"billing-owner\"\nmembers = [\"carol\"]\n\n[[playbooks]]\nid = \"billing-quarantine\"\ndetector = \"retry_storm\"\nagents = [\"billing-bot\"]\nowner = \"olivia\"\nrespond_within = \"15m\"\nactions = [\"quarantine\", \"notify\"]\nquarantine_group = \"billing-owner\"\n",
    );
    std::fs::write(&manifest, text).unwrap();
    let out = warden(&["validate", dir.to_str().unwrap(), "--error-format", "json"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    let report = out.json();
    let diags = report["diagnostics"].as_array().unwrap();
    let find = |code: &str, needle: &str| {
        diags
            .iter()
            .find(|d| d["code"] == code && d["message"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no {code} with {needle}: {report:#}"))
            .clone()
    };
    let overlap = find(
        "playbooks_overlap",
        "`policy-violations` and `intern-write-attempts`",
    );
    assert_eq!(overlap["severity"], "warning");
    assert!(
        overlap["message"]
            .as_str()
            .unwrap()
            .contains("agent intern-bot"),
        "{overlap}"
    );
    assert!(overlap["line"].as_u64().is_some());
    find(
        "playbooks_overlap",
        "`data-in-output` and `billing-data-in-output`",
    );
    let other = find("quarantine_other_team", "billing-bot");
    assert_eq!(other["severity"], "warning");
    let cannot = find("quarantine_cannot_approve", "`billing-owner`");
    assert_eq!(cannot["severity"], "error");
    assert!(
        cannot["message"]
            .as_str()
            .unwrap()
            .contains("0 of its members"),
        "{cannot}"
    );
    let unknown = find("unknown_reference", "refund-cap-500");
    assert_eq!(unknown["help"], "did you mean `refund-cap-5000`?");
    find("invalid_playbook", "only a `policy_violation` playbook");
}

#[test]
fn i16_playbooks_fire_only_for_their_policies_agents_and_workflows() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = support_pack(
        tmp.path(),
        &[
            (
                "agents = [\"support-bot\", \"billing-bot\"]   # intern-bot",
                "policies = [\"refund-cap-5000\"]\nagents = [\"support-bot\", \"billing-bot\"]   # intern-bot",
            ),
            (
                "id = \"stuck-refunds\"\ndetector = \"stuck\"\nowner = \"olivia\"",
                "id = \"stuck-refunds\"\ndetector = \"stuck\"\nworkflows = [\"refund-request\"]\nowner = \"workflow\"",
            ),
            ("run_idle = \"30m\"", "run_idle = \"1s\""),
        ],
        &[],
        &[],
    );
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    // Six denials by another policy: `policy-violations` filters on the cap.
    for _ in 0..6 {
        let a = post(&server, "demo-support-bot", &delete_rows());
        assert_eq!(a["code"], "policy_denied", "{a}");
    }
    // One critical attempt by intern-bot: its own playbook, one incident.
    let a = post(
        &server,
        "demo-intern-bot",
        &refund(600_000, "ord_1", None, "enforce"),
    );
    assert_eq!(a["code"], "policy_denied", "{a}");
    let intern = incident(&server, "intern-write-attempts", "agent:intern-bot");
    // One critical attempt by support-bot: the cap's playbook.
    let a = post(
        &server,
        "demo-support-bot",
        &refund(600_000, "ord_2", None, "enforce"),
    );
    assert_eq!(a["code"], "policy_denied", "{a}");
    let cap = incident(&server, "policy-violations", "agent:support-bot");
    assert!(
        cap["summary"].as_str().unwrap().contains("refund-cap-5000"),
        "{cap}"
    );
    assert_eq!(
        cap["triggers"], 1,
        "the delete attempts did not count: {cap}"
    );
    let all = crate::oversight::incidents(&server);
    let about = |agent: &str| {
        all.iter()
            .filter(|i| i["subject"]["agent"] == agent)
            .count()
    };
    assert_eq!(about("intern-bot"), 1, "one incident per event: {all:#?}");
    assert_eq!(intern["severity"], "critical");
    let (_, runs) = server.get("/v1/views/runs", Some("demo-olivia"));
    assert!(
        runs["quarantined_agents"].get("intern-bot").is_none(),
        "{runs}"
    );

    // A stalled run pages its workflow's owner, who may acknowledge it.
    let run = crate::gateway::start_run(&server, "demo-support-bot");
    let stuck = incident(&server, "stuck-refunds", &format!("run:{run}"));
    assert_eq!(stuck["owner"], "sam", "{stuck}");
    assert_eq!(stuck["subject"]["workflow"], "refund-request");
    let id = stuck["id"].as_str().unwrap();
    let (status, v) = server.post(&format!("/v1/incidents/{id}/ack"), "demo-sam", "{}");
    assert_eq!(status, 200, "{v}");
    assert!(server.stop().success());
}

#[test]
fn i16_the_contract_holds_for_odd_paths_bodies_and_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    // Query parameters are declared as query parameters.
    let (_, api) = server.get("/v1/openapi.json", None);
    let mut query = 0;
    for (path, item) in api["paths"].as_object().unwrap() {
        for op in item.as_object().unwrap().values() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let want = if path.contains(&format!("{{{}}}", p["name"].as_str().unwrap())) {
                    "path"
                } else {
                    query += 1;
                    "query"
                };
                assert_eq!(p["in"], want, "{path} {p}");
            }
        }
    }
    assert!(query >= 20, "{query} query parameters");
    // A path that is not UTF-8 gets the JSON error, on every `{id}` route.
    for path in [
        "/v1/actions/%FF%FE",
        "/v1/approvals/%FF",
        "/v1/runs/%FF",
        "/v1/incidents/%FF",
    ] {
        let (status, e) = server.get(path, Some("demo-olivia"));
        assert_eq!(status, 400, "{path} {e}");
        assert_eq!(e["error"]["code"], "invalid_request", "{path} {e}");
    }
    // `/mcp`: a body that is not JSON is a JSON-RPC parse error.
    let resp = crate::common::client()
        .post(format!("{}/mcp", server.base))
        .bearer_auth("demo-support-bot")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().unwrap();
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert_eq!(v["jsonrpc"], "2.0");
    // A session: non-object `arguments` are invalid params (-32602), with
    // the request's id; closing the session answers 200.
    let mcp = |session: Option<&str>, body: &str| {
        let mut r = crate::common::client()
            .post(format!("{}/mcp", server.base))
            .bearer_auth("demo-support-bot")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned());
        if let Some(id) = session {
            r = r
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-06-18");
        }
        r.send().unwrap()
    };
    let init = mcp(
        None,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    );
    assert_eq!(init.status().as_u16(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(init.text());
    let sent = mcp(
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert!(sent.status().is_success(), "{}", sent.status());
    for (id, args) in [(2, "[1,2]"), (3, "\"cus_1\""), (4, "42")] {
        let resp = mcp(
            Some(&session),
            &format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"crm_lookup_customer","arguments":{args}}}}}"#
            ),
        );
        let v: Value = resp.json().unwrap();
        assert_eq!(v["error"]["code"], -32602, "{args}: {v}");
        assert_eq!(v["id"], id, "{v}");
    }
    // Nothing was proposed by those calls.
    let (_, v) = server.get("/v1/audit?kind=action_decided", Some("demo-erin"));
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "{v}");
    let closed = crate::common::client()
        .delete(format!("{}/mcp", server.base))
        .bearer_auth("demo-support-bot")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .unwrap();
    assert_eq!(closed.status().as_u16(), 200);
    assert!(server.stop().success());
}
