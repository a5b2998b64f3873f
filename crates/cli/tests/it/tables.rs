//! The CLI's tables stay in line with their headers whatever the length of
//! the ids in them (tool ids, group lists, playbook ids of real packs).

use serde_json::json;

use crate::common::{column, root, warden_env};
use crate::serve::Server;

#[test]
fn i16_tables_keep_long_ids_in_line() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_with(&tmp.path().join("data"), &root().join("examples/it-ops"));
    // Two production changes wait for people: a 19-character tool id, and
    // a request that needs two groups.
    for (tool, args) in [
        (
            "k8s.restart_service",
            json!({"environment": "production", "service": "checkout"}),
        ),
        (
            "k8s.scale",
            json!({"environment": "production", "service": "search", "replicas": 0}),
        ),
    ] {
        let (status, v) = server.post(
            "/v1/actions",
            "demo-sre-bot",
            &json!({"tool": tool, "mode": "enforce", "arguments": args}).to_string(),
        );
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["status"], "awaiting_approval", "{v}");
    }
    let env = [
        ("WARDEN_SERVER", server.base.as_str()),
        ("WARDEN_TOKEN", "demo-olivia"),
    ];
    let out = warden_env(&["approvals", "list"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        column(&out.stdout, "STATE"),
        ["pending", "pending"],
        "{}",
        out.stdout
    );
    assert_eq!(
        column(&out.stdout, "AGENT"),
        ["sre-bot", "sre-bot"],
        "{}",
        out.stdout
    );
    let mut tools = column(&out.stdout, "TOOL");
    tools.sort();
    assert_eq!(
        tools,
        ["k8s.restart_service", "k8s.scale"],
        "{}",
        out.stdout
    );
    for due in column(&out.stdout, "DUE") {
        assert!(
            due.starts_with("20") && due.ends_with('Z'),
            "{}",
            out.stdout
        );
    }
    let needs = column(&out.stdout, "NEEDS");
    assert!(
        needs
            .iter()
            .any(|n| n.contains("sre-oncall 0/1") && n.contains("sre-leads 0/1")),
        "{}",
        out.stdout
    );

    // `warden status`: the approvals and hotspots tables.
    let out = warden_env(&["status"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut hot = column(&out.stdout, "SYSTEM");
    hot.dedup();
    assert_eq!(hot, ["kubernetes"], "{}", out.stdout);
    assert!(server.stop().success());
}
