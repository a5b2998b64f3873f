//! Upstream MCP servers: Warden is their client.
//!
//! Each `[[mcp_servers]]` entry gets one connection (a child process over
//! stdio, or a streamable HTTP client), opened in the background when the
//! connectors are built and again on demand after a failure. On connect,
//! Warden lists the upstream's tools and computes each one's *pin* (the
//! SHA-256 of its canonical definition); the listing is refreshed when the
//! upstream says it changed and before a call when it is older than the
//! server's `recheck` (30s by default). A tool whose pin differs from the pack's, or that is
//! gone, is refused with `tool_changed` and hidden from `/mcp`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    RequestMetaObject,
};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use warden_model::{McpServer, McpTransport, Pack};

/// The `_meta` key carrying the idempotency key (the action id) on each
/// `tools/call` Warden sends upstream.
pub const IDEMPOTENCY_META: &str = "io.warden/idempotency-key";

/// `sha256:<hex>` of an upstream tool's definition: its name, description,
/// input and output schema, as canonical JSON (RFC 8785).
pub fn pin_of(tool: &rmcp::model::Tool) -> String {
    let v = serde_json::to_value(tool).unwrap_or(Value::Null);
    let pick = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let def = json!({
        "name": pick("name"),
        "description": pick("description"),
        "inputSchema": pick("inputSchema"),
        "outputSchema": pick("outputSchema"),
    });
    let canonical = serde_json_canonicalizer::to_string(&def).unwrap_or_default();
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// Why an upstream tool cannot be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// Its definition or presence changed since the pack adopted it.
    Changed(String),
    /// The upstream cannot be reached or listed.
    Unreachable(String),
}

/// One upstream tool as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its definition.
    pub tool: rmcp::model::Tool,
    /// Its pin.
    pub pin: String,
}

/// Tells the connection that the upstream's tool list changed.
#[derive(Clone, Debug)]
struct Handler {
    stale: Arc<std::sync::atomic::AtomicBool>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.stale.store(true, std::sync::atomic::Ordering::Release);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("warden", env!("CARGO_PKG_VERSION")),
        )
    }
}

#[derive(Debug)]
struct Conn {
    client: RunningService<RoleClient, Handler>,
    /// Shared with callers: a check before each call reads it without a copy.
    tools: Arc<BTreeMap<String, Listed>>,
    listed_at: Instant,
    stale: Arc<std::sync::atomic::AtomicBool>,
}

/// One upstream server and its connection.
#[derive(Debug)]
pub struct Upstream {
    server: McpServer,
    root: PathBuf,
    conn: Mutex<Option<Conn>>,
    /// The last failed connect: calls and listings within
    /// [`RETRY_CONNECT_AFTER`] of it fail at once instead of waiting for
    /// another handshake timeout.
    failed: std::sync::Mutex<Option<(Instant, String)>>,
}

/// How long after a failed connect Warden tries again.
const RETRY_CONNECT_AFTER: Duration = Duration::from_secs(5);

/// Every upstream of a pack.
#[derive(Clone, Default)]
pub struct Upstreams {
    servers: BTreeMap<String, Arc<Upstream>>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.servers.keys()).finish()
    }
}

impl Upstreams {
    /// The upstreams of `pack`, not yet connected.
    pub fn new(pack: &Pack) -> Self {
        let servers = pack
            .mcp_servers
            .values()
            .map(|s| {
                (
                    s.id.clone(),
                    Arc::new(Upstream {
                        server: s.clone(),
                        root: pack.root.clone(),
                        conn: Mutex::new(None),
                        failed: std::sync::Mutex::new(None),
                    }),
                )
            })
            .collect();
        Self { servers }
    }

    /// Connects every upstream in the background (when a runtime is
    /// running), logging those that fail; calls connect again on demand.
    pub fn warm(&self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for up in self.servers.values() {
            let up = Arc::clone(up);
            rt.spawn(async move {
                if let Err(e) = up.listing(false).await {
                    tracing::warn!(upstream = %up.server.id, reason = %e, "MCP upstream not reachable yet");
                }
            });
        }
    }

    /// The upstream `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Upstream>> {
        self.servers.get(id)
    }

    /// Whether the pack declares no upstream.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

impl Upstream {
    /// The declaration.
    pub fn server(&self) -> &McpServer {
        &self.server
    }

    /// The upstream's tools, connecting first when needed; refreshed when
    /// `refresh`, when the upstream said its list changed, or when older
    /// than the server's `recheck`.
    pub async fn listing(&self, refresh: bool) -> Result<Arc<BTreeMap<String, Listed>>, String> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_mut() {
            if conn.client.is_closed() {
                *guard = None;
            } else {
                let stale = conn.stale.swap(false, std::sync::atomic::Ordering::AcqRel);
                if refresh || stale || conn.listed_at.elapsed() >= self.server.recheck {
                    match list(&conn.client, self.server.connect_timeout).await {
                        Ok(tools) => {
                            conn.tools = Arc::new(tools);
                            conn.listed_at = Instant::now();
                        }
                        Err(e) => {
                            *guard = None;
                            return Err(e);
                        }
                    }
                }
                if let Some(conn) = guard.as_ref() {
                    return Ok(Arc::clone(&conn.tools));
                }
            }
        }
        if let Ok(f) = self.failed.lock()
            && let Some((at, why)) = f.as_ref()
            && at.elapsed() < RETRY_CONNECT_AFTER
        {
            return Err(why.clone());
        }
        match self.connect().await {
            Ok(conn) => {
                let tools = Arc::clone(&conn.tools);
                *guard = Some(conn);
                if let Ok(mut f) = self.failed.lock() {
                    *f = None;
                }
                Ok(tools)
            }
            Err(why) => {
                if let Ok(mut f) = self.failed.lock() {
                    *f = Some((Instant::now(), why.clone()));
                }
                Err(why)
            }
        }
    }

    /// Checks that `tool` still has the definition pinned by the pack.
    pub async fn check(&self, tool: &str, pin: &str) -> Result<(), Unusable> {
        let tools = self.listing(false).await.map_err(Unusable::Unreachable)?;
        match tools.get(tool) {
            Some(l) if l.pin == pin => Ok(()),
            Some(l) => Err(Unusable::Changed(format!(
                "upstream `{}` changed tool `{tool}`: its definition is now {}, the pack adopted {pin}; review it with `warden mcp import {}` and update the pack",
                self.server.id, l.pin, self.server.id
            ))),
            None => Err(Unusable::Changed(format!(
                "upstream `{}` no longer offers tool `{tool}`",
                self.server.id
            ))),
        }
    }

    /// Calls `tool` with `args`, the action id as idempotency key in `_meta`.
    pub async fn call(
        &self,
        tool: &str,
        key: &str,
        args: &Value,
        timeout: Duration,
    ) -> Result<CallToolResult, CallError> {
        let peer = {
            let guard = self.conn.lock().await;
            match guard.as_ref() {
                Some(c) if !c.client.is_closed() => c.client.peer().clone(),
                _ => return Err(CallError::Transport("not connected".to_owned())),
            }
        };
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(map) = args {
            params = params.with_arguments(map.clone());
        }
        let mut meta = RequestMetaObject::new();
        meta.insert(IDEMPOTENCY_META.to_owned(), json!(key));
        params.meta = Some(meta);
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Err(_) => Err(CallError::Timeout),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                if matches!(e, rmcp::ServiceError::TransportClosed) {
                    *self.conn.lock().await = None;
                }
                Err(CallError::Transport(e.to_string()))
            }
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let stale = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handler = Handler {
            stale: Arc::clone(&stale),
        };
        let limit = self.server.connect_timeout;
        let client = open(
            &self.server.transport,
            &self.root,
            limit,
            &self.server.id,
            handler,
        )
        .await?;
        let tools = list(&client, limit).await?;
        tracing::info!(upstream = %self.server.id, tools = tools.len(), "MCP upstream connected");
        Ok(Conn {
            client,
            tools: Arc::new(tools),
            listed_at: Instant::now(),
            stale,
        })
    }
}

/// Connects to an upstream once, lists its tools and disconnects: for
/// `warden mcp import`.
pub async fn list_once(
    transport: &McpTransport,
    root: &Path,
    limit: Duration,
) -> Result<BTreeMap<String, Listed>, String> {
    let handler = Handler {
        stale: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let client = open(transport, root, limit, "import", handler).await?;
    let tools = list(&client, limit).await;
    let _ = client.cancel().await;
    tools
}

async fn open(
    transport: &McpTransport,
    root: &Path,
    limit: Duration,
    id: &str,
    handler: Handler,
) -> Result<RunningService<RoleClient, Handler>, String> {
    match transport {
        McpTransport::Stdio { command, env } => {
            let cmd = command_for(command, env, root)?;
            let (transport, stderr) = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start `{}`: {e}", command.join(" ")))?;
            if let Some(stderr) = stderr {
                forward_stderr(id.to_owned(), stderr);
            }
            tokio::time::timeout(limit, handler.serve(transport))
                .await
                .map_err(|_| format!("no MCP handshake within {limit:?}"))?
                .map_err(|e| format!("MCP handshake failed: {e}"))
        }
        McpTransport::Http { url, credential } => {
            let url = url.read(root)?;
            let mut headers = HashMap::new();
            if let Some(c) = credential {
                let (name, value) = crate::connector::credential_header(c, root)?;
                headers.insert(name, value);
            }
            let config =
                StreamableHttpClientTransportConfig::with_uri(url.clone()).custom_headers(headers);
            let transport = StreamableHttpClientTransport::from_config(config);
            tokio::time::timeout(limit, handler.serve(transport))
                .await
                .map_err(|_| format!("no MCP handshake with {url} within {limit:?}"))?
                .map_err(|e| format!("MCP handshake with {url} failed: {e}"))
        }
    }
}

/// Why a call did not return a result.
#[derive(Debug)]
pub enum CallError {
    /// No answer in time.
    Timeout,
    /// The connection failed.
    Transport(String),
}

async fn list(
    client: &RunningService<RoleClient, Handler>,
    limit: Duration,
) -> Result<BTreeMap<String, Listed>, String> {
    let tools = tokio::time::timeout(limit, client.list_all_tools())
        .await
        .map_err(|_| format!("tools/list did not answer within {limit:?}"))?
        .map_err(|e| format!("tools/list failed: {e}"))?;
    Ok(tools
        .into_iter()
        .map(|t| {
            let pin = pin_of(&t);
            (t.name.to_string(), Listed { tool: t, pin })
        })
        .collect())
}

/// The command of a stdio upstream: a bare program name is looked up next
/// to the running binary first, then on `PATH`; a relative path is relative
/// to the pack. The child's environment holds `PATH`, `HOME`, `LANG` and the
/// variables the pack lists, nothing else.
fn command_for(
    command: &[String],
    env: &[String],
    root: &Path,
) -> Result<tokio::process::Command, String> {
    let Some(program) = command.first() else {
        return Err("empty command".to_owned());
    };
    let program_path = if program.contains('/') {
        let p = Path::new(program);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        }
    } else {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join(program)))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(program))
    };
    let mut cmd = tokio::process::Command::new(program_path);
    cmd.args(&command[1..]).current_dir(root).env_clear();
    for name in ["PATH", "HOME", "LANG"]
        .iter()
        .map(|s| s.to_string())
        .chain(env.iter().cloned())
    {
        if let Ok(v) = std::env::var(&name) {
            cmd.env(name, v);
        }
    }
    Ok(cmd)
}

fn forward_stderr(id: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(upstream = %id, "{line}");
        }
    });
}
