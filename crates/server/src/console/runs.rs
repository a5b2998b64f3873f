//! Runs: the list with filters, and a run's timeline reconstructed from
//! its evidence records.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use warden_store::RunFilter;

use super::layout::{self, Page, Section, badge, json, millis, timeline, when};
use super::session::{Viewer, render};
use crate::AppState;

const PAGE: u32 = 50;

/// Filters of the runs list.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunsQuery {
    workflow: Option<String>,
    agent: Option<String>,
    state: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page: Option<u32>,
}

/// A time filter: RFC 3339 or a date (`2026-12-04`, midnight UTC).
pub(crate) fn time_filter(name: &str, v: Option<&str>) -> Result<Option<i64>, String> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    warden_evidence::micros(v)
        .or_else(|| warden_evidence::micros(&format!("{v}T00:00:00Z")))
        .map(Some)
        .ok_or_else(|| {
            format!("`{name}` must be a date (2026-12-04) or an RFC 3339 time; got `{v}`")
        })
}

fn some(v: Option<String>) -> Option<String> {
    v.map(|x| x.trim().to_owned()).filter(|x| !x.is_empty())
}

/// `GET /console/runs`.
pub(crate) async fn list(
    State(s): State<AppState>,
    v: Viewer,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Response {
    if !Section::Runs.open_to(&v) {
        return layout::forbidden(&s, &v, "every run");
    }
    let q = q.map(|q| q.0).unwrap_or_default();
    let page = q.page.unwrap_or(1).max(1);
    let bad = |m: String| layout::error_page(&s, Some(&v), StatusCode::BAD_REQUEST, &m);
    let since_us = match time_filter("since", q.since.as_deref()) {
        Ok(t) => t,
        Err(m) => return bad(m),
    };
    let until_us = match time_filter("until", q.until.as_deref()) {
        Ok(t) => t,
        Err(m) => return bad(m),
    };
    let state = some(q.state.clone());
    if let Some(st) = &state
        && !["running", "completed", "cancelled", "timed_out"].contains(&st.as_str())
    {
        return bad(format!(
            "`state` must be running, completed, cancelled or timed_out; got `{st}`"
        ));
    }
    let f = RunFilter {
        workflow: some(q.workflow.clone()),
        agent: some(q.agent.clone()),
        state: state.clone(),
        since_us,
        until_us,
        limit: PAGE,
        offset: (page - 1) * PAGE,
    };
    let (runs, total) = match s.store.runs(&f).await {
        Ok(x) => x,
        Err(e) => {
            return layout::unavailable(&s, &v, e);
        }
    };
    let engine = s.engine.current();
    let pack = engine.pack();
    let val = |o: &Option<String>| o.clone().unwrap_or_default();
    let keep = format!(
        "&workflow={}&agent={}&state={}&since={}&until={}",
        val(&f.workflow),
        val(&f.agent),
        val(&state),
        val(&q.since),
        val(&q.until)
    );
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/console/runs" {
            label for="workflow" { "Workflow" }
            select #workflow name="workflow" {
                option value="" { "any" }
                @for w in pack.workflows.keys() { option value=(w) selected[f.workflow.as_deref() == Some(w.as_str())] { (w) } }
            }
            label for="agent" { "Agent" }
            select #agent name="agent" {
                option value="" { "any" }
                @for a in pack.agents.keys() { option value=(a) selected[f.agent.as_deref() == Some(a.as_str())] { (a) } }
            }
            label for="state" { "State" }
            select #state name="state" {
                option value="" { "any" }
                @for st in ["running", "completed", "cancelled", "timed_out"] { option value=(st) selected[state.as_deref() == Some(st)] { (st) } }
            }
            label for="since" { "Since" }
            input #since name="since" placeholder="2026-12-04" value=(val(&q.since));
            label for="until" { "Until" }
            input #until name="until" placeholder="2026-12-05" value=(val(&q.until));
            button type="submit" { "Filter" }
        }
        div #runs data-live {
            p.count { (total) " run(s)." }
            table.list {
                caption.visually-hidden { "Runs, newest first" }
                thead { tr {
                    th scope="col" { "Run" } th scope="col" { "Workflow" } th scope="col" { "Agent" }
                    th scope="col" { "State" } th scope="col" { "Started" } th scope="col" { "Duration" }
                } }
                tbody {
                    @for r in &runs {
                        tr {
                            td { a href=(format!("/console/runs/{}", r.id)) { code { (r.id) } } }
                            td { (r.workflow) }
                            td { (r.agent) }
                            td { (badge(r.state.as_str())) }
                            td { (when(&warden_evidence::time_from_micros(r.created_us))) }
                            td { (millis(r.updated_us - r.created_us)) }
                        }
                    }
                }
            }
            (layout::page_links("/console/runs", page, PAGE, total, &keep))
        }
    };
    render(&s, &v, Page::new("Runs", Section::Runs, body))
}

/// `GET /console/runs/{id}`: the run and its timeline.
pub(crate) async fn show(State(s): State<AppState>, v: Viewer, Path(id): Path<String>) -> Response {
    if !Section::Runs.open_to(&v) {
        return layout::forbidden(&s, &v, "runs");
    }
    let run = match s.runtime.run(&id, None).await {
        Ok(r) => r,
        Err(warden_runtime::RuntimeError::UnknownRun(_)) => {
            return layout::error_page(
                &s,
                Some(&v),
                StatusCode::NOT_FOUND,
                &format!("No run `{id}`."),
            );
        }
        Err(e) => {
            return layout::error_page(
                &s,
                Some(&v),
                StatusCode::SERVICE_UNAVAILABLE,
                &e.to_string(),
            );
        }
    };
    let records: Vec<_> = s
        .store
        .run_records(&id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.record)
        .collect();
    let body = html! {
        p.back { a href="/console/runs" { "← Runs" } }
        h1 { "Run " code { (run.run_id) } }
        div #run-state data-live {
            dl.facts {
                dt { "Workflow" } dd { (run.workflow) }
                dt { "Agent" } dd { (run.agent) }
                dt { "State" } dd { (badge(run.state.as_str())) }
                dt { "Started" } dd { (when(&run.created)) }
                dt { "Last change" } dd { (when(&run.updated)) }
                dt { "Steps done" } dd { @if run.done_steps.is_empty() { "none" } @else { (run.done_steps.join(" → ")) } }
                @if !run.next_steps.is_empty() { dt { "May run next" } dd { (run.next_steps.join(", ")) } }
                @if let Some(t) = &run.trigger { dt { "Trigger" } dd { (json(&serde_json::to_value(t).unwrap_or_default())) } }
            }
            h2 { "Actions" }
            table.list {
                thead { tr { th scope="col" { "Action" } th scope="col" { "Tool" } th scope="col" { "Status" } th scope="col" { "Code" } } }
                tbody {
                    @for a in &run.actions {
                        tr {
                            td { code { (a.action_id) } }
                            td { (a.tool) }
                            td { (badge(a.status.as_str())) }
                            td { (a.code.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        h2 { "Timeline (from evidence)" }
        div #timeline data-live { (timeline(&records)) }
    };
    render(&s, &v, Page::new(format!("Run {id}"), Section::Runs, body))
}
