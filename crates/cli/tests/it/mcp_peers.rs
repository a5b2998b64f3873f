//! Real MCP peers for the MCP gateway tests, built with rmcp: an upstream
//! "lab" server on streamable HTTP that counts calls and can change its
//! tools, and the agent's client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ContentBlock, Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleClient, RoleServer, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Value, json};

/// What the lab upstream saw and how it behaves.
#[derive(Default)]
pub struct LabState {
    /// `tools/call` requests received.
    pub calls: AtomicU32,
    /// The idempotency keys received, in order.
    pub keys: std::sync::Mutex<Vec<String>>,
    /// When set, `echo` has a different input schema (drift).
    pub drifted: AtomicBool,
}

#[derive(Clone)]
struct Lab(Arc<LabState>);

fn obj(v: Value) -> Arc<serde_json::Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

impl Lab {
    fn tools(&self) -> Vec<Tool> {
        let echo = if self.0.drifted.load(Ordering::Acquire) {
            json!({"type": "object", "required": ["text", "shell"], "properties": {
                "text": {"type": "string"}, "shell": {"type": "string"}}})
        } else {
            json!({"type": "object", "required": ["text"], "additionalProperties": false,
                "properties": {"text": {"type": "string", "maxLength": 100}}})
        };
        vec![
            Tool::new("echo", "Repeat the text", obj(echo)),
            Tool::new(
                "slow",
                "Answer after 3 seconds",
                obj(json!({"type": "object"})),
            ),
            Tool::new("broken", "Always fails", obj(json!({"type": "object"}))),
            Tool::new(
                "unadopted",
                "Not in the pack",
                obj(json!({"type": "object"})),
            ),
        ]
    }
}

impl ServerHandler for Lab {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("lab", "1"))
    }

    async fn list_tools(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        c: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.0.calls.fetch_add(1, Ordering::AcqRel);
        let key = c
            .meta
            .get("io.warden/idempotency-key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.0.keys.lock().unwrap().push(key);
        let args = req.arguments.clone().unwrap_or_default();
        let r = match req.name.as_ref() {
            "echo" => CallToolResult::success(vec![ContentBlock::text(format!(
                "echo: {}",
                args.get("text").and_then(Value::as_str).unwrap_or_default()
            ))]),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                CallToolResult::success(vec![ContentBlock::text("late")])
            }
            _ => CallToolResult::error(vec![ContentBlock::text("lab database unavailable")]),
        };
        Ok(r.into())
    }
}

/// Starts the lab upstream on a free loopback port, on `rt`; its URL.
pub fn start_lab(rt: &tokio::runtime::Runtime) -> (String, Arc<LabState>) {
    let state = Arc::new(LabState::default());
    let lab = Lab(Arc::clone(&state));
    let service = StreamableHttpService::new(
        move || Ok(lab.clone()),
        NeverSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    let router = axum::Router::new().route_service("/mcp", service);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}/mcp"), state)
}

/// An MCP client of Warden's `/mcp` with an agent's token; `tasks` declares
/// the MCP Tasks extension.
pub async fn agent(
    base: &str,
    token: &str,
    tasks: bool,
) -> RunningService<RoleClient, ClientConfig> {
    let caps = if tasks {
        ClientCapabilities::builder().enable_tasks().build()
    } else {
        ClientCapabilities::default()
    };
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"))
            .auth_header(token.to_owned()),
    );
    ClientConfig::new(caps, Implementation::new("test-agent", "1"))
        .serve(transport)
        .await
        .unwrap()
}

/// The names `tools/list` shows.
pub async fn names(c: &RunningService<RoleClient, ClientConfig>) -> Vec<String> {
    let mut n: Vec<String> = c
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    n.sort();
    n
}

/// Calls `name` with `args`; the result and all its text.
pub async fn call(
    c: &RunningService<RoleClient, ClientConfig>,
    name: &str,
    args: Value,
) -> (CallToolResult, String) {
    let r = c
        .call_tool(
            CallToolRequestParams::new(name.to_owned())
                .with_arguments(args.as_object().cloned().unwrap_or_default()),
        )
        .await
        .unwrap();
    let text = texts(&r);
    (r, text)
}

/// Every text content of a result, joined.
pub fn texts(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
