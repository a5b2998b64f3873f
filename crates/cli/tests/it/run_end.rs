//! How runs end before their last step: cancelled by the agent that asked
//! or an operator, or timed out by their workflow's `timeout`. Through the
//! real server and binary.

use serde_json::Value;

use crate::common::warden;
use crate::gateway::refund;
use crate::safety::{action, pending_refund, refund_requested_by, support_pack};
use crate::serve::Server;

#[test]
fn i16_runs_and_approval_requests_can_be_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    // The agent that asked cancels its own request.
    let (act, apr) = pending_refund(&server, "ord_c1");
    let (status, v) = server.post(
        &format!("/v1/approvals/{apr}/cancel"),
        "demo-billing-bot",
        "{}",
    );
    assert_eq!(status, 404, "another agent's request is not found: {v}");
    let (status, v) = server.post(
        &format!("/v1/approvals/{apr}/cancel"),
        "demo-support-bot",
        r#"{"reason":"customer withdrew"}"#,
    );
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
    let a = action(&server, &act);
    assert_eq!(
        (a["status"].as_str(), a["code"].as_str()),
        (Some("cancelled"), Some("cancelled")),
        "{a}"
    );
    // A cancelled request takes no answer, nor a second cancel.
    let (status, v) = server.post(
        &format!("/v1/approvals/{apr}/decision"),
        "demo-carol",
        r#"{"decision":"approve"}"#,
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("approval_closed")),
        "{v}"
    );
    let (status, _) = server.post(&format!("/v1/approvals/{apr}/cancel"), "demo-olivia", "{}");
    assert_eq!(status, 409);
    // A person without the operator role may not cancel.
    let (_, apr2) = pending_refund(&server, "ord_c2");
    let (status, _) = server.post(&format!("/v1/approvals/{apr2}/cancel"), "demo-carol", "{}");
    assert_eq!(status, 403);
    // Bad body: a JSON error, nothing cancelled.
    let (status, v) = server.post(
        &format!("/v1/approvals/{apr2}/cancel"),
        "demo-olivia",
        r#"{"why":1}"#,
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{v}"
    );

    // A run waiting on a person: cancelling it (CLI, as an operator)
    // cancels its request too; then it accepts no more actions.
    let apr3 = refund_requested_by(&server, "ada@example.com", "ord_c3");
    let (_, ap) = server.get(&format!("/v1/approvals/{apr3}"), Some("demo-olivia"));
    let run = ap["run_id"].as_str().unwrap().to_owned();
    let out = crate::common::warden_env(
        &["runs", "cancel", &run, "--reason", "ticket closed"],
        &[
            ("WARDEN_SERVER", &server.base),
            ("WARDEN_TOKEN", "demo-olivia"),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert!(out.stdout.contains("cancelled"), "{}", out.stdout);
    let (_, ap) = server.get(&format!("/v1/approvals/{apr3}"), Some("demo-olivia"));
    assert_eq!(ap["state"], "cancelled", "{ap}");
    let (status, v) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(500, "ord_c4", Some(&run), "enforce"),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("run_closed")),
        "{v}"
    );
    let recs = server.wait_for("run_cancelled", 1);
    assert_eq!(recs[0]["run"], run.as_str());
    assert!(server.stop().success());
}

/// The edit of the example manifest that gives the refund workflow a
/// `timeout` of `limit`.
fn timeout_edit(limit: &str) -> (&'static str, String) {
    const WORKFLOW: &str = "id = \"refund-request\"\nowner = \"sam\"\n";
    (WORKFLOW, format!("{WORKFLOW}timeout = \"{limit}\"\n"))
}

/// A (valid) pack whose refund workflow times out after `limit`.
fn pack_with_timeout(tmp: &std::path::Path, limit: &str) -> std::path::PathBuf {
    let (from, to) = timeout_edit(limit);
    support_pack(tmp, &[(from, &to)], &[], &[])
}

fn run_of(server: &Server, approval: &str) -> String {
    let (_, ap) = server.get(&format!("/v1/approvals/{approval}"), Some("demo-olivia"));
    ap["run_id"].as_str().unwrap().to_owned()
}

#[test]
fn i16_a_workflow_timeout_ends_its_runs_and_cancels_what_they_wait_for() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = pack_with_timeout(tmp.path(), "2s");
    let data = tmp.path().join("data");
    let server = Server::start_with(&data, &pack);
    // A run waits on finance for its refund; the workflow's timeout ends it.
    let apr = refund_requested_by(&server, "ada@example.com", "ord_t1");
    let run = run_of(&server, &apr);
    let recs = server.wait_for("run_cancelled", 1);
    assert_eq!(recs[0]["run"], run.as_str(), "{}", recs[0]);
    assert_eq!(recs[0]["detail"]["state"], "timed_out", "{}", recs[0]);
    assert_eq!(recs[0]["detail"]["by"], "warden", "{}", recs[0]);
    assert_eq!(recs[0]["detail"]["timeout_s"], 2, "{}", recs[0]);
    let (status, r) = server.get(&format!("/v1/runs/{run}"), Some("demo-olivia"));
    assert_eq!(
        (status, r["state"].as_str()),
        (200, Some("timed_out")),
        "{r}"
    );
    let (_, ap) = server.get(&format!("/v1/approvals/{apr}"), Some("demo-olivia"));
    assert_eq!(ap["state"], "cancelled", "{ap}");
    let act = ap["action_id"].as_str().unwrap();
    let a = action(&server, act);
    assert_eq!(
        (a["status"].as_str(), a["code"].as_str()),
        (Some("cancelled"), Some("run_timed_out")),
        "{a}"
    );
    let cancelled = server.wait_for("approval_cancelled", 1);
    assert_eq!(cancelled[0]["code"], "run_timed_out", "{}", cancelled[0]);
    // It takes no more actions and no answer.
    let (status, v) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(500, "ord_t2", Some(&run), "enforce"),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("run_closed")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed_out"),
        "{v}"
    );
    let (status, v) = server.post(
        &format!("/v1/approvals/{apr}/decision"),
        "demo-carol",
        r#"{"decision":"approve"}"#,
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("approval_closed")),
        "{v}"
    );
    // A request outside any run is not touched by run timeouts.
    let (_, outside) = pending_refund(&server, "ord_t3");
    assert!(server.stop().success());

    // A deadline that passes while Warden is down fires when it starts.
    let server = Server::start_with(&data, &pack);
    let (status, r) = server.post(
        "/v1/runs",
        "demo-support-bot",
        r#"{"workflow":"refund-request"}"#,
    );
    assert_eq!(status, 201, "{r}");
    let run2 = r["run_id"].as_str().unwrap().to_owned();
    assert!(server.stop().success());
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let server = Server::start_with(&data, &pack);
    let recs = server.wait_for("run_cancelled", 2);
    assert!(recs.iter().any(|r| r["run"] == run2.as_str()), "{recs:?}");
    let (_, ap) = server.get(&format!("/v1/approvals/{outside}"), Some("demo-olivia"));
    assert_eq!(ap["state"], "pending", "{ap}");
    // Exactly one record per run, even across the restart.
    let (_, all) = server.get("/v1/audit?kind=run_cancelled", Some("demo-erin"));
    assert_eq!(all["records"].as_array().unwrap().len(), 2, "{all}");
    assert!(server.stop().success());
}

#[test]
fn i16_a_bad_workflow_timeout_is_a_validation_error_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["soon", "0s"] {
        let dir = tmp.path().join(bad);
        std::fs::create_dir_all(&dir).unwrap();
        crate::common::copy_dir(
            &crate::common::root().join("examples/support-refunds"),
            &dir.join("pack"),
        );
        let manifest = dir.join("pack/warden.toml");
        let (from, to) = timeout_edit(bad);
        let text = std::fs::read_to_string(&manifest)
            .unwrap()
            .replacen(from, &to, 1);
        std::fs::write(&manifest, text).unwrap();
        let out = warden(&[
            "validate",
            dir.join("pack").to_str().unwrap(),
            "--error-format",
            "json",
        ]);
        assert_eq!(out.code, 1, "{}", out.snapshot());
        let v: Value = out.json();
        let d = v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == "invalid_duration")
            .unwrap_or_else(|| panic!("{v}"));
        assert!(d["message"].as_str().unwrap().contains(bad), "{d}");
        assert_eq!(d["file"], "warden.toml", "{d}");
        assert!(d["line"].as_u64().unwrap() > 300, "{d}");
    }
}
