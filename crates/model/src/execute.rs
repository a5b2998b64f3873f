//! How Warden executes a tool in `enforce` mode: `[tools.execute]`.
//!
//! ```toml
//! [tools.execute]
//! connector = "http"                 # or "mock"
//! url_env = "STRIPE_REFUND_URL"      # or url = "https://…"
//! timeout = "10s"
//! safe_to_retry = false              # retries only for tools marked safe
//! credential = { header = "Authorization", prefix = "Bearer ", env = "STRIPE_KEY" }
//! ```

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// How a tool executes in `enforce` mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// What carries the call.
    pub connector: Connector,
    /// Whether sending the same call twice is harmless; only such tools are
    /// retried after a transport error or a 5xx answer.
    pub safe_to_retry: bool,
    /// Retries after the first attempt (safe tools only).
    pub retries: u32,
    /// Wait before the first retry; doubled for each later one.
    pub backoff: Duration,
    /// What to do on start with an action left `executing` by a crash.
    pub on_interrupt: OnInterrupt,
    /// Largest result kept (in the action and in evidence); larger results
    /// are replaced by their size and hash.
    pub max_result_bytes: usize,
}

/// What carries a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Connector {
    /// POST the arguments as JSON to an HTTP endpoint.
    Http(HttpConnector),
    /// Answer locally: for examples and drills.
    Mock(MockConnector),
    /// A `tools/call` on an upstream MCP server.
    Mcp(crate::mcp::McpConnector),
}

impl Connector {
    /// `http` or `mock`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Mock(_) => "mock",
            Self::Mcp(_) => "mcp",
        }
    }
}

/// `connector = "http"`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConnector {
    /// Where to POST.
    pub url: ValueSource,
    /// Per attempt.
    pub timeout: Duration,
    /// A header carrying a secret Warden holds (never shown to agents, never
    /// recorded).
    pub credential: Option<Credential>,
}

/// `connector = "mock"`.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConnector {
    /// The result of every successful call (`{"ok": true}` unless given).
    pub result: serde_json::Value,
    /// Share of calls that fail with `tool_error`, from 0 to 1.
    pub failure_rate: f64,
    /// How long each call takes.
    pub latency: Duration,
}

/// A value given literally, or named by an environment variable or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// Written in the pack.
    Literal(String),
    /// Read from this environment variable when the server starts.
    Env(String),
    /// Read from this file (relative to the pack) when the server starts.
    File(PathBuf),
}

impl ValueSource {
    /// The value: as written, from the environment, or from the file
    /// (relative to `root`, trailing newline dropped). `Err` says why not.
    pub fn read(&self, root: &std::path::Path) -> Result<String, String> {
        match self {
            Self::Literal(v) => Ok(v.clone()),
            Self::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("environment variable `{name}` is not set")),
            },
            Self::File(path) => {
                let p = root.join(path);
                std::fs::read_to_string(&p)
                    .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                    .map_err(|e| format!("cannot read `{}`: {e}", p.display()))
            }
        }
    }
}

/// A secret header added to each HTTP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The header, e.g. `Authorization`.
    pub header: String,
    /// Written before the secret, e.g. `Bearer `.
    pub prefix: String,
    /// Where the secret is (never literal: secrets stay out of the pack).
    pub source: ValueSource,
}

/// What happens on start to an action a crash left `executing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInterrupt {
    /// Send again with the same idempotency key.
    Resend,
    /// End the action `failed` with code `interrupted`.
    Fail,
}

/// The default cap on a recorded result.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 64 * 1024;

/// `[tools.execute]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExecute {
    pub connector: Spanned<String>,
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    #[serde(default)]
    pub url_env: Option<Spanned<String>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub credential: Option<Spanned<RawCredential>>,
    #[serde(default)]
    pub safe_to_retry: bool,
    #[serde(default)]
    pub retries: Option<Spanned<u32>>,
    #[serde(default)]
    pub backoff: Option<Spanned<String>>,
    #[serde(default)]
    pub on_interrupt: Option<OnInterrupt>,
    #[serde(default)]
    pub max_result_bytes: Option<usize>,
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    #[serde(default)]
    pub failure_rate: Option<Spanned<f64>>,
    #[serde(default)]
    pub latency: Option<Spanned<String>>,
    #[serde(default)]
    pub server: Option<Spanned<String>>,
    #[serde(default)]
    pub tool: Option<Spanned<String>>,
    #[serde(default)]
    pub pin: Option<Spanned<String>>,
}

/// `credential = { header, prefix, env | file }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredential {
    pub header: String,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// A problem found in `[tools.execute]`: what, and where.
pub(crate) type ExecProblem = (String, Range<usize>);

/// Reads an optional duration, `default` when absent; a bad one is a problem.
pub(crate) fn parse_duration(
    v: Option<&Spanned<String>>,
    default: Duration,
    problems: &mut Vec<ExecProblem>,
) -> Duration {
    match v {
        None => default,
        Some(s) => match humantime::parse_duration(s.get_ref()) {
            Ok(d) => d,
            Err(_) => {
                problems.push((
                    format!(
                        "invalid duration `{}`; write e.g. `250ms`, `10s` or `2m`",
                        s.get_ref()
                    ),
                    s.span(),
                ));
                default
            }
        },
    }
}

/// `url` or `url_env`, exactly one.
pub(crate) fn url_source(
    url: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    what: &str,
    at: &Range<usize>,
    problems: &mut Vec<ExecProblem>,
) -> Option<ValueSource> {
    match (url, url_env) {
        (Some(u), None) => {
            if !(u.get_ref().starts_with("http://") || u.get_ref().starts_with("https://")) {
                problems.push((
                    format!("`{}` is not an http:// or https:// URL", u.get_ref()),
                    u.span(),
                ));
            }
            Some(ValueSource::Literal(u.into_inner()))
        }
        (None, Some(e)) => {
            if !crate::load::valid_env_name(e.get_ref()) {
                problems.push((
                    format!("`{}` is not an environment variable name", e.get_ref()),
                    e.span(),
                ));
            }
            Some(ValueSource::Env(e.into_inner()))
        }
        (Some(_), Some(e)) => {
            problems.push(("give `url` or `url_env`, not both".to_owned(), e.span()));
            None
        }
        (None, None) => {
            problems.push((format!("{what} needs `url` or `url_env`"), at.clone()));
            None
        }
    }
}

/// `credential = { header, prefix, env | file }`.
pub(crate) fn credential(
    c: Spanned<RawCredential>,
    problems: &mut Vec<ExecProblem>,
) -> Option<Credential> {
    let span = c.span();
    let c = c.into_inner();
    let source = match (c.env, c.file) {
        (Some(e), None) if crate::load::valid_env_name(&e) => Some(ValueSource::Env(e)),
        (Some(e), None) => {
            problems.push((format!("`{e}` is not an environment variable name"), span));
            None
        }
        (None, Some(f)) => Some(ValueSource::File(f)),
        _ => {
            problems.push((
                "a credential names exactly one of `env` or `file`; secrets are never written in the pack".to_owned(),
                span,
            ));
            None
        }
    };
    source.map(|source| Credential {
        header: c.header,
        prefix: c.prefix.unwrap_or_default(),
        source,
    })
}

impl RawExecute {
    /// Resolves the table; every problem is returned, not the first.
    pub(crate) fn resolve(mut self) -> Result<Execution, Vec<ExecProblem>> {
        let mut problems: Vec<ExecProblem> = Vec::new();
        let timeout = parse_duration(
            self.timeout.as_ref(),
            Duration::from_secs(10),
            &mut problems,
        );
        let backoff = parse_duration(
            self.backoff.as_ref(),
            Duration::from_millis(200),
            &mut problems,
        );
        let latency = parse_duration(self.latency.as_ref(), Duration::ZERO, &mut problems);
        let kind = self.connector.get_ref().as_str();
        let connector = match kind {
            "http" => {
                let url = url_source(
                    self.url.clone(),
                    self.url_env.clone(),
                    "an http connector",
                    &self.connector.span(),
                    &mut problems,
                );
                let credential = self
                    .credential
                    .take()
                    .and_then(|c| credential(c, &mut problems));
                for (name, present) in [
                    ("result", self.result.is_some()),
                    ("failure_rate", self.failure_rate.is_some()),
                    ("latency", self.latency.is_some()),
                ] {
                    if present {
                        problems.push((
                            format!("`{name}` applies to the mock connector only"),
                            self.connector.span(),
                        ));
                    }
                }
                url.map(|url| {
                    Connector::Http(HttpConnector {
                        url,
                        timeout,
                        credential,
                    })
                })
            }
            "mock" => {
                let failure_rate = match &self.failure_rate {
                    Some(f) if !(0.0..=1.0).contains(f.get_ref()) => {
                        problems.push((
                            "`failure_rate` must be between 0 and 1".to_owned(),
                            f.span(),
                        ));
                        0.0
                    }
                    Some(f) => *f.get_ref(),
                    None => 0.0,
                };
                for (name, present) in [
                    ("url", self.url.is_some()),
                    ("url_env", self.url_env.is_some()),
                    ("credential", self.credential.is_some()),
                ] {
                    if present {
                        problems.push((
                            format!("`{name}` applies to the http connector only"),
                            self.connector.span(),
                        ));
                    }
                }
                Some(Connector::Mock(MockConnector {
                    result: self
                        .result
                        .unwrap_or_else(|| serde_json::json!({"ok": true})),
                    failure_rate,
                    latency,
                }))
            }
            "mcp" => self.mcp(timeout, &mut problems),
            other => {
                problems.push((
                    format!("unknown connector `{other}`; expected http, mcp or mock"),
                    self.connector.span(),
                ));
                None
            }
        };
        if kind != "mcp" {
            for (name, v) in [
                ("server", &self.server),
                ("tool", &self.tool),
                ("pin", &self.pin),
            ] {
                if let Some(v) = v {
                    problems.push((
                        format!("`{name}` applies to the mcp connector only"),
                        v.span(),
                    ));
                }
            }
        }
        let retries = self.retries.as_ref().map_or(0, |r| *r.get_ref());
        if let Some(r) = &self.retries {
            if retries > 0 && !self.safe_to_retry {
                problems.push((
                    "`retries` needs `safe_to_retry = true`: Warden never re-sends a call that is not safe to repeat".to_owned(),
                    r.span(),
                ));
            }
            if retries > 10 {
                problems.push(("`retries` is at most 10".to_owned(), r.span()));
            }
        }
        match connector {
            Some(connector) if problems.is_empty() => Ok(Execution {
                connector,
                safe_to_retry: self.safe_to_retry,
                retries,
                backoff,
                on_interrupt: self.on_interrupt.unwrap_or(if self.safe_to_retry {
                    OnInterrupt::Resend
                } else {
                    OnInterrupt::Fail
                }),
                max_result_bytes: self.max_result_bytes.unwrap_or(DEFAULT_MAX_RESULT_BYTES),
            }),
            _ => Err(problems),
        }
    }
}

impl RawExecute {
    /// `connector = "mcp"`: `server`, `tool` and `pin`.
    fn mcp(&self, timeout: Duration, problems: &mut Vec<ExecProblem>) -> Option<Connector> {
        for (name, present) in [
            ("url", self.url.is_some()),
            ("url_env", self.url_env.is_some()),
            ("credential", self.credential.is_some()),
            ("result", self.result.is_some()),
            ("failure_rate", self.failure_rate.is_some()),
            ("latency", self.latency.is_some()),
        ] {
            if present {
                problems.push((
                    format!(
                        "`{name}` does not apply to the mcp connector: the upstream is declared in `[[mcp_servers]]`"
                    ),
                    self.connector.span(),
                ));
            }
        }
        let Some(server) = &self.server else {
            problems.push((
                "an mcp connector names its upstream: `server = \"<[[mcp_servers]] id>\"`"
                    .to_owned(),
                self.connector.span(),
            ));
            return None;
        };
        let Some(tool) = &self.tool else {
            problems.push((
                "an mcp connector names the upstream's tool: `tool = \"<name>\"`".to_owned(),
                self.connector.span(),
            ));
            return None;
        };
        let pin_ok = |p: &str| {
            p.strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        let pin = match &self.pin {
            Some(p) if pin_ok(p.get_ref()) => p.get_ref().to_ascii_lowercase(),
            Some(p) => {
                problems.push((
                    "`pin` is `sha256:` and 64 hex digits, as `warden mcp import` prints it"
                        .to_owned(),
                    p.span(),
                ));
                return None;
            }
            None => {
                problems.push((
                    "an mcp tool pins the upstream definition it adopted: add the `pin` that `warden mcp import` prints".to_owned(),
                    self.connector.span(),
                ));
                return None;
            }
        };
        Some(Connector::Mcp(crate::mcp::McpConnector {
            server: server.get_ref().clone(),
            tool: tool.get_ref().clone(),
            pin,
            timeout,
        }))
    }
}
