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

/// A text table whose columns are as wide as their widest cell, so long
/// ids never push a row out of line. Numbers may be right-aligned; the
/// last column is not padded.
#[derive(Debug, Default)]
pub struct Table {
    head: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles; a title starting with `>` is a
    /// right-aligned (numeric) column, the `>` is not shown.
    pub fn new<S: AsRef<str>>(head: &[S]) -> Self {
        let head: Vec<&str> = head.iter().map(AsRef::as_ref).collect();
        Self {
            head: head
                .iter()
                .map(|h| h.trim_start_matches('>').to_owned())
                .collect(),
            right: head.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank, extra ones dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines, each starting with `indent`, without trailing
    /// spaces.
    pub fn lines(&self, indent: &str) -> Vec<String> {
        let n = self.head.len();
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.head.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(width(c));
            }
        }
        let line = |cells: Vec<&str>| {
            let mut out = String::from(indent);
            for (i, c) in cells.iter().enumerate().take(n) {
                let pad = widths[i].saturating_sub(width(c));
                if i > 0 {
                    out.push_str("  ");
                }
                if self.right[i] {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    if i + 1 < n {
                        out.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = vec![line(self.head.iter().map(String::as_str).collect())];
        for r in &self.rows {
            out.push(line(
                (0..n)
                    .map(|i| r.get(i).map_or("", String::as_str))
                    .collect(),
            ));
        }
        out
    }

    /// Prints the table to stdout.
    pub fn print(&self, indent: &str) {
        for l in self.lines(indent) {
            println!("{l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_grow_with_their_widest_cell() {
        let mut t = Table::new(&["ID", "STATE", ">N", "SUMMARY"]);
        t.row(vec![
            "apr_1".into(),
            "pending".into(),
            "3".into(),
            "a".into(),
        ]);
        t.row(vec![
            "apr_an-id-much-longer-than-twenty-eight-chars".into(),
            "ok".into(),
            "12345".into(),
            "b c".into(),
        ]);
        let lines = t.lines("  ");
        let col = |l: &str, s: &str| l.find(s).unwrap_or(usize::MAX);
        // Every row's second column starts where the header's does.
        let at = col(&lines[0], "STATE");
        assert_eq!(col(&lines[1], "pending"), at);
        assert_eq!(col(&lines[2], "ok"), at);
        // Right-aligned numbers end where the header ends.
        let end = col(&lines[0], "N") + 1;
        assert_eq!(col(&lines[1], "3") + 1, end);
        assert_eq!(col(&lines[2], "12345") + 5, end);
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
        assert!(lines.iter().all(|l| l.starts_with("  ")));
    }
}
