//! `warden serve` on loopback: authentication, roles, JSON errors, evidence
//! of refusals, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::common::{copy_dir, root, warden};

pub struct Server {
    pub child: Child,
    pub base: String,
    /// The server's log (stderr).
    pub log: std::path::PathBuf,
}

impl Server {
    pub fn start(data: &std::path::Path) -> Self {
        Self::start_with(data, &root().join("examples/support-refunds"))
    }

    pub fn start_with(data: &std::path::Path, pack: &std::path::Path) -> Self {
        Self::start_args(data, pack, &[], &[])
    }

    /// Starts `warden serve` with extra arguments and environment.
    pub fn start_args(
        data: &std::path::Path,
        pack: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        // The server's log goes to a file beside the data directory (a pipe
        // nobody reads would block the server once full).
        let log_path = data.with_extension("log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--listen", "127.0.0.1:0", "--pack"])
            .arg(pack)
            .arg("--data")
            .arg(data)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(root())
            .env_remove("WARDEN_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Self {
            child,
            base,
            log: log_path,
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = crate::common::client().get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(
            ct.starts_with("application/json"),
            "{path}: content-type {ct}"
        );
        (status, resp.json().unwrap())
    }

    /// A GET whose body is text (metrics).
    pub fn get_text(&self, path: &str) -> (u16, String) {
        let resp = crate::common::client()
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Polls the audit log until `n` records of `kind` exist.
    pub fn wait_for(&self, kind: &str, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let (_, found) = self.get(&format!("/v1/audit?kind={kind}"), Some("demo-erin"));
            let records = found["records"].as_array().cloned().unwrap_or_default();
            if records.len() >= n {
                return records;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("fewer than {n} `{kind}` records");
    }

    /// SIGTERM, then wait: the server drains and signs a final checkpoint.
    pub fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        // A failing test shows what the server said.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- server log (last lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

#[test]
fn tokens_roles_and_errors_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data);

    let (status, health) = server.get("/healthz", None);
    assert_eq!(status, 200);
    assert_eq!(health["pack"], "support-refunds");
    assert!(
        health["policy_version"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    // Who am I: the token decides, for agents and people.
    let (status, me) = server.get("/v1/whoami", Some("demo-support-bot"));
    assert_eq!(
        (status, me["id"].as_str(), me["kind"].as_str()),
        (200, Some("support-bot"), Some("agent"))
    );
    let (_, me) = server.get("/v1/whoami", Some("demo-erin"));
    assert_eq!(me["roles"], serde_json::json!(["auditor"]));

    // No token, an unknown token: 401 with a code.
    let (status, err) = server.get("/v1/audit", None);
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, err) = server.get("/v1/audit", Some("demo-mallory"));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    // An agent may not read the audit log: 403.
    let (status, err) = server.get("/v1/audit", Some("demo-support-bot"));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    // A bad query parameter: 400 with a code, not a text page.
    let (status, err) = server.get("/v1/audit?limit=lots", Some("demo-erin"));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, err) = server.get("/v1/audit?since=yesterday", Some("demo-erin"));
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, err) = server.get("/v1/nothing-here", None);
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Every refusal is evidence, without the token.
    let (status, found) = server.get("/v1/audit?kind=access_denied", Some("demo-erin"));
    assert_eq!(status, 200);
    let records = found["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{found}");
    let codes: Vec<&str> = records
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["forbidden", "unauthenticated", "unauthenticated"]);
    assert!(!found.to_string().contains("demo-mallory"));
    assert_eq!(records[0]["agent"], "support-bot");

    let (status, verify) = server.get("/v1/audit/verify", Some("demo-tina"));
    assert_eq!(status, 200, "{verify}");
    assert_eq!(verify["ok"], true);

    // Graceful stop: exit 0, and the log verifies with a checkpoint over it.
    assert!(server.stop().success());
    let d = data.to_str().unwrap();
    let report = warden(&["audit", "verify", "--data", d, "--json"]).json();
    assert_eq!(report["findings"], serde_json::json!([]));
    assert_eq!(report["latest_checkpoint_size"], 3);
}

#[test]
fn an_invalid_pack_does_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    let out = warden(&[
        "serve",
        "--pack",
        "crates/cli/tests/packs/bad-credentials",
        "--listen",
        "127.0.0.1:0",
        "--data",
        tmp.path().join("d").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot load the pack"),
        "{}",
        out.stderr
    );
}

#[test]
fn sighup_reloads_a_valid_pack_and_refuses_an_invalid_one() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&root().join("examples/support-refunds"), &pack);
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let (_, health) = server.get("/healthz", None);
    let v1 = health["policy_version"].as_str().unwrap().to_owned();

    // Break the manifest: the reload is refused, the old pack stays.
    let manifest = pack.join("warden.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, good.replacen("[[tools]]", "[[tools]\n", 1)).unwrap();
    server.signal("-HUP");
    let reloads = server.wait_for("pack_reloaded", 1);
    assert_eq!(reloads[0]["code"], "pack_invalid", "{reloads:?}");
    assert_eq!(
        server.get("/healthz", None).1["policy_version"],
        v1.as_str()
    );
    assert_eq!(server.get("/v1/whoami", Some("demo-support-bot")).0, 200);

    // A valid change: support-bot gets a new token instead of its demo one.
    let old_hash = warden(&["token", "hash", "demo-support-bot"])
        .stdout
        .trim()
        .to_owned();
    let new_hash = warden(&["token", "hash", "rotated-support-bot"])
        .stdout
        .trim()
        .to_owned();
    std::fs::write(&manifest, good.replace(&old_hash, &new_hash)).unwrap();
    server.signal("-HUP");
    let reloads = server.wait_for("pack_reloaded", 2);
    assert!(reloads[0].get("code").is_none(), "{reloads:?}");
    let v2 = server.get("/healthz", None).1["policy_version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(v1, v2);
    assert_eq!(reloads[0]["detail"]["new_version"], v2.as_str());
    assert_eq!(server.get("/v1/whoami", Some("demo-support-bot")).0, 401);
    assert_eq!(server.get("/v1/whoami", Some("rotated-support-bot")).0, 200);
    assert!(server.stop().success());
}

impl Server {
    pub fn post(&self, path: &str, token: &str, body: &str) -> (u16, Value) {
        let resp = crate::common::client()
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap())
    }
}

#[test]
fn proposals_are_decided_recorded_and_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let refund = |cents: u32| {
        format!(
            r#"{{"tool":"stripe.refund","arguments":{{"order_id":"ord_1","customer_id":"cus_SECRET7","amount_cents":{cents},"reason":"damaged"}}}}"#
        )
    };
    let (status, a) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"crm.lookup_customer","arguments":{"customer_id":"cus_1"}}"#,
    );
    assert_eq!(
        (status, a["status"].as_str()),
        (201, Some("approved")),
        "{a}"
    );
    assert!(a["action_id"].as_str().unwrap().starts_with("act_"));

    let (status, a) = server.post("/v1/actions", "demo-support-bot", &refund(25_000));
    assert_eq!(
        (status, a["status"].as_str()),
        (201, Some("awaiting_approval")),
        "{a}"
    );
    assert_eq!(
        a["decision"]["approval"]["groups"],
        serde_json::json!(["finance"])
    );

    // The agent is the token's: a forged `agent` field changes nothing.
    let forged = refund(500).replacen('{', r#"{"agent":"support-bot","#, 1);
    let (status, a) = server.post("/v1/actions", "demo-intern-bot", &forged);
    assert_eq!(
        (status, a["status"].as_str(), a["code"].as_str()),
        (201, Some("denied"), Some("policy_denied")),
        "{a}"
    );

    // Bad input: a 4xx with a code, each one recorded.
    let (status, e) = server.post("/v1/actions", "demo-support-bot", "{not json");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let wrong_type = refund(1).replace("\"amount_cents\":1", "\"amount_cents\":\"ten\"");
    let (status, e) = server.post("/v1/actions", "demo-support-bot", &wrong_type);
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_arguments")),
        "{e}"
    );
    let (status, e) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"stripe.chargeback"}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("unknown_tool"))
    );
    let (status, e) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"crm.lookup_customer","mode":"turbo"}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );
    let (status, e) = server.post(
        "/v1/actions",
        "demo-carol",
        r#"{"tool":"crm.lookup_customer"}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, e) = server.post(
        "/v1/actions",
        "no-such-token",
        r#"{"tool":"crm.lookup_customer"}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    // Everything decided is in the log, sensitive values redacted.
    let (_, found) = server.get("/v1/audit?kind=action_decided&limit=100", Some("demo-erin"));
    let records = found["records"].as_array().unwrap();
    assert_eq!(records.len(), 5, "{found}");
    let intern = records.iter().find(|r| r["agent"] == "intern-bot").unwrap();
    assert_eq!(intern["detail"]["claimed_agent"], "support-bot");
    assert!(!found.to_string().contains("cus_SECRET7"));
    let (_, denied) = server.get("/v1/audit?kind=access_denied", Some("demo-erin"));
    assert_eq!(denied["records"].as_array().unwrap().len(), 2);
    // Malformed and unsupported requests leave a record too (code, not body).
    let (_, rejected) = server.get("/v1/audit?kind=request_rejected", Some("demo-erin"));
    let codes: Vec<&str> = rejected["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["invalid_body", "invalid_json"]);
    assert!(server.stop().success());
}

#[test]
fn editing_a_pack_file_reloads_it_without_a_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    copy_dir(&root().join("examples/support-refunds"), &pack);
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let v1 = server.get("/healthz", None).1["policy_version"]
        .as_str()
        .unwrap()
        .to_owned();
    // A new policy file: billing-bot may no longer look customers up.
    std::fs::write(
        pack.join("policies/freeze.cedar"),
        "@id(\"billing-lookup-freeze\")\nforbid (principal == Agent::\"billing-bot\", action == Action::\"crm.lookup_customer\", resource);\n",
    )
    .unwrap();
    let reloads = server.wait_for("pack_reloaded", 1);
    assert!(reloads[0].get("code").is_none(), "{reloads:?}");
    let v2 = server.get("/healthz", None).1["policy_version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(v1, v2);
    let (_, a) = server.post(
        "/v1/actions",
        "demo-billing-bot",
        r#"{"tool":"crm.lookup_customer","arguments":{"customer_id":"cus_1"}}"#,
    );
    assert_eq!(a["status"], "denied", "{a}");
    assert_eq!(
        a["decision"]["policies"][0]["id"], "billing-lookup-freeze",
        "{a}"
    );
    assert_eq!(a["decision"]["policy_version"], v2.as_str());
    assert!(server.stop().success());
}
