//! Slack approvals against a local stand-in for the Slack Web API, with
//! interaction payloads built and signed as Slack builds and signs them:
//! the real server, the support-refunds pack, a real HTTP receiver for the
//! refunds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Receiver, client};
use crate::gateway::{pack_with, refund, refund_over_http};
use crate::serve::Server;
use crate::slack_standin::{BOT_TOKEN, SIGNING_SECRET, SlackStandIn, button, denial, form, sign};

const FINANCE: &str = "C05FINAPPROVALS";
const LEADS: &str = "C05SUPPORTLEADS";
const DAVE: &str = "U05DAVELIND";
const CAROL: &str = "U05CAROLJEN";
const ERIN: &str = "U05ERINPARK";
const SAM: &str = "U05SAMORTIZ";

/// The example pack with the stand-in as Slack's API and refunds sent to a
/// receiver (`REFUND_URL`); `edit` changes the manifest further.
fn pack(dir: &Path, slack: &SlackStandIn, edit: impl Fn(String) -> String) -> PathBuf {
    let api = slack.api.clone();
    pack_with(dir, move |t| {
        let t = t.replacen("[slack]\n", &format!("[slack]\napi_url = \"{api}\"\n"), 1);
        let t = refund_over_http(
            t,
            "connector = \"http\"\nurl_env = \"REFUND_URL\"\ntimeout = \"5s\"",
        );
        edit(t)
    })
}

fn start(dir: &Path, pack: &Path, refunds: &Receiver) -> Server {
    start_on(dir, pack, refunds, &[])
}

/// [`start`] with extra `serve` arguments (`--database-url`).
fn start_on(dir: &Path, pack: &Path, refunds: &Receiver, args: &[&str]) -> Server {
    let url = format!("{}/v1/refunds", refunds.url);
    Server::start_args(
        &dir.join("data"),
        pack,
        args,
        &[
            ("WARDEN_SLACK_BOT_TOKEN", BOT_TOKEN),
            ("WARDEN_SLACK_SIGNING_SECRET", SIGNING_SECRET),
            ("REFUND_URL", &url),
        ],
    )
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// POSTs an interaction body signed at `ts` with `secret`.
fn send(server: &Server, body: &str, ts: i64, secret: &str) -> (u16, String) {
    let r = client()
        .post(format!(
            "{}/v1/integrations/slack/interactions",
            server.base
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sign(secret, ts, body))
        .body(body.to_owned())
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Sends `body` signed now, as Slack does; Slack needs its answer within
/// 3 seconds.
fn press(server: &Server, body: &str) -> (u16, String) {
    let started = Instant::now();
    let out = send(server, body, now(), SIGNING_SECRET);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "Slack gives up after 3 s"
    );
    out
}

/// Proposes a refund of `cents` by billing-bot (owner carol); returns the
/// action and approval ids.
fn request(server: &Server, cents: u32, order: &str) -> (String, String) {
    let (status, a) = server.post(
        "/v1/actions",
        "demo-billing-bot",
        &refund(cents, order, None, "enforce"),
    );
    assert_eq!(a["status"], "awaiting_approval", "{status} {a}");
    (
        a["action_id"].as_str().unwrap().to_owned(),
        a["approval_id"].as_str().unwrap().to_owned(),
    )
}

/// The message's `ts` once posted.
fn posted(slack: &SlackStandIn, channel: &str, approval: &str) -> String {
    wait("the request is posted to Slack", || {
        slack.message(channel, approval).is_some()
    });
    slack.message(channel, approval).unwrap().ts
}

fn text_of(slack: &SlackStandIn, channel: &str, approval: &str) -> String {
    slack.message(channel, approval).unwrap().body["blocks"].to_string()
}

/// Writes the message as Slack received it to `target/slack-messages/`
/// (docs/slack.md shows them).
fn keep(name: &str, slack: &SlackStandIn, channel: &str, approval: &str) {
    let dir = crate::common::root().join("target/slack-messages");
    std::fs::create_dir_all(&dir).unwrap();
    let body = slack.message(channel, approval).unwrap().body;
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&body).unwrap(),
    )
    .unwrap();
}

fn has_buttons(slack: &SlackStandIn, channel: &str, approval: &str) -> bool {
    text_of(slack, channel, approval).contains("warden_approve")
}

fn action_status(server: &Server, id: &str) -> String {
    let (_, a) = server.get(&format!("/v1/actions/{id}"), Some("demo-tina"));
    a["status"].as_str().unwrap_or_default().to_owned()
}

fn approval(server: &Server, id: &str) -> Value {
    server
        .get(&format!("/v1/approvals/{id}"), Some("demo-tina"))
        .1
}

fn records(server: &Server, query: &str) -> Vec<Value> {
    let (_, found) = server.get(&format!("/v1/audit?{query}&limit=1000"), Some("demo-erin"));
    found["records"].as_array().cloned().unwrap_or_default()
}

#[test]
fn finance_approves_and_denies_in_slack_through_the_apis_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let slack = SlackStandIn::start();
    let refunds = Receiver::start(Duration::ZERO, 0);
    let pack = pack(tmp.path(), &slack, |t| t);
    let server = start(tmp.path(), &pack, &refunds);

    // $500: one finance approval.
    let (action, apr) = request(&server, 50_000, "ord_500");
    let ts = posted(&slack, FINANCE, &apr);
    let post = &slack.posts_for(&apr)[0];
    let shown = post.body["blocks"].to_string();
    assert!(
        shown.contains("billing-bot") && shown.contains("stripe.refund"),
        "{shown}"
    );
    assert!(
        shown.contains("refund-over-100-needs-finance"),
        "the gate: {shown}"
    );
    assert!(
        shown.contains("http://127.0.0.1:8080/console/approvals/"),
        "console link: {shown}"
    );
    assert!(
        !shown.contains("cus_SECRET7"),
        "sensitive arguments are redacted: {shown}"
    );
    assert!(
        shown.contains("ord_500") && shown.contains("50000"),
        "{shown}"
    );
    assert!(has_buttons(&slack, FINANCE, &apr));
    assert!(
        slack.message(LEADS, &apr).is_none(),
        "only the gate's group is asked"
    );

    // Dave approves: the refund executes once, the message says so.
    let (status, body) = press(&server, &button(DAVE, "warden_approve", &apr, FINANCE, &ts));
    assert_eq!((status, body.as_str()), (200, ""));
    wait("the refund executes", || {
        action_status(&server, &action) == "succeeded"
    });
    wait("the message shows the approval", || {
        !has_buttons(&slack, FINANCE, &apr) && text_of(&slack, FINANCE, &apr).contains("Approved")
    });
    assert!(text_of(&slack, FINANCE, &apr).contains(&format!("<@{DAVE}>")));
    assert_eq!(refunds.requests().len(), 1, "executed once");
    assert_eq!(slack.posts_for(&apr).len(), 1, "posted once, then updated");
    let recorded = records(&server, "kind=approval_recorded");
    let by_slack = recorded
        .iter()
        .find(|r| r["detail"]["approval_id"] == apr.as_str())
        .unwrap();
    assert_eq!(by_slack["approvals"][0]["approver"], "dave");
    assert_eq!(by_slack["detail"]["origin"]["slack"]["user"], DAVE);
    assert_eq!(by_slack["detail"]["origin"]["slack"]["channel"], FINANCE);

    // $1,500: two finance approvals; progress shows after the first.
    let (action2, apr2) = request(&server, 150_000, "ord_1500");
    let ts2 = posted(&slack, FINANCE, &apr2);
    assert!(text_of(&slack, FINANCE, &apr2).contains("0 of 2"));
    press(
        &server,
        &button(DAVE, "warden_approve", &apr2, FINANCE, &ts2),
    );
    wait("progress after the first approval", || {
        text_of(&slack, FINANCE, &apr2).contains("1 of 2")
    });
    assert!(has_buttons(&slack, FINANCE, &apr2), "still open");
    keep("pending-1-of-2", &slack, FINANCE, &apr2);
    assert_eq!(action_status(&server, &action2), "awaiting_approval");

    // Carol owns billing-bot: separation of duties. Sam is no finance
    // member. Dave answered already. Each is told why, and nothing changes.
    for who in [CAROL, SAM, DAVE] {
        let (status, body) = press(
            &server,
            &button(who, "warden_approve", &apr2, FINANCE, &ts2),
        );
        assert_eq!(status, 200, "{who}: {body}");
    }
    wait("three ephemeral refusals", || {
        !slack.ephemerals(CAROL).is_empty()
            && !slack.ephemerals(SAM).is_empty()
            && !slack.ephemerals(DAVE).is_empty()
    });
    assert!(
        slack.ephemerals(CAROL)[0].contains("separation of duties"),
        "{:?}",
        slack.ephemerals(CAROL)
    );
    assert!(
        slack.ephemerals(SAM)[0].contains("not a member"),
        "{:?}",
        slack.ephemerals(SAM)
    );
    assert!(
        slack.ephemerals(DAVE)[0].contains("already answered"),
        "{:?}",
        slack.ephemerals(DAVE)
    );
    let told: Vec<String> = [CAROL, SAM, DAVE]
        .iter()
        .map(|u| slack.ephemerals(u)[0].clone())
        .collect();
    std::fs::write(
        crate::common::root().join("target/slack-messages/refusals.txt"),
        told.join("\n"),
    )
    .unwrap();
    let a2 = approval(&server, &apr2);
    assert_eq!(a2["state"], "pending");
    assert_eq!(a2["votes"].as_array().unwrap().len(), 1, "{a2}");
    let refused = records(&server, "kind=access_denied&code=separation_of_duties");
    assert!(
        refused
            .iter()
            .any(|r| r["detail"]["path"] == "/v1/integrations/slack/interactions"),
        "the refused press is evidence"
    );

    // Erin meets the quorum: executes once.
    press(
        &server,
        &button(ERIN, "warden_approve", &apr2, FINANCE, &ts2),
    );
    wait("the second refund executes", || {
        action_status(&server, &action2) == "succeeded"
    });
    assert_eq!(refunds.requests().len(), 2);

    // Deny: the button opens the form; a blank reason is refused in the
    // form; a reason denies, and the message shows who and why.
    let (action3, apr3) = request(&server, 20_000, "ord_200");
    let ts3 = posted(&slack, FINANCE, &apr3);
    let deny = button(ERIN, "warden_deny", &apr3, FINANCE, &ts3);
    press(&server, &deny);
    wait("the denial form opens", || {
        !slack.calls("views.open").is_empty()
    });
    let form = &slack.calls("views.open")[0].body;
    let trigger = form["trigger_id"].as_str().unwrap();
    assert!(deny.contains(trigger), "the press's trigger_id: {trigger}");
    assert_eq!(form["view"]["callback_id"], "warden_deny_form");
    let (status, body) = press(&server, &denial(ERIN, &apr3, FINANCE, "   "));
    assert_eq!(status, 200);
    let errors: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(errors["response_action"], "errors", "{errors}");
    assert_eq!(approval(&server, &apr3)["state"], "pending");
    let (status, _) = press(
        &server,
        &denial(ERIN, &apr3, FINANCE, "Duplicate of <!channel> ord_199"),
    );
    assert_eq!(status, 200);
    wait("the request is denied", || {
        action_status(&server, &action3) == "denied"
    });
    wait("the message shows the denial", || {
        text_of(&slack, FINANCE, &apr3).contains("Denied")
    });
    let shown = text_of(&slack, FINANCE, &apr3);
    assert!(!has_buttons(&slack, FINANCE, &apr3));
    assert!(
        shown.contains("Duplicate of &lt;!channel&gt; ord_199"),
        "escaped: {shown}"
    );
    assert!(
        !shown.contains("<!channel>"),
        "no mention injected: {shown}"
    );
    assert_eq!(
        approval(&server, &apr3)["votes"][0]["comment"],
        "Duplicate of <!channel> ord_199"
    );
    assert_eq!(refunds.requests().len(), 2, "a denied refund never runs");
    keep("approved", &slack, FINANCE, &apr);
    keep("denied", &slack, FINANCE, &apr3);
    server.stop();
}

#[test]
fn forged_stale_replayed_unknown_and_malformed_presses_decide_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let slack = SlackStandIn::start();
    let refunds = Receiver::start(Duration::ZERO, 0);
    let pack = pack(tmp.path(), &slack, |t| t);
    let server = start(tmp.path(), &pack, &refunds);
    let (action, apr) = request(&server, 50_000, "ord_501");
    let ts = posted(&slack, FINANCE, &apr);
    let approve = button(DAVE, "warden_approve", &apr, FINANCE, &ts);

    let err = |(status, body): (u16, String)| -> (u16, String) {
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
        (status, v["error"]["code"].as_str().unwrap().to_owned())
    };
    // Signed with another secret; no signature; stale; from the future.
    assert_eq!(
        err(send(&server, &approve, now(), "not-the-secret")),
        (401, "invalid_signature".into())
    );
    let r = client()
        .post(format!(
            "{}/v1/integrations/slack/interactions",
            server.base
        ))
        .header("x-slack-request-timestamp", now().to_string())
        .body(approve.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        err(send(&server, &approve, now() - 301, SIGNING_SECRET)),
        (401, "stale_request".into())
    );
    assert_eq!(
        err(send(&server, &approve, now() + 400, SIGNING_SECRET)),
        (401, "stale_request".into())
    );
    // A body changed after signing.
    let r = client()
        .post(format!(
            "{}/v1/integrations/slack/interactions",
            server.base
        ))
        .header("x-slack-request-timestamp", now().to_string())
        .header("x-slack-signature", sign(SIGNING_SECRET, now(), &approve))
        .body(button(ERIN, "warden_approve", &apr, FINANCE, &ts))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Malformed: no payload, payload not JSON, no user, unknown type.
    for body in [
        "token=x".to_owned(),
        "payload=%7Bnot-json".to_owned(),
        form(&json!({"type": "block_actions", "actions": []})),
        form(&json!({"type": "dialog_submission", "user": {"id": DAVE}})),
    ] {
        assert_eq!(err(press(&server, &body)).0, 400, "{body}");
    }

    // An unknown Slack user: told so, nothing decided.
    let stranger = button("U05STRANGER", "warden_approve", &apr, FINANCE, &ts);
    let ts_now = now();
    assert_eq!(send(&server, &stranger, ts_now, SIGNING_SECRET).0, 200);
    wait("the stranger is told", || {
        !slack.ephemerals("U05STRANGER").is_empty()
    });
    assert!(slack.ephemerals("U05STRANGER")[0].contains("does not know your Slack account"));
    // The same signed request again: a replay, refused before anything.
    assert_eq!(
        err(send(&server, &stranger, ts_now, SIGNING_SECRET)),
        (409, "replayed".into())
    );
    assert_eq!(slack.ephemerals("U05STRANGER").len(), 1);

    // Nothing was decided, nothing executed; every refusal is evidence.
    let a = approval(&server, &apr);
    assert_eq!(
        (a["state"].as_str(), a["votes"].as_array().unwrap().len()),
        (Some("pending"), 0)
    );
    assert_eq!(action_status(&server, &action), "awaiting_approval");
    assert!(refunds.requests().is_empty());
    let denied = records(&server, "kind=access_denied");
    for code in [
        "invalid_signature",
        "stale_request",
        "replayed",
        "unknown_slack_user",
    ] {
        assert!(
            denied.iter().any(|r| r["code"] == code),
            "no `{code}` record"
        );
    }
    let rejected = records(&server, "kind=request_rejected&code=invalid_payload");
    assert_eq!(rejected.len(), 4);

    // The real approver still can.
    press(&server, &approve);
    wait("the refund executes", || {
        action_status(&server, &action) == "succeeded"
    });
    assert_eq!(refunds.requests().len(), 1);
    server.stop();

    // Without Slack's secrets, Slack is off: the endpoint says so.
    let off = Server::start_args(&tmp.path().join("data2"), &pack, &[], &[]);
    let r = client()
        .post(format!("{}/v1/integrations/slack/interactions", off.base))
        .body(approve)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    off.stop();
}

#[test]
fn requests_post_once_across_outages_lost_answers_and_restarts() {
    posts_once(&[]);
}

#[test]
fn requests_post_once_across_outages_lost_answers_and_restarts_on_postgresql() {
    let Some(db) = crate::postgres::PgDb::new() else {
        return;
    };
    posts_once(&["--database-url", db.url.as_str()]);
}

fn posts_once(args: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let slack = SlackStandIn::start();
    let refunds = Receiver::start(Duration::ZERO, 0);
    let pack = pack(tmp.path(), &slack, |t| t);

    // A post whose answer is lost: the message is found, not posted again.
    slack.swallow_posts(1);
    let server = start_on(tmp.path(), &pack, &refunds, args);
    let (_, lost) = request(&server, 50_000, "ord_600");
    wait("the lost post is found and updated", || {
        !slack.calls("conversations.history").is_empty()
            && slack
                .calls("chat.update")
                .iter()
                .any(|c| c.body["blocks"].to_string().contains(&lost))
    });
    assert_eq!(slack.posts_for(&lost).len(), 1, "posted once");

    // Slack down when the request is committed; the server dies before it
    // could post; after a restart with Slack back, it posts once.
    slack.set_down(true);
    let (action, apr) = request(&server, 50_000, "ord_601");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(slack.posts_for(&apr).is_empty());
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    slack.set_down(false);
    let server = start_on(tmp.path(), &pack, &refunds, args);
    let ts = posted(&slack, FINANCE, &apr);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(slack.posts_for(&apr).len(), 1, "posted once");
    press(&server, &button(DAVE, "warden_approve", &apr, FINANCE, &ts));
    wait("the refund executes", || {
        action_status(&server, &action) == "succeeded"
    });
    wait("the message shows it", || {
        !has_buttons(&slack, FINANCE, &apr)
    });
    server.stop();
    // A restart after everything is shown posts nothing more.
    let before = slack.calls("chat.postMessage").len();
    let server = start_on(tmp.path(), &pack, &refunds, args);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(slack.calls("chat.postMessage").len(), before);
    server.stop();
}

#[test]
fn escalation_posts_to_the_next_channel_and_expiry_closes_both_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let slack = SlackStandIn::start();
    let refunds = Receiver::start(Duration::ZERO, 0);
    let pack = pack(tmp.path(), &slack, |t| {
        t.replacen(
            "escalation = { to = \"support-leads\", after = \"30m\" }",
            "escalation = { to = \"support-leads\", after = \"2s\" }",
            1,
        )
        .replacen("expires_after = \"4h\"", "expires_after = \"3s\"", 1)
    });
    let server = start(tmp.path(), &pack, &refunds);
    let (action, apr) = request(&server, 50_000, "ord_700");
    posted(&slack, FINANCE, &apr);
    assert!(text_of(&slack, FINANCE, &apr).contains("escalates to `support-leads`"));
    assert!(slack.message(LEADS, &apr).is_none());
    // Escalated: the leads' channel gets the request, finance's message
    // says who may answer now.
    let ts = posted(&slack, LEADS, &apr);
    assert!(has_buttons(&slack, LEADS, &apr));
    wait("finance's message shows the escalation", || {
        text_of(&slack, FINANCE, &apr).contains("escalated")
    });
    assert!(text_of(&slack, LEADS, &apr).contains("support-leads"));
    assert!(text_of(&slack, LEADS, &apr).contains("expires unanswered"));
    // Expired: both messages closed, the buttons gone.
    wait("the request expires", || {
        action_status(&server, &action) == "expired"
    });
    wait("both messages show the expiry", || {
        [FINANCE, LEADS]
            .iter()
            .all(|c| !has_buttons(&slack, c, &apr) && text_of(&slack, c, &apr).contains("Expired"))
    });
    assert_eq!(slack.posts_for(&apr).len(), 2, "one post per channel");
    // A press on the closed request is refused with the reason.
    press(&server, &button(SAM, "warden_approve", &apr, LEADS, &ts));
    wait("sam is told", || !slack.ephemerals(SAM).is_empty());
    assert!(
        slack.ephemerals(SAM)[0].contains("expired"),
        "{:?}",
        slack.ephemerals(SAM)
    );
    assert!(refunds.requests().is_empty());
    server.stop();
}
