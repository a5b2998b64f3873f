//! The MCP gateway through the real binary: real rmcp peers as the agent
//! and as upstreams (the example's stdio knowledge base and an HTTP "lab"
//! server in this process), on the example pack.

use std::sync::atomic::Ordering;

use rmcp::model::{CallToolRequestParams, CallToolResponse, GetTaskParams, TaskStatus};
use serde_json::{Value, json};

use crate::common::{copy_dir, root, warden};
use crate::mcp_peers::{agent, call, names, start_lab, texts};
use crate::serve::Server;

/// The example pack plus the lab upstream's tools (pinned by `warden mcp
/// import`) and a policy for them.
fn lab_pack(tmp: &std::path::Path, lab_url: &str) -> std::path::PathBuf {
    let pack = tmp.join("pack");
    copy_dir(&root().join("examples/support-refunds"), &pack);
    let listed = warden(&["mcp", "import", lab_url, "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let pins: std::collections::BTreeMap<String, String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["pin"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let tool = |name: &str, extra: &str, args: &str| {
        format!(
            "\n[[tools]]\nid = \"lab.{name}\"\nsystem = \"lab\"\naccess = \"write\"\nrisk = \"medium\"\n\
             [tools.execute]\nconnector = \"mcp\"\nserver = \"lab\"\ntool = \"{name}\"\npin = \"{}\"\n{extra}\n{args}\n",
            pins[name]
        )
    };
    let mut text = std::fs::read_to_string(pack.join("warden.toml")).unwrap();
    text.push_str(&format!(
        "\n[[systems]]\nid = \"lab\"\nowner = \"sam\"\n\n[[mcp_servers]]\nid = \"lab\"\nurl = \"{lab_url}\"\nrecheck = \"0s\"\n"
    ));
    text.push_str(&tool(
        "echo",
        "",
        "[tools.args]\ntype = \"object\"\nrequired = [\"text\"]\nadditionalProperties = false\n[tools.args.properties]\ntext = { type = \"string\", maxLength = 100 }",
    ));
    text.push_str(&tool("slow", "timeout = \"500ms\"", ""));
    text.push_str(&tool("broken", "", ""));
    std::fs::write(pack.join("warden.toml"), text).unwrap();
    std::fs::write(
        pack.join("policies/lab.cedar"),
        r#"
@id("lab-support-bot")
@reason("support-bot uses the lab")
permit (principal == Agent::"support-bot", action in [Action::"lab.echo", Action::"lab.slow", Action::"lab.broken"], resource);

@id("lab-wire-needs-finance")
@approval("finance")
@reason("echoing `wire` needs finance")
forbid (principal, action == Action::"lab.echo", resource)
when { context.args.text == "wire" }
unless { context.approvals.contains("finance") };
"#,
    )
    .unwrap();
    let v = warden(&["validate", pack.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    pack
}

/// A runtime running the lab upstream, and Warden on the lab pack.
struct Lab {
    rt: tokio::runtime::Runtime,
    lab: std::sync::Arc<crate::mcp_peers::LabState>,
    _tmp: tempfile::TempDir,
    server: Server,
}

fn lab_server() -> Lab {
    let rt = rt();
    let (lab_url, lab) = start_lab(&rt);
    let tmp = tempfile::tempdir().unwrap();
    let pack = lab_pack(tmp.path(), &lab_url);
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    Lab {
        rt,
        lab,
        _tmp: tmp,
        server,
    }
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn agents_list_and_call_governed_tools_over_mcp() {
    let rt = rt();
    let (lab_url, lab) = start_lab(&rt);
    let tmp = tempfile::tempdir().unwrap();
    let pack = lab_pack(tmp.path(), &lab_url);
    let kb_log = tmp.path().join("kb-calls.jsonl");
    let manifest = pack.join("warden.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "command = [\"warden-example-kb\"]",
        &format!(
            "command = [\"warden-example-kb\", \"--call-log\", \"{}\"]",
            kb_log.display()
        ),
    );
    std::fs::write(&manifest, text).unwrap();
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let base = server.base.clone();

    rt.block_on(async {
        // Listing: model-safe names, only what some policy could permit,
        // only executable tools, never an upstream tool the pack did not adopt.
        let bot = agent(&base, "demo-support-bot", false).await;
        assert_eq!(
            names(&bot).await,
            [
                "crm_lookup_customer",
                "crm_update_notes",
                "email_send_customer",
                "kb_get_article",
                "kb_search_articles",
                "lab_broken",
                "lab_echo",
                "lab_slow",
                "stripe_refund"
            ]
        );
        let intern = agent(&base, "demo-intern-bot", false).await;
        assert_eq!(
            names(&intern).await,
            [
                "crm_lookup_customer",
                "kb_get_article",
                "kb_search_articles"
            ]
        );
        let listed = bot.list_all_tools().await.unwrap();
        let refund = listed.iter().find(|t| t.name == "stripe_refund").unwrap();
        assert_eq!(
            refund.input_schema["required"],
            json!(["order_id", "customer_id", "amount_cents", "reason"])
        );
        assert_eq!(
            refund.annotations.as_ref().unwrap().destructive_hint,
            Some(true)
        );

        // Allowed: the stdio upstream (the example's knowledge base) answers;
        // its result passes through, text included.
        let (r, t) = call(&bot, "kb_search_articles", json!({"query": "damaged"})).await;
        assert_ne!(r.is_error, Some(true), "{t}");
        assert!(t.contains("kb_101"), "{t}");
        assert_eq!(
            r.structured_content.as_ref().unwrap()["articles"][0]["article_id"],
            "kb_101"
        );
        // The HTTP upstream, by the canonical id too.
        let (r, t) = call(&bot, "lab.echo", json!({"text": "hello"})).await;
        assert_ne!(r.is_error, Some(true), "{t}");
        assert_eq!(t, "echo: hello");
        assert_eq!(lab.calls.load(Ordering::Acquire), 1);
        // A mock tool's result is returned as text and structured content.
        let (r, t) = call(&bot, "crm_lookup_customer", json!({"customer_id": "cus_1"})).await;
        assert_ne!(r.is_error, Some(true));
        assert!(t.contains("Ada Lovelace"), "{t}");

        // Denied, invalid, unknown: a normal result with isError and text
        // that says it all; nothing reaches an upstream.
        let (r, t) = call(
            &bot,
            "db_delete_rows",
            json!({"table": "orders", "where": "1=1"}),
        )
        .await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("policy_denied: not executed."), "{t}");
        assert!(t.contains("no agent may delete warehouse data"), "{t}");
        let (r, t) = call(&bot, "lab_echo", json!({"text": 7})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("invalid_arguments"), "{t}");
        let (r, t) = call(&bot, "no_such_tool", json!({})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("unknown_tool"), "{t}");
        let (r, t) = call(&intern, "lab_echo", json!({"text": "hi"})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("policy_denied"), "{t}");
        assert_eq!(lab.calls.load(Ordering::Acquire), 1);

        // Upstream failure and timeout.
        let (r, t) = call(&bot, "lab_broken", json!({})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(
            t.starts_with("tool_error: the tool was called and failed"),
            "{t}"
        );
        assert!(t.contains("lab database unavailable"), "{t}");
        let (r, t) = call(&bot, "lab_slow", json!({})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("tool_timeout"), "{t}");
    });

    // The stdio upstream got one call, keyed by the action id.
    let kb_calls: Vec<Value> = std::fs::read_to_string(&kb_log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(kb_calls.len(), 1);
    assert!(
        kb_calls[0]["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("act_")
    );
    assert!(
        lab.keys
            .lock()
            .unwrap()
            .iter()
            .all(|k| k.starts_with("act_"))
    );

    // Evidence of an MCP call has the same shape as a REST one.
    let (status, _) = server.post(
        "/v1/actions",
        "demo-support-bot",
        r#"{"tool":"crm.lookup_customer","mode":"enforce","arguments":{"customer_id":"cus_1"}}"#,
    );
    assert_eq!(status, 201);
    let decided = server.wait_for("action_decided", 10);
    let lookups: Vec<&Value> = decided
        .iter()
        .filter(|r| r["tool"] == "crm.lookup_customer")
        .collect();
    assert_eq!(lookups.len(), 2);
    let keys = |r: &Value| r.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(lookups[0]), keys(lookups[1]));
    let executed = server.wait_for("action_executed", 5);
    assert!(executed.iter().any(|r| r["tool"] == "lab.echo"));
    let denied: Vec<&Value> = decided
        .iter()
        .filter(|r| r["tool"] == "db.delete_rows")
        .collect();
    assert_eq!(denied[0]["code"], "policy_denied");
    assert!(server.stop().success());
}

#[test]
fn approvals_over_mcp_as_text_and_as_tasks_execute_once() {
    let Lab {
        rt,
        lab,
        _tmp,
        server,
    } = lab_server();
    let base = server.base.clone();
    let approve = |id: &str| {
        let (status, v) = server.post(
            &format!("/v1/approvals/{id}/decision"),
            "demo-dave",
            r#"{"decision":"approve","comment":"ok"}"#,
        );
        assert_eq!(status, 200, "{v}");
    };

    // A client without tasks: an error result naming the approval.
    let (approval, action) = rt.block_on(async {
        let bot = agent(&base, "demo-support-bot", false).await;
        let (r, t) = call(&bot, "lab_echo", json!({"text": "wire"})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("approval_required: not executed yet."), "{t}");
        assert!(
            t.contains("Call this tool again with the same arguments"),
            "{t}"
        );
        let s = r.structured_content.unwrap();
        // Calling again while pending: the same request, still not executed.
        let (r2, _) = call(&bot, "lab_echo", json!({"text": "wire"})).await;
        assert_eq!(
            r2.structured_content.unwrap()["approval_id"],
            s["approval_id"]
        );
        (
            s["approval_id"].as_str().unwrap().to_owned(),
            s["action_id"].as_str().unwrap().to_owned(),
        )
    });
    assert!(approval.starts_with("apr_"));
    assert_eq!(lab.calls.load(Ordering::Acquire), 0);
    approve(&approval);
    let (_, v) = server.get(
        &format!("/v1/actions/{action}?wait=10s"),
        Some("demo-support-bot"),
    );
    assert_eq!(v["status"], "succeeded");
    assert_eq!(lab.calls.load(Ordering::Acquire), 1);
    let second = rt.block_on(async {
        let bot = agent(&base, "demo-support-bot", false).await;
        // Calling again after approval returns the result of the one execution.
        let (r, t) = call(&bot, "lab_echo", json!({"text": "wire"})).await;
        assert_ne!(r.is_error, Some(true), "{t}");
        assert_eq!(t, "echo: wire");
        assert_eq!(lab.calls.load(Ordering::Acquire), 1);
        // After that, the identical call is a new request.
        let (r, t) = call(&bot, "lab_echo", json!({"text": "wire"})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("approval_required"), "{t}");
        let second = r.structured_content.unwrap()["approval_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(second, approval);
        second
    });
    // Denied: calling again says so, and nothing was sent.
    let (status, _) = server.post(
        &format!("/v1/approvals/{second}/decision"),
        "demo-dave",
        r#"{"decision":"deny","comment":"no"}"#,
    );
    assert_eq!(status, 200);
    rt.block_on(async {
        let bot = agent(&base, "demo-support-bot", false).await;
        let (r, t) = call(&bot, "lab_echo", json!({"text": "wire"})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("approval_denied: not executed."), "{t}");
        assert_eq!(lab.calls.load(Ordering::Acquire), 1);
    });

    // A client that declared MCP Tasks gets a task that completes with the
    // refund's result once approved.
    let task = rt.block_on(async {
        let bot = agent(&base, "demo-support-bot", true).await;
        let resp = bot
            .call_tool_once(
                CallToolRequestParams::new("stripe_refund").with_arguments(
                    json!({"order_id": "ord_9", "customer_id": "cus_9", "amount_cents": 25000, "reason": "damaged"})
                        .as_object().cloned().unwrap(),
                ),
            )
            .await
            .unwrap();
        let CallToolResponse::Task(t) = resp else { panic!("expected a task, got {resp:?}") };
        assert_eq!(t.task.status, TaskStatus::Working);
        assert!(t.task.status_message.as_deref().unwrap().contains("apr_"));
        let got = bot.get_task(GetTaskParams::new(t.task.task_id.clone())).await.unwrap();
        assert_eq!(got.task.status(), TaskStatus::Working);
        t.task.task_id
    });
    let (_, v) = server.get(&format!("/v1/actions/{task}"), Some("demo-support-bot"));
    approve(v["approval_id"].as_str().unwrap());
    rt.block_on(async {
        let bot = agent(&base, "demo-support-bot", true).await;
        let mut done = None;
        for _ in 0..100 {
            let got = bot
                .get_task(GetTaskParams::new(task.clone()))
                .await
                .unwrap();
            if got.task.status() == TaskStatus::Completed {
                done = Some(got);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let done = serde_json::to_value(done.expect("the task completes")).unwrap();
        let text = done["task"]["result"]["content"][0]["text"]
            .as_str()
            .or_else(|| done["result"]["content"][0]["text"].as_str())
            .unwrap_or_default()
            .to_owned();
        assert!(text.contains("re_mock_1"), "{done}");
        // Another agent cannot read the task.
        let other = agent(&base, "demo-billing-bot", true).await;
        assert!(
            other
                .get_task(GetTaskParams::new(task.clone()))
                .await
                .is_err()
        );
    });
    // A plain client never gets a task: the same call answers as text.
    rt.block_on(async {
        let bot = agent(&base, "demo-support-bot", false).await;
        let r = bot
            .call_tool_once(
                CallToolRequestParams::new("stripe_refund").with_arguments(
                    json!({"order_id": "ord_10", "customer_id": "cus_9", "amount_cents": 25000, "reason": "damaged"})
                        .as_object().cloned().unwrap(),
                ),
            )
            .await
            .unwrap();
        let CallToolResponse::Complete(r) = r else { panic!("a plain call got {r:?}") };
        assert!(texts(&r).starts_with("approval_required"));
    });
    assert!(server.stop().success());
}

#[test]
fn a_changed_upstream_tool_is_hidden_and_refused() {
    let Lab {
        rt,
        lab,
        _tmp,
        server,
    } = lab_server();
    let base = server.base.clone();
    rt.block_on(async {
        let bot = agent(&base, "demo-support-bot", false).await;
        assert!(names(&bot).await.contains(&"lab_echo".to_owned()));
        lab.drifted.store(true, Ordering::Release);
        assert!(!names(&bot).await.contains(&"lab_echo".to_owned()));
        assert!(names(&bot).await.contains(&"lab_broken".to_owned()));
        let (r, t) = call(&bot, "lab_echo", json!({"text": "hi"})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("tool_changed: not executed."), "{t}");
        assert!(t.contains("upstream `lab` changed tool `echo`"), "{t}");
        assert_eq!(lab.calls.load(Ordering::Acquire), 0);
        // Back to the adopted definition: usable again.
        lab.drifted.store(false, Ordering::Release);
        let (r, t) = call(&bot, "lab_echo", json!({"text": "hi"})).await;
        assert_ne!(r.is_error, Some(true), "{t}");
    });
    let failed = server.wait_for("action_executed", 2);
    assert!(failed.iter().any(|r| r["code"] == "tool_changed"));
    assert!(server.stop().success());
}

#[test]
fn mcp_refuses_people_missing_tokens_and_bad_bodies() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let client = crate::common::client();
    let post = |token: Option<&str>, body: &str| {
        let mut r = client
            .post(format!("{}/mcp", server.base))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (s, b) = post(None, init);
    assert_eq!(s, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["error"]["code"],
        "unauthenticated"
    );
    let (s, b) = post(Some("demo-dave"), init);
    assert_eq!(s, 403);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["error"]["code"],
        "forbidden"
    );
    let (s, _) = post(Some("demo-support-bot"), init);
    assert_eq!(s, 200);
    let (s, _) = post(Some("demo-support-bot"), "{not json");
    assert!((400..500).contains(&s), "{s}");
    let (s, _) = post(
        Some("demo-support-bot"),
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":7}}"#,
    );
    assert!((200..500).contains(&s), "{s}");
    // Nothing was proposed.
    let (_, v) = server.get("/v1/audit?kind=action_decided", Some("demo-erin"));
    assert_eq!(v["records"].as_array().unwrap().len(), 0);
    let denied = server.wait_for("access_denied", 2);
    assert!(denied.iter().any(|r| r["detail"]["path"] == "/mcp"));
    assert!(server.stop().success());
}

/// An upstream that is down: its tools are not listed, and a call fails
/// with `tool_error` saying which upstream cannot be reached.
#[test]
fn an_unreachable_upstream_is_hidden_and_its_calls_fail_clearly() {
    let rt = rt();
    let (lab_url, _lab) = start_lab(&rt);
    let tmp = tempfile::tempdir().unwrap();
    let pack = lab_pack(tmp.path(), &lab_url);
    // Point the pack at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/mcp", closed.local_addr().unwrap());
    drop(closed);
    let manifest = pack.join("warden.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace(&lab_url, &dead);
    std::fs::write(&manifest, text).unwrap();
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let base = server.base.clone();
    rt.block_on(async {
        let bot = agent(&base, "demo-support-bot", false).await;
        let listed = names(&bot).await;
        assert!(!listed.iter().any(|n| n.starts_with("lab_")), "{listed:?}");
        assert!(listed.contains(&"stripe_refund".to_owned()));
        let (r, t) = call(&bot, "lab_echo", json!({"text": "hi"})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("tool_error"), "{t}");
        assert!(t.contains("cannot reach MCP upstream `lab`"), "{t}");
    });
    assert!(server.stop().success());
}
