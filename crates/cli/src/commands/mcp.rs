//! `warden mcp stdio` (a stdio MCP server that forwards to a running
//! Warden's `/mcp`, for clients that can only launch a process) and `warden
//! mcp import` (pack entries for an upstream's tools, pinned).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::{Peer, RequestContext, RoleClient, RoleServer};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Value, json};
use warden_model::{McpTransport, ValueSource};

use crate::cli::Exit;

/// `warden mcp ...`
#[derive(Debug, clap::Subcommand)]
pub enum McpCommand {
    /// Serve MCP on stdin/stdout, forwarding to a running Warden's /mcp
    /// (for clients such as Claude Desktop that launch a command).
    Stdio {
        /// The Warden server.
        #[arg(long, env = "WARDEN_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The agent's bearer token.
        #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Print pack entries ([[tools]] with a pinned definition) for an
    /// upstream MCP server's tools, to review and paste into warden.toml.
    Import {
        /// An `[[mcp_servers]]` id of the pack, or an http(s):// URL of a
        /// streamable HTTP MCP server.
        upstream: String,
        /// The pack declaring the upstream.
        #[arg(long, default_value = ".")]
        pack: PathBuf,
        /// The system the tools act on (default: the upstream's id).
        #[arg(long)]
        system: Option<String>,
        /// Server id written in the entries when UPSTREAM is a URL.
        #[arg(long, default_value = "upstream")]
        server_id: String,
        /// Print the upstream's tools and pins as JSON instead.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `warden mcp ...`.
pub fn run(cmd: McpCommand) -> anyhow::Result<Exit> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cmd {
        McpCommand::Stdio { server, token } => rt.block_on(stdio(&server, &token)),
        McpCommand::Import {
            upstream,
            pack,
            system,
            server_id,
            json,
        } => rt.block_on(import(&upstream, &pack, system, &server_id, json)),
    }
}

/// Forwards every tools request to Warden's `/mcp` with the agent's token.
#[derive(Clone)]
struct Forward {
    warden: Peer<RoleClient>,
}

fn forward_error(e: rmcp::ServiceError) -> McpError {
    match e {
        rmcp::ServiceError::McpError(e) => e,
        e => McpError::internal_error(format!("cannot reach Warden: {e}"), None),
    }
}

impl ServerHandler for Forward {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.warden.list_tools(request).await.map_err(forward_error)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.warden
            .call_tool(request)
            .await
            .map(CallToolResponse::Complete)
            .map_err(forward_error)
    }
}

async fn stdio(server: &str, token: &str) -> anyhow::Result<Exit> {
    let url = format!("{}/mcp", server.trim_end_matches('/'));
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token.to_owned()),
    );
    let client = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("warden-mcp-stdio", env!("CARGO_PKG_VERSION")),
    )
    .serve(transport)
    .await
    .with_context(|| format!("cannot connect to {url}"))?;
    eprintln!("warden mcp stdio: forwarding to {url}");
    let forward = Forward {
        warden: client.peer().clone(),
    };
    let running = forward
        .serve(rmcp::transport::stdio())
        .await
        .context("cannot serve MCP on stdin/stdout")?;
    running
        .waiting()
        .await
        .context("the stdio session failed")?;
    let _ = client.cancel().await;
    Ok(Exit::Ok)
}

async fn import(
    upstream: &str,
    pack: &Path,
    system: Option<String>,
    server_id: &str,
    as_json: bool,
) -> anyhow::Result<Exit> {
    let (id, transport, root, limit) =
        if upstream.starts_with("http://") || upstream.starts_with("https://") {
            let t = McpTransport::Http {
                url: ValueSource::Literal(upstream.to_owned()),
                credential: None,
            };
            (
                server_id.to_owned(),
                t,
                pack.to_path_buf(),
                Duration::from_secs(10),
            )
        } else {
            let loaded = warden_model::load(pack)
                .with_context(|| format!("cannot read the pack at {}", pack.display()))?;
            let Some(s) = loaded.pack.mcp_servers.get(upstream) else {
                let known: Vec<&str> = loaded.pack.mcp_servers.keys().map(String::as_str).collect();
                bail!(
                    "the pack at {} declares no MCP server `{upstream}` (declared: {})",
                    pack.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            };
            (
                s.id.clone(),
                s.transport.clone(),
                loaded.pack.root.clone(),
                s.connect_timeout,
            )
        };
    eprintln!("listing the tools of `{id}` ...");
    let tools = warden_runtime::upstream::list_once(&transport, &root, limit)
        .await
        .map_err(|e| anyhow::anyhow!("cannot list the tools of `{id}`: {e}"))?;
    if as_json {
        let out: Vec<Value> = tools
            .values()
            .map(|l| json!({"name": l.tool.name, "pin": l.pin, "tool": l.tool}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(Exit::Ok);
    }
    let system = system.unwrap_or_else(|| id.clone());
    println!(
        "# {} tool(s) of MCP server `{id}`, imported by `warden mcp import`.\n\
         # Review each entry: access, risk, description and argument schema are yours to\n\
         # tighten (the schema may be narrowed; the pin must stay as printed). Declare\n\
         # `[[systems]] id = \"{system}\"` if the pack has no such system yet.\n",
        tools.len()
    );
    for l in tools.values() {
        println!("{}", entry(l, &id, &system)?);
    }
    eprintln!("{} tool(s) imported from `{id}`", tools.len());
    Ok(Exit::Ok)
}

/// One `[[tools]]` entry as TOML.
fn entry(
    l: &warden_runtime::upstream::Listed,
    server: &str,
    system: &str,
) -> anyhow::Result<String> {
    let name = l.tool.name.to_string();
    let read_only = l
        .tool
        .annotations
        .as_ref()
        .and_then(|a| a.read_only_hint)
        .unwrap_or(false);
    let mut schema = serde_json::to_value(&*l.tool.input_schema)?;
    strip_nulls(&mut schema);
    if let Some(m) = schema.as_object_mut() {
        m.remove("$schema");
    }
    let mut tool = json!({
        "id": format!("{system}.{name}"),
        "system": system,
        "access": if read_only { "read" } else { "write" },
        "risk": if read_only { "low" } else { "medium" },
    });
    if let Some(d) = &l.tool.description {
        tool["description"] = json!(d);
    }
    tool["execute"] = json!({
        "connector": "mcp",
        "server": server,
        "tool": name,
        "pin": l.pin,
    });
    tool["args"] = schema;
    let doc = json!({ "tools": [tool] });
    Ok(toml::to_string(&doc)?)
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
