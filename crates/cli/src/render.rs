//! Printing diagnostics: miette's graphical report for people, JSON for tools.

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};
use warden_model::Diagnostic;

/// Renders one diagnostic the way `cargo` does: file:line:col and a caret.
pub fn human(d: &Diagnostic) -> String {
    let theme = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_err() {
        out = format!("{}: {}", d.code(), d.message());
    }
    out
}

/// Prints every diagnostic to stderr.
pub fn print_all(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{}", human(d));
    }
}

/// The JSON form of a list of diagnostics.
pub fn json(diags: &[Diagnostic]) -> serde_json::Value {
    serde_json::Value::Array(
        diags
            .iter()
            .filter_map(|d| serde_json::to_value(d.to_json()).ok())
            .collect(),
    )
}

/// "1 error", "2 warnings", "3 policies".
pub fn count(n: usize, word: &str) -> String {
    match (n, word.strip_suffix('y')) {
        (1, _) => format!("{n} {word}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {word}s"),
    }
}
