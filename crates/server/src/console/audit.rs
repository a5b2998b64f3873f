//! Audit search: the filters of `warden audit query`, a record's canonical
//! content with its inclusion proof checked against the newest signed
//! checkpoint, the log's verification, and the search as JSON Lines.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use warden_evidence::SignedCheckpoint;
use warden_model::Role;
use warden_store::Filter;

use super::layout::{self, Page, Section, badge, json, timeline};
use super::runs::time_filter;
use super::session::{Viewer, render};
use crate::AppState;

/// The search form (every field optional).
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct SearchQuery {
    agent: Option<String>,
    tool: Option<String>,
    workflow: Option<String>,
    run: Option<String>,
    kind: Option<String>,
    decision: Option<String>,
    status: Option<String>,
    code: Option<String>,
    policy: Option<String>,
    approver: Option<String>,
    since: Option<String>,
    until: Option<String>,
    text: Option<String>,
    /// Paging: `<time µs>.<seq>` of the last record shown.
    before: Option<String>,
    limit: Option<u32>,
    verify: Option<String>,
}

fn some(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
}

impl SearchQuery {
    fn filter(&self, max: u32) -> Result<Filter, String> {
        let limit = self.limit.unwrap_or(50);
        if limit == 0 || limit > max {
            return Err(format!("`limit` must be 1 to {max}; got {limit}"));
        }
        Ok(Filter {
            agent: some(&self.agent),
            tool: some(&self.tool),
            workflow: some(&self.workflow),
            run: some(&self.run),
            kind: some(&self.kind),
            decision: some(&self.decision),
            status: some(&self.status),
            code: some(&self.code),
            policy: some(&self.policy),
            approver: some(&self.approver),
            since_us: time_filter("since", self.since.as_deref())?,
            until_us: time_filter("until", self.until.as_deref())?,
            text: some(&self.text),
            action: None,
            by_time: true,
            before: match self.before.as_deref().filter(|b| !b.is_empty()) {
                None => None,
                Some(b) => Some(
                    b.split_once('.')
                        .and_then(|(t, s)| Some((t.parse().ok()?, s.parse().ok()?)))
                        .ok_or_else(|| format!("`before` must be `<time>.<seq>`; got `{b}`"))?,
                ),
            },
            limit,
        })
    }

    /// The query string of this search (without paging).
    fn query_string(&self) -> String {
        let pairs = [
            ("agent", &self.agent),
            ("tool", &self.tool),
            ("workflow", &self.workflow),
            ("run", &self.run),
            ("kind", &self.kind),
            ("decision", &self.decision),
            ("status", &self.status),
            ("code", &self.code),
            ("policy", &self.policy),
            ("approver", &self.approver),
            ("since", &self.since),
            ("until", &self.until),
            ("text", &self.text),
        ];
        pairs
            .iter()
            .filter_map(|(k, v)| some(v).map(|v| format!("{k}={}", layout::encode(&v))))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn field(name: &str, label: &str, value: &Option<String>, hint: &str) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            input id=(name) name=(name) value=(value.clone().unwrap_or_default()) placeholder=(hint);
        }
    }
}

/// The newest checkpoint and whether a trusted key signed it.
async fn newest_checkpoint(s: &AppState) -> Option<(SignedCheckpoint, Option<String>)> {
    let cps = s.store.checkpoints().await.ok()?;
    let cp = cps.into_iter().last()?;
    let key = s
        .trusted
        .iter()
        .find(|k| cp.verify(k))
        .map(|k| format!("{} (key id {:08x})", k.name(), k.key_id()));
    Some((cp, key))
}

fn checkpoint_status(cp: Option<&(SignedCheckpoint, Option<String>)>) -> Markup {
    html! {
        @match cp {
            Some((cp, Some(key))) => p.ok #checkpoint {
                "Newest checkpoint: " (cp.checkpoint.size) " records, signed " (cp.checkpoint.timestamp)
                " by " (key) "; signature verified."
            },
            Some((cp, None)) => p.error role="alert" #checkpoint {
                "Newest checkpoint (" (cp.checkpoint.size) " records) is not signed by a key this server trusts."
            },
            None => p #checkpoint { "No checkpoint signed yet." },
        }
    }
}

/// `GET /console/audit`.
pub(crate) async fn search(
    State(s): State<AppState>,
    v: Viewer,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    if !v.has(&[Role::Auditor, Role::Operator]) {
        return layout::forbidden(&s, &v, "the audit log");
    }
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return layout::error_page(&s, Some(&v), StatusCode::BAD_REQUEST, &e.body_text());
        }
    };
    let filter = match q.filter(1000) {
        Ok(f) => f,
        Err(m) => return layout::error_page(&s, Some(&v), StatusCode::BAD_REQUEST, &m),
    };
    let searched = q.query_string();
    let started = std::time::Instant::now();
    let found = match s.store.query(&filter).await {
        Ok(f) => f,
        Err(e) => {
            return layout::unavailable(&s, &v, e);
        }
    };
    let took = started.elapsed();
    let cp = newest_checkpoint(&s).await;
    let verified = if q.verify.is_some() {
        Some(s.store.verify(s.trusted.clone(), |_| {}).await)
    } else {
        None
    };
    let next = found
        .last()
        .map(|r| r.seq)
        .filter(|_| found.len() as u32 == filter.limit);
    let body = html! {
        h1 { "Audit log" }
        (checkpoint_status(cp.as_ref()))
        @match &verified {
            Some(Ok(report)) if report.ok() => p.ok #verify-status role="status" {
                "Verified the whole log: " (report.leaves) " records, " (report.checkpoints) " checkpoints, root " code { (report.root) } ". Nothing was modified, removed, reordered or truncated."
            },
            Some(Ok(report)) => p.error #verify-status role="alert" {
                "The log does NOT verify: " (report.first().map(|f| f.message.clone()).unwrap_or_default())
            },
            Some(Err(e)) => p.error role="alert" { "Cannot verify: " (e) },
            None => form.inline method="get" action="/console/audit" {
                input type="hidden" name="verify" value="1";
                button type="submit" { "Verify the whole log" }
            },
        }
        form.filters.grid method="get" action="/console/audit" {
            (field("agent", "Agent", &q.agent, "support-bot"))
            (field("tool", "Tool", &q.tool, "stripe.refund"))
            (field("workflow", "Workflow", &q.workflow, ""))
            (field("run", "Run", &q.run, "run_…"))
            (field("kind", "Kind", &q.kind, "action_decided"))
            (field("decision", "Decision", &q.decision, "allow, deny, approval_required"))
            (field("status", "Status", &q.status, "succeeded"))
            (field("code", "Code", &q.code, "policy_denied"))
            (field("policy", "Policy", &q.policy, "refund-limit"))
            (field("approver", "Approver", &q.approver, "dave"))
            (field("since", "Since", &q.since, "2026-12-04"))
            (field("until", "Until", &q.until, ""))
            (field("text", "Text", &q.text, "anywhere in the record"))
            div.buttons {
                button type="submit" { "Search" }
                a.button href=(format!("/console/audit/export.jsonl?{searched}")) download { "Export JSONL" }
            }
        }
        p.count #result-count { (found.len()) " record(s), newest first by time (" (took.as_millis()) " ms)." }
        table.list #results {
            caption.visually-hidden { "Matching records" }
            thead { tr {
                th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Kind" }
                th scope="col" { "Agent" } th scope="col" { "Tool" } th scope="col" { "Status" }
            } }
            tbody {
                @for r in &found {
                    tr {
                        td { a href=(format!("/console/audit/{}", r.seq)) { (r.seq) } }
                        td { (warden_evidence::time_from_micros(r.time_us)) }
                        td { (r.kind) }
                        @if let Some(rec) = &r.record {
                            td { (rec.agent.as_deref().unwrap_or("")) }
                            td { (rec.tool.as_deref().unwrap_or("")) }
                            td { @if let Some(st) = rec.status { (badge(st.as_str())) } @else if let Some(c) = &rec.code { (c) } }
                        } @else {
                            td colspan="3" { "payload pruned or erased (its hash stays in the log)" }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next {
            p { a href=(format!("/console/audit?{searched}&before={n}")) rel="next" { "Older records →" } }
        }
    };
    render(&s, &v, Page::new("Audit", Section::Audit, body))
}

/// `GET /console/audit/export.jsonl`: the search as JSON Lines (at most
/// 10,000 records; `warden audit export` writes the whole log with proofs).
pub(crate) async fn export(
    State(s): State<AppState>,
    v: Viewer,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    if !v.has(&[Role::Auditor, Role::Operator]) {
        return layout::forbidden(&s, &v, "the audit log");
    }
    let mut q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return layout::error_page(&s, Some(&v), StatusCode::BAD_REQUEST, &e.body_text());
        }
    };
    q.limit = Some(q.limit.unwrap_or(10_000));
    let filter = match q.filter(10_000) {
        Ok(f) => f,
        Err(m) => return layout::error_page(&s, Some(&v), StatusCode::BAD_REQUEST, &m),
    };
    let found = match s.store.query(&filter).await {
        Ok(f) => f,
        Err(e) => {
            return layout::unavailable(&s, &v, e);
        }
    };
    let mut out = String::new();
    for r in &found {
        let line = match &r.record {
            Some(rec) => serde_json::to_string(rec).unwrap_or_default(),
            None => serde_json::json!({ "seq": r.seq, "kind": r.kind, "pruned": true }).to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"warden-audit.jsonl\"",
            ),
        ],
        out,
    )
        .into_response()
}

/// `GET /console/audit/{seq}`: one record, its canonical bytes, and its
/// inclusion proof checked against the newest signed checkpoint.
pub(crate) async fn record(
    State(s): State<AppState>,
    v: Viewer,
    Path(seq): Path<String>,
) -> Response {
    if !v.has(&[Role::Auditor, Role::Operator]) {
        return layout::forbidden(&s, &v, "the audit log");
    }
    let Ok(seq) = seq.parse::<u64>() else {
        return layout::error_page(
            &s,
            Some(&v),
            StatusCode::BAD_REQUEST,
            &format!("`{seq}` is not a record number"),
        );
    };
    let leaf = match s
        .store
        .leaves(i64::try_from(seq).unwrap_or(i64::MAX) - 1, 1)
        .await
    {
        Ok(mut l) if l.first().is_some_and(|l| l.seq == seq) => l.remove(0),
        Ok(_) => {
            return layout::error_page(
                &s,
                Some(&v),
                StatusCode::NOT_FOUND,
                &format!("No record #{seq}."),
            );
        }
        Err(e) => {
            return layout::unavailable(&s, &v, e);
        }
    };
    let cp = newest_checkpoint(&s).await;
    // The proof: the path from the leaf to the checkpoint's root.
    let proof = match &cp {
        Some((c, Some(_))) if c.checkpoint.size > seq => match s.store.tree().await {
            Ok(tree) => tree.inclusion_proof(seq, c.checkpoint.size).map(|path| {
                let body_ok = leaf
                    .body
                    .as_deref()
                    .is_none_or(|b| warden_evidence::merkle::leaf_hash(b) == leaf.leaf_hash);
                let ok = body_ok
                    && warden_evidence::merkle::verify_inclusion(
                        seq,
                        c.checkpoint.size,
                        &leaf.leaf_hash,
                        &path,
                        &c.checkpoint.root,
                    );
                (path, ok, body_ok)
            }),
            Err(_) => None,
        },
        _ => None,
    };
    let record: Option<warden_evidence::Record> = leaf
        .body
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok());
    let canonical = leaf
        .body
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let body = html! {
        p.back { a href="/console/audit" { "← Audit" } }
        h1 { "Record #" (seq) }
        @match (&proof, &cp) {
            (Some((path, true, _)), Some((c, Some(key)))) => p.ok #proof-status role="status" {
                "Inclusion proof verified: record #" (seq) " is leaf " (seq) " of the " (c.checkpoint.size)
                "-record tree whose root the checkpoint of " (c.checkpoint.timestamp) " signed by " (key)
                " commits to (" (path.len()) " hashes)."
            },
            (Some((_, false, body_ok)), _) => p.error #proof-status role="alert" {
                @if *body_ok { "The inclusion proof does NOT verify against the newest checkpoint." }
                @else { "The record's content does not match its leaf hash: it was modified." }
            },
            _ => p #proof-status {
                "Not yet covered by a signed checkpoint; the next one covers it (checkpoints are signed on a schedule, also when idle)."
            },
        }
        @if let Some(rec) = &record {
            dl.facts {
                dt { "Kind" } dd { (rec.kind.as_str()) }
                dt { "Time" } dd { (rec.time) }
                @if let Some(a) = &rec.agent { dt { "Agent" } dd { (a) } }
                @if let Some(t) = &rec.tool { dt { "Tool" } dd { (t) } }
                @if let Some(r) = &rec.run { dt { "Run" } dd { a href=(format!("/console/runs/{r}")) { (r) } } }
            }
            (timeline(std::slice::from_ref(rec)))
            h2 { "Content" }
            (json(&serde_json::to_value(rec).unwrap_or_default()))
        }
        h2 { "Canonical bytes (RFC 8785), as hashed" }
        @match &canonical {
            Some(c) => pre.canonical #canonical { (c) },
            None => p { "The payload was pruned or erased; its leaf hash stays in the log, so the log still verifies." },
        }
        p { "Leaf hash " code.hash { (hex::encode(leaf.leaf_hash)) } }
        @if let Some((path, _, _)) = &proof {
            details {
                summary { "Proof path (" (path.len()) " hashes)" }
                ol.hashes { @for h in path { li { code.hash { (hex::encode(h)) } } } }
            }
        }
    };
    render(
        &s,
        &v,
        Page::new(format!("Record #{seq}"), Section::Audit, body),
    )
}
