//! Upstream MCP servers: `[[mcp_servers]]`, and tools executed through them.
//!
//! ```toml
//! [[mcp_servers]]
//! id = "kb"
//! command = ["warden-example-kb"]     # stdio: a bare name is looked up next to
//!                                      # the warden binary, then on PATH
//! env = ["KB_API_KEY"]                 # passed from Warden's environment
//! recheck = "30s"                      # re-list tools (drift check) this often
//!
//! [[mcp_servers]]
//! id = "crm"
//! url_env = "CRM_MCP_URL"              # streamable HTTP
//! credential = { header = "Authorization", prefix = "Bearer ", env = "CRM_TOKEN" }
//!
//! [[tools]]
//! id = "kb.search_articles"
//! ...
//! [tools.execute]
//! connector = "mcp"
//! server = "kb"
//! tool = "search_articles"            # the upstream's name for it
//! pin = "sha256:…"                    # its definition when adopted
//! ```
//!
//! The `pin` is the SHA-256 of the upstream tool's definition (name,
//! description, input and output schema, canonical JSON) as `warden mcp
//! import` printed it. A tool whose upstream definition no longer matches is
//! refused: a guard against tool poisoning and silent drift.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::execute::{Credential, ValueSource};
use crate::source::Location;

/// An upstream MCP server declared in the pack.
#[derive(Debug, Clone)]
pub struct McpServer {
    /// Id, e.g. `kb`.
    pub id: String,
    /// What it serves.
    pub description: Option<String>,
    /// How Warden reaches it.
    pub transport: McpTransport,
    /// Longest wait to connect (and list its tools).
    pub connect_timeout: Duration,
    /// A tool listing older than this is refreshed before the next call,
    /// so a changed tool is caught then (default 30s; also refreshed when
    /// the upstream notifies that its tools changed).
    pub recheck: Duration,
    /// Where it is declared.
    pub at: Location,
}

/// How Warden reaches an upstream MCP server.
#[derive(Debug, Clone, PartialEq)]
pub enum McpTransport {
    /// A child process speaking MCP on stdin/stdout.
    Stdio {
        /// Program and arguments. A program without `/` is looked up next
        /// to the warden binary first, then on `PATH`; a relative path with
        /// `/` is relative to the pack.
        command: Vec<String>,
        /// Environment variables passed from Warden's environment; the child
        /// gets nothing else but `PATH`, `HOME` and `LANG`.
        env: Vec<String>,
    },
    /// Streamable HTTP.
    Http {
        /// The endpoint, e.g. `https://crm.internal/mcp`.
        url: ValueSource,
        /// A header carrying a secret Warden holds.
        credential: Option<Credential>,
    },
}

impl McpTransport {
    /// `stdio` or `http`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdio { .. } => "stdio",
            Self::Http { .. } => "http",
        }
    }
}

/// `connector = "mcp"`: a tool executed as a `tools/call` on an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConnector {
    /// The `[[mcp_servers]]` id.
    pub server: String,
    /// The upstream's name for the tool.
    pub tool: String,
    /// `sha256:<hex>` of the upstream definition the pack adopted.
    pub pin: String,
    /// Per call.
    pub timeout: Duration,
}

/// The name `/mcp` lists a tool under by default: its id with every
/// character outside `[A-Za-z0-9_-]` replaced by `_` (`stripe.refund` →
/// `stripe_refund`), because model APIs reject dots in tool names.
pub fn default_mcp_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether `name` is accepted by model APIs as a tool name.
pub fn is_model_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `[[mcp_servers]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcpServer {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub command: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub env: Vec<Spanned<String>>,
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    #[serde(default)]
    pub url_env: Option<Spanned<String>>,
    #[serde(default)]
    pub credential: Option<Spanned<crate::execute::RawCredential>>,
    #[serde(default)]
    pub connect_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub recheck: Option<Spanned<String>>,
}

/// A problem found: what, and where.
pub(crate) type Problem = (String, Range<usize>);

impl RawMcpServer {
    /// Resolves the entry; every problem is returned, not the first.
    pub(crate) fn resolve(self, at: Location) -> Result<McpServer, Vec<Problem>> {
        let mut problems = Vec::new();
        let connect_timeout = crate::execute::parse_duration(
            self.connect_timeout.as_ref(),
            Duration::from_secs(10),
            &mut problems,
        );
        let recheck = crate::execute::parse_duration(
            self.recheck.as_ref(),
            Duration::from_secs(30),
            &mut problems,
        );
        let id_span = self.id.span();
        let transport = match (self.command, self.url, self.url_env) {
            (Some(command), None, None) => {
                if command.get_ref().is_empty() || command.get_ref()[0].is_empty() {
                    problems.push((
                        "`command` names the program to start, e.g. `[\"kb-server\", \"--stdio\"]`"
                            .to_owned(),
                        command.span(),
                    ));
                }
                if let Some(c) = &self.credential {
                    problems.push((
                        "`credential` applies to an HTTP upstream; give a stdio upstream its secrets with `env`".to_owned(),
                        c.span(),
                    ));
                }
                let mut env = Vec::new();
                for e in self.env {
                    if crate::load::valid_env_name(e.get_ref()) {
                        env.push(e.into_inner());
                    } else {
                        problems.push((
                            format!("`{}` is not an environment variable name", e.get_ref()),
                            e.span(),
                        ));
                    }
                }
                Some(McpTransport::Stdio {
                    command: command.into_inner(),
                    env,
                })
            }
            (None, url, url_env) if url.is_some() || url_env.is_some() => {
                if let Some(e) = self.env.first() {
                    problems.push((
                        "`env` applies to a stdio upstream (`command`)".to_owned(),
                        e.span(),
                    ));
                }
                let url = crate::execute::url_source(
                    url,
                    url_env,
                    "an HTTP MCP server",
                    &id_span,
                    &mut problems,
                );
                let credential = self
                    .credential
                    .and_then(|c| crate::execute::credential(c, &mut problems));
                url.map(|url| McpTransport::Http { url, credential })
            }
            (None, None, None) => {
                problems.push((
                    "an MCP server needs `command` (stdio) or `url` / `url_env` (streamable HTTP)"
                        .to_owned(),
                    id_span,
                ));
                None
            }
            _ => {
                problems.push((
                    "give `command` (stdio) or `url` / `url_env` (streamable HTTP), not both"
                        .to_owned(),
                    id_span,
                ));
                None
            }
        };
        match transport {
            Some(transport) if problems.is_empty() => Ok(McpServer {
                id: self.id.into_inner(),
                description: self.description,
                transport,
                connect_timeout,
                recheck,
                at,
            }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_model_safe() {
        assert_eq!(default_mcp_name("stripe.refund"), "stripe_refund");
        assert_eq!(default_mcp_name("a.b-c_d"), "a_b-c_d");
        assert!(is_model_safe_name(&default_mcp_name("crm.lookup_customer")));
        assert!(!is_model_safe_name("stripe.refund"));
        assert!(!is_model_safe_name(""));
        assert!(!is_model_safe_name(&"x".repeat(65)));
    }
}
