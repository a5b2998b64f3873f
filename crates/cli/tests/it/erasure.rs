//! Erasure reaches past the log: a requester named in a run's trigger is
//! dropped from the ended run and its decided approval requests too.

use serde_json::json;

use crate::common::warden_env;
use crate::safety::refund_requested_by;
use crate::serve::Server;

#[test]
fn i16_erasing_a_requester_drops_it_from_ended_runs_and_decided_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let ended = refund_requested_by(&server, "grace@example.com", "ord_e1");
    let (_, ap) = server.get(&format!("/v1/approvals/{ended}"), Some("demo-olivia"));
    let ended_run = ap["run_id"].as_str().unwrap().to_owned();
    assert_eq!(ap["trigger"]["requester"], "grace@example.com", "{ap}");
    // A run still open keeps its requester: separation of duties needs it.
    let open = refund_requested_by(&server, "grace@example.com", "ord_e2");
    let (status, v) = server.post(
        &format!("/v1/runs/{ended_run}/cancel"),
        "demo-olivia",
        r#"{"reason":"customer withdrew"}"#,
    );
    assert_eq!(status, 200, "{v}");

    let out = warden_env(
        &[
            "audit",
            "erase",
            "--where",
            "requester=grace@example.com",
            "--reason",
            "DSR-9",
        ],
        &[
            ("WARDEN_SERVER", server.base.as_str()),
            ("WARDEN_TOKEN", "demo-erin"),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert!(out.stdout.contains("2 runs"), "{}", out.stdout);

    let (_, run) = server.get(&format!("/v1/runs/{ended_run}"), Some("demo-olivia"));
    assert!(run.get("trigger").is_none_or(|t| t.is_null()), "{run}");
    let (_, ap) = server.get(&format!("/v1/approvals/{ended}"), Some("demo-olivia"));
    assert!(ap.get("trigger").is_none_or(|t| t.is_null()), "{ap}");
    assert!(!ap.to_string().contains("grace@example.com"), "{ap}");
    // The open run and its pending request still name the requester, and
    // separation of duties still holds for them.
    let (_, ap) = server.get(&format!("/v1/approvals/{open}"), Some("demo-olivia"));
    assert_eq!(ap["trigger"]["requester"], "grace@example.com", "{ap}");
    // No record still names her in clear.
    let (_, all) = server.get("/v1/audit?limit=10000", Some("demo-erin"));
    let erased = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] != "records_erased")
        .filter(|r| r.to_string().contains("grace@example.com"))
        .count();
    assert_eq!(erased, 0, "{all}");
    let (status, v) = server.post(
        "/v1/audit/erase",
        "demo-erin",
        &json!({"field": "requester", "value": "grace@example.com", "reason": "DSR-9"}).to_string(),
    );
    assert_eq!((status, v["erased"].as_u64()), (200, Some(0)), "{v}");
    assert!(server.stop().success());
}
