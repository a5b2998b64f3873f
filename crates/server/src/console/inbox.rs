//! The approvals inbox (most urgent first, live), a request with all it
//! takes to decide, the answer (through the API's own handler, so the
//! same rules and evidence apply), and the history of decided requests.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{Markup, html};
use serde::Deserialize;
use warden_model::{ApprovalState, Pack};
use warden_runtime::{ApprovalView, DecisionBody, RuntimeError, Verdict};
use warden_store::{ApprovalFilter, ApprovalOrder, ApprovalRow};

use super::layout::{self, Page, Section, badge, json, risk, timeline, when};
use super::session::{Viewer, render};
use crate::AppState;

/// Requests per page of the inbox and the history.
const PAGE: u32 = 50;

/// Query of the inbox and the history.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    page: Option<u32>,
    state: Option<String>,
    group: Option<String>,
}

/// The groups `v` sees requests of (`None`: all), or why none.
fn scope(s: &AppState, v: &Viewer) -> Result<Option<Vec<String>>, String> {
    crate::approvals::visible_groups(s, &v.principal).map_err(|e| e.message)
}

/// Why `v` may not answer `row`, or `None` when they may.
fn why_not(s: &AppState, v: &Viewer, row: &ApprovalRow) -> Option<String> {
    match s.runtime.may_answer(v.id(), row) {
        Ok(()) => None,
        Err(RuntimeError::SeparationOfDuties { agent, rule, .. }) => Some(format!(
            "Separation of duties: you may not approve requests of `{agent}` ({rule})."
        )),
        Err(RuntimeError::NotAnApprover { groups, .. }) => Some(format!(
            "You are not a member of a group that may answer this request ({groups})."
        )),
        Err(RuntimeError::AlreadyAnswered { .. }) => {
            Some("You have answered this request already.".into())
        }
        Err(RuntimeError::ApprovalClosed { state, .. }) => {
            Some(format!("This request is {}.", state.as_str()))
        }
        Err(e) => Some(e.to_string()),
    }
}

fn quorum(view: &ApprovalView) -> Markup {
    html! {
        @for r in &view.requires {
            span.quorum title=(format!("group {} needs {} approval(s)", r.group, r.quorum)) {
                (r.group) " " (r.approvals) "/" (r.quorum)
            }
            " "
        }
    }
}

/// `GET /console`: the requests waiting for `v`, most urgent first.
pub(crate) async fn inbox(
    State(s): State<AppState>,
    v: Viewer,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|q| q.0).unwrap_or_default();
    let page = q.page.unwrap_or(1).max(1);
    let groups = match scope(&s, &v) {
        Ok(g) => g,
        Err(why) => {
            let body = html! {
                h1 { "Approvals" }
                p.note { (why) ". Requests appear here for members of approver groups." }
            };
            return render(&s, &v, Page::new("Approvals", Section::Inbox, body));
        }
    };
    let filter = ApprovalFilter {
        state: Some("pending".into()),
        any_group: groups,
        limit: PAGE,
        offset: (page - 1) * PAGE,
        order: ApprovalOrder::Urgent,
        ..ApprovalFilter::default()
    };
    let (rows, total) = match s.store.approvals(&filter).await {
        Ok(x) => x,
        Err(e) => {
            return layout::unavailable(&s, &v, e);
        }
    };
    let body = html! {
        h1 { "Approvals waiting" }
        div #inbox data-live {
            p.count { (total) " waiting" @if total > 0 { ", the next escalation or expiry first" } "." }
            @if rows.is_empty() {
                p.empty { "Nothing is waiting for you. New requests appear here as agents make them." }
            } @else {
                table.list {
                    caption.visually-hidden { "Approval requests waiting, most urgent first" }
                    thead { tr {
                        th scope="col" { "Due" } th scope="col" { "Agent" } th scope="col" { "Tool" }
                        th scope="col" { "Risk" } th scope="col" { "Quorum" } th scope="col" { "Requested" }
                        th scope="col" { "You" }
                    } }
                    tbody {
                        @for row in &rows {
                            @let view = ApprovalView::recorded(row);
                            @let blocked = why_not(&s, &v, row);
                            tr data-approval=(view.approval_id) {
                                td { @if let Some(d) = &view.due { (when(d)) } @else { "—" } }
                                td { (view.agent) }
                                td { a href=(format!("/console/approvals/{}", view.approval_id)) { (view.tool) } }
                                td { (risk(view.risk.as_deref())) }
                                td { (quorum(&view)) }
                                td { (when(&view.created)) }
                                td { @if blocked.is_some() { span.muted title=[blocked] { "cannot answer" } } @else { span.ok { "may answer" } } }
                            }
                        }
                    }
                }
                (layout::page_links("/console", page, PAGE, total, ""))
            }
        }
    };
    render(&s, &v, Page::new("Approvals", Section::Inbox, body))
}

/// Where each required group's request goes next: `escalates to X` or
/// `expires`.
fn next_step(pack: &Pack, view: &ApprovalView) -> Vec<String> {
    view.requires
        .iter()
        .filter(|r| r.approvals < r.quorum)
        .map(|r| {
            let to = r
                .eligible
                .last()
                .and_then(|g| pack.approver_groups.get(g))
                .and_then(|g| g.escalation.as_ref())
                .map(|e| e.to.clone())
                .filter(|to| !r.eligible.contains(to));
            match to {
                Some(to) => format!("{}: escalates to {to}", r.group),
                None => format!("{}: expires (denied)", r.group),
            }
        })
        .collect()
}

async fn request_page(
    s: &AppState,
    v: &Viewer,
    id: &str,
    error: Option<(StatusCode, String)>,
) -> Response {
    let scope = scope(s, v);
    let visible = scope.is_ok();
    let groups = scope.ok().flatten();
    let row = match s.store.approval(id).await {
        Ok(Some(r))
            if visible
                && groups
                    .as_ref()
                    .is_none_or(|gs| gs.iter().any(|g| r.eligible.contains(&format!(",{g},")))) =>
        {
            r
        }
        Ok(_) => {
            return layout::error_page(
                s,
                Some(v),
                StatusCode::NOT_FOUND,
                &format!("No approval request `{id}` that you may see."),
            );
        }
        Err(e) => {
            return layout::unavailable(s, v, e);
        }
    };
    let view = ApprovalView::recorded(&row);
    let engine = s.engine.current();
    let pack = engine.pack();
    let agent = pack.agents.get(&view.agent);
    let tool = pack.tools.get(&view.tool);
    let records = match &view.run_id {
        Some(run) => s.store.run_records(run).await,
        None => s
            .store
            .query(&warden_store::Filter {
                action: Some(view.action_id.clone()),
                limit: 100,
                ..warden_store::Filter::default()
            })
            .await
            .map(|mut v| {
                v.reverse();
                v
            }),
    }
    .map(|rs| rs.into_iter().filter_map(|r| r.record).collect::<Vec<_>>())
    .unwrap_or_default();
    let blocked = why_not(s, v, &row);
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.0);
    let body = html! {
        p.back { a href="/console" { "← Approvals" } }
        h1 { "Request " code { (view.approval_id) } }
        @if let Some((_, msg)) = &error {
            p.error role="alert" #decision-error { (msg) }
        }
        div #request-state data-live {
            p.state { (badge(view.state.as_str())) " " (quorum(&view))
                @if let Some(d) = &view.due { " · next step " (when(d)) } }
            @if view.state == ApprovalState::Pending {
                ul.next { @for n in next_step(pack, &view) { li { (n) } } }
            }
            @if !view.votes.is_empty() {
                h2 { "Answers" }
                ul.votes #votes {
                    @for vote in &view.votes {
                        li {
                            strong { (vote.approver) } " "
                            (badge(match vote.decision { Verdict::Approve => "approved", Verdict::Deny => "denied" }))
                            " for " (vote.group)
                            @if vote.via != vote.group { " (via " (vote.via) ")" }
                            " " (when(&vote.at))
                            @if let Some(c) = &vote.comment { blockquote { (c) } }
                        }
                    }
                }
            }
        }
        dl.facts {
            dt { "Agent" } dd { (view.agent) @if let Some(a) = agent { " — owner " (a.owner) ", team " (a.team) } }
            dt { "Tool" } dd { code { (view.tool) } @if let Some(t) = tool { " on " (t.system) " (" (t.access.as_str()) ")" } }
            dt { "Risk" } dd { (risk(view.risk.as_deref())) }
            @if let Some(w) = &view.workflow { dt { "Workflow" } dd { (w) @if let Some(r) = &view.run_id { " — run " a href=(format!("/console/runs/{r}")) { (r) } } } }
            @if let Some(r) = &view.reason { dt { "Agent's reason" } dd.agent-text { (r) } }
            dt { "Requested" } dd { (when(&view.created)) }
        }
        h2 { "Arguments (as recorded; sensitive fields redacted)" }
        div #arguments { @if let Some(a) = &view.arguments { (json(a)) } @else { p { "none recorded" } } }
        h2 { "Why approval is needed" }
        p.agent-text { (view.message) }
        ul.policies {
            @for p in view.policies.as_array().into_iter().flatten() {
                li {
                    code { (p.get("id").and_then(|x| x.as_str()).unwrap_or("?")) }
                    @if let Some(r) = p.pointer("/annotations/reason").and_then(|x| x.as_str()) { " — " (r) }
                }
            }
        }
        @if view.state == ApprovalState::Pending {
            h2 { "Your answer" }
            @if let Some(why) = &blocked {
                p.blocked role="note" #why-not { (why) }
            } @else {
                form.decide method="post" action=(format!("/console/approvals/{}/decision", view.approval_id)) {
                    input type="hidden" name="csrf" value=(v.csrf);
                    label for="comment" { "Comment (recorded with your answer; required to deny)" }
                    textarea #comment name="comment" rows="3" {}
                    div.buttons {
                        button.approve type="submit" name="decision" value="approve" { "Approve" }
                        button.deny type="submit" name="decision" value="deny" { "Deny" }
                    }
                }
            }
        }
        h2 { "Details" }
        dl.facts {
            @if let Some(t) = &view.trigger { dt { "Trigger" } dd { (json(t)) } }
            dt { "Bound to" } dd { code.hash { (view.request_sha256) } }
            dt { "Action" } dd { code { (view.action_id) } }
        }
        h2 { "Timeline" }
        div #timeline data-live { (timeline(&records)) }
    };
    render(
        s,
        v,
        Page::new(
            format!("{} by {}", view.tool, view.agent),
            Section::Inbox,
            body,
        )
        .status(status),
    )
}

/// `GET /console/approvals/{id}`.
pub(crate) async fn request(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Response {
    request_page(&s, &v, &id, None).await
}

/// The answer form.
#[derive(Debug, Deserialize)]
pub(crate) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    comment: String,
}

/// `POST /console/approvals/{id}/decision`: answers through the API's
/// handler (membership, separation of duties, quorum, single use, expiry,
/// policy again), then shows the request.
pub(crate) async fn decide(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    let path = "/console/approvals/{id}/decision";
    let f = match form {
        Ok(Form(f)) => f,
        Err(_) => {
            // Without a readable form there is no CSRF token either.
            if let Err(r) = v.check_csrf(&s, "", path).await {
                return r;
            }
            return request_page(
                &s,
                &v,
                &id,
                Some((
                    StatusCode::BAD_REQUEST,
                    "The form could not be read.".into(),
                )),
            )
            .await;
        }
    };
    if let Err(r) = v.check_csrf(&s, &f.csrf, path).await {
        return r;
    }
    let decision = match f.decision.as_str() {
        "approve" => Verdict::Approve,
        "deny" => Verdict::Deny,
        other => {
            return request_page(
                &s,
                &v,
                &id,
                Some((
                    StatusCode::BAD_REQUEST,
                    format!("Unknown answer `{other}`: approve or deny."),
                )),
            )
            .await;
        }
    };
    let comment = Some(f.comment.trim().to_owned()).filter(|c| !c.is_empty());
    if decision == Verdict::Deny && comment.is_none() {
        return request_page(
            &s,
            &v,
            &id,
            Some((
                StatusCode::BAD_REQUEST,
                "Say why you deny: the agent and the audit see it.".into(),
            )),
        )
        .await;
    }
    let body = DecisionBody { decision, comment };
    match crate::approvals::decide(
        State(s.clone()),
        v.principal.clone(),
        Path(id.clone()),
        Ok(Json(body)),
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/console/approvals/{id}")).into_response(),
        Err(e) => request_page(&s, &v, &id, Some((e.status, e.message))).await,
    }
}

/// `GET /console/history`: decided requests, last changed first.
pub(crate) async fn history(
    State(s): State<AppState>,
    v: Viewer,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|q| q.0).unwrap_or_default();
    let page = q.page.unwrap_or(1).max(1);
    let groups = match scope(&s, &v) {
        Ok(g) => g,
        Err(why) => {
            let body = html! { h1 { "History" } p.note { (why) "." } };
            return render(&s, &v, Page::new("History", Section::History, body));
        }
    };
    let state = q.state.clone().filter(|st| !st.is_empty());
    if let Some(st) = &state
        && !["approved", "denied", "expired", "cancelled", "pending"].contains(&st.as_str())
    {
        return layout::error_page(
            &s,
            Some(&v),
            StatusCode::BAD_REQUEST,
            &format!("`state` must be approved, denied, expired, cancelled or pending; got `{st}`"),
        );
    }
    let group = q.group.clone().filter(|g| !g.is_empty());
    let filter = ApprovalFilter {
        state: state.clone(),
        group: group.clone(),
        any_group: groups.clone(),
        limit: PAGE,
        offset: (page - 1) * PAGE,
        order: ApprovalOrder::Recent,
    };
    let (rows, total) = match s.store.approvals(&filter).await {
        Ok(x) => x,
        Err(e) => {
            return layout::unavailable(&s, &v, e);
        }
    };
    let engine = s.engine.current();
    let all_groups: Vec<&String> = engine
        .pack()
        .approver_groups
        .keys()
        .filter(|g| groups.as_ref().is_none_or(|gs| gs.contains(g)))
        .collect();
    let extra = format!(
        "&state={}&group={}",
        state.as_deref().unwrap_or(""),
        group.as_deref().unwrap_or("")
    );
    let body = html! {
        h1 { "Approval history" }
        form.filters method="get" action="/console/history" {
            label for="state" { "State" }
            select #state name="state" {
                option value="" selected[state.is_none()] { "any" }
                @for st in ["approved", "denied", "expired", "cancelled", "pending"] {
                    option value=(st) selected[state.as_deref() == Some(st)] { (st) }
                }
            }
            label for="group" { "Group" }
            select #group name="group" {
                option value="" selected[group.is_none()] { "any" }
                @for g in &all_groups {
                    option value=(g) selected[group.as_deref() == Some(g.as_str())] { (g) }
                }
            }
            button type="submit" { "Filter" }
        }
        div #history data-live {
            p.count { (total) " request(s)." }
            table.list {
                caption.visually-hidden { "Approval requests, last changed first" }
                thead { tr {
                    th scope="col" { "Changed" } th scope="col" { "State" } th scope="col" { "Agent" }
                    th scope="col" { "Tool" } th scope="col" { "Answers" }
                } }
                tbody {
                    @for row in &rows {
                        @let view = ApprovalView::recorded(row);
                        tr {
                            td { (when(&view.updated)) }
                            td { (badge(view.state.as_str())) }
                            td { (view.agent) }
                            td { a href=(format!("/console/approvals/{}", view.approval_id)) { (view.tool) } }
                            td {
                                @for vote in &view.votes {
                                    (vote.approver) " " (match vote.decision { Verdict::Approve => "✓", Verdict::Deny => "✗" }) " "
                                }
                            }
                        }
                    }
                }
            }
            (layout::page_links("/console/history", page, PAGE, total, &extra))
        }
    };
    render(&s, &v, Page::new("History", Section::History, body))
}
