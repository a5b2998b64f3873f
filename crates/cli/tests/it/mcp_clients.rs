//! The MCP gateway with clients other than the rmcp HTTP client of
//! `mcp.rs`: the Python MCP SDK, a client launching `warden mcp stdio`, and
//! calls that name a workflow run.

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use crate::common::root;
use crate::mcp::rt;
use crate::mcp_peers::{agent, call, names, texts};
use crate::serve::Server;

/// A client that is not ours: the Python MCP SDK from PyPI, in the virtual
/// environment `.ci/run` creates (`WARDEN_TEST_PYTHON` names its python).
#[test]
fn the_python_mcp_sdk_lists_and_calls_tools_through_warden() {
    let Ok(python) = std::env::var("WARDEN_TEST_PYTHON") else {
        eprintln!(
            "skipped: WARDEN_TEST_PYTHON is not set (.ci/run installs the `mcp` package into a venv and sets it)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let run = |token: &str| {
        let out = std::process::Command::new(&python)
            .arg(root().join("examples/support-refunds/clients/python_mcp_client.py"))
            .args([&server.base, token])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let bot = run("demo-support-bot");
    assert_eq!(
        bot["tools"],
        json!([
            "crm_lookup_customer",
            "crm_update_notes",
            "email_send_customer",
            "kb_get_article",
            "kb_search_articles",
            "stripe_refund"
        ])
    );
    let calls = &bot["calls"];
    assert_eq!(calls["kb_search_articles"]["is_error"], false);
    assert!(
        calls["kb_search_articles"]["text"]
            .as_str()
            .unwrap()
            .contains("kb_101")
    );
    assert_eq!(calls["db_delete_rows"]["is_error"], true);
    assert!(
        calls["db_delete_rows"]["text"]
            .as_str()
            .unwrap()
            .starts_with("policy_denied: not executed.")
    );
    assert_eq!(calls["stripe_refund"]["is_error"], true);
    let pending = calls["stripe_refund"]["text"].as_str().unwrap();
    assert!(
        pending.starts_with("approval_required: not executed yet."),
        "{pending}"
    );
    // The approval it names is real and pending in the inbox.
    let apr = pending
        .split_whitespace()
        .find(|w| w.starts_with("apr_"))
        .unwrap();
    let (status, v) = server.get(&format!("/v1/approvals/{apr}"), Some("demo-dave"));
    assert_eq!(status, 200);
    assert_eq!(v["state"], "pending");
    let intern = run("demo-intern-bot");
    assert_eq!(
        intern["tools"],
        json!([
            "crm_lookup_customer",
            "kb_get_article",
            "kb_search_articles"
        ])
    );
    assert!(server.stop().success());
}

/// `warden mcp stdio`, launched by an MCP client as a child process, lists
/// and calls governed tools through a running server.
#[test]
fn warden_mcp_stdio_bridges_a_launching_client_to_the_server() {
    use rmcp::ServiceExt;
    let rt = rt();
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let base = server.base.clone();
    rt.block_on(async {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.args(["mcp", "stdio", "--server", &base])
            .env("WARDEN_TOKEN", "demo-intern-bot");
        let child = rmcp::transport::TokioChildProcess::new(cmd).unwrap();
        let client = rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::default(),
            rmcp::model::Implementation::new("launcher", "1"),
        )
        .serve(child)
        .await
        .unwrap();
        assert_eq!(
            names(&client).await,
            [
                "crm_lookup_customer",
                "kb_get_article",
                "kb_search_articles"
            ]
        );
        let (r, t) = call(
            &client,
            "crm_update_notes",
            json!({"customer_id": "cus_1", "note": "hi"}),
        )
        .await;
        assert_eq!(r.is_error, Some(true));
        assert!(t.starts_with("policy_denied: not executed."), "{t}");
        let (_, t) = call(&client, "kb_get_article", json!({"article_id": "kb_103"})).await;
        assert!(t.contains("Duplicate charges"), "{t}");
        let _ = client.cancel().await;
    });
    let decided = server.wait_for("action_decided", 2);
    assert!(decided.iter().all(|r| r["agent"] == "intern-bot"));
    assert!(server.stop().success());
}

/// A call names its workflow run in `_meta`; step order is enforced as on
/// REST, whatever MCP session the call comes from.
#[test]
fn calls_join_a_run_named_in_meta_and_keep_its_step_order() {
    let rt = rt();
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let base = server.base.clone();
    let run = crate::gateway::start_run(&server, "demo-support-bot");
    let in_run = |name: &str, args: Value| {
        let mut p = CallToolRequestParams::new(name.to_owned())
            .with_arguments(args.as_object().cloned().unwrap());
        let mut meta = rmcp::model::RequestMetaObject::new();
        meta.insert("io.warden/run_id".to_owned(), json!(run));
        meta.insert("io.warden/reason".to_owned(), json!("ticket T-1042"));
        p.meta = Some(meta);
        p
    };
    let refund = json!({"order_id": "ord_1", "customer_id": "cus_1", "amount_cents": 2500, "reason": "damaged"});
    rt.block_on(async {
        // Each call on a fresh session, as frameworks do.
        let bot = agent(&base, "demo-support-bot", false).await;
        let r = bot
            .call_tool(in_run("stripe_refund", refund.clone()))
            .await
            .unwrap();
        assert!(
            texts(&r).starts_with("step_out_of_order: not executed."),
            "{}",
            texts(&r)
        );
        let bot = agent(&base, "demo-support-bot", false).await;
        let r = bot
            .call_tool(in_run(
                "crm_lookup_customer",
                json!({"customer_id": "cus_1"}),
            ))
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true), "{}", texts(&r));
        let bot = agent(&base, "demo-support-bot", false).await;
        let r = bot
            .call_tool(in_run("stripe_refund", refund.clone()))
            .await
            .unwrap();
        assert!(texts(&r).contains("re_mock_1"), "{}", texts(&r));
    });
    let (_, v) = server.get(&format!("/v1/runs/{run}"), Some("demo-support-bot"));
    assert_eq!(v["next_steps"], json!(["email.send_customer"]), "{v}");
    let decided = server.wait_for("action_decided", 3);
    let refunds: Vec<&Value> = decided
        .iter()
        .filter(|r| r["tool"] == "stripe.refund")
        .collect();
    assert_eq!(refunds.len(), 2);
    assert!(
        refunds.iter().all(|r| r["run"] == run.as_str()),
        "{refunds:?}"
    );
    assert!(server.stop().success());
}
