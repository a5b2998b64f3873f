//! The page frame (navigation by role, sign-out), error pages, and the
//! small pieces every page uses: times, badges, JSON, the evidence
//! timeline. Everything is rendered by maud, which escapes every value:
//! what agents send (arguments, reasons, results) is shown as text.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use warden_evidence::Record;
use warden_model::Role;

use super::session::Viewer;
use crate::AppState;

/// The sections of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Inbox,
    History,
    Runs,
    Audit,
    Incidents,
    Controls,
    Views,
}

impl Section {
    fn all() -> [Self; 7] {
        [
            Self::Inbox,
            Self::History,
            Self::Runs,
            Self::Audit,
            Self::Incidents,
            Self::Controls,
            Self::Views,
        ]
    }

    fn href(self) -> &'static str {
        match self {
            Self::Inbox => "/console",
            Self::History => "/console/history",
            Self::Runs => "/console/runs",
            Self::Audit => "/console/audit",
            Self::Incidents => "/console/incidents",
            Self::Controls => "/console/controls",
            Self::Views => "/console/views",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Inbox => "Approvals",
            Self::History => "History",
            Self::Runs => "Runs",
            Self::Audit => "Audit",
            Self::Incidents => "Incidents",
            Self::Controls => "Controls",
            Self::Views => "Views",
        }
    }

    /// Whether `v` may open this section.
    pub(crate) fn open_to(self, v: &Viewer) -> bool {
        match self {
            Self::Inbox | Self::History | Self::Incidents => true,
            Self::Runs | Self::Audit | Self::Views => v.has(&[Role::Operator, Role::Auditor]),
            Self::Controls => v.has(&[Role::Operator, Role::Auditor]),
        }
    }
}

/// A page to render.
pub(crate) struct Page {
    pub title: String,
    pub section: Section,
    pub body: Markup,
    pub status: StatusCode,
}

impl Page {
    pub(crate) fn new(title: impl Into<String>, section: Section, body: Markup) -> Self {
        Self {
            title: title.into(),
            section,
            body,
            status: StatusCode::OK,
        }
    }

    pub(crate) fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Warden" }
            link rel="icon" href="data:,";
            link rel="stylesheet" href="/console/assets/app.css";
            script src="/console/assets/app.js" defer {}
        }
    }
}

/// A whole page with navigation for `v`.
pub(crate) fn page(s: &AppState, v: Option<&Viewer>, p: Page) -> Response {
    let engine = s.engine.current();
    let pack = engine.pack();
    let version = engine.policy_version().to_string();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(&p.title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "Warden" }
                    span.pack title=(format!("governance pack and policy version {version}")) {
                        (pack.name) " · " code { (version.trim_start_matches("sha256:").get(..12).unwrap_or(&version)) }
                    }
                    @if let Some(v) = v {
                        nav aria-label="Sections" {
                            ul {
                                @for sec in Section::all() {
                                    @if sec.open_to(v) {
                                        li {
                                            @if sec == p.section {
                                                a href=(sec.href()) aria-current="page" { (sec.label()) }
                                            } @else {
                                                a href=(sec.href()) { (sec.label()) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        form.sign-out method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            span.who { "Signed in as " strong #who { (v.id()) } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (p.body) }
            }
        }
    };
    (
        p.status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page without navigation (sign-in, signed out).
pub(crate) fn bare(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/console" { "Warden" } }
                main #main { (body) }
            }
        }
    }
    .into_string()
}

/// An error page: what went wrong, in words.
pub(crate) fn error_page(
    s: &AppState,
    v: Option<&Viewer>,
    status: StatusCode,
    message: &str,
) -> Response {
    let body = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        p.error role="alert" { (message) }
        p { a href="/console" { "Back to the approvals" } }
    };
    page(
        s,
        v,
        Page::new("Error", Section::Inbox, body).status(status),
    )
}

/// A page `v` may not open.
pub(crate) fn forbidden(s: &AppState, v: &Viewer, what: &str) -> Response {
    error_page(
        s,
        Some(v),
        StatusCode::FORBIDDEN,
        &format!(
            "`{}` may not see {what}: it needs the operator or auditor role.",
            v.id()
        ),
    )
}

/// 503 with the store's error: the database could not answer.
pub(crate) fn unavailable(s: &AppState, v: &Viewer, e: impl std::fmt::Display) -> Response {
    error_page(
        s,
        Some(v),
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("database: {e}"),
    )
}

/// `s` percent-encoded for a query string (unreserved characters and `/`
/// kept).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Links to the pages before and after `page` of a list of `total` rows,
/// `per_page` a page; `extra` keeps the filters (`&k=v…`).
pub(crate) fn page_links(base: &str, page: u32, per_page: u32, total: i64, extra: &str) -> Markup {
    let pages =
        u32::try_from((total.max(0) as u64).div_ceil(u64::from(per_page.max(1)))).unwrap_or(1);
    html! {
        @if pages > 1 {
            nav.pages aria-label="Pages" {
                @if page > 1 { a href=(format!("{base}?page={}{extra}", page - 1)) rel="prev" { "← Newer" } " " }
                span { "Page " (page) " of " (pages) }
                @if page < pages { " " a href=(format!("{base}?page={}{extra}", page + 1)) rel="next" { "Older →" } }
            }
        }
    }
}

/// Now, µs since the epoch.
pub(crate) fn now_us() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(i64::MAX)
}

/// A duration in words: `42 s`, `3 min`, `2 h 5 min`, `3 d`.
pub(crate) fn span(us: i64) -> String {
    let s = us.unsigned_abs() / 1_000_000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => {
            let m = (s % 3600) / 60;
            if m == 0 {
                format!("{} h", s / 3600)
            } else {
                format!("{} h {m} min", s / 3600)
            }
        }
        _ => format!("{} d", s / 86_400),
    }
}

/// A time as a `<time>` element with its distance from now.
pub(crate) fn when(rfc3339: &str) -> Markup {
    let rel = warden_evidence::micros(rfc3339).map(|t| {
        let d = t - now_us();
        if d >= 0 {
            format!("in {}", span(d))
        } else {
            format!("{} ago", span(d))
        }
    });
    html! {
        time datetime=(rfc3339) title=(rfc3339) {
            (rel.unwrap_or_else(|| rfc3339.to_owned()))
        }
    }
}

/// A risk class as a badge.
pub(crate) fn risk(r: Option<&str>) -> Markup {
    let r = r.unwrap_or("unknown");
    html! { span class=(format!("badge risk-{r}")) { (r) } }
}

/// A state or outcome as a badge.
pub(crate) fn badge(text: &str) -> Markup {
    html! { span class=(format!("badge state-{text}")) { (text.replace('_', " ")) } }
}

/// JSON as indented text (escaped).
pub(crate) fn json(v: &Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json { (text) } }
}

/// A record's one-line summary: what happened.
fn summary(r: &Record) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(t) = &r.tool {
        parts.push(t.clone());
    }
    if let Some(c) = r.checks.last() {
        parts.push(format!("{:?}", c.decision).to_lowercase());
    }
    if let Some(st) = r.status {
        parts.push(st.as_str().to_owned());
    }
    if let Some(c) = &r.code {
        parts.push(c.clone());
    }
    for a in &r.approvals {
        parts.push(format!("{} by {}", a.decision, a.approver));
    }
    parts.join(" · ")
}

/// The timeline of a run (or an action) from its evidence records, with
/// the time each step took since the one before.
pub(crate) fn timeline(records: &[Record]) -> Markup {
    let times: Vec<Option<i64>> = records
        .iter()
        .map(|r| warden_evidence::micros(&r.time))
        .collect();
    let start = times.first().copied().flatten();
    html! {
        ol.timeline {
            @for (i, r) in records.iter().enumerate() {
                @let t = times[i];
                @let prev = if i == 0 { None } else { times[i - 1] };
                @let gap = match (t, prev) { (Some(t), Some(p)) => Some(t - p), _ => None };
                @let from_start = match (t, start) { (Some(t), Some(s)) => Some(t - s), _ => None };
                li {
                    span.kind { (r.kind.as_str().replace('_', " ")) }
                    " "
                    span.what { (summary(r)) }
                    @if !r.checks.is_empty() {
                        ul.checks {
                            @for c in &r.checks {
                                @for p in &c.policies {
                                    li {
                                        code { (p.id) } " " (p.effect)
                                        @if let Some(reason) = p.annotations.get("reason") {
                                            " — " (reason)
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(m) = &r.message {
                        div.message { (m) }
                    }
                    div.meta {
                        a href=(format!("/console/audit/{}", r.seq)) { "#" (r.seq) }
                        " · " time datetime=(r.time) { (r.time) }
                        @if let Some(f) = from_start { " · +" (millis(f)) }
                        @if let Some(g) = gap.filter(|g| *g > 0) { " (" (millis(g)) " after the previous)" }
                    }
                }
            }
        }
    }
}

/// µs as milliseconds or seconds in words.
pub(crate) fn millis(us: i64) -> String {
    if us < 1_000_000 {
        format!("{} ms", us / 1000)
    } else if us < 120_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else {
        span(us)
    }
}
