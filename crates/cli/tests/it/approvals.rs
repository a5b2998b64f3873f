//! Approvals end to end on `examples/support-refunds`, through the built
//! binary on loopback (issue 5): a request waits for `finance`, an approver
//! answers (HTTP and `warden approvals`), policy is evaluated again and the
//! refund executes exactly once at a real receiver; quorum of distinct
//! people; separation of duties; deny; escalation and expiry on durable
//! timers, across a restart; a pack change between request and approval;
//! replayed answers; signed webhooks.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Receiver, warden_env};
use crate::gateway::{pack_with, refund, refund_over_http, start_run};
use crate::serve::Server;

const SECRET: &str = "webhook-test-secret";

fn decide(server: &Server, id: &str, token: &str, decision: &str) -> (u16, Value) {
    server.post(
        &format!("/v1/approvals/{id}/decision"),
        token,
        &json!({"decision": decision, "comment": format!("{decision} from test")}).to_string(),
    )
}

/// Proposes `body` as support-bot and checks it waits for approval.
fn propose_pending(server: &Server, token: &str, body: &str) -> (String, String) {
    let (status, a) = server.post("/v1/actions", token, body);
    assert_eq!(
        (status, a["status"].as_str()),
        (201, Some("awaiting_approval")),
        "{a}"
    );
    (
        a["action_id"].as_str().unwrap().to_owned(),
        a["approval_id"].as_str().unwrap().to_owned(),
    )
}

/// The records of `kind` for approval request `id`.
fn records_for(server: &Server, kind: &str, id: &str) -> Vec<Value> {
    let (_, found) = server.get(
        &format!("/v1/audit?kind={kind}&limit=1000"),
        Some("demo-erin"),
    );
    found["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["detail"]["approval_id"] == id)
        .cloned()
        .collect()
}

/// Polls until `n` records of `kind` exist for approval `id`.
fn wait_records(server: &Server, kind: &str, id: &str, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let found = records_for(server, kind, id);
        if found.len() >= n {
            return found;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("fewer than {n} `{kind}` records for {id}");
}

/// Checks a webhook delivery's HMAC with the test's secret.
fn signed(seen: &crate::common::Seen) -> bool {
    crate::common::signed_with(seen, SECRET)
}

fn webhooks(hook: &Receiver, event: &str) -> Vec<(Value, bool)> {
    hook.requests()
        .iter()
        .filter(|s| s.headers.get("x-warden-event").map(String::as_str) == Some(event))
        .map(|s| (serde_json::from_str(&s.body).unwrap(), signed(s)))
        .collect()
}

fn wait_webhooks(hook: &Receiver, event: &str, n: usize) -> Vec<(Value, bool)> {
    for _ in 0..400 {
        let got = webhooks(hook, event);
        if got.len() >= n {
            return got;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("fewer than {n} `{event}` webhooks");
}

#[test]
fn a_500_refund_waits_for_finance_then_executes_once_at_a_receiver() {
    let tmp = tempfile::tempdir().unwrap();
    let stripe = Receiver::start(Duration::ZERO, 0);
    let hook = Receiver::start(Duration::ZERO, 0);
    let pack = pack_with(tmp.path(), |t| {
        refund_over_http(t, "connector = \"http\"\nurl_env = \"TEST_REFUND_URL\"")
    });
    let server = Server::start_args(
        &tmp.path().join("data"),
        &pack,
        &[],
        &[
            ("TEST_REFUND_URL", &format!("{}/refund", stripe.url)),
            ("WARDEN_EXAMPLE_WEBHOOK_URL", &format!("{}/hook", hook.url)),
            ("WARDEN_EXAMPLE_WEBHOOK_SECRET", SECRET),
        ],
    );
    let run = start_run(&server, "demo-support-bot");
    let (status, _) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"crm.lookup_customer","arguments":{"customer_id":"cus_1"},"mode":"enforce","run_id":"RUN"}"#
            .replace("RUN", &run)
            .as_str(),
    );
    assert_eq!(status, 201);

    // $500: waits for finance; nothing is sent to Stripe.
    let body = refund(50_000, "ord_500", Some(&run), "enforce");
    let (action, approval) = propose_pending(&server, "demo-support-bot", &body);
    assert!(stripe.requests().is_empty());

    // The group is told, signed; the payload names the request and its members.
    let (note, ok) = wait_webhooks(&hook, "approval_requested", 1).remove(0);
    assert!(ok, "bad signature on {note}");
    assert_eq!(note["approval"]["approval_id"], approval.as_str());
    assert_eq!(note["group"], "finance");
    assert_eq!(note["members"], json!(["carol", "dave", "erin"]));
    // Webhooks carry the recorded arguments: sensitive fields redacted.
    assert_ne!(note["approval"]["arguments"]["customer_id"], "cus_SECRET7");

    // The approver's inbox, through the CLI: the exact arguments and why.
    let carol = [
        ("WARDEN_SERVER", server.base.as_str()),
        ("WARDEN_TOKEN", "demo-carol"),
    ];
    let out = warden_env(&["approvals", "list", "--json"], &carol);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let inbox: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(inbox["total"], 1, "{inbox}");
    let item = &inbox["approvals"][0];
    assert_eq!(item["approval_id"], approval.as_str());
    assert_eq!(item["arguments"]["customer_id"], "cus_SECRET7");
    assert_eq!(item["workflow"], "refund-request");
    assert_eq!(item["trigger"]["reference"], "T-1042");
    assert_eq!(item["requires"][0]["group"], "finance");
    assert!(item["due"].is_string());
    // The table keeps its columns in line with the 30-character ids.
    let table = warden_env(&["approvals", "list"], &carol);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.lines().nth(1).unwrap().starts_with(&approval));
    assert_eq!(crate::common::column(&table.stdout, "STATE"), ["pending"]);
    assert_eq!(
        crate::common::column(&table.stdout, "AGENT"),
        ["support-bot"]
    );
    assert_eq!(
        crate::common::column(&table.stdout, "TOOL"),
        ["stripe.refund"]
    );
    let human = warden_env(&["approvals", "show", &approval], &carol);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(
        human.stdout.contains("needs     finance 0/1"),
        "{}",
        human.stdout
    );

    // The agent cannot see the inbox; tina (not in finance) cannot answer.
    let (status, e) = server.get("/v1/approvals", Some("demo-support-bot"));
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, e) = decide(&server, &approval, "demo-tina", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("not_an_approver")),
        "{e}"
    );

    // The agent long-polls while carol approves with the CLI.
    let base = server.base.clone();
    let poll_id = action.clone();
    let poll = std::thread::spawn(move || {
        let v: Value = crate::common::client()
            .get(format!("{base}/v1/actions/{poll_id}?wait=30s"))
            .bearer_auth("demo-support-bot")
            .send()
            .unwrap()
            .json()
            .unwrap();
        v
    });
    std::thread::sleep(Duration::from_millis(200));
    let out = warden_env(
        &[
            "approvals",
            "approve",
            &approval,
            "--comment",
            "photo shows the damage",
        ],
        &carol,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("approved"), "{}", out.stdout);
    let done = poll.join().unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["decision"]["reevaluated"]["decision"], "allow");

    // Exactly once at the receiver, keyed by the action id.
    let calls = stripe.key_counts();
    assert_eq!(calls.get(&action), Some(&1), "{calls:?}");
    assert_eq!(calls.len(), 1);

    // Re-proposing the identical refund returns the same action: no new
    // request, no second refund.
    let (status, again) = server.post("/v1/actions", "demo-support-bot", &body);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["action_id"], action.as_str());
    assert_eq!(again["status"], "succeeded");
    assert_eq!(stripe.requests().len(), 1);

    // A replayed answer is refused: single use.
    let out = warden_env(&["approvals", "approve", &approval], &carol);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("approval_closed"), "{}", out.stderr);
    let (status, e) = decide(&server, &approval, "demo-dave", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("approval_closed"))
    );

    // Evidence: requested, answered, granted, re-evaluated, executed.
    for kind in [
        "approval_requested",
        "approval_recorded",
        "approval_granted",
        "action_reevaluated",
    ] {
        assert_eq!(records_for(&server, kind, &approval).len(), 1, "{kind}");
    }
    let recorded = &records_for(&server, "approval_recorded", &approval)[0];
    assert_eq!(recorded["approvals"][0]["approver"], "carol");
    assert_eq!(
        recorded["approvals"][0]["comment"],
        "photo shows the damage"
    );
    assert!(recorded["approvals"][0]["latency_ms"].is_u64());
    let timeline = warden_env(
        &[
            "audit",
            "timeline",
            &run,
            "--data",
            tmp.path().join("data").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(timeline.code, 0, "{}", timeline.stderr);
    for text in [
        "approval requested from 1 of `finance`",
        "carol approved for finance",
        "quorum met",
        "re-evaluated stripe.refund after approval",
        "executed stripe.refund → succeeded",
    ] {
        assert!(
            timeline.stdout.contains(text),
            "{text} not in\n{}",
            timeline.stdout
        );
    }
    assert!(server.stop().success());
}

#[test]
fn a_2500_refund_needs_two_distinct_finance_approvers() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    // Check mode: Warden decides, the agent executes once approved.
    let (action, approval) = propose_pending(
        &server,
        "demo-support-bot",
        &refund(250_000, "ord_2500", None, "check"),
    );
    let (_, v) = server.get(&format!("/v1/approvals/{approval}"), Some("demo-dave"));
    assert_eq!(
        v["requires"],
        json!([{"group": "finance", "quorum": 2, "approvals": 0, "eligible": ["finance"]}])
    );

    let (status, v) = decide(&server, &approval, "demo-dave", "approve");
    assert_eq!((status, v["state"].as_str()), (200, Some("pending")), "{v}");
    assert_eq!(v["requires"][0]["approvals"], 1);
    // The same person twice does not count.
    let (status, e) = decide(&server, &approval, "demo-dave", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("already_answered"))
    );
    let (_, a) = server.get(&format!("/v1/actions/{action}"), Some("demo-support-bot"));
    assert_eq!(a["status"], "awaiting_approval");

    let (status, v) = decide(&server, &approval, "demo-erin", "approve");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("approved")),
        "{v}"
    );
    // The long-poll answers `approved`: the agent's turn to execute.
    let (_, a) = server.get(
        &format!("/v1/actions/{action}?wait=10s"),
        Some("demo-support-bot"),
    );
    assert_eq!(a["status"], "approved", "{a}");
    let (status, done) = server.post(
        &format!("/v1/actions/{action}/outcome"),
        "demo-support-bot",
        r#"{"status":"succeeded","result":{"refund_id":"re_1"}}"#,
    );
    assert_eq!((status, done["status"].as_str()), (200, Some("succeeded")));
    let granted = &records_for(&server, "approval_granted", &approval)[0];
    let who: Vec<&str> = granted["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["approver"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["dave", "erin"]);
    assert!(server.stop().success());
}

#[test]
fn owners_and_non_members_cannot_approve_and_a_deny_ends_the_request() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    // billing-bot is owned by carol, a finance member.
    let body = refund(50_000, "ord_b1", None, "enforce");
    let (action, approval) = propose_pending(&server, "demo-billing-bot", &body);

    let (status, e) = decide(&server, &approval, "demo-carol", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("separation_of_duties")),
        "{e}"
    );
    let (status, e) = decide(&server, &approval, "demo-sam", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("not_an_approver"))
    );
    let (status, _) = decide(&server, &approval, "demo-billing-bot", "approve");
    assert_eq!(status, 403);
    // Refusals are evidence.
    let (_, denied) = server.get(
        "/v1/audit?kind=access_denied&code=separation_of_duties",
        Some("demo-erin"),
    );
    assert_eq!(denied["records"].as_array().unwrap().len(), 1, "{denied}");

    // Bad input: unknown request, bad verdict, unknown field, not JSON.
    let (status, e) = decide(&server, "apr_nope", "demo-dave", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("unknown_approval"))
    );
    for bad in [
        r#"{"decision":"maybe"}"#,
        r#"{"decision":"approve","approver":"dave"}"#,
        r#"{"comment":"no decision"}"#,
        "not json",
    ] {
        let (status, e) = server.post(
            &format!("/v1/approvals/{approval}/decision"),
            "demo-dave",
            bad,
        );
        assert!(status == 400 || status == 422, "{bad}: {status} {e}");
        assert!(
            e["error"]["code"].as_str().unwrap().starts_with("invalid_"),
            "{e}"
        );
    }
    let (status, e) = server.get("/v1/approvals?state=weird", Some("demo-dave"));
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    // Nothing above changed the request.
    let (_, v) = server.get(&format!("/v1/approvals/{approval}"), Some("demo-dave"));
    assert_eq!(
        (v["state"].as_str(), v["votes"].as_array().unwrap().len()),
        (Some("pending"), 0)
    );

    // A deny by a required approver ends it.
    let (status, v) = decide(&server, &approval, "demo-dave", "deny");
    assert_eq!((status, v["state"].as_str()), (200, Some("denied")), "{v}");
    let (_, a) = server.get(
        &format!("/v1/actions/{action}?wait=5s"),
        Some("demo-billing-bot"),
    );
    assert_eq!(
        (a["status"].as_str(), a["code"].as_str()),
        (Some("denied"), Some("approval_denied"))
    );
    let (status, e) = decide(&server, &approval, "demo-erin", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("approval_closed"))
    );

    // Re-proposing returns the denied action once; then it is a new request.
    let (_, again) = server.post("/v1/actions", "demo-billing-bot", &body);
    assert_eq!(
        (again["action_id"].as_str(), again["status"].as_str()),
        (Some(action.as_str()), Some("denied"))
    );
    let (_, fresh) = server.post("/v1/actions", "demo-billing-bot", &body);
    assert_eq!(fresh["status"], "awaiting_approval", "{fresh}");
    assert_ne!(fresh["action_id"], action.as_str());
    assert!(server.stop().success());
}

/// The example pack with short escalation and expiry.
fn quick_timers(tmp: &std::path::Path, escalate: &str, expire: &str) -> std::path::PathBuf {
    pack_with(tmp, |t| {
        t.replace(
            "escalation = { to = \"support-leads\", after = \"30m\" }",
            &format!("escalation = {{ to = \"support-leads\", after = \"{escalate}\" }}"),
        )
        .replace(
            "expires_after = \"4h\"",
            &format!("expires_after = \"{expire}\""),
        )
    })
}

#[test]
fn an_unanswered_request_escalates_then_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    let pack = quick_timers(tmp.path(), "1s", "2s");
    let server = Server::start_args(
        &tmp.path().join("data"),
        &pack,
        &[],
        &[
            ("WARDEN_EXAMPLE_WEBHOOK_URL", &format!("{}/hook", hook.url)),
            ("WARDEN_EXAMPLE_WEBHOOK_SECRET", SECRET),
        ],
    );
    let (expiring, a) = propose_pending(
        &server,
        "demo-support-bot",
        &refund(50_000, "ord_x1", None, "enforce"),
    );
    let (saved, b) = propose_pending(
        &server,
        "demo-support-bot",
        &refund(60_000, "ord_x2", None, "enforce"),
    );

    // After 1s finance has not answered: the support leads may answer too.
    wait_records(&server, "approval_escalated", &b, 1);
    let (_, v) = server.get(&format!("/v1/approvals/{b}"), Some("demo-tina"));
    assert_eq!(
        v["requires"][0]["eligible"],
        json!(["finance", "support-leads"]),
        "{v}"
    );
    assert_eq!(v["escalations"], 1);
    let (_, act) = server.get(&format!("/v1/actions/{saved}"), Some("demo-support-bot"));
    assert_eq!(act["status"], "escalated");
    let escalated = wait_webhooks(&hook, "approval_escalated", 2);
    assert!(
        escalated
            .iter()
            .all(|(n, ok)| *ok && n["group"] == "support-leads")
    );

    // tina operates support-bot, but support-leads relaxes separation of
    // duties: her approval counts and says so in evidence.
    let (status, v) = decide(&server, &b, "demo-tina", "approve");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("approved")),
        "{v}"
    );
    assert_eq!(v["votes"][0]["separation_of_duties_relaxed"], true);
    let rec = &records_for(&server, "approval_recorded", &b)[0];
    assert!(
        rec["detail"]["separation_of_duties"]
            .as_str()
            .unwrap()
            .contains("relaxed by group `support-leads`")
    );
    let (_, act) = server.get(
        &format!("/v1/actions/{saved}?wait=10s"),
        Some("demo-support-bot"),
    );
    assert_eq!(act["status"], "succeeded");

    // The other one reaches the end of its chain: expired.
    let expired = wait_records(&server, "approval_expired", &a, 1);
    assert_eq!(expired[0]["code"], "approval_expired");
    let (_, act) = server.get(&format!("/v1/actions/{expiring}"), Some("demo-support-bot"));
    assert_eq!(
        (act["status"].as_str(), act["code"].as_str()),
        (Some("expired"), Some("approval_expired"))
    );
    let (status, e) = decide(&server, &a, "demo-dave", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("approval_closed")),
        "{e}"
    );
    assert_eq!(records_for(&server, "approval_escalated", &a).len(), 1);
    assert!(server.stop().success());
}

#[test]
fn a_restart_loses_nothing_and_the_escalation_fires_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pack = quick_timers(tmp.path(), "2s", "1h");
    let server = Server::start_args(&data, &pack, &[], &[]);
    let (action, approval) = propose_pending(
        &server,
        "demo-support-bot",
        &refund(50_000, "ord_r1", None, "enforce"),
    );
    assert!(server.stop().success());

    // Down while the escalation falls due.
    std::thread::sleep(Duration::from_millis(2500));
    let server = Server::start_args(&data, &pack, &[], &[]);
    wait_records(&server, "approval_escalated", &approval, 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        records_for(&server, "approval_escalated", &approval).len(),
        1
    );
    let (_, inbox) = server.get("/v1/approvals?group=support-leads", Some("demo-sam"));
    assert_eq!(inbox["total"], 1, "{inbox}");
    assert_eq!(inbox["approvals"][0]["approval_id"], approval.as_str());

    // Restart again: the escalation does not fire a second time.
    assert!(server.stop().success());
    let server = Server::start_args(&data, &pack, &[], &[]);
    let (status, v) = decide(&server, &approval, "demo-dave", "approve");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("approved")),
        "{v}"
    );
    let (_, act) = server.get(
        &format!("/v1/actions/{action}?wait=10s"),
        Some("demo-support-bot"),
    );
    assert_eq!(act["status"], "succeeded", "{act}");
    assert_eq!(
        records_for(&server, "approval_escalated", &approval).len(),
        1
    );
    assert_eq!(
        records_for(&server, "approval_requested", &approval).len(),
        1
    );
    assert!(server.stop().success());
}

#[test]
fn a_pack_change_between_request_and_approval_denies_at_re_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = pack_with(tmp.path(), |t| t);
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let (action, approval) = propose_pending(
        &server,
        "demo-support-bot",
        &refund(50_000, "ord_p1", None, "enforce"),
    );

    // The pack now forbids every refund above $100.
    let policies = pack.join("policies/refunds.cedar");
    let mut text = std::fs::read_to_string(&policies).unwrap();
    text.push_str(
        "\n@id(\"refund-freeze\")\n@reason(\"refunds above $100 are frozen during the audit\")\nforbid (principal, action == Action::\"stripe.refund\", resource)\nwhen { context.args.amount_cents > 10000 };\n",
    );
    std::fs::write(&policies, text).unwrap();
    server.wait_for("pack_reloaded", 1);

    let (status, v) = decide(&server, &approval, "demo-dave", "approve");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("approved")),
        "{v}"
    );
    let (_, act) = server.get(
        &format!("/v1/actions/{action}?wait=5s"),
        Some("demo-support-bot"),
    );
    assert_eq!(
        (act["status"].as_str(), act["code"].as_str()),
        (Some("denied"), Some("policy_denied")),
        "{act}"
    );
    let re = &records_for(&server, "action_reevaluated", &approval)[0];
    assert_eq!(re["checks"][0]["decision"], "deny");
    assert!(
        re["checks"][0]["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "refund-freeze"),
        "{re}"
    );
    assert!(server.stop().success());
}

#[test]
fn the_person_who_requested_the_run_cannot_approve_its_refund() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    // dave (finance) asked for this run himself.
    let (status, run) = server.post(
        "/v1/runs",
        "demo-support-bot",
        r#"{"workflow":"refund-request","trigger":{"source":"chat","reference":"C-9","requester":"dave"}}"#,
    );
    assert_eq!(status, 201, "{run}");
    let run = run["run_id"].as_str().unwrap().to_owned();
    let (_, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &r#"{"tool":"crm.lookup_customer","mode":"enforce","arguments":{"customer_id":"cus_1"},"run_id":"RUN"}"#
            .replace("RUN", &run),
    );
    assert_eq!(a["status"], "succeeded", "{a}");
    let (_, approval) = propose_pending(
        &server,
        "demo-support-bot",
        &refund(50_000, "ord_self", Some(&run), "enforce"),
    );
    let (status, e) = decide(&server, &approval, "demo-dave", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("separation_of_duties")),
        "{e}"
    );
    let (status, v) = decide(&server, &approval, "demo-erin", "approve");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("approved")),
        "{v}"
    );
    assert!(server.stop().success());
}

#[test]
fn an_approval_does_not_run_a_paused_agents_action() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let (action, approval) = propose_pending(
        &server,
        "demo-support-bot",
        &refund(50_000, "ord_pause", None, "enforce"),
    );
    // The kill switch between request and approval.
    let (status, _) = server.post(
        "/v1/agents/support-bot/pause",
        "demo-tina",
        r#"{"reason":"refund storm"}"#,
    );
    assert_eq!(status, 200);
    let (status, v) = decide(&server, &approval, "demo-dave", "approve");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("approved")),
        "{v}"
    );
    let (_, act) = server.get(
        &format!("/v1/actions/{action}?wait=5s"),
        Some("demo-support-bot"),
    );
    assert_eq!(
        (act["status"].as_str(), act["code"].as_str()),
        (Some("denied"), Some("agent_paused")),
        "{act}"
    );
    assert!(server.stop().success());
}

#[test]
fn the_owning_teams_owner_cannot_approve() {
    let tmp = tempfile::tempdir().unwrap();
    // support-bot owned by the billing team, whose owner is carol (finance).
    let pack = pack_with(tmp.path(), |t| {
        t.replacen(
            "owner = \"sam\"\noperators = [\"tina\"]",
            "owner = \"billing\"\noperators = [\"tina\"]",
            1,
        )
    });
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let (_, approval) = propose_pending(
        &server,
        "demo-support-bot",
        &refund(50_000, "ord_team", None, "enforce"),
    );
    let (status, e) = decide(&server, &approval, "demo-carol", "approve");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("separation_of_duties")),
        "{e}"
    );
    let (status, v) = decide(&server, &approval, "demo-dave", "approve");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("approved")),
        "{v}"
    );
    assert!(server.stop().success());
}

#[test]
fn a_pack_that_now_asks_for_more_keeps_the_request_open() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = pack_with(tmp.path(), |t| t);
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let (action, approval) = propose_pending(
        &server,
        "demo-support-bot",
        &refund(50_000, "ord_more", None, "enforce"),
    );
    // Refunds above $100 now need two finance approvals.
    let policies = pack.join("policies/refunds.cedar");
    let text = std::fs::read_to_string(&policies).unwrap().replacen(
        "@id(\"refund-over-100-needs-finance\")\n@approval(\"finance\")\n",
        "@id(\"refund-over-100-needs-finance\")\n@approval(\"finance\")\n@quorum(\"2\")\n",
        1,
    );
    assert!(text.contains("@quorum(\"2\")\n@risk(\"high\")\n@reason(\"refunds above $100"));
    std::fs::write(&policies, text).unwrap();
    server.wait_for("pack_reloaded", 1);

    // One approval met the old quorum; the pack in force wants two.
    let (status, v) = decide(&server, &approval, "demo-dave", "approve");
    assert_eq!((status, v["state"].as_str()), (200, Some("pending")), "{v}");
    assert_eq!(v["requires"][0]["quorum"], 2, "{v}");
    assert_eq!(v["requires"][0]["approvals"], 1);
    let (_, act) = server.get(&format!("/v1/actions/{action}"), Some("demo-support-bot"));
    assert_eq!(act["status"], "awaiting_approval");
    let (status, v) = decide(&server, &approval, "demo-erin", "approve");
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("approved")),
        "{v}"
    );
    let (_, act) = server.get(
        &format!("/v1/actions/{action}?wait=10s"),
        Some("demo-support-bot"),
    );
    assert_eq!(act["status"], "succeeded", "{act}");
    assert_eq!(
        records_for(&server, "action_reevaluated", &approval).len(),
        2
    );
    assert!(server.stop().success());
}
