//! `[redaction]` and each tool's `sensitive_result`: what Warden keeps out
//! of the recorded results of tools.
//!
//! Results are recorded redacted: values at the JSON Pointers a tool declares
//! in `sensitive_result`, and whatever the output scanner recognises (card
//! numbers, US social security numbers, IBANs, private keys, API keys and
//! the patterns declared here).

use serde::Deserialize;
use toml::Spanned;

use crate::error::ModelProblem;
use crate::load::Cx;

/// Kinds the output scanner recognises by itself. `email` is flagged by the
/// `unusual_output` detector but not redacted: contact addresses are the
/// ordinary content of many results.
pub const SCANNED_KINDS: &[&str] = &[
    "card_number",
    "us_ssn",
    "iban",
    "private_key",
    "api_key",
    "email",
];

/// The pack's `[redaction]` table.
#[derive(Debug, Clone)]
pub struct Redaction {
    /// Whether results are scanned and what the scanner recognises is
    /// redacted (default `true`).
    pub scan_results: bool,
    /// Patterns the pack adds to the scanner.
    pub patterns: Vec<RedactionPattern>,
}

impl Default for Redaction {
    fn default() -> Self {
        Self {
            scan_results: true,
            patterns: Vec::new(),
        }
    }
}

/// One pattern the pack declares: a name (the finding's kind) and a regular
/// expression (the `regex` crate's syntax: linear time, no backtracking).
#[derive(Debug, Clone)]
pub struct RedactionPattern {
    /// The kind findings of this pattern are recorded as.
    pub name: String,
    /// The compiled expression.
    pub regex: regex::Regex,
}

/// `[redaction]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedaction {
    #[serde(default)]
    scan_results: Option<bool>,
    #[serde(default)]
    patterns: Vec<RawPattern>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    name: Spanned<String>,
    regex: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

/// Longest pattern source accepted, and the compiled size limit: a pack's
/// pattern runs over every result.
const MAX_PATTERN_LEN: usize = 1_000;
const MAX_COMPILED_BYTES: usize = 1 << 20;

impl Cx {
    pub(crate) fn resolve_redaction(&mut self, raw: Option<RawRedaction>) -> Redaction {
        let Some(raw) = raw else {
            return Redaction::default();
        };
        let mut patterns: Vec<RedactionPattern> = Vec::new();
        for p in raw.patterns {
            let name = p.name.get_ref();
            if !crate::valid_id(name) {
                self.push(
                    ModelProblem::InvalidId {
                        kind: "redaction pattern",
                        id: name.clone(),
                    },
                    p.name.span(),
                );
                continue;
            }
            if SCANNED_KINDS.contains(&name.as_str()) || patterns.iter().any(|q| &q.name == name) {
                self.push(
                    ModelProblem::Redaction {
                        message: format!(
                            "pattern name `{name}` is taken (built-in kinds: {})",
                            SCANNED_KINDS.join(", ")
                        ),
                    },
                    p.name.span(),
                );
                continue;
            }
            let source = p.regex.get_ref();
            let compiled = if source.len() > MAX_PATTERN_LEN {
                Err(format!("longer than {MAX_PATTERN_LEN} characters"))
            } else {
                regex::RegexBuilder::new(source)
                    .size_limit(MAX_COMPILED_BYTES)
                    .build()
                    .map_err(|e| e.to_string())
            };
            match compiled {
                Ok(regex) if regex.is_match("") => self.push(
                    ModelProblem::Redaction {
                        message: format!("pattern `{name}` matches the empty string"),
                    },
                    p.regex.span(),
                ),
                Ok(regex) => patterns.push(RedactionPattern {
                    name: name.clone(),
                    regex,
                }),
                Err(e) => self.push(
                    ModelProblem::Redaction {
                        message: format!("pattern `{name}` is not a valid regular expression: {e}"),
                    },
                    p.regex.span(),
                ),
            }
        }
        Redaction {
            scan_results: raw.scan_results.unwrap_or(true),
            patterns,
        }
    }

    /// A tool's `sensitive_result` entries: JSON Pointers (RFC 6901), where
    /// a `*` segment stands for every element of an array or member of an
    /// object; `""` is the whole result.
    pub(crate) fn result_pointers(&mut self, tool: &str, raw: Vec<Spanned<String>>) -> Vec<String> {
        let mut out = Vec::new();
        for p in raw {
            let text = p.get_ref();
            let bad_escape = text
                .split('~')
                .skip(1)
                .any(|rest| !rest.starts_with('0') && !rest.starts_with('1'));
            if !(text.is_empty() || text.starts_with('/')) || bad_escape {
                self.push(
                    ModelProblem::Redaction {
                        message: format!(
                            "`sensitive_result` of tool `{tool}`: `{text}` is not a JSON Pointer (write `/field/sub`, `/items/*/iban`, or `\"\"` for the whole result)"
                        ),
                    },
                    p.span(),
                );
                continue;
            }
            out.push(p.into_inner());
        }
        out
    }
}
