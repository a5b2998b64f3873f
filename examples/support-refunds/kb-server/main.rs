//! `warden-example-kb`: the support knowledge base of the support-refunds
//! example, as an upstream MCP server (built with rmcp, the official Rust
//! SDK). Warden starts it over stdio (see `[[mcp_servers]]` in the pack) and
//! governs every call to it; agents never reach it directly.
//!
//! ```text
//! warden-example-kb                         # MCP over stdin/stdout
//! warden-example-kb --http 127.0.0.1:9100   # MCP streamable HTTP at /mcp
//! warden-example-kb --call-log calls.jsonl  # append one JSON line per call
//! ```
//!
//! Tools: `search_articles {query, limit?}` and `get_article {article_id}`,
//! both read-only, over a few built-in articles.

use std::io::Write;
use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Value, json};

const ARTICLES: &[(&str, &str, &str)] = &[
    (
        "kb_101",
        "Refunds for damaged orders",
        "Ask for a photo of the damage. Refunds up to $100 are immediate; larger refunds need a finance approval, which Warden requests.",
    ),
    (
        "kb_102",
        "Missing parcels",
        "Check the carrier's tracking first. After 10 days without a scan, refund or reship the order.",
    ),
    (
        "kb_103",
        "Duplicate charges",
        "Find both charges in Stripe; refund the later one with reason duplicate_charge.",
    ),
    (
        "kb_104",
        "Tone for refund emails",
        "Apologise once, state the amount and when it arrives (5-10 business days), no jargon.",
    ),
];

#[derive(Clone)]
struct Kb {
    log: Option<Arc<std::sync::Mutex<std::fs::File>>>,
}

fn schema(v: Value) -> Arc<serde_json::Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "search_articles",
            "Search the support knowledge base; returns matching article ids and titles",
            schema(json!({
                "type": "object",
                "required": ["query"],
                "additionalProperties": false,
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 200},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10}
                }
            })),
        )
        .with_annotations(ToolAnnotations::new().read_only(true)),
        Tool::new(
            "get_article",
            "Read one knowledge-base article",
            schema(json!({
                "type": "object",
                "required": ["article_id"],
                "additionalProperties": false,
                "properties": {
                    "article_id": {"type": "string", "pattern": "^kb_[0-9]+$"}
                }
            })),
        )
        .with_annotations(ToolAnnotations::new().read_only(true)),
    ]
}

fn text(v: Value) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(v.to_string())]);
    r.structured_content = Some(v);
    r
}

impl Kb {
    fn record(&self, req: &CallToolRequestParams, meta: &rmcp::model::RequestMetaObject) {
        let Some(log) = &self.log else { return };
        let key = meta
            .get("io.warden/idempotency-key")
            .cloned()
            .unwrap_or(Value::Null);
        let line = json!({"tool": req.name, "arguments": req.arguments, "idempotency_key": key});
        if let Ok(mut f) = log.lock() {
            let _ = writeln!(f, "{line}");
        }
    }

    fn answer(&self, req: &CallToolRequestParams) -> Result<CallToolResult, McpError> {
        let args = req.arguments.clone().unwrap_or_default();
        match req.name.as_ref() {
            "search_articles" => {
                let query = args
                    .get("query")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_lowercase();
                let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(3) as usize;
                let hits: Vec<Value> = ARTICLES
                    .iter()
                    .filter(|(_, title, body)| {
                        query.split_whitespace().any(|w| {
                            title.to_lowercase().contains(w) || body.to_lowercase().contains(w)
                        })
                    })
                    .take(limit)
                    .map(|(id, title, _)| json!({"article_id": id, "title": title}))
                    .collect();
                Ok(text(json!({"articles": hits})))
            }
            "get_article" => {
                let id = args
                    .get("article_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match ARTICLES.iter().find(|(a, _, _)| *a == id) {
                    Some((id, title, body)) => Ok(text(
                        json!({"article_id": id, "title": title, "body": body}),
                    )),
                    None => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                        "no article `{id}`"
                    ))])),
                }
            }
            other => Err(McpError::invalid_params(
                format!("unknown tool `{other}`"),
                None,
            )),
        }
    }
}

impl ServerHandler for Kb {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("warden-example-kb", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.record(&request, &ctx.meta);
        self.answer(&request).map(CallToolResponse::Complete)
    }
}

async fn serve(http: Option<String>, kb: Kb) -> Result<(), String> {
    match http {
        None => {
            let running = kb
                .serve(rmcp::transport::stdio())
                .await
                .map_err(|e| format!("cannot serve on stdio: {e}"))?;
            running.waiting().await.map_err(|e| e.to_string())?;
        }
        Some(addr) => {
            use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
            use rmcp::transport::streamable_http_server::{
                StreamableHttpServerConfig, StreamableHttpService,
            };
            let config = StreamableHttpServerConfig::default()
                .with_legacy_session_mode(false)
                .with_json_response(true)
                .disable_allowed_hosts();
            let service = StreamableHttpService::new(
                move || Ok(kb.clone()),
                NeverSessionManager::default().into(),
                config,
            );
            let router = axum::Router::new().route_service("/mcp", service);
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            eprintln!("warden-example-kb: MCP streamable HTTP at http://{local}/mcp");
            axum::serve(listener, router)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut http = None;
    let mut log = None;
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--http", Some(v)) => http = Some(v),
            ("--call-log", Some(v)) => log = Some(v),
            _ => {
                eprintln!("usage: warden-example-kb [--http ADDR] [--call-log FILE]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let log = match log.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| format!("cannot open {p}: {e}"))
    }) {
        None => None,
        Some(Ok(f)) => Some(Arc::new(std::sync::Mutex::new(f))),
        Some(Err(e)) => {
            eprintln!("warden-example-kb: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warden-example-kb: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(serve(http, Kb { log })) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden-example-kb: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
