//! The gateway on PostgreSQL (issue 4): a fresh database per test, created
//! on the server named by `WARDEN_TEST_DATABASE_URL` and dropped after it;
//! skipped with a printed reason when the variable is not set.

use serde_json::{Value, json};

use crate::common::root;
use crate::gateway::{refund, start_run};
use crate::serve::Server;

/// A fresh PostgreSQL database for one test, dropped at the end; `None`
/// (with the reason printed) when `WARDEN_TEST_DATABASE_URL` is not set.
pub(crate) struct PgDb {
    base: String,
    name: String,
    pub(crate) url: String,
}

impl PgDb {
    pub(crate) fn new() -> Option<Self> {
        let Ok(base) = std::env::var("WARDEN_TEST_DATABASE_URL") else {
            eprintln!("skipped: WARDEN_TEST_DATABASE_URL is not set (.ci/run sets it)");
            return None;
        };
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).unwrap();
        let name = format!("warden_gw_{}", hex::encode(b));
        Self::admin(&base, &format!("CREATE DATABASE {name}"));
        let url = match base.rfind('/') {
            Some(i) => format!("{}/{name}", &base[..i]),
            None => panic!("no database in {base}"),
        };
        Some(Self { base, name, url })
    }

    fn admin(base: &str, sql: &str) {
        crate::common::exec_sql(base, sql);
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        Self::admin(
            &self.base,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

#[test]
fn the_refund_run_on_postgresql_survives_a_restart() {
    let Some(db) = PgDb::new() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pack = root().join("examples/support-refunds");
    let args = ["--database-url", db.url.as_str()];
    let server = Server::start_args(&data, &pack, &args, &[]);
    let run = start_run(&server, "demo-support-bot");
    let lookup = r#"{"tool":"crm.lookup_customer","mode":"enforce","arguments":{"customer_id":"cus_1"},"run_id":"RUN"}"#.replace("RUN", &run);
    let (_, a) = server.post("/v1/actions", "demo-support-bot", &lookup);
    assert_eq!(a["status"], "succeeded", "{a}");
    let mut body: Value =
        serde_json::from_str(&refund(5000, "ord_1", Some(&run), "enforce")).unwrap();
    body["idempotency_key"] = json!("pg-refund");
    let (_, first) = server.post("/v1/actions", "demo-support-bot", &body.to_string());
    assert_eq!(first["status"], "succeeded", "{first}");
    assert!(server.stop().success());

    // A new process on the same database: state, idempotency and evidence hold.
    let server = Server::start_args(&data, &pack, &args, &[]);
    let (status, again) = server.post("/v1/actions", "demo-support-bot", &body.to_string());
    assert_eq!(
        (status, &again["action_id"]),
        (200, &first["action_id"]),
        "{again}"
    );
    let (_, r) = server.get(&format!("/v1/runs/{run}"), Some("demo-tina"));
    assert_eq!(
        r["done_steps"],
        json!(["crm.lookup_customer", "stripe.refund"]),
        "{r}"
    );
    assert_eq!(r["next_steps"], json!(["email.send_customer"]));
    let (_, v) = server.get("/v1/audit/verify", Some("demo-erin"));
    assert_eq!(v["ok"], true, "{v}");
    assert!(server.stop().success());
}

#[test]
fn an_approval_on_postgresql_survives_a_restart_and_its_timer_fires_once() {
    let Some(db) = PgDb::new() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pack = crate::gateway::pack_with(tmp.path(), |t| {
        t.replace(
            "escalation = { to = \"support-leads\", after = \"30m\" }",
            "escalation = { to = \"support-leads\", after = \"2s\" }",
        )
    });
    let args = ["--database-url", db.url.as_str()];
    let server = Server::start_args(&data, &pack, &args, &[]);
    let (_, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        &refund(50_000, "ord_pg", None, "enforce"),
    );
    assert_eq!(a["status"], "awaiting_approval", "{a}");
    let (action, approval) = (
        a["action_id"].as_str().unwrap().to_owned(),
        a["approval_id"].as_str().unwrap().to_owned(),
    );
    assert!(server.stop().success());

    // Down while the escalation falls due; it fires once on start.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let server = Server::start_args(&data, &pack, &args, &[]);
    server.wait_for("approval_escalated", 1);
    let (_, inbox) = server.get("/v1/approvals?group=support-leads", Some("demo-sam"));
    assert_eq!(
        inbox["approvals"][0]["approval_id"],
        approval.as_str(),
        "{inbox}"
    );
    let (status, v) = server.post(
        &format!("/v1/approvals/{approval}/decision"),
        "demo-erin",
        r#"{"decision":"approve"}"#,
    );
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("approved")),
        "{v}"
    );
    let (_, done) = server.get(
        &format!("/v1/actions/{action}?wait=10s"),
        Some("demo-support-bot"),
    );
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(server.wait_for("approval_escalated", 1).len(), 1);
    assert!(server.stop().success());
}
