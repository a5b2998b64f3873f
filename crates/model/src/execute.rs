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
}

impl Connector {
    /// `http` or `mock`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Mock(_) => "mock",
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

impl RawExecute {
    /// Resolves the table; every problem is returned, not the first.
    pub(crate) fn resolve(self) -> Result<Execution, Vec<ExecProblem>> {
        let mut problems: Vec<ExecProblem> = Vec::new();
        let mut duration = |v: &Option<Spanned<String>>, default: Duration| match v {
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
        };
        let timeout = duration(&self.timeout, Duration::from_secs(10));
        let backoff = duration(&self.backoff, Duration::from_millis(200));
        let latency = duration(&self.latency, Duration::ZERO);
        let kind = self.connector.get_ref().as_str();
        let connector = match kind {
            "http" => {
                let url = match (&self.url, &self.url_env) {
                    (Some(u), None) => {
                        if !(u.get_ref().starts_with("http://")
                            || u.get_ref().starts_with("https://"))
                        {
                            problems.push((
                                format!("`{}` is not an http:// or https:// URL", u.get_ref()),
                                u.span(),
                            ));
                        }
                        Some(ValueSource::Literal(u.get_ref().clone()))
                    }
                    (None, Some(e)) => {
                        if !crate::load::valid_env_name(e.get_ref()) {
                            problems.push((
                                format!("`{}` is not an environment variable name", e.get_ref()),
                                e.span(),
                            ));
                        }
                        Some(ValueSource::Env(e.get_ref().clone()))
                    }
                    (Some(_), Some(e)) => {
                        problems.push(("give `url` or `url_env`, not both".to_owned(), e.span()));
                        None
                    }
                    (None, None) => {
                        problems.push((
                            "an http connector needs `url` or `url_env`".to_owned(),
                            self.connector.span(),
                        ));
                        None
                    }
                };
                let credential = match self.credential {
                    None => None,
                    Some(c) => {
                        let span = c.span();
                        let c = c.into_inner();
                        let source = match (c.env, c.file) {
                            (Some(e), None) if crate::load::valid_env_name(&e) => {
                                Some(ValueSource::Env(e))
                            }
                            (Some(e), None) => {
                                problems.push((
                                    format!("`{e}` is not an environment variable name"),
                                    span.clone(),
                                ));
                                None
                            }
                            (None, Some(f)) => Some(ValueSource::File(f)),
                            _ => {
                                problems.push((
                                    "a credential names exactly one of `env` or `file`; secrets are never written in the pack".to_owned(),
                                    span.clone(),
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
                };
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
            other => {
                problems.push((
                    format!("unknown connector `{other}`; expected http or mock"),
                    self.connector.span(),
                ));
                None
            }
        };
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
