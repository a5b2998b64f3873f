//! Counters through the real server: `context.usage` is exact under
//! concurrency, survives a restart (SQLite and PostgreSQL), counts approved
//! actions when they are approved, and keeps keys apart.

use serde_json::{Value, json};

use crate::common::root;
use crate::gateway::pack_with;
use crate::postgres::PgDb;
use crate::serve::Server;

/// support-refunds with at most 10 customer lookups per agent an hour.
fn capped_pack(tmp: &std::path::Path) -> std::path::PathBuf {
    let pack = pack_with(tmp, |m| {
        format!(
            "{m}\n[[counters]]\nname = \"lookups_per_hour\"\ntools = [\"crm.lookup_customer\"]\n\
             per = [\"agent\"]\nwindow = \"1h\"\n"
        )
    });
    std::fs::write(
        pack.join("policies/cap.cedar"),
        "@id(\"lookup-cap\")\n@reason(\"at most 10 lookups an hour\")\n\
         forbid (principal, action == Action::\"crm.lookup_customer\", resource)\n\
         when { context.usage.lookups_per_hour > 10 };\n",
    )
    .unwrap();
    pack
}

fn lookup(server: &Server, token: &str, customer: &str) -> Value {
    let body = json!({
        "tool": "crm.lookup_customer",
        "mode": "check",
        "arguments": {"customer_id": customer},
    });
    let (status, a) = server.post("/v1/actions", token, &body.to_string());
    assert!(status == 201 || status == 200, "{status} {a}");
    a
}

/// 64 lookups at once against a cap of 10: exactly 10 pass; a restart
/// keeps the count; another agent has its own window.
fn exactly_ten_of_sixty_four(db: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pack = capped_pack(tmp.path());
    let server = Server::start_args(&data, &pack, db, &[]);
    let outcomes: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let server = &server;
                s.spawn(move || lookup(server, "demo-support-bot", &format!("cus_{i}")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let allowed = outcomes
        .iter()
        .filter(|a| a["status"] == "approved")
        .count();
    let denied: Vec<&Value> = outcomes
        .iter()
        .filter(|a| a["status"] == "denied")
        .collect();
    assert_eq!((allowed, denied.len()), (10, 54), "{outcomes:?}");
    for d in &denied {
        assert_eq!(d["decision"]["policies"][0]["id"], "lookup-cap", "{d}");
    }
    assert!(server.stop().success());

    // A new process rebuilds the window from the store.
    let server = Server::start_args(&data, &pack, db, &[]);
    let again = lookup(&server, "demo-support-bot", "cus_again");
    assert_eq!(again["status"], "denied", "{again}");
    // The evidence keeps what the decision read: 10 before this request.
    let (_, found) = server.get(
        "/v1/audit?kind=action_decided&limit=1000",
        Some("demo-erin"),
    );
    let rec = found["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == again["action_id"])
        .cloned()
        .unwrap();
    assert_eq!(rec["usage"], json!({"lookups_per_hour": 10}), "{rec}");
    // Another agent counts in its own window.
    let other = lookup(&server, "demo-billing-bot", "cus_1");
    assert_eq!(other["status"], "approved", "{other}");
    assert!(server.stop().success());
}

#[test]
fn sixty_four_concurrent_proposals_against_a_cap_of_ten_allow_exactly_ten() {
    exactly_ten_of_sixty_four(&[]);
}

#[test]
fn sixty_four_concurrent_proposals_against_a_cap_of_ten_on_postgresql() {
    let Some(db) = PgDb::new() else { return };
    exactly_ten_of_sixty_four(&["--database-url", db.url.as_str()]);
}

fn refund(server: &Server, customer: &str, order: &str, cents: u64) -> Value {
    let body = json!({
        "tool": "stripe.refund",
        "mode": "check",
        "arguments": {"order_id": order, "customer_id": customer, "amount_cents": cents, "reason": "damaged"},
    });
    let (status, a) = server.post("/v1/actions", "demo-support-bot", &body.to_string());
    assert!(status == 201 || status == 200, "{status} {a}");
    a
}

#[test]
fn the_daily_refund_cap_per_customer_allows_up_to_the_cent_and_keeps_customers_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data);
    // Twenty $100 refunds: $2,000 exactly, each allowed without approval.
    for i in 0..20 {
        let a = refund(&server, "cus_A", &format!("ord_{i}"), 10_000);
        assert_eq!(a["status"], "approved", "refund {i}: {a}");
    }
    // One cent more is over the cap, whatever the amount.
    let over = refund(&server, "cus_A", "ord_20", 1);
    assert_eq!(over["status"], "denied", "{over}");
    assert_eq!(
        over["decision"]["policies"][0]["id"], "agent-refunds-daily-cap",
        "{over}"
    );
    // Another customer has its own day.
    assert_eq!(
        refund(&server, "cus_B", "ord_21", 10_000)["status"],
        "approved"
    );
    // A larger refund still goes to finance, and a denied one never counted:
    // the window holds exactly $2,000 for cus_A.
    let big = refund(&server, "cus_A", "ord_22", 15_000);
    assert_eq!(big["status"], "awaiting_approval", "{big}");
    assert!(server.stop().success());

    // Replay decides each recorded request with the counters it read: the
    // refusal stays a refusal, nothing loosens.
    let out = crate::common::warden(&[
        "replay",
        "--pack",
        root().join("examples/support-refunds").to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report = out.json();
    let changed: u64 = report["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["recorded"] != c["candidate"])
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(changed, 0, "{report}");
    let denied: u64 = report["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["recorded"] == "deny" && c["candidate"] == "deny")
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(denied, 1, "{report}");
}

#[test]
fn production_restarts_approved_count_and_the_twenty_first_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = root().join("examples/it-ops");
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let restart = |service: &str| {
        let body = json!({
            "tool": "k8s.restart_service",
            "mode": "check",
            "arguments": {"environment": "production", "service": service},
        });
        let (_, a) = server.post("/v1/actions", "demo-sre-bot", &body.to_string());
        a
    };
    let approve = |approval: &Value| {
        let (status, v) = server.post(
            &format!("/v1/approvals/{}/decision", approval.as_str().unwrap()),
            "demo-marco",
            r#"{"decision":"approve"}"#,
        );
        assert_eq!(status, 200, "{v}");
    };
    let action = |id: &Value| {
        let (_, a) = server.get(
            &format!("/v1/actions/{}", id.as_str().unwrap()),
            Some("demo-sre-bot"),
        );
        a
    };
    // Nineteen approved restarts count.
    for i in 0..19 {
        let a = restart(&format!("svc-{i}"));
        assert_eq!(a["status"], "awaiting_approval", "{a}");
        approve(&a["approval_id"]);
        assert_eq!(action(&a["action_id"])["status"], "approved");
    }
    // Two wait at once: each sees 19 + itself. The first approved is the
    // 20th; the second, approved after it, meets the limit on re-evaluation.
    let a = restart("checkout");
    let b = restart("search");
    assert_eq!(a["status"], "awaiting_approval", "{a}");
    assert_eq!(b["status"], "awaiting_approval", "{b}");
    approve(&a["approval_id"]);
    assert_eq!(action(&a["action_id"])["status"], "approved");
    approve(&b["approval_id"]);
    let b = action(&b["action_id"]);
    assert_eq!(b["status"], "denied", "{b}");
    assert_eq!(b["code"], "policy_denied", "{b}");
    // From now on a production restart is refused at once; staging is not
    // limited.
    let c = restart("billing");
    assert_eq!(c["status"], "denied", "{c}");
    assert_eq!(
        c["decision"]["policies"][0]["id"], "production-restart-rate-limit",
        "{c}"
    );
    let body = json!({
        "tool": "k8s.restart_service",
        "mode": "check",
        "arguments": {"environment": "staging", "service": "checkout"},
    });
    let (_, s) = server.post("/v1/actions", "demo-sre-bot", &body.to_string());
    assert_eq!(s["status"], "approved", "{s}");
    // Over MCP (no run id, no approval asked): the same window refuses it.
    let base = server.base.clone();
    crate::mcp::rt().block_on(async {
        let bot = crate::mcp_peers::agent(&base, "demo-sre-bot", false).await;
        let (r, t) = crate::mcp_peers::call(
            &bot,
            "k8s_restart_service",
            json!({"environment": "production", "service": "cart"}),
        )
        .await;
        assert_eq!(r.is_error, Some(true), "{t}");
        assert!(t.contains("production-restart-rate-limit"), "{t}");
        assert!(t.contains("not executed"), "{t}");
    });
    assert!(server.stop().success());
}

#[test]
fn mcp_calls_count_and_meet_the_cap_with_no_run_id() {
    let rt = crate::mcp::rt();
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let base = server.base.clone();
    rt.block_on(async {
        let bot = crate::mcp_peers::agent(&base, "demo-support-bot", false).await;
        let args = |order: &str, cents: u64| {
            json!({"order_id": order, "customer_id": "cus_mcp", "amount_cents": cents, "reason": "damaged"})
        };
        // $1,950 over MCP in twenty calls, then a REST refund to the same
        // customer: one window, whatever the transport.
        for i in 0..19 {
            let (r, t) =
                crate::mcp_peers::call(&bot, "stripe_refund", args(&format!("ord_{i}"), 10_000)).await;
            assert_ne!(r.is_error, Some(true), "call {i}: {t}");
        }
        let (r, t) = crate::mcp_peers::call(&bot, "stripe_refund", args("ord_19", 5_000)).await;
        assert_ne!(r.is_error, Some(true), "{t}");
        let rest = refund(&server, "cus_mcp", "ord_20", 5_000);
        assert_eq!(rest["status"], "approved", "{rest}");
        // $2,000 reached: the next call is refused, with the reason as text.
        let (r, t) = crate::mcp_peers::call(&bot, "stripe_refund", args("ord_21", 100)).await;
        assert_eq!(r.is_error, Some(true), "{t}");
        assert!(t.contains("agent-refunds-daily-cap"), "{t}");
        assert!(t.contains("not executed"), "{t}");
    });
    assert!(server.stop().success());
}
