//! The gateway end to end on `examples/support-refunds`, through the built
//! binary on loopback: runs and step order, enforce mode through real HTTP
//! receivers, idempotency, check-mode outcomes and long-polling, shadow
//! mode, the kill switch, bad input, OpenAPI and metrics (issue 4).

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Receiver, copy_dir, root, warden};
use crate::serve::Server;

pub(crate) fn refund(cents: u32, order: &str, run: Option<&str>, mode: &str) -> String {
    let mut v = json!({
        "tool": "stripe.refund",
        "mode": mode,
        "arguments": {"order_id": order, "customer_id": "cus_SECRET7", "amount_cents": cents, "reason": "damaged"},
    });
    if let Some(r) = run {
        v["run_id"] = json!(r);
    }
    v.to_string()
}

pub(crate) fn start_run(server: &Server, token: &str) -> String {
    let (status, run) = server.post(
        "/v1/runs",
        token,
        r#"{"workflow":"refund-request","trigger":{"source":"ticket","reference":"T-1042","requester":"ada@example.com"}}"#,
    );
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["next_steps"], json!(["crm.lookup_customer"]));
    run["run_id"].as_str().unwrap().to_owned()
}

/// A copy of the example pack with `edit` applied to its manifest.
pub(crate) fn pack_with(
    tmp: &std::path::Path,
    edit: impl Fn(String) -> String,
) -> std::path::PathBuf {
    let pack = tmp.join("pack");
    copy_dir(&root().join("examples/support-refunds"), &pack);
    let manifest = pack.join("warden.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, edit(text)).unwrap();
    assert_eq!(warden(&["validate", pack.to_str().unwrap()]).code, 0);
    pack
}

/// Replaces stripe.refund's mock connector by an http one.
pub(crate) fn refund_over_http(text: String, execute: &str) -> String {
    let start = text
        .find("connector = \"mock\"          # in production")
        .unwrap();
    let end = start + text[start..].find("[tools.args]").unwrap();
    format!("{}{execute}\n{}", &text[..start], &text[end..])
}

#[test]
fn a_refund_run_in_order_succeeds_and_out_of_order_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data);
    let run = start_run(&server, "demo-support-bot");

    // The refund before the lookup: refused by the workflow graph.
    let (status, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(5000, "ord_1", Some(&run), "enforce"),
    );
    assert_eq!(
        (status, a["status"].as_str(), a["code"].as_str()),
        (201, Some("denied"), Some("step_out_of_order")),
        "{a}"
    );
    assert_eq!(a["decision"]["gate"]["code"], "step_out_of_order");

    // In order, executed through the mock connectors.
    let lookup = r#"{"tool":"crm.lookup_customer","mode":"enforce","arguments":{"customer_id":"cus_1"},"run_id":"RUN"}"#.replace("RUN", &run);
    let (status, a) = server.post("/v1/actions", "demo-support-bot", &lookup);
    assert_eq!(
        (status, a["status"].as_str()),
        (201, Some("succeeded")),
        "{a}"
    );
    assert_eq!(a["outcome"]["result"]["name"], "Ada Lovelace");
    let (status, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(5000, "ord_1", Some(&run), "enforce"),
    );
    assert_eq!(
        (status, a["status"].as_str()),
        (201, Some("succeeded")),
        "{a}"
    );
    assert_eq!(a["step"], "stripe.refund");
    let email = r#"{"tool":"email.send_customer","mode":"enforce","arguments":{"customer_id":"cus_1","to":"ada@example.com","template":"refund_issued"},"run_id":"RUN"}"#.replace("RUN", &run);
    let (status, a) = server.post("/v1/actions", "demo-support-bot", &email);
    assert_eq!(
        (status, a["status"].as_str()),
        (201, Some("succeeded")),
        "{a}"
    );

    // The run is complete; another agent cannot see or use it.
    let (status, r) = server.get(&format!("/v1/runs/{run}"), Some("demo-support-bot"));
    assert_eq!(
        (status, r["state"].as_str()),
        (200, Some("completed")),
        "{r}"
    );
    assert_eq!(
        r["done_steps"],
        json!([
            "crm.lookup_customer",
            "stripe.refund",
            "email.send_customer"
        ])
    );
    assert_eq!(r["actions"].as_array().unwrap().len(), 4);
    let (status, e) = server.get(&format!("/v1/runs/{run}"), Some("demo-billing-bot"));
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("unknown_run"))
    );
    let (status, e) = server.post(
        "/v1/actions",
        "demo-billing-bot",
        &refund(100, "ord_2", Some(&run), "check"),
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("run_forbidden")),
        "{e}"
    );
    let (status, e) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(100, "ord_2", Some(&run), "check"),
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("run_closed")),
        "{e}"
    );
    let (status, e) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(100, "ord_2", Some("run_nope"), "check"),
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("unknown_run")),
        "{e}"
    );
    let (status, e) = server.post("/v1/runs", "demo-support-bot", r#"{"workflow":"payroll"}"#);
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("unknown_workflow")),
        "{e}"
    );
    assert!(server.stop().success());

    // The timeline reconstructs the run from the log alone.
    let d = data.to_str().unwrap();
    let out = warden(&["audit", "timeline", "--data", d, &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let t = &out.stdout;
    assert!(
        t.contains("run started by ticket T-1042 (requested by ada@example.com)"),
        "{t}"
    );
    assert!(t.contains("→ denied (step_out_of_order)"), "{t}");
    assert!(
        t.contains("executed crm.lookup_customer → succeeded"),
        "{t}"
    );
    assert!(t.contains("executed stripe.refund → succeeded"), "{t}");
    assert!(
        t.contains("run finished: every step of `refund-request` succeeded"),
        "{t}"
    );
    assert!(!t.contains("cus_SECRET7"), "{t}");
    let report = warden(&["audit", "verify", "--data", d, "--json"]).json();
    assert_eq!(report["findings"], json!([]));
}

#[test]
fn a_fifty_dollar_refund_executes_once_at_a_receiver() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Duration::ZERO, 0);
    let pack = pack_with(tmp.path(), |t| {
        refund_over_http(
            t,
            r#"connector = "http"
url_env = "REFUND_URL"
timeout = "5s"
credential = { header = "Authorization", prefix = "Bearer ", env = "STRIPE_TEST_KEY" }"#,
        )
    });
    let url = format!("{}/v1/refunds", receiver.url);
    let server = Server::start_args(
        &tmp.path().join("data"),
        &pack,
        &[],
        &[
            ("REFUND_URL", &url),
            ("STRIPE_TEST_KEY", "sk_test_TOPSECRET"),
        ],
    );
    let mut body: Value = serde_json::from_str(&refund(5000, "ord_50", None, "enforce")).unwrap();
    body["idempotency_key"] = json!("T-1042-refund");
    let (status, a) = server.post("/v1/actions", "demo-support-bot", &body.to_string());
    assert_eq!(
        (status, a["status"].as_str()),
        (201, Some("succeeded")),
        "{a}"
    );
    assert_eq!(a["outcome"]["result"]["received"], true);
    assert_eq!(a["outcome"]["http_status"], 200);
    // The same key again: the same action, not a second refund.
    let (status, again) = server.post("/v1/actions", "demo-support-bot", &body.to_string());
    assert_eq!(
        (status, again["replayed"].as_bool()),
        (200, Some(true)),
        "{again}"
    );
    assert_eq!(again["action_id"], a["action_id"]);
    // The same key for a different request is a conflict.
    body["arguments"]["amount_cents"] = json!(4000);
    let (status, e) = server.post("/v1/actions", "demo-support-bot", &body.to_string());
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );

    let seen = receiver.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].idempotency_key.as_deref(), a["action_id"].as_str());
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer sk_test_TOPSECRET")
    );
    let sent: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(sent["order_id"], "ord_50");

    // intern-bot may not refund at all.
    let (status, d) = server.post(
        "/v1/actions",
        "demo-intern-bot",
        &refund(5000, "ord_51", None, "enforce"),
    );
    assert_eq!(
        (status, d["status"].as_str(), d["code"].as_str()),
        (201, Some("denied"), Some("policy_denied"))
    );
    assert_eq!(receiver.requests().len(), 1);

    // The credential is never shown or recorded.
    let (_, log) = server.get("/v1/audit?limit=1000", Some("demo-erin"));
    assert!(!log.to_string().contains("TOPSECRET"));
    assert!(!a.to_string().contains("TOPSECRET"));
    assert!(server.stop().success());
}

#[test]
fn safe_tools_are_retried_and_unsafe_ones_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Duration::ZERO, 2);
    let pack = pack_with(tmp.path(), |t| {
        let t = refund_over_http(t, "connector = \"http\"\nurl_env = \"REFUND_URL\"");
        t.replace(
            "connector = \"mock\"          # the example runs with nothing else started\nsafe_to_retry = true        # a read: re-sending is harmless\nlatency = \"2ms\"\nresult = { customer_id = \"cus_1\", name = \"Ada Lovelace\", email = \"ada@example.com\", date_of_birth = \"1815-12-10\", payout_iban = \"GB82 WEST 1234 5698 7654 32\", tier = \"gold\", recent_orders = [\"ord_1\", \"ord_2\"] }",
            "connector = \"http\"\nurl_env = \"LOOKUP_URL\"\nsafe_to_retry = true\nretries = 3\nbackoff = \"10ms\"",
        )
    });
    let lookup_url = format!("{}/lookup/flaky", receiver.url);
    let refund_url = format!("{}/refund/flaky", receiver.url);
    let server = Server::start_args(
        &tmp.path().join("data"),
        &pack,
        &[],
        &[("LOOKUP_URL", &lookup_url), ("REFUND_URL", &refund_url)],
    );
    // The read fails twice with 503, then succeeds on the third attempt.
    let (status, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"crm.lookup_customer","mode":"enforce","arguments":{"customer_id":"cus_1"}}"#,
    );
    assert_eq!(
        (status, a["status"].as_str()),
        (201, Some("succeeded")),
        "{a}"
    );
    assert_eq!(a["outcome"]["attempts"], 3);
    // The refund is not safe to repeat: one attempt, failed with tool_error.
    let (status, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(5000, "ord_1", None, "enforce"),
    );
    assert_eq!(
        (status, a["status"].as_str(), a["code"].as_str()),
        (201, Some("failed"), Some("tool_error")),
        "{a}"
    );
    assert_eq!(a["outcome"]["http_status"], 503);
    let refunds = receiver
        .requests()
        .iter()
        .filter(|s| s.path == "/refund/flaky")
        .count();
    assert_eq!(refunds, 1);
    assert!(server.stop().success());
}

#[test]
fn check_mode_outcomes_and_long_polling() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let (status, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"crm.lookup_customer","arguments":{"customer_id":"cus_1"}}"#,
    );
    assert_eq!((status, a["status"].as_str()), (201, Some("approved")));
    let id = a["action_id"].as_str().unwrap().to_owned();

    // A long-poll waits for the agent's report.
    let base = server.base.clone();
    let poll_id = id.clone();
    let poll = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let v: Value = crate::common::client()
            .get(format!("{base}/v1/actions/{poll_id}?wait=20s"))
            .bearer_auth("demo-support-bot")
            .send()
            .unwrap()
            .json()
            .unwrap();
        (v, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let (status, done) = server.post(
        &format!("/v1/actions/{id}/outcome"),
        "demo-support-bot",
        r#"{"status":"succeeded","result":{"name":"Ada"}}"#,
    );
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("succeeded")),
        "{done}"
    );
    let (polled, waited) = poll.join().unwrap();
    assert_eq!(polled["status"], "succeeded", "{polled}");
    assert!(
        waited >= Duration::from_millis(250),
        "returned before the report"
    );

    // Reported once only; only by its agent; only known actions.
    let (status, e) = server.post(
        &format!("/v1/actions/{id}/outcome"),
        "demo-support-bot",
        r#"{"status":"failed"}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("invalid_transition"))
    );
    let (status, e) = server.post(
        &format!("/v1/actions/{id}/outcome"),
        "demo-billing-bot",
        r#"{"status":"failed"}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("unknown_action"))
    );
    let (status, e) = server.post(
        &format!("/v1/actions/{id}/outcome"),
        "demo-support-bot",
        r#"{"status":"done"}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{e}"
    );
    let (status, e) = server.get(
        &format!("/v1/actions/{id}?wait=forever"),
        Some("demo-support-bot"),
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    // Auditors see every action; other agents see none of this one.
    assert_eq!(
        server
            .get(&format!("/v1/actions/{id}"), Some("demo-erin"))
            .0,
        200
    );
    assert_eq!(
        server
            .get(&format!("/v1/actions/{id}"), Some("demo-intern-bot"))
            .0,
        404
    );
    assert!(server.stop().success());
}

#[test]
fn slow_executions_answer_202_and_results_are_recorded_redacted_and_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = pack_with(tmp.path(), |t| {
        t
            // A slow refund whose result is larger than its cap.
            .replace(
                "latency = \"5ms\"\nresult = { refund_id = \"re_mock_1\", status = \"succeeded\" }",
                "latency = \"1500ms\"\nmax_result_bytes = 40\nresult = { refund_id = \"re_mock_1\", status = \"succeeded\", note = \"a result longer than forty bytes\" }",
            )
            // An email whose result echoes the sensitive recipient.
            .replace(
                "result = { queued = true }",
                "result = { queued = true, to = \"ada@example.com\" }",
            )
            // Notes without a connector: check mode only.
            .replace("[tools.execute]\nconnector = \"mock\"\nresult = { appended = true }\n", "")
    });
    let server = Server::start_args(
        &tmp.path().join("data"),
        &pack,
        &["--sync-wait", "200ms"],
        &[],
    );

    // Longer than --sync-wait: 202 while executing, then a long-poll.
    let (status, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(5000, "ord_1", None, "enforce"),
    );
    assert_eq!(
        (status, a["status"].as_str()),
        (202, Some("executing")),
        "{a}"
    );
    let id = a["action_id"].as_str().unwrap();
    let (status, done) = server.get(
        &format!("/v1/actions/{id}?wait=20s"),
        Some("demo-support-bot"),
    );
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("succeeded")),
        "{done}"
    );
    assert_eq!(
        done["outcome"]["result"]["note"],
        "a result longer than forty bytes"
    );
    // What is kept is capped: its size and hash.
    let (_, stored) = server.get(&format!("/v1/actions/{id}"), Some("demo-support-bot"));
    assert_eq!(stored["outcome"]["result"]["truncated"], true, "{stored}");
    assert!(
        stored["outcome"]["result"]["sha256"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    // The agent gets the recipient back; the store and the log keep a token.
    let email = r#"{"tool":"email.send_customer","mode":"enforce","arguments":{"customer_id":"cus_1","to":"ada@example.com","template":"refund_issued"}}"#;
    let (status, e) = server.post("/v1/actions", "demo-support-bot", email);
    assert_eq!(
        (status, e["outcome"]["result"]["to"].as_str()),
        (201, Some("ada@example.com")),
        "{e}"
    );
    let (_, stored) = server.get(
        &format!("/v1/actions/{}", e["action_id"].as_str().unwrap()),
        Some("demo-erin"),
    );
    assert!(
        stored["outcome"]["result"]["to"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:"),
        "{stored}"
    );
    let (_, log) = server.get("/v1/audit?kind=action_executed", Some("demo-erin"));
    assert!(!log.to_string().contains("ada@example.com"), "{log}");

    // A tool without a connector cannot be proposed in enforce mode.
    let notes = r#"{"tool":"crm.update_notes","mode":"enforce","arguments":{"customer_id":"cus_1","note":"hi"}}"#;
    let (status, e) = server.post("/v1/actions", "demo-support-bot", notes);
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("not_executable")),
        "{e}"
    );
    let (status, _) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &notes.replace("enforce", "check"),
    );
    assert_eq!(status, 201);
    assert!(server.stop().success());
}

#[test]
fn shadow_mode_keeps_an_explicit_forbid_and_the_kill_switch() {
    // Shadow mode lifts approval gates and missing grants (issue 16's
    // `safety.rs` tests those); an explicit forbid such as
    // `intern-read-only` still blocks.
    let tmp = tempfile::tempdir().unwrap();
    let pack = pack_with(tmp.path(), |t| {
        t.replace(
            "description = \"Triage assistant in training: read-only\"",
            "description = \"Triage assistant in training: read-only\"\nshadow = true",
        )
    });
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let (status, a) = server.post(
        "/v1/actions",
        "demo-intern-bot",
        &refund(5000, "ord_1", None, "enforce"),
    );
    assert_eq!(
        (status, a["status"].as_str(), a["shadow"].as_bool()),
        (201, Some("denied"), Some(true)),
        "{a}"
    );
    assert_eq!(a["code"], "policy_denied");
    assert!(a["decision"].get("shadow").is_none(), "{a}");
    let (_, found) = server.get(
        "/v1/audit?kind=action_decided&agent=intern-bot",
        Some("demo-erin"),
    );
    let r = &found["records"][0];
    assert_eq!(r["detail"]["shadow"], true);
    assert_eq!(r["detail"]["would_be"], Value::Null);
    // The kill switch applies in shadow mode too.
    assert_eq!(
        server
            .post("/v1/agents/intern-bot/pause", "demo-tina", "{}")
            .0,
        200
    );
    let (_, a) = server.post(
        "/v1/actions",
        "demo-intern-bot",
        &refund(5000, "ord_1", None, "check"),
    );
    assert_eq!(a["code"], "agent_paused", "{a}");
    let (_, m) = server.get_text("/metrics");
    assert!(
        m.contains(
            r#"warden_decisions_total{outcome="deny",code="policy_denied",shadow="true"} 1"#
        ),
        "{m}"
    );
    assert!(server.stop().success());
}

#[test]
fn the_kill_switch_pauses_and_resumes_an_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let lookup =
        r#"{"tool":"crm.lookup_customer","mode":"enforce","arguments":{"customer_id":"cus_1"}}"#;
    // Only operators pause.
    let (status, e) = server.post("/v1/agents/support-bot/pause", "demo-carol", "{}");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, e) = server.post("/v1/agents/nobody/pause", "demo-tina", "{}");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("unknown_agent"))
    );
    let (status, p) = server.post(
        "/v1/agents/support-bot/pause",
        "demo-tina",
        r#"{"reason":"refund storm"}"#,
    );
    assert_eq!((status, p["paused"].as_bool()), (200, Some(true)));
    let (_, a) = server.post("/v1/actions", "demo-support-bot", lookup);
    assert_eq!(
        (a["status"].as_str(), a["code"].as_str()),
        (Some("denied"), Some("agent_paused")),
        "{a}"
    );
    assert!(
        a["decision"]["gate"]["message"]
            .as_str()
            .unwrap()
            .contains("refund storm")
    );
    // Other agents are not affected.
    let (_, a) = server.post("/v1/actions", "demo-billing-bot", lookup);
    assert_eq!(a["status"], "succeeded");
    assert_eq!(
        server
            .post("/v1/agents/support-bot/resume", "demo-tina", "{}")
            .0,
        200
    );
    let (_, a) = server.post("/v1/actions", "demo-support-bot", lookup);
    assert_eq!(a["status"], "succeeded", "{a}");
    let (_, found) = server.get("/v1/audit?agent=support-bot", Some("demo-erin"));
    let kinds: Vec<&str> = found["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"agent_paused") && kinds.contains(&"agent_resumed"),
        "{kinds:?}"
    );
    assert!(server.stop().success());
}

#[test]
fn oversized_bodies_and_rate_limits_get_a_4xx_with_a_code() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_args(
        &tmp.path().join("data"),
        &root().join("examples/support-refunds"),
        &["--body-limit", "1024", "--rate-limit", "5"],
        &[],
    );
    let big = format!(
        r#"{{"tool":"crm.update_notes","arguments":{{"customer_id":"cus_1","note":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let (status, e) = server.post("/v1/actions", "demo-support-bot", &big);
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{e}"
    );
    let (_, rejected) = server.get("/v1/audit?kind=request_rejected", Some("demo-erin"));
    assert_eq!(rejected["records"][0]["code"], "payload_too_large");
    // Over 5 proposals per second: 429 rate_limited, per agent.
    let lookup = r#"{"tool":"crm.lookup_customer","arguments":{"customer_id":"cus_1"}}"#;
    let codes: Vec<u16> = (0..20)
        .map(|_| server.post("/v1/actions", "demo-support-bot", lookup).0)
        .collect();
    assert!(codes.contains(&429), "{codes:?}");
    let (status, e) = server.post("/v1/actions", "demo-support-bot", lookup);
    if status == 429 {
        assert_eq!(e["error"]["code"], "rate_limited");
    }
    assert_eq!(
        server.post("/v1/actions", "demo-billing-bot", lookup).0,
        201
    );
    assert!(server.stop().success());
}

#[test]
fn openapi_and_metrics_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let (status, api) = server.get("/v1/openapi.json", None);
    assert_eq!(status, 200);
    for path in [
        "/v1/actions",
        "/v1/actions/{id}",
        "/v1/actions/{id}/outcome",
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/audit",
        "/v1/agents/{id}/pause",
        "/v1/approvals",
        "/v1/approvals/{id}",
        "/v1/approvals/{id}/decision",
    ] {
        assert!(api["paths"].get(path).is_some(), "{path} missing");
    }
    for schema in ["ActionView", "ApprovalView", "DecisionBody"] {
        assert!(
            api["components"]["schemas"].get(schema).is_some(),
            "{schema} missing"
        );
    }
    server.post(
        "/v1/actions",
        "demo-intern-bot",
        &refund(100, "ord_1", None, "check"),
    );
    let (status, m) = server.get_text("/metrics");
    assert_eq!(status, 200);
    assert!(
        m.contains(
            r#"warden_decisions_total{outcome="deny",code="policy_denied",shadow="false"} 1"#
        ),
        "{m}"
    );
    assert!(m.contains("warden_http_request_seconds_bucket"), "{m}");
    assert!(m.contains(r#"warden_actions{state="denied"} 1"#), "{m}");
    assert!(server.stop().success());
}

#[test]
fn https_endpoints_are_supported_and_unreachable_ones_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on this port: the call fails at connect, after TLS
    // support was found (a build without TLS refuses the https scheme).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}/v1/refunds");
    let pack = pack_with(tmp.path(), |t| {
        refund_over_http(
            t,
            &format!("connector = \"http\"\nurl = \"{url}\"\ntimeout = \"2s\""),
        )
    });
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let (status, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(5000, "ord_1", None, "enforce"),
    );
    assert_eq!(
        (status, a["status"].as_str(), a["code"].as_str()),
        (201, Some("failed"), Some("tool_error")),
        "{a}"
    );
    let error = a["outcome"]["error"].as_str().unwrap();
    assert!(error.starts_with("cannot reach the tool"), "{error}");
    assert!(!error.to_lowercase().contains("scheme"), "{error}");
    assert!(server.stop().success());
}
