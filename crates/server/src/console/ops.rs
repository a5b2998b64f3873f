//! Incidents (acknowledge, resolve) and controls (pause, resume,
//! quarantine, release agents; open and close tool circuits). Each change
//! asks for confirmation, then goes through the API's own handler, which
//! checks the role and records it as evidence.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::html;
use serde::Deserialize;
use warden_model::{DeliveryState, IncidentState, Role};
use warden_store::IncidentFilter;

use super::layout::{self, Page, Section, badge, millis, when};
use super::session::{Viewer, render};
use crate::AppState;
use crate::error::ApiError;

/// Filter of the incidents page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct IncidentsQuery {
    state: Option<String>,
    error: Option<String>,
}

/// `GET /console/incidents`.
pub(crate) async fn incidents(
    State(s): State<AppState>,
    v: Viewer,
    q: Result<Query<IncidentsQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|q| q.0).unwrap_or_default();
    let state = q.state.clone().filter(|x| !x.is_empty());
    let list = s
        .oversight
        .incidents(&IncidentFilter {
            state: state.clone(),
            limit: 200,
        })
        .await;
    let list = match list {
        Ok(l) => l,
        Err(e) => {
            let e = ApiError::from(e);
            return layout::error_page(&s, Some(&v), e.status, &e.message);
        }
    };
    let body = html! {
        h1 { "Incidents" }
        form.filters method="get" action="/console/incidents" {
            label for="state" { "State" }
            select #state name="state" {
                option value="" { "any" }
                @for st in ["active", "open", "acknowledged", "resolved"] {
                    option value=(st) selected[state.as_deref() == Some(st)] { (st) }
                }
            }
            button type="submit" { "Filter" }
        }
        div #incidents data-live {
            @if list.is_empty() { p.empty { "No incidents." } }
            @for i in &list {
                @let delivered = i.notifications.iter().filter(|n| n.state == DeliveryState::Delivered).count();
                article.incident id=(format!("incident-{}", i.id)) aria-labelledby=(format!("t-{}", i.id)) {
                    h2 id=(format!("t-{}", i.id)) {
                        (badge(i.state.as_str())) " " span class=(format!("badge sev-{}", i.severity)) { (i.severity) } " "
                        @if i.drill.is_some() { span.badge.drill { "drill" } " " }
                        (i.summary)
                    }
                    dl.facts {
                        dt { "Playbook" } dd { (i.playbook) " (" (i.detector) ")" }
                        dt { "Owner" } dd { (i.owner) @if let Some(o) = &i.on_call { " — on call " (o) } }
                        dt { "Detected" } dd { (when(&i.detected)) " — " (millis(i.ttd_ms * 1000)) " after the first event" }
                        dt { "Acknowledged" } dd {
                            @if let Some(a) = &i.acknowledged { (when(a)) " by " (i.acknowledged_by.as_deref().unwrap_or("?")) @if let Some(t) = i.tta_ms { " (" (millis(t * 1000)) " to acknowledge)" } }
                            @else if let Some(by) = &i.acknowledge_by { "due " (when(by)) }
                            @else { "—" }
                        }
                        @if let Some(r) = &i.resolved { dt { "Resolved" } dd { (when(r)) " by " (i.resolved_by.as_deref().unwrap_or("?")) } }
                        dt { "Pages" } dd { (delivered) " of " (i.notifications.len()) " delivered"
                            @for n in &i.notifications { " · " (n.route) " " (n.state.as_str()) } }
                    }
                    @if i.state != IncidentState::Resolved {
                        form.inline method="post" action=(format!("/console/incidents/{}", i.id)) {
                            input type="hidden" name="csrf" value=(v.csrf);
                            label for=(format!("note-{}", i.id)) { "Note" }
                            input id=(format!("note-{}", i.id)) name="note";
                            @if i.state == IncidentState::Open {
                                button type="submit" name="op" value="ack" { "Acknowledge" }
                            }
                            button type="submit" name="op" value="resolve" { "Resolve" }
                        }
                    }
                }
            }
        }
    };
    let mut page = Page::new("Incidents", Section::Incidents, body);
    if let Some(e) = q.error {
        page.body = html! { p.error role="alert" { (e) } (page.body) };
    }
    render(&s, &v, page)
}

/// The acknowledge / resolve form.
#[derive(Debug, Deserialize)]
pub(crate) struct IncidentForm {
    #[serde(default)]
    csrf: String,
    op: String,
    #[serde(default)]
    note: String,
}

/// `POST /console/incidents/{id}`.
pub(crate) async fn incident_answer(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    form: Result<Form<IncidentForm>, FormRejection>,
) -> Response {
    let f = form.map(|f| f.0).ok();
    let csrf = f.as_ref().map(|f| f.csrf.as_str()).unwrap_or_default();
    if let Err(r) = v.check_csrf(&s, csrf, "/console/incidents/{id}").await {
        return r;
    }
    let Some(f) = f else {
        return layout::error_page(
            &s,
            Some(&v),
            StatusCode::BAD_REQUEST,
            "The form could not be read.",
        );
    };
    let note = Some(f.note.trim().to_owned()).filter(|n| !n.is_empty());
    let body = Ok(Json(crate::oversight::AnswerBody { note }));
    let p = v.principal.clone();
    let r = match f.op.as_str() {
        "ack" => crate::oversight::ack(State(s.clone()), p, Path(id), body).await,
        "resolve" => crate::oversight::resolve(State(s.clone()), p, Path(id), body).await,
        other => {
            return layout::error_page(
                &s,
                Some(&v),
                StatusCode::BAD_REQUEST,
                &format!("Unknown operation `{other}`: ack or resolve."),
            );
        }
    };
    match r {
        Ok(_) => Redirect::to("/console/incidents").into_response(),
        Err(e) => layout::error_page(&s, Some(&v), e.status, &e.message),
    }
}

/// `GET /console/controls`: every agent and tool with its switches.
pub(crate) async fn controls(State(s): State<AppState>, v: Viewer) -> Response {
    if !Section::Controls.open_to(&v) {
        return layout::forbidden(&s, &v, "the controls");
    }
    let engine = s.engine.current();
    let pack = engine.pack();
    let c = s.runtime.controls();
    let operator = v.has(&[Role::Operator]);
    let body = html! {
        h1 { "Controls" }
        @if !operator { p.note { "You can see the switches; changing them needs the operator role." } }
        h2 { "Agents" }
        div #agents data-live {
            table.list {
                caption.visually-hidden { "Agents and their switches" }
                thead { tr { th scope="col" { "Agent" } th scope="col" { "Owner" } th scope="col" { "State" } th scope="col" { "Change" } } }
                tbody {
                    @for a in pack.agents.values() {
                        @let paused = c.paused(&a.id);
                        @let quarantine = c.quarantine_of(&a.id);
                        tr id=(format!("agent-{}", a.id)) {
                            td { (a.id) }
                            td { (a.owner) }
                            td {
                                @if let Some(p) = &paused {
                                    (badge("paused")) @if let Some(r) = &p.reason { " " span.agent-text { (r) } }
                                } @else { (badge("active")) }
                                @if let Some(g) = &quarantine { " " (badge("quarantined")) " writes need " (g) }
                            }
                            td {
                                @if operator {
                                    @if paused.is_some() {
                                        a.button href=(format!("/console/controls/agents/{}/resume", a.id)) { "Resume" }
                                    } @else {
                                        a.button.danger href=(format!("/console/controls/agents/{}/pause", a.id)) { "Pause" }
                                    }
                                    " "
                                    @if quarantine.is_some() {
                                        a.button href=(format!("/console/controls/agents/{}/release", a.id)) { "Release" }
                                    } @else {
                                        a.button href=(format!("/console/controls/agents/{}/quarantine", a.id)) { "Quarantine" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Tools" }
        div #tools data-live {
            table.list {
                caption.visually-hidden { "Tools and their circuits" }
                thead { tr { th scope="col" { "Tool" } th scope="col" { "System" } th scope="col" { "Risk" } th scope="col" { "Circuit" } th scope="col" { "Change" } } }
                tbody {
                    @for t in pack.tools.values() {
                        @let open = c.open_circuit(&t.id);
                        tr id=(format!("tool-{}", t.id)) {
                            td { code { (t.id) } }
                            td { (t.system) }
                            td { (layout::risk(Some(t.risk.as_str()))) }
                            td { @if let Some(o) = &open { (badge("open")) " until " (when(&warden_evidence::time_from_micros(o.open_until_us))) } @else { (badge("closed")) } }
                            td {
                                @if operator {
                                    @if open.is_some() {
                                        a.button href=(format!("/console/controls/tools/{}/close", t.id)) { "Close circuit" }
                                    } @else {
                                        a.button.danger href=(format!("/console/controls/tools/{}/open", t.id)) { "Open circuit" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    render(&s, &v, Page::new("Controls", Section::Controls, body))
}

/// What a control change does, for its confirmation page.
fn describe(target: &str, op: &str) -> Option<&'static str> {
    Some(match (target, op) {
        ("agents", "pause") => {
            "Every proposal of this agent will be denied `agent_paused` until it is resumed."
        }
        ("agents", "resume") => "The agent's proposals will be decided by policy again.",
        ("agents", "quarantine") => {
            "Every write this agent proposes will need the chosen group's approval, besides what policy asks."
        }
        ("agents", "release") => "The agent's writes will need only what policy asks.",
        ("tools", "open") => {
            "Proposals of this tool will be denied `tool_circuit_open` for the time you choose."
        }
        ("tools", "close") => "Proposals of this tool will be decided by policy again.",
        _ => return None,
    })
}

/// `GET /console/controls/{target}/{id}/{op}`: the confirmation.
pub(crate) async fn confirm(
    State(s): State<AppState>,
    v: Viewer,
    Path((target, id, op)): Path<(String, String, String)>,
) -> Response {
    let Some(what) = describe(&target, &op) else {
        return layout::error_page(&s, Some(&v), StatusCode::NOT_FOUND, "No such control.");
    };
    let engine = s.engine.current();
    let pack = engine.pack();
    let known = if target == "agents" {
        pack.agents.contains_key(&id)
    } else {
        pack.tools.contains_key(&id)
    };
    if !known {
        return layout::error_page(
            &s,
            Some(&v),
            StatusCode::NOT_FOUND,
            &format!("No {} `{id}` in the pack.", &target[..target.len() - 1]),
        );
    }
    let action = format!("/console/controls/{target}/{id}/{op}");
    let body = html! {
        p.back { a href="/console/controls" { "← Controls" } }
        h1 { "Confirm: " (op) " " code { (id) } }
        p { (what) }
        p { "The change is recorded as evidence with your name and reason." }
        form.confirm method="post" action=(action) {
            input type="hidden" name="csrf" value=(v.csrf);
            @if op == "quarantine" {
                label for="group" { "Approver group whose approval its writes need" }
                select #group name="group" required {
                    @for g in pack.approver_groups.keys() { option value=(g) { (g) } }
                }
            }
            @if op == "open" {
                label for="open_for" { "Open for" }
                input #open_for name="open_for" value="10m" required;
            }
            label for="reason" { "Reason" }
            input #reason name="reason" required;
            div.buttons {
                button.danger type="submit" #confirm { "Confirm " (op) }
                a.button href="/console/controls" { "Cancel" }
            }
        }
    };
    render(
        &s,
        &v,
        Page::new(format!("Confirm {op}"), Section::Controls, body),
    )
}

/// The confirmation form.
#[derive(Debug, Deserialize)]
pub(crate) struct ControlForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    group: Option<String>,
    open_for: Option<String>,
}

/// `POST /console/controls/{target}/{id}/{op}`: the change, through the
/// API's handler.
pub(crate) async fn change(
    State(s): State<AppState>,
    v: Viewer,
    Path((target, id, op)): Path<(String, String, String)>,
    form: Result<Form<ControlForm>, FormRejection>,
) -> Response {
    let f = form.map(|f| f.0).ok();
    let csrf = f.as_ref().map(|f| f.csrf.as_str()).unwrap_or_default();
    if let Err(r) = v.check_csrf(&s, csrf, "/console/controls").await {
        return r;
    }
    let Some(f) = f else {
        return layout::error_page(
            &s,
            Some(&v),
            StatusCode::BAD_REQUEST,
            "The form could not be read.",
        );
    };
    let reason = Some(f.reason.trim().to_owned()).filter(|r| !r.is_empty());
    let p = v.principal.clone();
    let st = State(s.clone());
    let path = Path(id.clone());
    let done: Result<(), ApiError> = match (target.as_str(), op.as_str()) {
        ("agents", "pause" | "resume") => {
            let body = Ok(Json(crate::runs::PauseBody { reason }));
            let r = if op == "pause" {
                crate::runs::pause(st, p, path, body).await
            } else {
                crate::runs::resume(st, p, path, body).await
            };
            r.map(|_| ())
        }
        ("agents", "quarantine" | "release") => {
            let body = Ok(Json(crate::oversight::QuarantineBody {
                group: f.group.filter(|g| !g.is_empty()),
                reason,
            }));
            let r = if op == "quarantine" {
                crate::oversight::quarantine(st, p, path, body).await
            } else {
                crate::oversight::release(st, p, path, body).await
            };
            r.map(|_| ())
        }
        ("tools", "open" | "close") => {
            let open_for = if op == "open" {
                f.open_for
                    .filter(|o| !o.trim().is_empty())
                    .or(Some("10m".into()))
            } else {
                Some("0s".into())
            };
            let body = Ok(Json(crate::oversight::CircuitBody { open_for, reason }));
            crate::oversight::circuit(st, p, path, body)
                .await
                .map(|_| ())
        }
        _ => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: "No such control.".into(),
        }),
    };
    match done {
        Ok(()) => Redirect::to("/console/controls").into_response(),
        Err(e) => layout::error_page(&s, Some(&v), e.status, &e.message),
    }
}
