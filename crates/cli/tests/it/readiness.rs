//! `warden check`: passes on a pack built to pass (drilled, reviewed,
//! routes configured), and names the failing item on packs built to fail
//! each one.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Receiver, root, warden_env};
use crate::oversight::{pack, propose, route_env, start, wait};

/// `warden check ARGS --json` with the route variables set for `hook`.
fn check(args: &[&str], hook: &str) -> (i32, Value) {
    let env = route_env(hook);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("WARDEN_TOKEN", "demo-olivia"));
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let out = warden_env(&all, &env);
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr));
    (out.code, v)
}

fn status<'a>(report: &'a Value, id: &str) -> (&'a str, String) {
    let item = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no item {id}"));
    (item["status"].as_str().unwrap(), item["facts"].to_string())
}

#[test]
fn a_drilled_pack_with_routes_is_ready_on_the_server_and_on_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    let data = tmp.path().join("data");
    let pack = root().join("examples/it-ops");
    let server = start(&data, &pack, &hook.url);
    let p = pack.to_str().unwrap();

    // Before any drill: the alerting item fails, naming each playbook.
    let (code, r) = check(&["--pack", p, "--server", &server.base], &hook.url);
    assert_eq!(code, 1, "{r:#}");
    let (s, facts) = status(&r, "alerting");
    assert_eq!(s, "fail");
    assert!(
        facts.contains("playbook `cluster-failures`: no drill delivered a page"),
        "{facts}"
    );

    for d in [
        "volume-deletion",
        "read-only-writes",
        "metrics-retry-loop",
        "restart-waits-for-oncall",
        "cluster-outage",
        "card-in-logs",
    ] {
        let out = warden_env(
            &["drill", "run", d, "--ack-as", "olivia"],
            &[
                ("WARDEN_SERVER", &server.base),
                ("WARDEN_TOKEN", "demo-olivia"),
            ],
        );
        assert_eq!(out.code, 0, "{d}: {}{}", out.stdout, out.stderr);
    }
    let (code, r) = check(&["--pack", p, "--server", &server.base], &hook.url);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["ready"], true);
    for id in ["named_owner", "write_policy", "alerting", "reviews"] {
        assert_eq!(status(&r, id).0, "pass", "{id}: {r:#}");
    }
    // The staging exception is documented: a warning naming it, not a failure.
    let (s, facts) = status(&r, "high_impact_approval");
    assert_eq!(s, "warn");
    assert!(
        facts.contains("`sre-bot` can get `allow` on high tool `k8s.restart_service`")
            && facts.contains("documented exception `sre-changes`"),
        "{facts}"
    );
    assert_ne!(status(&r, "audit").0, "fail", "{r:#}");
    let regs = r["items"][3]["regulations"].to_string();
    assert!(
        regs.contains("EU AI Act Art. 12") && regs.contains("26(6)"),
        "{regs}"
    );

    // The same from the log itself, with the server stopped.
    server.stop();
    let md = tmp.path().join("ready.md");
    let (code, r) = check(
        &[
            "--pack",
            p,
            "--data",
            data.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
        &hook.url,
    );
    assert_eq!(code, 0, "{r:#}");
    let (s, facts) = status(&r, "audit");
    assert_eq!(s, "pass", "{facts}");
    assert!(
        facts.contains("query indexes present")
            && facts.contains("every final action has its final record"),
        "{facts}"
    );
    let text = std::fs::read_to_string(md).unwrap();
    assert!(
        text.contains("# Readiness — `it-ops`")
            && text.contains("| Audit records are complete and searchable | PASS |"),
        "{text}"
    );
}

#[test]
fn both_examples_pass_the_pack_only_check() {
    let hook = Receiver::start(Duration::ZERO, 0);
    for p in ["examples/support-refunds", "examples/it-ops"] {
        let (code, r) = check(&["--pack", p], &hook.url);
        assert_eq!(code, 0, "{p}: {r:#}");
        assert_eq!(r["failed"], 0, "{p}");
        // Without a log, the items that need one say so.
        assert!(
            status(&r, "audit").1.contains("no audit log given"),
            "{p}: {r:#}"
        );
    }
}

#[test]
fn each_item_fails_on_a_pack_built_to_fail_it() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = Receiver::start(Duration::ZERO, 0);
    let fails = |dir: &std::path::Path, extra: &[&str], item: &str, says: &str| {
        let mut args = vec!["--pack", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, r) = check(&args, &hook.url);
        assert_eq!(code, 1, "{item}: {r:#}");
        let (s, facts) = status(&r, item);
        assert_eq!(s, "fail", "{item}: {r:#}");
        assert!(facts.contains(says), "{item}: `{says}` not in {facts}");
        r
    };
    // 1. A workflow without an owner.
    let p = pack(
        &tmp.path().join("1"),
        "support-refunds",
        &[(
            "id = \"refund-request\"\nowner = \"sam\"\n",
            "id = \"refund-request\"\n",
        )],
    );
    fails(
        &p,
        &[],
        "named_owner",
        "workflow `refund-request` has no owner",
    );
    // 2. A write tool no policy names and no test covers.
    let p = pack(
        &tmp.path().join("2"),
        "support-refunds",
        &[(
            "# --- upstream MCP servers",
            "[[tools]]\nid = \"crm.merge_customers\"\nsystem = \"crm\"\naccess = \"write\"\nrisk = \"low\"\n[tools.execute]\nconnector = \"mock\"\n[tools.args]\ntype = \"object\"\n\n# --- upstream MCP servers",
        )],
    );
    let r = fails(
        &p,
        &[],
        "write_policy",
        "write tool `crm.merge_customers` is named by no policy's scope",
    );
    assert!(
        status(&r, "write_policy")
            .1
            .contains("`crm.merge_customers` is covered by no pack test")
    );
    // 3. An agent that reaches a high-risk tool through a broad permit.
    let p = pack(&tmp.path().join("3"), "support-refunds", &[]);
    std::fs::write(
        p.join("policies/broad.cedar"),
        "@id(\"billing-bot-anything\")\n@reason(\"temporary, for the migration\")\npermit (principal == Agent::\"billing-bot\", action, resource);\n",
    )
    .unwrap();
    let r = fails(
        &p,
        &[],
        "high_impact_approval",
        "FAIL: `billing-bot` can get `allow` on high tool `stripe.refund` without approval",
    );
    assert!(
        status(&r, "high_impact_approval")
            .1
            .contains("`billing-bot-anything`"),
        "{r:#}"
    );
    // support-bot's small refunds stay a documented exception.
    assert!(
        status(&r, "high_impact_approval")
            .1
            .contains("warn: `support-bot`"),
        "{r:#}"
    );
    // 5. Routes disabled: nobody would be paged.
    let out = warden_env(
        &["check", "--pack", "examples/support-refunds", "--json"],
        &[],
    );
    assert_eq!(out.code, 1);
    let r = out.json();
    let (s, facts) = status(&r, "alerting");
    assert_eq!(s, "fail");
    assert!(facts.contains("`olivia-webhook` disabled: environment variable `WARDEN_EXAMPLE_WEBHOOK_URL` is not set"), "{facts}");

    // 4 and 6 need a log: a real incident resolved without review, then pruned payloads.
    let data = tmp.path().join("data");
    let p = pack(&tmp.path().join("6"), "support-refunds", &[]);
    let server = start(&data, &p, &hook.url);
    propose(
        &server,
        "demo-support-bot",
        json!({ "tool": "stripe.refund", "arguments": { "order_id": "ord_9", "customer_id": "cus_9", "amount_cents": 900000, "reason": "other" } }),
    );
    let inc = wait("the critical incident", || {
        let (_, v) = server.get("/v1/incidents", Some("demo-olivia"));
        v["incidents"].as_array().unwrap().first().cloned()
    });
    let id = inc["id"].as_str().unwrap().to_owned();
    let (st, v) = server.post(&format!("/v1/incidents/{id}/resolve"), "demo-olivia", "{}");
    assert_eq!(st, 200, "{v}");
    let base = server.base.clone();
    fails(
        &p,
        &["--server", &base],
        "reviews",
        &format!("incident {id} (policy-violations) has no post-incident review"),
    );
    // A review naming the version that was in force is no fix.
    let version = inc["detail"]["pack_version"].as_str().unwrap().to_owned();
    let (st, v) = server.post(
        &format!("/v1/incidents/{id}/review"),
        "demo-olivia",
        &json!({ "summary": "support-bot tried a $9,000 refund", "pack_change": version })
            .to_string(),
    );
    assert_eq!(st, 200, "{v}");
    fails(
        &p,
        &["--server", &base],
        "reviews",
        "but that version was in force when the incident opened",
    );
    let (st, _) = server.post(
        &format!("/v1/incidents/{id}/review"),
        "demo-olivia",
        &json!({ "summary": "support-bot tried a $9,000 refund", "pack_change": "sha256:00112233445566778899" }).to_string(),
    );
    assert_eq!(st, 200);
    let (_, r) = check(
        &["--pack", p.to_str().unwrap(), "--server", &base],
        &hook.url,
    );
    assert_eq!(status(&r, "reviews").0, "pass", "{r:#}");
    server.stop();
    // 4. Payloads pruned inside the retention period.
    let d = data.to_str().unwrap();
    let out = warden_env(&["audit", "prune", "--older-than", "0s", "--data", d], &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    fails(
        &p,
        &["--data", d],
        "audit",
        "inside the 183-day retention period",
    );

    // Bad input exits 2.
    let out = warden_env(
        &[
            "check",
            "--pack",
            "examples/it-ops",
            "--data",
            "/nonexistent/data",
        ],
        &[],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("no audit log in `/nonexistent/data`"),
        "{}",
        out.stderr
    );
    let out = warden_env(&["check", "--pack", "/nonexistent/pack"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}
