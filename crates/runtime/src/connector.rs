//! Connectors: how Warden executes an allowed action in `enforce` mode.
//!
//! `http` POSTs the arguments as JSON to the tool's endpoint with an
//! `Idempotency-Key` header (the action id: the same on every attempt and
//! after a restart) and the credential the pack names, read once when the
//! connectors are built and never shown to agents or recorded. Only tools
//! marked `safe_to_retry` are retried, with doubling backoff. `mock` answers
//! locally with a configured result, failure rate and latency.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_model::{Connector, Execution, FailureCode, Pack};

/// What one execution came to.
#[derive(Debug, Clone)]
pub struct ExecOutcome {
    /// Whether the tool succeeded.
    pub ok: bool,
    /// Why not, when it did not.
    pub code: Option<FailureCode>,
    /// The tool's result (success) or error body (failure), unredacted.
    pub result: Option<Value>,
    /// A one-line account of a failure.
    pub error: Option<String>,
    /// Attempts made (1 without retries).
    pub attempts: u32,
    /// The last HTTP status, for `http`.
    pub http_status: Option<u16>,
    /// Time spent, all attempts.
    pub elapsed: Duration,
}

/// A tool's connector with its secrets resolved.
#[derive(Debug, Clone)]
enum Ready {
    Http {
        client: reqwest::Client,
        url: String,
        timeout: Duration,
        credential: Option<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    },
    Mock {
        result: Value,
        failure_rate: f64,
        latency: Duration,
    },
    /// A `tools/call` on an upstream MCP server.
    Mcp {
        upstream: std::sync::Arc<crate::upstream::Upstream>,
        tool: String,
        pin: String,
        timeout: Duration,
    },
    /// Declared, but a variable or file it names is missing.
    Unavailable(String),
}

/// The connectors of every executable tool of a pack.
#[derive(Debug, Clone)]
pub struct Connectors {
    tools: BTreeMap<String, (Execution, Ready)>,
    upstreams: crate::upstream::Upstreams,
}

/// The header a credential adds, its secret read now (marked sensitive so
/// it is never logged).
pub(crate) fn credential_header(
    c: &warden_model::Credential,
    root: &std::path::Path,
) -> Result<(reqwest::header::HeaderName, reqwest::header::HeaderValue), String> {
    let secret = c.source.read(root)?;
    let name = reqwest::header::HeaderName::from_bytes(c.header.as_bytes())
        .map_err(|_| format!("`{}` is not a header name", c.header))?;
    let mut value = reqwest::header::HeaderValue::from_str(&format!("{}{secret}", c.prefix))
        .map_err(|_| "the credential is not a valid header value".to_owned())?;
    value.set_sensitive(true);
    Ok((name, value))
}

impl Connectors {
    /// Builds the connectors of `pack`'s tools. A tool whose endpoint or
    /// credential cannot be read is kept, unavailable: its executions fail
    /// with `tool_error` and say why; a warning is logged here.
    pub fn build(pack: &Pack) -> Self {
        // https endpoints: rustls with ring, the process-wide default (a
        // second install is refused harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        // One pooled client for every http tool; if it cannot be built, the
        // http tools are unavailable (and say why) rather than the server
        // failing.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"));
        let upstreams = crate::upstream::Upstreams::new(pack);
        upstreams.warm();
        let mut tools = BTreeMap::new();
        for (id, tool) in &pack.tools {
            let Some(exec) = &tool.execute else { continue };
            let ready = match &exec.connector {
                Connector::Mcp(m) => match upstreams.get(&m.server) {
                    Some(up) => Ready::Mcp {
                        upstream: std::sync::Arc::clone(up),
                        tool: m.tool.clone(),
                        pin: m.pin.clone(),
                        timeout: m.timeout,
                    },
                    None => Ready::Unavailable(format!("no MCP server `{}`", m.server)),
                },
                Connector::Mock(m) => Ready::Mock {
                    result: m.result.clone(),
                    failure_rate: m.failure_rate,
                    latency: m.latency,
                },
                Connector::Http(h) => {
                    let url = h.url.read(&pack.root);
                    let credential = h
                        .credential
                        .as_ref()
                        .map(|c| credential_header(c, &pack.root))
                        .transpose();
                    match (url, credential, client.clone()) {
                        (Ok(url), Ok(credential), Ok(client)) => Ready::Http {
                            client,
                            url,
                            timeout: h.timeout,
                            credential,
                        },
                        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                            tracing::warn!(tool = %id, reason = %e, "connector unavailable");
                            Ready::Unavailable(e)
                        }
                    }
                }
            };
            tools.insert(id.clone(), (exec.clone(), ready));
        }
        Self { tools, upstreams }
    }

    /// The pack's upstream MCP servers.
    pub fn upstreams(&self) -> &crate::upstream::Upstreams {
        &self.upstreams
    }

    /// Whether `tool` can be executed now: `Err` says why not when it is an
    /// upstream MCP tool whose upstream changed it (or is unreachable).
    pub async fn usable(&self, tool: &str) -> Result<(), crate::upstream::Unusable> {
        match self.tools.get(tool) {
            Some((
                _,
                Ready::Mcp {
                    upstream,
                    tool,
                    pin,
                    ..
                },
            )) => upstream.check(tool, pin).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    /// The execution settings of `tool`, when it has a connector.
    pub fn execution(&self, tool: &str) -> Option<&Execution> {
        self.tools.get(tool).map(|(e, _)| e)
    }

    /// Executes `tool` with `args`; `key` is the idempotency key.
    pub async fn execute(&self, tool: &str, key: &str, args: &Value) -> ExecOutcome {
        let start = Instant::now();
        let Some((exec, ready)) = self.tools.get(tool) else {
            return failure(
                FailureCode::ToolError,
                format!("tool `{tool}` has no connector"),
                0,
                start,
            );
        };
        match ready {
            Ready::Unavailable(why) => failure(
                FailureCode::ToolError,
                format!("connector not configured: {why}"),
                0,
                start,
            ),
            Ready::Mock {
                result,
                failure_rate,
                latency,
            } => {
                if !latency.is_zero() {
                    tokio::time::sleep(*latency).await;
                }
                if *failure_rate > 0.0 && unit_random() < *failure_rate {
                    failure(
                        FailureCode::ToolError,
                        "mock connector: simulated failure".to_owned(),
                        1,
                        start,
                    )
                } else {
                    ExecOutcome {
                        ok: true,
                        code: None,
                        result: Some(result.clone()),
                        error: None,
                        attempts: 1,
                        http_status: None,
                        elapsed: start.elapsed(),
                    }
                }
            }
            Ready::Mcp {
                upstream,
                tool,
                pin,
                timeout,
            } => mcp(upstream, exec, tool, pin, *timeout, key, args, start).await,
            Ready::Http {
                client,
                url,
                timeout,
                credential,
            } => {
                http(
                    client,
                    exec,
                    url,
                    *timeout,
                    credential.as_ref(),
                    key,
                    args,
                    start,
                )
                .await
            }
        }
    }
}

/// One http execution: attempts, retries for safe tools, the outcome.
#[allow(clippy::too_many_arguments)]
async fn http(
    client: &reqwest::Client,
    exec: &Execution,
    url: &str,
    timeout: Duration,
    credential: Option<&(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    key: &str,
    args: &Value,
    start: Instant,
) -> ExecOutcome {
    let max_attempts = max_attempts(exec);
    let mut backoff = exec.backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut req = client
            .post(url)
            .timeout(timeout)
            .header("Idempotency-Key", key)
            .json(args);
        if let Some((name, value)) = credential {
            req = req.header(name.clone(), value.clone());
        }
        // Retryable: transport errors, timeouts and 5xx answers.
        let (retryable, outcome) = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let body = serde_json::from_str::<Value>(&text).unwrap_or_else(|_| {
                    if text.is_empty() {
                        Value::Null
                    } else {
                        json!(text)
                    }
                });
                if status.is_success() {
                    return ExecOutcome {
                        ok: true,
                        code: None,
                        result: Some(body),
                        error: None,
                        attempts: attempt,
                        http_status: Some(status.as_u16()),
                        elapsed: start.elapsed(),
                    };
                }
                let mut o = failure(
                    FailureCode::ToolError,
                    format!("the tool answered HTTP {}", status.as_u16()),
                    attempt,
                    start,
                );
                o.http_status = Some(status.as_u16());
                o.result = Some(body);
                (status.is_server_error(), o)
            }
            Err(e) if e.is_timeout() => (
                true,
                failure(
                    FailureCode::ToolTimeout,
                    format!("no answer within {}", humanize(timeout)),
                    attempt,
                    start,
                ),
            ),
            Err(e) => (
                true,
                failure(
                    FailureCode::ToolError,
                    format!("cannot reach the tool: {}", error_chain(&e)),
                    attempt,
                    start,
                ),
            ),
        };
        if !retryable || attempt >= max_attempts {
            return last_attempt(outcome, retryable && max_attempts > 1);
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}

/// One upstream MCP execution: the pin check, attempts (transport failures
/// and timeouts are retried for safe tools only), the outcome. The result
/// kept is the upstream's `CallToolResult` as JSON.
#[allow(clippy::too_many_arguments)]
async fn mcp(
    upstream: &crate::upstream::Upstream,
    exec: &Execution,
    tool: &str,
    pin: &str,
    timeout: Duration,
    key: &str,
    args: &Value,
    start: Instant,
) -> ExecOutcome {
    use crate::upstream::{CallError, Unusable};
    let max_attempts = max_attempts(exec);
    let mut backoff = exec.backoff;
    let mut attempt = 0u32;
    loop {
        if let Err(why) = upstream.check(tool, pin).await {
            return match why {
                Unusable::Changed(why) => failure(FailureCode::ToolChanged, why, attempt, start),
                Unusable::Unreachable(why) => failure(
                    FailureCode::ToolError,
                    format!(
                        "cannot reach MCP upstream `{}`: {why}",
                        upstream.server().id
                    ),
                    attempt,
                    start,
                ),
            };
        }
        attempt += 1;
        let outcome = match upstream.call(tool, key, args, timeout).await {
            Ok(result) => {
                let is_error = result.is_error == Some(true);
                let body = serde_json::to_value(&result).unwrap_or(Value::Null);
                if !is_error {
                    return ExecOutcome {
                        ok: true,
                        code: None,
                        result: Some(body),
                        error: None,
                        attempts: attempt,
                        http_status: None,
                        elapsed: start.elapsed(),
                    };
                }
                let mut o = failure(
                    FailureCode::ToolError,
                    "the upstream tool answered with an error".to_owned(),
                    attempt,
                    start,
                );
                o.result = Some(body);
                return o;
            }
            Err(CallError::Timeout) => failure(
                FailureCode::ToolTimeout,
                format!("no answer within {}", humanize(timeout)),
                attempt,
                start,
            ),
            Err(CallError::Transport(e)) => failure(
                FailureCode::ToolError,
                format!("MCP upstream `{}`: {e}", upstream.server().id),
                attempt,
                start,
            ),
        };
        if attempt >= max_attempts {
            return last_attempt(outcome, max_attempts > 1);
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}

/// Attempts allowed: retries only for tools safe to re-send.
fn max_attempts(exec: &Execution) -> u32 {
    if exec.safe_to_retry {
        exec.retries.saturating_add(1)
    } else {
        1
    }
}

/// The outcome of the last failed attempt; `retried`: it ends a series of
/// retries, so the code is `retries_exhausted`.
fn last_attempt(mut o: ExecOutcome, retried: bool) -> ExecOutcome {
    if retried {
        o.code = Some(FailureCode::RetriesExhausted);
        o.error = Some(format!(
            "{} attempts failed; last: {}",
            o.attempts,
            o.error.unwrap_or_default()
        ));
    }
    o
}

fn failure(code: FailureCode, error: String, attempts: u32, start: Instant) -> ExecOutcome {
    ExecOutcome {
        ok: false,
        code: Some(code),
        result: None,
        error: Some(error),
        attempts,
        http_status: None,
        elapsed: start.elapsed(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

fn humanize(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A uniform number in [0, 1).
fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 1.0;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}
