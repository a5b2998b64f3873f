//! The console in a real browser (headless Chromium over WebDriver) against
//! `warden serve` on the support-refunds example: sign-in, the live inbox,
//! approving with a quorum, separation of duties, inert rendering of what
//! agents send, CSRF, incidents, controls and the audit search with its
//! proof. Screenshots go to `target/console-screenshots/`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser::Browser;
use crate::common::{client, copy_dir, root};
use crate::serve::Server;

/// What an agent sends that must never run in an approver's browser.
const XSS: &str = "<img src=x onerror=window.__warden_xss=1>";

/// The example pack, with a free-text `memo` argument on refunds (the
/// example's own arguments are all patterns and enums).
fn pack(dir: &Path) -> std::path::PathBuf {
    let pack = dir.join("pack");
    copy_dir(&root().join("examples/support-refunds"), &pack);
    let toml = pack.join("warden.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "reason = { type = \"string\", enum = [\"damaged\", \"missing\", \"duplicate_charge\", \"goodwill\", \"other\"] }",
        "reason = { type = \"string\", enum = [\"damaged\", \"missing\", \"duplicate_charge\", \"goodwill\", \"other\"] }\nmemo = { type = \"string\", maxLength = 500 }",
    );
    assert!(text.contains("memo = "), "the refund arguments moved");
    std::fs::write(&toml, text).unwrap();
    pack
}

fn start(dir: &Path) -> Server {
    Server::start_args(
        &dir.join("data"),
        &pack(dir),
        &["--checkpoint-every", "1s"],
        &[],
    )
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a refund run and looks the customer up, as billing-bot.
fn run_with_lookup(server: &Server) -> String {
    let (status, run) = server.post(
        "/v1/runs",
        "demo-billing-bot",
        r#"{"workflow":"refund-request","trigger":{"source":"ticket","reference":"T-77","requester":"ada@example.com"}}"#,
    );
    assert_eq!(status, 201, "{run}");
    let run = run["run_id"].as_str().unwrap().to_owned();
    let (_, a) = server.post(
        "/v1/actions",
        "demo-billing-bot",
        &format!(
            r#"{{"tool":"crm.lookup_customer","mode":"enforce","arguments":{{"customer_id":"cus_77"}},"run_id":"{run}"}}"#
        ),
    );
    assert_eq!(a["status"], "succeeded", "{a}");
    run
}

#[test]
fn approvers_sign_in_see_requests_live_and_approve_with_a_quorum() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path());
    let Some(b) = Browser::start(&server.base, 1280, 900) else {
        return;
    };

    // An agent's token cannot sign in.
    let e = b.sign_in_refused("demo-billing-bot");
    assert!(e.contains("agent's token"), "{e}");
    assert!(b.path().starts_with("/console/sign-in"), "{}", b.path());
    assert!(b.cookie("warden_session").is_none());
    // Nor can an unknown one.
    assert_eq!(b.sign_in_refused("demo-nobody"), "Unknown token.");

    // dave signs in; nothing waits yet.
    b.sign_in("dave", "demo-dave");
    b.wait_text("#inbox", "Nothing is waiting");
    wait("live updates connected", || {
        b.exec("return document.body.getAttribute('data-live-connected')") == "1"
    });

    // An agent proposes a $1,500 refund (two finance approvals): it
    // appears in dave's open inbox without a reload.
    let run = run_with_lookup(&server);
    let (status, a) = server.post(
        "/v1/actions",
        "demo-billing-bot",
        &format!(
            r#"{{"tool":"stripe.refund","mode":"enforce","arguments":{{"order_id":"ord_77","customer_id":"cus_77","amount_cents":150000,"reason":"damaged","memo":{memo}}},"run_id":"{run}","reason":{memo}}}"#,
            memo = serde_json::to_string(XSS).unwrap()
        ),
    );
    assert_eq!(a["status"], "awaiting_approval", "{status} {a}");
    let action = a["action_id"].as_str().unwrap().to_owned();
    let approval = a["approval_id"].as_str().unwrap().to_owned();
    let row = b.wait_text(&format!("tr[data-approval='{approval}']"), "stripe.refund");
    assert!(
        row.contains("billing-bot") && row.contains("finance 0/2"),
        "{row}"
    );
    b.screenshot("inbox");

    // The request shows what it takes to decide.
    b.click(&format!("tr[data-approval='{approval}'] a"));
    let facts = b.text("dl.facts");
    assert!(facts.contains("owner carol"), "{facts}");
    assert!(facts.contains("stripe.refund on stripe"), "{facts}");
    let policies = b.text("ul.policies");
    assert!(
        policies.contains("refund-over-1000-needs-two-finance")
            && policies.contains("refunds above $1,000 need two finance approvals"),
        "{policies}"
    );
    assert!(b.text("ul.next").contains("escalates to support-leads"));
    assert!(b.text("#timeline").contains("crm.lookup_customer"));
    // What the agent sent is text: no element was made of it, no script ran.
    let args = b.text("#arguments");
    assert!(args.contains(XSS), "{args}");
    assert!(
        args.contains("hmac-sha256:") && !args.contains("cus_77"),
        "customer_id is sensitive: {args}"
    );
    assert!(b.text(".agent-text").contains(XSS));
    assert_eq!(b.count("main img"), 0);
    assert_eq!(
        b.exec("return window.__warden_xss === undefined"),
        Value::Bool(true)
    );
    b.screenshot("request");

    // A state change without the session's CSRF token is refused, and
    // decides nothing.
    let session = b.cookie("warden_session").expect("a session cookie");
    for form in [
        String::from("decision=approve"),
        "decision=approve&csrf=forged".into(),
    ] {
        let resp = client()
            .post(format!(
                "{}/console/approvals/{approval}/decision",
                server.base
            ))
            .header("cookie", format!("warden_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
    }
    let (_, v) = server.get(&format!("/v1/approvals/{approval}"), Some("demo-olivia"));
    assert_eq!(
        (v["state"].as_str(), v["votes"].as_array().map(Vec::len)),
        (Some("pending"), Some(0)),
        "{v}"
    );

    // dave approves: one of two.
    b.fill("#comment", "order checked, damaged on arrival");
    b.click("button.approve");
    b.wait_text("#votes", "dave");
    assert!(b.text("#request-state").contains("finance 1/2"));

    // carol owns billing-bot: separation of duties keeps her out, and the
    // page says why before she tries.
    b.sign_out();
    assert!(b.cookie("warden_session").is_none());
    // The old session is over on the server too.
    let resp = client()
        .get(format!("{}/console", server.base))
        .header("cookie", format!("warden_session={session}"))
        .send()
        .unwrap();
    assert!(
        resp.url().path().starts_with("/console/sign-in"),
        "{}",
        resp.url()
    );
    b.sign_in("carol", "demo-carol");
    b.goto(&format!("/console/approvals/{approval}"));
    let why = b.text("#why-not");
    assert!(why.contains("Separation of duties"), "{why}");
    assert_eq!(b.count("form.decide"), 0);

    // erin is the second finance approver: the action executes, and the
    // run's timeline shows it.
    b.sign_out();
    b.sign_in("erin", "demo-erin");
    b.goto(&format!("/console/approvals/{approval}"));
    b.fill("#comment", "second look: fine");
    b.click("button.approve");
    b.wait_text("#request-state", "approved");
    b.wait_text("#timeline", "action executed");
    let (_, act) = server.get(&format!("/v1/actions/{action}"), Some("demo-olivia"));
    assert_eq!(act["status"], "succeeded", "{act}");
    b.goto(&format!("/console/runs/{run}"));
    let timeline = b.text("#timeline");
    assert!(
        timeline.contains("stripe.refund") && timeline.contains("succeeded"),
        "{timeline}"
    );
    b.screenshot("run");
    b.goto("/console/history?state=approved");
    assert!(b.text("#history").contains("dave ✓ erin ✓"));

    // The browser's console: no script error, no CSP violation (the
    // refused sign-ins and the 403s above are network messages).
    let log = b.console_log();
    assert!(!log.is_empty(), "the browser's log is read");
    let bad: Vec<&Value> = log
        .iter()
        .filter(|m| {
            let text = m["message"].as_str().unwrap_or_default();
            ["javascript", "security"].contains(&m["source"].as_str().unwrap_or_default())
                || text.contains("Content Security Policy")
                || text.contains("Refused to")
                || text.contains("__warden_xss")
        })
        .collect();
    assert!(bad.is_empty(), "browser console: {bad:?}");
    drop(b);
    assert!(server.stop().success());
}

#[test]
fn operators_handle_incidents_controls_and_the_audit_log() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path());
    let Some(b) = Browser::start(&server.base, 1280, 900) else {
        return;
    };
    // intern-bot tries to write three times: an incident opens (and its
    // playbook pauses intern-bot).
    for i in 0..3 {
        let (_, a) = server.post(
            "/v1/actions",
            "demo-intern-bot",
            &format!(
                r#"{{"tool":"email.send_customer","arguments":{{"customer_id":"cus_{i}","to":"a@example.com","template":"ticket_update"}}}}"#
            ),
        );
        assert_eq!(a["status"], "denied", "{a}");
    }
    b.sign_in("olivia", "demo-olivia");
    b.goto("/console/incidents");
    b.wait_text("#incidents", "intern-write-attempts");
    assert!(b.text("#incidents").contains("open"));
    b.screenshot("incidents");
    b.fill("#incidents input[name=note]", "looking at it");
    b.click("#incidents button[value=ack]");
    b.wait_text("#incidents", "acknowledged");
    let (_, list) = server.get("/v1/incidents", Some("demo-olivia"));
    let inc = &list["incidents"][0];
    assert_eq!(
        (inc["state"].as_str(), inc["acknowledged_by"].as_str()),
        (Some("acknowledged"), Some("olivia")),
        "{inc}"
    );

    // Pause support-bot from the controls, after a confirmation.
    b.goto("/console/controls");
    b.click("#agent-support-bot a.button.danger");
    assert!(b.text("h1").contains("Confirm: pause"));
    b.fill("#reason", "refund storm");
    b.click("#confirm");
    b.wait_text("#agent-support-bot", "paused");
    b.screenshot("controls");
    let (_, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"crm.lookup_customer","mode":"enforce","arguments":{"customer_id":"cus_1"}}"#,
    );
    assert_eq!(a["code"], "agent_paused", "{a}");
    // A control without a reason is refused by the form, and a forged one
    // by the CSRF check.
    let session = b.cookie("warden_session").unwrap();
    let resp = client()
        .post(format!(
            "{}/console/controls/agents/support-bot/resume",
            server.base
        ))
        .header("cookie", format!("warden_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("reason=x")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    b.click("#agent-support-bot a.button");
    b.fill("#reason", "storm over");
    b.click("#confirm");
    b.wait_text("#agent-support-bot", "active");
    let (_, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"crm.lookup_customer","mode":"enforce","arguments":{"customer_id":"cus_1"}}"#,
    );
    assert_eq!(a["status"], "succeeded", "{a}");

    // The audit search finds the pause and proves it is in the log.
    b.goto("/console/audit?text=refund%20storm");
    let results = b.text("#results");
    assert!(results.contains("agent_paused"), "{results}");
    b.screenshot("audit");
    b.click("#results tbody a");
    b.wait_text("#canonical", "refund storm");
    // A checkpoint covers it within a second or two.
    wait("an inclusion proof", || {
        b.exec("location.reload()");
        b.text("#proof-status").contains("Inclusion proof verified")
    });
    b.screenshot("record");
    b.goto("/console/audit?verify=1");
    assert!(b.text("#verify-status").contains("Verified the whole log"));

    // The views render their charts.
    b.goto("/console/views");
    // Bars and their values are drawn (children of the svg, not swallowed
    // by an unclosed element).
    assert!(b.count("#decisions-chart svg > rect") > 0);
    assert!(b.count("#hotspots-chart svg > text.value") > 0);
    b.screenshot("views");

    // An auditor sees the controls but cannot change them; an approver
    // without a role cannot open the audit log.
    b.sign_out();
    b.sign_in("erin", "demo-erin");
    b.goto("/console/controls");
    assert!(
        b.text("main")
            .contains("changing them needs the operator role")
    );
    assert_eq!(b.count("#agents a.button"), 0);
    b.sign_out();
    b.sign_in("dave", "demo-dave");
    b.goto("/console/audit");
    assert!(b.text("main").contains("may not see the audit log"));
    assert_eq!(b.count("nav a[href='/console/audit']"), 0);
    drop(b);
    assert!(server.stop().success());
}

#[test]
fn approving_on_a_phone() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path());
    let Some(b) = Browser::start(&server.base, 390, 844) else {
        return;
    };
    let (status, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"stripe.refund","mode":"enforce","arguments":{"order_id":"ord_9","customer_id":"cus_9","amount_cents":25000,"reason":"missing"}}"#,
    );
    assert_eq!(a["status"], "awaiting_approval", "{status} {a}");
    let approval = a["approval_id"].as_str().unwrap().to_owned();
    b.sign_in("dave", "demo-dave");
    b.click(&format!("tr[data-approval='{approval}'] a"));
    // Nothing is wider than the screen.
    let wide = b.exec(
        "return [...document.querySelectorAll('body *')]\
           .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)\
           .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))",
    );
    assert_eq!(wide, serde_json::json!([]), "wider than the 390 px screen");
    assert_eq!(b.exec("return window.innerWidth"), serde_json::json!(390));
    b.screenshot("request-phone");
    // Keyboard only: type the comment, Tab to Approve, press Enter.
    b.fill("#comment", "ok on the phone");
    b.keys("#comment", "\u{E004}");
    assert_eq!(
        b.exec("return document.activeElement.textContent"),
        Value::String("Approve".into())
    );
    b.keys("button.approve", "\u{E007}");
    b.wait_text("#request-state", "approved");
    let (_, v) = server.get(&format!("/v1/approvals/{approval}"), Some("demo-olivia"));
    assert_eq!(v["state"], "approved", "{v}");
    drop(b);
    assert!(server.stop().success());
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let enc = |v: &str| {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A console session over plain HTTP: the session cookie and the CSRF
/// token of `token`'s person.
fn http_session(server: &Server, token: &str) -> (String, String) {
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/console/sign-in", server.base))
        .send()
        .unwrap();
    let binding_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()?
                .strip_prefix("warden_sign_in=")
                .map(str::to_owned)
        })
        .unwrap();
    let html = page.text().unwrap();
    let binding = html
        .split("name=\"binding\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let resp = http
        .post(format!("{}/console/sign-in", server.base))
        .header("cookie", format!("warden_sign_in={binding_cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("token", token),
            ("binding", &binding),
            ("next", "/console"),
        ]))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("warden_session="))
        .unwrap()
        .to_owned();
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("warden_session=")
        .to_owned();
    let page = http
        .get(format!("{}/console", server.base))
        .header("cookie", format!("warden_session={session}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    (session, csrf)
}

#[test]
fn bad_console_requests_get_clear_answers_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path());
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, session: Option<&str>| {
        let mut req = http.get(format!("{}{path}", server.base));
        if let Some(s) = session {
            req = req.header("cookie", format!("warden_session={s}"));
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let csp = resp
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, csp, resp.text().unwrap())
    };
    let post = |path: &str, session: &str, form: &[(&str, &str)]| {
        let resp = http
            .post(format!("{}{path}", server.base))
            .header("cookie", format!("warden_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };

    // Without a session: pages redirect to the sign-in, changes are 401.
    let (status, location, csp, _) = get("/console/runs", None);
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/console/sign-in?next=/console/runs"))
    );
    assert!(csp.unwrap().contains("script-src 'self'"));
    let (status, _) = post(
        "/console/approvals/apr_x/decision",
        "forged",
        &[("decision", "approve")],
    );
    assert_eq!(status, 401);
    // A sign-in form from elsewhere (no binding cookie) is refused.
    let resp = http
        .post(format!("{}/console/sign-in", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("token", "demo-dave"),
            ("binding", "abc"),
            ("next", "https://evil.example/"),
        ]))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(
        resp.text()
            .unwrap()
            .contains("did not come from this browser")
    );

    let (session, csrf) = http_session(&server, "demo-dave");
    let (_, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"stripe.refund","mode":"enforce","arguments":{"order_id":"ord_3","customer_id":"cus_3","amount_cents":25000,"reason":"missing"}}"#,
    );
    let approval = a["approval_id"].as_str().unwrap().to_owned();
    let decision = format!("/console/approvals/{approval}/decision");
    // Not an answer, a denial without a reason, an unknown request.
    let (status, body) = post(
        &decision,
        &session,
        &[("csrf", &csrf), ("decision", "maybe")],
    );
    assert_eq!(status, 400);
    assert!(body.contains("Unknown answer `maybe`"), "{body}");
    let (status, body) = post(
        &decision,
        &session,
        &[("csrf", &csrf), ("decision", "deny")],
    );
    assert_eq!(status, 400);
    assert!(body.contains("Say why you deny"), "{body}");
    let (status, _) = post(
        "/console/approvals/apr_nope/decision",
        &session,
        &[("csrf", &csrf), ("decision", "approve")],
    );
    assert_eq!(status, 404);
    let (_, v) = server.get(&format!("/v1/approvals/{approval}"), Some("demo-olivia"));
    assert_eq!(
        (v["state"].as_str(), v["votes"].as_array().map(Vec::len)),
        (Some("pending"), Some(0)),
        "{v}"
    );
    // The same answer twice: the second is refused by the API's rule.
    let (status, _) = post(
        &decision,
        &session,
        &[("csrf", &csrf), ("decision", "approve"), ("comment", "ok")],
    );
    assert_eq!(status, 303);
    let (status, body) = post(
        &decision,
        &session,
        &[("csrf", &csrf), ("decision", "approve")],
    );
    assert_eq!(status, 409, "{body}");

    // Pages dave's roles do not open, and bad filters.
    for (path, code, text) in [
        ("/console/runs", 403, "may not see every run"),
        ("/console/audit", 403, "may not see the audit log"),
        ("/console/controls", 403, "may not see the controls"),
        ("/console/history?state=weird", 400, "`state` must be"),
        ("/console/approvals/apr_nope", 404, "No approval request"),
        ("/console/assets/nope.js", 404, ""),
    ] {
        let (status, _, _, body) = get(path, Some(&session));
        assert_eq!(status, code, "{path}: {body}");
        assert!(body.contains(text), "{path}: {body}");
    }
    let (olivia, olivia_csrf) = http_session(&server, "demo-olivia");
    for (path, code, text) in [
        ("/console/audit/abc", 400, "not a record number"),
        ("/console/audit/999999", 404, "No record #999999"),
        ("/console/audit?limit=0", 400, "`limit` must be 1 to 1000"),
        (
            "/console/audit?since=yesterday",
            400,
            "`since` must be a date",
        ),
        ("/console/runs?state=weird", 400, "`state` must be running"),
        ("/console/runs/run_nope", 404, "No run `run_nope`"),
        (
            "/console/controls/agents/ghost/pause",
            404,
            "No agent `ghost`",
        ),
        (
            "/console/controls/agents/support-bot/explode",
            404,
            "No such control",
        ),
    ] {
        let (status, _, _, body) = get(path, Some(&olivia));
        assert_eq!(status, code, "{path}: {body}");
        assert!(body.contains(text), "{path}: {body}");
    }
    // A control with a bad duration is the API's 400, and changes nothing.
    let (status, body) = post(
        "/console/controls/tools/stripe.refund/open",
        &olivia,
        &[
            ("csrf", &olivia_csrf),
            ("reason", "x"),
            ("open_for", "soon"),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`open_for` must be a duration"), "{body}");
    let (_, view) = server.get("/v1/views/runs", Some("demo-olivia"));
    assert_eq!(view["open_circuits"], serde_json::json!({}), "{view}");
    // dave's session cannot use olivia's CSRF token.
    let (status, _) = post(
        "/console/controls/agents/support-bot/pause",
        &session,
        &[("csrf", &olivia_csrf), ("reason", "x")],
    );
    assert_eq!(status, 403);
    let (_, view) = server.get("/v1/views/runs", Some("demo-olivia"));
    assert_eq!(view["paused_agents"], serde_json::json!([]), "{view}");
    // Refusals are evidence.
    let (_, found) = server.get("/v1/audit?code=csrf", Some("demo-erin"));
    assert!(!found["records"].as_array().unwrap().is_empty(), "{found}");
    assert!(server.stop().success());
}
