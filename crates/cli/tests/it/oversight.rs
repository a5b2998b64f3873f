//! Oversight through the real server: scripted agent traffic trips each
//! example playbook's detector; the incident opens with its owner; local
//! receivers check the signed webhook, Slack and PagerDuty Events v2
//! payloads; missed windows escalate, acknowledging stops it; kill
//! switches take effect on the next proposal; a restart loses no page.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Receiver, Seen, copy_dir, root, warden_env};
use crate::serve::Server;

pub(crate) const SECRET: &str = "oversight-test-secret";
pub(crate) const ROUTING_KEY: &str = "R0UT1NGKEY-test";

/// A copy of example pack `name` with `edits` (each must apply).
pub(crate) fn pack(tmp: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let dir = tmp.join(name);
    copy_dir(&root().join("examples").join(name), &dir);
    let file = dir.join("warden.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "`{from}` is not in the pack");
        text = text.replace(from, to);
    }
    std::fs::write(&file, text).unwrap();
    dir
}

/// The route variables pointing at `hook` (webhook, Slack, PagerDuty paths).
pub(crate) fn route_env(hook: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WARDEN_EXAMPLE_WEBHOOK_URL", format!("{hook}/webhook")),
        ("WARDEN_EXAMPLE_WEBHOOK_SECRET", SECRET.to_owned()),
        ("WARDEN_EXAMPLE_SLACK_URL", format!("{hook}/slack")),
        ("WARDEN_EXAMPLE_PAGERDUTY_URL", format!("{hook}/pagerduty")),
        ("WARDEN_EXAMPLE_PAGERDUTY_KEY", ROUTING_KEY.to_owned()),
    ]
}

pub(crate) fn start(data: &Path, pack: &Path, hook: &str) -> Server {
    let env = route_env(hook);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_args(data, pack, &[], &env)
}

/// Polls `f` until it returns `Some`, for up to 30 s.
pub(crate) fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(x) = f() {
            return x;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

pub(crate) fn incidents(server: &Server) -> Vec<Value> {
    let (status, v) = server.get("/v1/incidents?limit=1000", Some("demo-olivia"));
    assert_eq!(status, 200, "{v}");
    v["incidents"].as_array().unwrap().clone()
}

/// Waits for the incident opened by `playbook` (and matching `key`).
pub(crate) fn incident(server: &Server, playbook: &str, key: &str) -> Value {
    wait(&format!("an incident of `{playbook}` ({key})"), || {
        incidents(server)
            .into_iter()
            .find(|i| i["playbook"] == playbook && i["dedup_key"].as_str().unwrap().contains(key))
    })
}

pub(crate) fn show(server: &Server, id: &str) -> Value {
    let (status, v) = server.get(&format!("/v1/incidents/{id}"), Some("demo-olivia"));
    assert_eq!(status, 200, "{v}");
    v
}

/// Incident pages the receiver got on `path` for incident `id`.
pub(crate) fn pages(hook: &Receiver, path: &str, id: &str) -> Vec<(Seen, Value)> {
    hook.requests()
        .into_iter()
        .filter(|s| s.path == path)
        .filter_map(|s| {
            let v: Value = serde_json::from_str(&s.body).ok()?;
            let about = v["incident"]["id"] == id || v["dedup_key"] == id || s.body.contains(id);
            about.then_some((s, v))
        })
        .collect()
}

/// Checks a webhook delivery's HMAC with the test's secret.
pub(crate) fn signed(seen: &crate::common::Seen) -> bool {
    crate::common::signed_with(seen, SECRET)
}

pub(crate) fn propose(server: &Server, token: &str, body: Value) -> Value {
    let (status, v) = server.post("/v1/actions", token, &body.to_string());
    assert!(status == 201 || status == 202, "{status} {v}");
    v
}

pub(crate) fn lookup(customer: &str) -> Value {
    json!({ "tool": "crm.lookup_customer", "arguments": { "customer_id": customer } })
}

pub(crate) fn report(server: &Server, token: &str, action: &Value, outcome: Value) {
    let id = action["action_id"].as_str().unwrap();
    let (status, v) = server.post(
        &format!("/v1/actions/{id}/outcome"),
        token,
        &outcome.to_string(),
    );
    assert_eq!(status, 200, "{v}\nproposal: {action}");
}

#[test]
fn support_refund_playbooks_fire_page_olivia_and_act() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    let pack = pack(
        tmp.path(),
        "support-refunds",
        &[
            ("run_idle = \"30m\"", "run_idle = \"2s\""),
            ("approval_pending = \"2h\"", "approval_pending = \"2s\""),
        ],
    );
    let server = start(&tmp.path().join("data"), &pack, &hook.url);

    // policy_violation: one attempt at what a @severity("critical") policy
    // forbids pages at once.
    let denied = propose(
        &server,
        "demo-support-bot",
        json!({ "tool": "stripe.refund", "arguments": { "order_id": "ord_9", "customer_id": "cus_9", "amount_cents": 600000, "reason": "goodwill" } }),
    );
    assert_eq!(denied["code"], "policy_denied", "{denied}");
    let i = incident(&server, "policy-violations", "agent:support-bot");
    assert_eq!(
        (
            i["owner"].as_str(),
            i["severity"].as_str(),
            i["state"].as_str()
        ),
        (Some("olivia"), Some("critical"), Some("open")),
        "{i}"
    );
    assert_eq!(i["on_call"], "olivia");
    assert_eq!(
        i["detail"]["findings"]["critical_policy"],
        "refund-cap-5000"
    );
    assert!(i["ttd_ms"].as_i64().unwrap() >= 0);
    assert!(i["first_seq"].as_i64().is_some());
    let id = i["id"].as_str().unwrap().to_owned();
    let (seen, body) = wait("the signed webhook page", || {
        pages(&hook, "/webhook", &id).into_iter().next()
    });
    assert!(signed(&seen), "bad signature: {:?}", seen.headers);
    assert_eq!(seen.headers["x-warden-event"], "incident.opened");
    assert_eq!(
        seen.headers["x-warden-delivery"],
        format!("{id}:opened:olivia-webhook")
    );
    assert_eq!(body["incident"]["owner"], "olivia");
    assert_eq!(body["incident"]["severity"], "critical");

    // The trainee's repeated write attempts pause it (kill switch).
    for n in 0..3 {
        let a = propose(
            &server,
            "demo-intern-bot",
            json!({ "tool": "crm.update_notes", "arguments": { "customer_id": "cus_1", "note": format!("note {n}") } }),
        );
        assert_eq!(a["code"], "policy_denied", "{a}");
    }
    let i = incident(&server, "intern-write-attempts", "agent:intern-bot");
    assert_eq!(i["detail"]["actions"][0]["do"], "pause", "{i}");
    assert_eq!(i["detail"]["actions"][0]["ok"], true, "{i}");
    let a = propose(&server, "demo-intern-bot", lookup("cus_1"));
    assert_eq!(a["code"], "agent_paused", "{a}");

    // retry_storm: the same lookup proposed again and again.
    for _ in 0..6 {
        propose(&server, "demo-billing-bot", lookup("cus_42"));
    }
    let i = incident(&server, "retry-storm", "tool:crm.lookup_customer");
    assert!(i["summary"].as_str().unwrap().contains("retries"), "{i}");

    // unusual_output: a reported result holding a card number (the e-mail
    // address is declared by the tool, so it is not a finding). The agent
    // is quarantined: its next write needs a support lead.
    let a = propose(&server, "demo-support-bot", lookup("cus_7"));
    report(
        &server,
        "demo-support-bot",
        &a,
        json!({ "status": "succeeded", "result": { "name": "Ada", "email": "ada@example.com", "card": "4111 1111 1111 1111" } }),
    );
    let i = incident(
        &server,
        "data-in-output",
        "tool:crm.lookup_customer:content",
    );
    let found: Vec<&str> = i["detail"]["findings"]["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["card_number"], "{i}");
    assert!(
        !i.to_string().contains("4111 1111 1111 1111"),
        "card in the incident: {i}"
    );
    let w = propose(
        &server,
        "demo-support-bot",
        json!({ "tool": "crm.update_notes", "arguments": { "customer_id": "cus_7", "note": "called back" } }),
    );
    assert_eq!(w["status"], "awaiting_approval", "{w}");
    assert!(w.to_string().contains("support-leads"), "{w}");

    // failure_cascade: most lookups fail; once the detector has seen ten
    // calls at 50% or more failing, the tool's circuit opens and the next
    // proposal is refused.
    let mut failed = 0;
    loop {
        let a = propose(
            &server,
            "demo-support-bot",
            lookup(&format!("cus_f{failed}")),
        );
        if a["code"] == "tool_circuit_open" {
            break;
        }
        assert!(failed < 15, "the circuit never opened: {a}");
        report(
            &server,
            "demo-support-bot",
            &a,
            json!({ "status": "failed", "error": "CRM answered 503" }),
        );
        failed += 1;
    }
    assert!(failed >= 9, "opened after {failed} failures");
    let i = incident(&server, "tool-failure-cascade", "tool:crm.lookup_customer");
    assert_eq!(i["detail"]["actions"][0]["do"], "circuit", "{i}");
    assert!(i["summary"].as_str().unwrap().contains("failed"), "{i}");

    // stuck: a run without progress, an approval left pending.
    let run = crate::gateway::start_run(&server, "demo-support-bot");
    let i = incident(&server, "stuck-refunds", &format!("run:{run}"));
    assert_eq!(i["detector"], "stuck");
    let pending = incident(&server, "stuck-refunds", "approval:");
    assert!(
        pending["subject"]["approval"].as_str().is_some(),
        "{pending}"
    );

    // Every incident paged olivia's webhook, once per step.
    for i in incidents(&server) {
        let id = i["id"].as_str().unwrap();
        let got = wait(&format!("the page of {id}"), || {
            let p = pages(&hook, "/webhook", id);
            (!p.is_empty()).then_some(p)
        });
        assert_eq!(got.len(), 1, "{id} paged {} times", got.len());
    }

    // The views and `warden status`, `warden incidents list|show`.
    let (_, runs) = server.get("/v1/views/runs?idle=1s", Some("demo-olivia"));
    assert!(
        runs["stuck"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["run"] == run.as_str()),
        "{runs}"
    );
    assert_eq!(runs["paused_agents"], json!(["intern-bot"]));
    assert_eq!(runs["quarantined_agents"]["support-bot"], "support-leads");
    assert!(
        runs["open_circuits"]["crm.lookup_customer"].is_string(),
        "{runs}"
    );
    let (_, approvals) = server.get("/v1/views/approvals", Some("demo-olivia"));
    assert!(approvals["pending"].as_i64().unwrap() >= 1, "{approvals}");
    assert_eq!(
        approvals["groups"][0]["group"], "support-leads",
        "{approvals}"
    );
    let (_, hot) = server.get("/v1/views/hotspots?window=1h", Some("demo-olivia"));
    assert_eq!(hot["tools"][0]["tool"], "crm.lookup_customer", "{hot}");
    assert_eq!(hot["tools"][0]["failed"].as_i64(), Some(failed), "{hot}");
    assert!(hot["tools"][0]["retries"].as_i64().unwrap() >= 5, "{hot}");
    let env = [
        ("WARDEN_SERVER", server.base.as_str()),
        ("WARDEN_TOKEN", "demo-olivia"),
    ];
    let out = warden_env(&["status", "--idle", "1s"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for want in [
        "RUNS",
        run.as_str(),
        "intern-bot",
        "support-bot (writes need support-leads)",
        "APPROVALS",
        "HOTSPOTS",
        "crm.lookup_customer",
        "INCIDENTS",
    ] {
        assert!(
            out.stdout.contains(want),
            "`{want}` missing from:\n{}",
            out.stdout
        );
    }
    // Every table stays in line with its header, whatever the ids' length.
    for cell in crate::common::column(&out.stdout, "WORKFLOW") {
        assert_eq!(cell, "refund-request", "{}", out.stdout);
    }
    for cell in crate::common::column(&out.stdout, "STATE") {
        assert!(
            ["open", "acknowledged"].contains(&cell.as_str()),
            "{}",
            out.stdout
        );
    }
    assert!(!crate::common::column(&out.stdout, "SEVERITY").is_empty());
    let out = warden_env(&["incidents", "list"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let states = crate::common::column(&out.stdout, "STATE");
    assert!(states.len() >= 2, "{}", out.stdout);
    for cell in states {
        assert!(
            ["open", "acknowledged", "resolved"].contains(&cell.as_str()),
            "{}",
            out.stdout
        );
    }
    let playbooks = crate::common::column(&out.stdout, "PLAYBOOK");
    for want in ["policy-violations", "data-in-output"] {
        assert!(playbooks.iter().any(|p| p == want), "{}", out.stdout);
    }
    assert!(
        out.stdout.contains("policy-violations") && out.stdout.contains("data-in-output"),
        "{}",
        out.stdout
    );
    let out = warden_env(&["incidents", "show", &id], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("time to detect"), "{}", out.stdout);
    assert!(
        out.stdout.contains("olivia-webhook (webhook) delivered"),
        "{}",
        out.stdout
    );

    // Acknowledge and resolve: time-to-acknowledge and -resolve recorded,
    // the owner's webhook told.
    let out = warden_env(&["incidents", "ack", &id, "--note", "looking"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = warden_env(&["incidents", "resolve", &id, "--json"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["state"], "resolved");
    assert!(
        v["tta_ms"].as_i64().is_some() && v["ttr_ms"].as_i64().is_some(),
        "{v}"
    );
    wait("the resolved page", || {
        pages(&hook, "/webhook", &id)
            .into_iter()
            .find(|(s, _)| s.headers["x-warden-event"] == "incident.resolved")
    });

    let (_, m) = server.get_text("/metrics");
    for want in [
        "warden_incidents_opened_total{playbook=\"policy-violations\",severity=\"critical\"} 1",
        "warden_detector_fires_total{playbook=\"tool-failure-cascade\",detector=\"failure_cascade\"}",
        "warden_approvals_pending",
        "warden_incident_time_to_detect_seconds_count",
    ] {
        assert!(m.contains(want), "`{want}` missing from metrics:\n{m}");
    }
    assert!(server.stop().success());
}

#[test]
fn kill_switches_take_effect_on_the_next_proposal() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    let pack = root().join("examples/support-refunds");
    let server = start(&tmp.path().join("data"), &pack, &hook.url);
    let env = [
        ("WARDEN_SERVER", server.base.as_str()),
        ("WARDEN_TOKEN", "demo-olivia"),
    ];
    let notes = json!({ "tool": "crm.update_notes", "arguments": { "customer_id": "cus_1", "note": "hello" } });

    let out = warden_env(
        &["agents", "pause", "support-bot", "--reason", "drill"],
        &env,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("paused"), "{}", out.stdout);
    assert_eq!(
        propose(&server, "demo-support-bot", lookup("cus_1"))["code"],
        "agent_paused"
    );
    let out = warden_env(&["agents", "resume", "support-bot"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        propose(&server, "demo-support-bot", lookup("cus_1"))["status"],
        "approved"
    );

    let out = warden_env(
        &[
            "agents",
            "quarantine",
            "support-bot",
            "--group",
            "support-leads",
        ],
        &env,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        propose(&server, "demo-support-bot", notes.clone())["status"],
        "awaiting_approval"
    );
    assert_eq!(
        propose(&server, "demo-support-bot", lookup("cus_2"))["status"],
        "approved",
        "reads stay free"
    );
    let out = warden_env(&["agents", "release", "support-bot"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        propose(&server, "demo-support-bot", notes)["status"],
        "approved"
    );

    let out = warden_env(
        &[
            "tools",
            "circuit",
            "crm.lookup_customer",
            "--open-for",
            "10m",
        ],
        &env,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("is open until"), "{}", out.stdout);
    assert_eq!(
        propose(&server, "demo-billing-bot", lookup("cus_3"))["code"],
        "tool_circuit_open"
    );
    let out = warden_env(
        &["tools", "circuit", "crm.lookup_customer", "--close"],
        &env,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        propose(&server, "demo-billing-bot", lookup("cus_3"))["status"],
        "approved"
    );

    // Each switch is evidence.
    for kind in [
        "agent_paused",
        "agent_resumed",
        "agent_quarantined",
        "agent_released",
        "circuit_opened",
        "circuit_closed",
    ] {
        assert_eq!(
            server.wait_for(kind, 1)[0]["detail"]["by"],
            "olivia",
            "{kind}"
        );
    }

    // Bad input: clear errors, nothing switched.
    let out = warden_env(
        &["agents", "quarantine", "nobody", "--group", "support-leads"],
        &env,
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("unknown_agent (404)"), "{}", out.stderr);
    let out = warden_env(
        &["agents", "quarantine", "support-bot", "--group", "nobody"],
        &env,
    );
    assert!(out.stderr.contains("unknown_group (404)"), "{}", out.stderr);
    let out = warden_env(
        &[
            "tools",
            "circuit",
            "crm.lookup_customer",
            "--open-for",
            "a while",
        ],
        &env,
    );
    assert!(out.stderr.contains("invalid_body (400)"), "{}", out.stderr);
    let out = warden_env(&["tools", "circuit", "nope.tool"], &env);
    assert!(out.stderr.contains("unknown_tool (404)"), "{}", out.stderr);
    // carol neither operates nor owns `crm` (sam does: issue 16 lets him).
    let (status, _) = server.post("/v1/tools/crm.lookup_customer/circuit", "demo-carol", "{}");
    assert_eq!(status, 403, "only operators and the system's owner");
    let (status, _) = server.post("/v1/agents/support-bot/quarantine", "demo-olivia", "{}");
    assert_eq!(status, 400, "a group is required");
    let (_, runs) = server.get("/v1/views/runs", Some("demo-olivia"));
    assert_eq!(runs["quarantined_agents"], json!({}), "{runs}");
    assert_eq!(runs["open_circuits"], json!({}), "{runs}");
    assert!(server.stop().success());
}
