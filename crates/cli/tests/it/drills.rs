//! Drills against a real server on loopback with a real HTTP receiver for
//! the pages: every scenario kind opens its playbook's incident, pages say
//! DRILL, times are measured in order, the drill undoes what it changed
//! (also when aborted, interrupted with Ctrl-C or cut by a restart), drill
//! records stay out of statistics and replay, and reviews link to their
//! incidents.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Receiver, root, warden, warden_env};
use crate::oversight::{pack, start, wait};
use crate::serve::Server;

/// `warden ARGS` against `server` as olivia (an operator).
fn as_olivia(server: &Server, args: &[&str]) -> crate::common::Output {
    warden_env(
        args,
        &[
            ("WARDEN_SERVER", &server.base),
            ("WARDEN_TOKEN", "demo-olivia"),
        ],
    )
}

fn drill_json(server: &Server, name: &str) -> (i32, Value) {
    let out = as_olivia(
        server,
        &["drill", "run", name, "--ack-as", "olivia", "--json"],
    );
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {}\n{}", out.stdout, out.stderr));
    (out.code, v)
}

/// Nothing any drill switched is still on.
fn nothing_left_switched(server: &Server) {
    let (_, runs) = server.get("/v1/views/runs", Some("demo-olivia"));
    assert_eq!(runs["paused_agents"], json!([]), "{runs}");
    assert_eq!(runs["quarantined_agents"], json!({}), "{runs}");
    assert_eq!(runs["open_circuits"], json!({}), "{runs}");
}

#[test]
fn every_scenario_kind_opens_its_incident_pages_drill_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    let data = tmp.path().join("data");
    let pack = root().join("examples/support-refunds");
    let server = start(&data, &pack, &hook.url);
    let drills = [
        (
            "intern-writes",
            "policy_violation",
            "intern-write-attempts",
            Some("pause"),
        ),
        (
            "refund-denials",
            "policy_violation",
            "policy-violations",
            None,
        ),
        ("lookup-retry-storm", "retry_storm", "retry-storm", None),
        (
            "crm-outage",
            "dependency_failure",
            "tool-failure-cascade",
            Some("circuit"),
        ),
        ("refund-approval-unanswered", "stuck", "stuck-refunds", None),
        (
            "card-in-lookup",
            "secret_in_output",
            "data-in-output",
            Some("quarantine"),
        ),
    ];
    for (name, scenario, playbook, action) in drills {
        let (code, v) = drill_json(&server, name);
        let r = &v["report"];
        assert_eq!(code, 0, "{name}: {v:#}");
        assert_eq!(r["state"], "passed", "{name}: {r:#}");
        assert_eq!(r["scenario"], scenario);
        let p = &r["playbooks"][0];
        assert_eq!(p["playbook"], playbook, "{name}: {r:#}");
        // Measured, and in order: detect ≤ page ≤ acknowledge ≤ resolve.
        let t = |k: &str| {
            p[k].as_i64()
                .unwrap_or_else(|| panic!("{name}: no {k} in {p}"))
        };
        assert!(t("detect_ms") <= t("page_ms"), "{name}: {p}");
        assert!(t("page_ms") <= t("ack_ms"), "{name}: {p}");
        assert!(t("ack_ms") <= t("resolve_ms"), "{name}: {p}");
        assert!(t("ack_ms") > 0, "{name}: {p}");
        assert_eq!(p["acknowledged_by"], "olivia");
        if let Some(a) = action {
            assert_eq!(p["actions"][0]["do"], a, "{name}: {p}");
            assert_eq!(p["actions"][0]["effective"], true, "{name}: {p}");
            assert!(!r["undone"].as_array().unwrap().is_empty(), "{name}: {r:#}");
        }
        // The incident is labelled a drill, and its page says DRILL.
        let id = p["incident"].as_str().unwrap();
        let (_, inc) = server.get(&format!("/v1/incidents/{id}"), Some("demo-olivia"));
        assert_eq!(inc["drill"], r["id"], "{inc}");
        assert!(
            inc["summary"].as_str().unwrap().starts_with("DRILL: "),
            "{inc}"
        );
        let page = hook
            .requests()
            .into_iter()
            .find(|s| s.path == "/webhook" && s.body.contains(id))
            .unwrap_or_else(|| panic!("{name}: no page for {id}"));
        let body: Value = serde_json::from_str(&page.body).unwrap();
        assert_eq!(body["drill"], r["id"], "{body}");
        assert!(
            body["incident"]["summary"]
                .as_str()
                .unwrap()
                .starts_with("DRILL: ")
        );
        nothing_left_switched(&server);
    }
    // No real (non-drill) incident was opened by any of it.
    let (_, all) = server.get(
        "/v1/incidents?state=resolved&limit=1000",
        Some("demo-olivia"),
    );
    for i in all["incidents"].as_array().unwrap() {
        assert!(
            i["drill"].is_string(),
            "a real incident from drill traffic: {i}"
        );
    }
    // History per playbook, and the playbook no drill ran yet.
    let out = as_olivia(
        &server,
        &[
            "drill",
            "history",
            "--pack",
            "examples/support-refunds",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let h = out.json();
    assert_eq!(h["runs"], 6, "{h:#}");
    assert_eq!(
        h["never_drilled"],
        json!(["billing-data-in-output"]),
        "{h:#}"
    );
    let out = as_olivia(
        &server,
        &["drill", "history", "--pack", "examples/support-refunds"],
    );
    assert!(
        out.stdout.contains("never drilled: billing-data-in-output"),
        "{}",
        out.stdout
    );

    // Drill records are left out of statistics and replay by default.
    server.stop();
    let d = data.to_str().unwrap();
    let stats = warden(&["approvals", "stats", "--data", d, "--json"]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    assert_eq!(stats.json()["requests"], 0, "{}", stats.stdout);
    let with = warden(&[
        "approvals",
        "stats",
        "--data",
        d,
        "--json",
        "--include-drills",
    ]);
    assert_eq!(with.json()["requests"], 1, "{}", with.stdout);
    let replay = warden(&[
        "replay",
        "--pack",
        "examples/support-refunds",
        "--data",
        d,
        "--json",
    ]);
    assert_eq!(replay.code, 2, "an empty window: {}", replay.stderr);
    assert!(replay.stderr.contains("no recorded"), "{}", replay.stderr);
    let replay = warden(&[
        "replay",
        "--pack",
        "examples/support-refunds",
        "--data",
        d,
        "--json",
        "--include-drills",
    ]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert!(
        replay.json()["replayed"].as_u64().unwrap() >= 20,
        "{}",
        replay.stdout
    );
}

#[test]
fn a_disabled_route_fails_the_drill_and_nothing_stays_switched() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    // No route variables: every one of olivia's routes is disabled.
    let server = Server::start(&tmp.path().join("data"));
    let (code, v) = drill_json(&server, "intern-writes");
    assert_eq!(code, 1, "{v:#}");
    let r = &v["report"];
    assert_eq!(r["state"], "failed");
    let problems = r["playbooks"][0]["problems"].to_string();
    assert!(problems.contains("nobody was paged"), "{problems}");
    assert!(problems.contains("olivia-webhook"), "{problems}");
    nothing_left_switched(&server);
    assert!(hook.requests().is_empty());
}

#[test]
fn an_aborted_or_interrupted_drill_undoes_what_it_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    let data = tmp.path().join("data");
    let pack = root().join("examples/support-refunds");
    let server = start(&data, &pack, &hook.url);

    // Ctrl-C on `warden drill run`: the drill is aborted, not abandoned.
    let cli = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["drill", "run", "intern-writes", "--json"])
        .env("WARDEN_SERVER", &server.base)
        .env("WARDEN_TOKEN", "demo-olivia")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait("intern-bot paused by the drill", || {
        let (_, runs) = server.get("/v1/views/runs", Some("demo-olivia"));
        (runs["paused_agents"].as_array().map_or(0, Vec::len) == 1).then_some(())
    });
    Command::new("kill")
        .args(["-INT", &cli.id().to_string()])
        .status()
        .unwrap();
    let out = cli.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["report"]["state"], "aborted", "{v:#}");
    assert!(
        v["report"]["undone"]
            .to_string()
            .contains("resumed agent `intern-bot`"),
        "{v:#}"
    );
    nothing_left_switched(&server);

    // DELETE mid-drill: the unanswered approval is cancelled.
    let (status, started) = server.post(
        "/v1/drills",
        "demo-olivia",
        r#"{"drill":"refund-approval-unanswered"}"#,
    );
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    wait("the stuck incident", || {
        let (_, v) = server.get(&format!("/v1/drills/{id}"), Some("demo-olivia"));
        let (_, inc) = server.get("/v1/incidents?limit=100", Some("demo-olivia"));
        let open = inc["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["drill"] == id.as_str());
        (v["state"] == "running" && open).then_some(())
    });
    let resp = crate::common::client()
        .delete(format!("{}/v1/drills/{id}", server.base))
        .bearer_auth("demo-olivia")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let done = wait("the aborted drill", || {
        let (_, v) = server.get(&format!("/v1/drills/{id}"), Some("demo-olivia"));
        (v["state"] != "running").then_some(v)
    });
    assert_eq!(done["state"], "aborted", "{done:#}");
    assert!(
        done["report"]["undone"]
            .to_string()
            .contains("cancelled 1 pending approval"),
        "{done:#}"
    );
    let (_, pending) = server.get("/v1/approvals?state=pending", Some("demo-olivia"));
    assert_eq!(pending["approvals"], json!([]), "{pending}");

    // A restart mid-drill: the next start cleans up.
    let (status, started) =
        server.post("/v1/drills", "demo-olivia", r#"{"drill":"card-in-lookup"}"#);
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    wait("support-bot quarantined by the drill", || {
        let (_, runs) = server.get("/v1/views/runs", Some("demo-olivia"));
        (runs["quarantined_agents"]
            .as_object()
            .map_or(0, |m| m.len())
            == 1)
            .then_some(())
    });
    server.stop();
    let server = start(&data, &pack, &hook.url);
    let (_, v) = server.get(&format!("/v1/drills/{id}"), Some("demo-olivia"));
    assert_eq!(v["state"], "aborted", "{v:#}");
    assert!(
        v["report"]["problems"].to_string().contains("interrupted"),
        "{v:#}"
    );
    nothing_left_switched(&server);
    let out = as_olivia(&server, &["drill", "show", &id]);
    assert!(out.stdout.contains("ABORTED"), "{}", out.stdout);
}

#[test]
fn reviews_link_to_incidents_and_bad_input_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    let pack = pack(tmp.path(), "support-refunds", &[]);
    let server = start(&tmp.path().join("data"), &pack, &hook.url);
    let (_, v) = drill_json(&server, "refund-denials");
    let inc = v["report"]["playbooks"][0]["incident"]
        .as_str()
        .unwrap()
        .to_owned();

    // Bad input: exit 2 with a clear message, nothing recorded.
    let bad = as_olivia(&server, &["drill", "run", "no-such-drill"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("unknown drill `no-such-drill`")
            && bad.stderr.contains("refund-denials"),
        "{}",
        bad.stderr
    );
    let bad = as_olivia(
        &server,
        &["drill", "run", "refund-denials", "--ack-as", "nobody"],
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("unknown person `nobody`"),
        "{}",
        bad.stderr
    );
    let bad = as_olivia(&server, &["incidents", "review", &inc, "--summary", "x"]);
    assert_eq!(bad.code, 2, "neither --pack-change nor --no-change");
    let bad = as_olivia(
        &server,
        &[
            "incidents",
            "review",
            &inc,
            "--summary",
            "x",
            "--pack-change",
            "not-a-version",
        ],
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("`pack_change` is a pack version"),
        "{}",
        bad.stderr
    );
    let bad = as_olivia(
        &server,
        &[
            "incidents",
            "review",
            "inc_nope",
            "--summary",
            "x",
            "--no-change",
            "y",
        ],
    );
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("unknown incident"), "{}", bad.stderr);
    let (status, e) = server.post(
        "/v1/drills",
        "demo-support-bot",
        r#"{"drill":"refund-denials"}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, e) = server.post(
        "/v1/drills",
        "demo-olivia",
        r#"{"drill":"refund-denials","extra":1}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{e}"
    );
    let (status, e) = server.post(
        "/v1/runs",
        "demo-support-bot",
        r#"{"workflow":"refund-request","trigger":{"source":"drill","reference":"drl_forged"}}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_body")),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("reserved"),
        "{e}"
    );
    let (_, reviews) = server.get("/v1/audit?kind=incident_reviewed", Some("demo-erin"));
    assert_eq!(reviews["records"], json!([]));
    // --ack-as someone who may not answer olivia's incidents: the drill
    // fails at once instead of waiting out the response window.
    let out = as_olivia(
        &server,
        &[
            "drill",
            "run",
            "lookup-retry-storm",
            "--ack-as",
            "dave",
            "--json",
        ],
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let problems = out.json()["report"]["playbooks"][0]["problems"].to_string();
    assert!(
        problems.contains("`dave` could not acknowledge"),
        "{problems}"
    );
    assert!(problems.contains("not acknowledged within"), "{problems}");

    // A review of the resolved incident, linked both ways.
    let out = as_olivia(
        &server,
        &[
            "incidents",
            "review",
            &inc,
            "--summary",
            "support-bot looped on warehouse deletes",
            "--pack-change",
            "sha256:0123456789abcdef",
            "--runbook",
            "https://runbooks.example.com/warehouse",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("fix       pack version sha256:0123456789abcdef"),
        "{}",
        out.stdout
    );
    let (_, shown) = server.get(&format!("/v1/incidents/{inc}"), Some("demo-olivia"));
    assert_eq!(shown["review"]["by"], "olivia", "{shown}");
    assert_eq!(
        shown["review"]["runbook"],
        "https://runbooks.example.com/warehouse"
    );
    let (_, reviews) = server.get("/v1/audit?kind=incident_reviewed", Some("demo-erin"));
    let rec = &reviews["records"][0];
    assert_eq!(rec["detail"]["incident"], inc.as_str(), "{rec}");
    assert_eq!(
        rec["detail"]["review"]["pack_change"], "sha256:0123456789abcdef",
        "{rec}"
    );
    // An open incident cannot be reviewed yet.
    let (_, started) = server.post("/v1/drills", "demo-olivia", r#"{"drill":"intern-writes"}"#);
    let id = started["id"].as_str().unwrap().to_owned();
    let open = wait("the intern incident", || {
        let (_, list) = server.get("/v1/incidents?state=open", Some("demo-olivia"));
        list["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["drill"] == id.as_str())
            .cloned()
    });
    let (status, e) = server.post(
        &format!("/v1/incidents/{}/review", open["id"].as_str().unwrap()),
        "demo-olivia",
        r#"{"summary":"too early","no_change":"n/a"}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("invalid_transition")),
        "{e}"
    );
}

#[test]
fn validate_checks_drills_against_their_playbooks() {
    let tmp = tempfile::tempdir().unwrap();
    // Narrowing a playbook to workflow runs: the drill can no longer open
    // it. A warning: the pack still loads.
    let p = pack(
        tmp.path(),
        "support-refunds",
        &[(
            "id = \"stuck-refunds\"\ndetector = \"stuck\"\n",
            "id = \"stuck-refunds\"\ndetector = \"stuck\"\nworkflows = [\"refund-request\"]\n",
        )],
    );
    let out = warden(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert!(
        out.stderr.contains("drill_cannot_open")
            && out.stderr.contains("drill traffic runs outside"),
        "{}",
        out.stderr
    );
    // Broken drills are errors, each at its line.
    let p = pack(
        &tmp.path().join("b"),
        "support-refunds",
        &[
            (
                "[[drills]]\nid = \"refund-denials\"\nplaybooks = [\"policy-violations\"]\nscenario = \"policy_violation\"",
                "[[drills]]\nid = \"refund-denials\"\nplaybooks = [\"policy-violations\", \"nope\"]\nscenario = \"policy_violation\"",
            ),
            (
                "id = \"intern-writes\"\nplaybooks = [\"intern-write-attempts\"]\nscenario = \"policy_violation\"",
                "id = \"intern-writes\"\nplaybooks = [\"retry-storm\"]\nscenario = \"stuck\"\nstuck_after = \"nonsense\"",
            ),
        ],
    );
    let out = warden(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr.contains("unknown playbook `nope`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("invalid duration `nonsense`"),
        "{}",
        out.stderr
    );
}
