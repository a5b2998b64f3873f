//! Diagnostics: every problem found in a pack, with its file, line and column.
//!
//! Each crate describes its own problems as a `thiserror` enum implementing
//! [`Problem`]; a [`Diagnostic`] pairs one with where it happened and renders it
//! through `miette` (carets under the fault) or as JSON.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

use crate::source::Location;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A readiness gap: the pack loads, but something is likely missing.
    Warning,
    /// The pack cannot be used.
    Error,
}

/// A kind of problem a crate can find in a pack.
pub trait Problem: fmt::Display {
    /// Stable machine code, e.g. `unknown_reference`.
    fn code(&self) -> &'static str;
    /// Errors unless the problem says otherwise.
    fn severity(&self) -> Severity {
        Severity::Error
    }
}

/// One problem, located in the pack.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    severity: Severity,
    code: &'static str,
    message: String,
    label: Option<String>,
    help: Option<String>,
    location: Option<Location>,
    source: Option<NamedSource<Arc<str>>>,
}

impl Diagnostic {
    /// A diagnostic for `problem`, not yet located.
    pub fn new(problem: &impl Problem) -> Self {
        Self {
            severity: problem.severity(),
            code: problem.code(),
            message: problem.to_string(),
            label: None,
            help: None,
            location: None,
            source: None,
        }
    }

    /// Places the diagnostic at `location`.
    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.source = Some(
            NamedSource::new(location.file.name(), location.file.shared_text())
                .with_language(language_of(location.file.name())),
        );
        self.location = Some(location);
        self
    }

    /// Places the diagnostic at `location` when there is one.
    #[must_use]
    pub fn at_opt(self, location: Option<Location>) -> Self {
        match location {
            Some(l) => self.at(l),
            None => self,
        }
    }

    /// Text shown under the caret.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// A hint on how to fix the problem.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Error or warning.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// Whether this diagnostic makes the pack unusable.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message, without location.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The hint, if any.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// Where the problem is, if it has a place in a file.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// A serializable view for `--error-format json`.
    pub fn to_json(&self) -> DiagnosticJson<'_> {
        let (line, column) = self
            .location
            .as_ref()
            .map(Location::line_col)
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        DiagnosticJson {
            severity: self.severity,
            code: self.code,
            message: &self.message,
            file: self.location.as_ref().map(|l| l.file.name()),
            line,
            column,
            label: self.label.as_deref(),
            help: self.help.as_deref(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let loc = self.location.as_ref()?;
        let len = loc.span.end.saturating_sub(loc.span.start);
        let span = LabeledSpan::new(self.label.clone(), loc.span.start, len);
        Some(Box::new(std::iter::once(span)))
    }
}

/// JSON form of a [`Diagnostic`] (a stable wire format).
#[derive(Debug, Serialize)]
pub struct DiagnosticJson<'a> {
    /// `error` or `warning`.
    pub severity: Severity,
    /// Stable machine code.
    pub code: &'a str,
    /// Human message.
    pub message: &'a str,
    /// File relative to the pack root.
    pub file: Option<&'a str>,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// Text under the caret.
    pub label: Option<&'a str>,
    /// How to fix it.
    pub help: Option<&'a str>,
}

/// A non-empty list of diagnostics of which at least one is an error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the pack has {} error(s)", self.error_count())]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Wraps `all` when it holds an error; otherwise gives it back (warnings only).
    pub fn from_all(all: Vec<Diagnostic>) -> Result<Vec<Diagnostic>, Self> {
        if all.iter().any(Diagnostic::is_error) {
            Err(Self(all))
        } else {
            Ok(all)
        }
    }

    /// Wraps one error.
    pub fn one(error: Diagnostic) -> Self {
        Self(vec![error])
    }

    /// Number of errors (not warnings).
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    /// All diagnostics, errors and warnings, in the order found.
    pub fn all(&self) -> &[Diagnostic] {
        &self.0
    }

    /// Takes the list back.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
}

fn language_of(name: &str) -> &'static str {
    if name.ends_with(".cedar") {
        "cedar"
    } else {
        "toml"
    }
}

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["stripe", "crm", "email"];
        assert_eq!(did_you_mean("strpe", names), Some("stripe"));
        assert_eq!(did_you_mean("warehouse", names), None);
    }
}
