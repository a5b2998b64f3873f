//! The oversight API: incidents (`GET /v1/incidents`, `GET
//! /v1/incidents/{id}`, `POST /v1/incidents/{id}/ack|resolve`), the
//! operational views (`GET /v1/views/runs|approvals|hotspots`), agent
//! quarantine and tool circuits. People only; changing controls needs the
//! operator role, answering an incident its owner, team, on-call person or
//! an operator.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_model::Role;
use warden_oversight::{ApprovalsView, HotspotsView, IncidentView, OversightError, RunsView};
use warden_store::IncidentFilter;

use crate::AppState;
use crate::actions::body_error;
use crate::auth::{Kind, Principal};
use crate::error::ApiError;
use crate::routes::{client_refusal, refuse};

async fn people_only(s: &AppState, p: &Principal, path: &str) -> Result<(), ApiError> {
    if p.kind == Kind::Agent {
        let e = ApiError::forbidden("incidents and views are for people");
        return Err(refuse(s, p, path, e).await);
    }
    Ok(())
}

pub(crate) async fn operators_only(
    s: &AppState,
    p: &Principal,
    path: &str,
) -> Result<(), ApiError> {
    match p.require(&[Role::Operator]) {
        Ok(()) => Ok(()),
        Err(e) => Err(refuse(s, p, path, e).await),
    }
}

/// Whether `p` owns the system `tool` acts on.
fn owns_system_of(s: &AppState, p: &Principal, tool: &str) -> bool {
    let engine = s.engine.current();
    let pack = engine.pack();
    let Some(owner) = pack
        .tools
        .get(tool)
        .and_then(|t| pack.systems.get(&t.system))
        .map(|sys| sys.owner.as_str())
    else {
        return false;
    };
    p.kind == Kind::Person
        && (owner == p.id
            || pack.people.get(&p.id).and_then(|x| x.team.as_deref()) == Some(owner)
            || pack.teams.get(owner).and_then(|t| t.owner.as_deref()) == Some(p.id.as_str()))
}

async fn refusal(s: &AppState, p: &Principal, path: &str, e: OversightError) -> ApiError {
    let err = ApiError::from(e);
    if err.status.is_server_error() {
        err
    } else if err.status == axum::http::StatusCode::FORBIDDEN {
        refuse(s, p, path, err).await
    } else {
        client_refusal(s, p, path, err).await
    }
}

fn duration_param(name: &str, v: Option<&str>, default: Duration) -> Result<Duration, ApiError> {
    match v {
        None => Ok(default),
        Some(t) => humantime::parse_duration(t)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("`{name}` must be a positive duration such as `15m`; got `{t}`"),
                )
            }),
    }
}

/// Query of `GET /v1/incidents`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    /// `open`, `acknowledged`, `resolved`, `active` (open or acknowledged);
    /// all when absent.
    pub state: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Incidents, newest first.
#[utoipa::path(
    get, path = "/v1/incidents", tag = "oversight",
    params(IncidentParams),
    responses((status = 200, body = [IncidentView]), (status = 400, description = "invalid_query"), (status = 403, description = "forbidden: agents")),
    security(("bearer" = []))
)]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<IncidentParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    const PATH: &str = "/v1/incidents";
    people_only(&s, &p, PATH).await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` must be 1 to 1000; got {limit}"),
        ));
    }
    let f = IncidentFilter {
        state: q.state,
        limit,
    };
    match s.oversight.incidents(&f).await {
        Ok(v) => Ok(Json(json!({ "incidents": v }))),
        Err(e) => Err(refusal(&s, &p, PATH, e).await),
    }
}

/// One incident with its notifications and their delivery.
#[utoipa::path(
    get, path = "/v1/incidents/{id}", tag = "oversight",
    params(("id" = String, Path, description = "incident id")),
    responses((status = 200, body = IncidentView), (status = 404, description = "unknown_incident")),
    security(("bearer" = []))
)]
pub async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    const PATH: &str = "/v1/incidents/{id}";
    people_only(&s, &p, PATH).await?;
    match s.oversight.incident(&id).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refusal(&s, &p, PATH, e).await),
    }
}

/// Body of `POST /v1/incidents/{id}/ack|resolve` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// A note kept in evidence.
    pub note: Option<String>,
}

fn optional<T: Default>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match body {
        Ok(Json(b)) => Ok(b),
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        Err(e) => Err(body_error(e)),
    }
}

async fn answer(
    s: AppState,
    p: Principal,
    id: String,
    body: Result<Json<AnswerBody>, JsonRejection>,
    resolve: bool,
) -> Result<Json<IncidentView>, ApiError> {
    let path = if resolve {
        "/v1/incidents/{id}/resolve"
    } else {
        "/v1/incidents/{id}/ack"
    };
    people_only(&s, &p, path).await?;
    let b = match optional(body) {
        Ok(b) => b,
        Err(e) => return Err(client_refusal(&s, &p, path, e).await),
    };
    let r = if resolve {
        s.oversight.resolve(&id, &p.id, b.note).await
    } else {
        s.oversight.acknowledge(&id, &p.id, b.note).await
    };
    match r {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refusal(&s, &p, path, e).await),
    }
}

/// Acknowledge an open incident: escalation stops.
#[utoipa::path(
    post, path = "/v1/incidents/{id}/ack", tag = "oversight",
    params(("id" = String, Path, description = "incident id")),
    request_body(content = AnswerBody, description = "optional"),
    responses((status = 200, body = IncidentView), (status = 403, description = "forbidden"), (status = 404, description = "unknown_incident"), (status = 409, description = "invalid_transition")),
    security(("bearer" = []))
)]
pub async fn ack(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<AnswerBody>, JsonRejection>,
) -> Result<Json<IncidentView>, ApiError> {
    answer(s, p, id, body, false).await
}

/// Resolve an open or acknowledged incident.
#[utoipa::path(
    post, path = "/v1/incidents/{id}/resolve", tag = "oversight",
    params(("id" = String, Path, description = "incident id")),
    request_body(content = AnswerBody, description = "optional"),
    responses((status = 200, body = IncidentView), (status = 403, description = "forbidden"), (status = 404, description = "unknown_incident"), (status = 409, description = "invalid_transition")),
    security(("bearer" = []))
)]
pub async fn resolve(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<AnswerBody>, JsonRejection>,
) -> Result<Json<IncidentView>, ApiError> {
    answer(s, p, id, body, true).await
}

/// Record the post-incident review of a resolved incident: what happened,
/// and the pack version with the fix (`pack_change`) or why no change was
/// needed (`no_change`).
#[utoipa::path(
    post, path = "/v1/incidents/{id}/review", tag = "oversight",
    params(("id" = String, Path, description = "incident id")),
    request_body = warden_oversight::Review,
    responses((status = 200, body = IncidentView), (status = 400, description = "invalid_json, invalid_body"), (status = 403, description = "forbidden"), (status = 404, description = "unknown_incident"), (status = 409, description = "invalid_transition: not resolved yet")),
    security(("bearer" = []))
)]
pub async fn review(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<warden_oversight::Review>, JsonRejection>,
) -> Result<Json<IncidentView>, ApiError> {
    const PATH: &str = "/v1/incidents/{id}/review";
    people_only(&s, &p, PATH).await?;
    let b = match body {
        Ok(Json(b)) => b,
        Err(e) => return Err(client_refusal(&s, &p, PATH, body_error(e)).await),
    };
    match s.oversight.review(&id, &p.id, b).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refusal(&s, &p, PATH, e).await),
    }
}

/// Query of `GET /v1/views/runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsParams {
    /// A running run is stuck after this long without progress (default `15m`).
    pub idle: Option<String>,
}

/// Runs by state, stuck runs, paused and quarantined agents, open circuits.
#[utoipa::path(
    get, path = "/v1/views/runs", tag = "oversight", params(RunsParams),
    responses((status = 200, body = RunsView), (status = 400, description = "invalid_query")),
    security(("bearer" = []))
)]
pub async fn runs_view(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<RunsParams>, QueryRejection>,
) -> Result<Json<RunsView>, ApiError> {
    const PATH: &str = "/v1/views/runs";
    people_only(&s, &p, PATH).await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let idle = duration_param("idle", q.idle.as_deref(), Duration::from_secs(900))?;
    match s.oversight.runs_view(idle).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refusal(&s, &p, PATH, e).await),
    }
}

/// Pending approvals per group: count, age p50/p95, the oldest.
#[utoipa::path(
    get, path = "/v1/views/approvals", tag = "oversight",
    responses((status = 200, body = ApprovalsView)),
    security(("bearer" = []))
)]
pub async fn approvals_view(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<ApprovalsView>, ApiError> {
    const PATH: &str = "/v1/views/approvals";
    people_only(&s, &p, PATH).await?;
    match s.oversight.approvals_view().await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refusal(&s, &p, PATH, e).await),
    }
}

/// Query of `GET /v1/views/hotspots`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HotspotParams {
    /// Actions proposed within this window count (default `1h`).
    pub window: Option<String>,
    /// At most this many tools (default 20, at most 1000).
    pub limit: Option<u32>,
}

/// Tools by failures and retries.
#[utoipa::path(
    get, path = "/v1/views/hotspots", tag = "oversight", params(HotspotParams),
    responses((status = 200, body = HotspotsView), (status = 400, description = "invalid_query")),
    security(("bearer" = []))
)]
pub async fn hotspots_view(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<HotspotParams>, QueryRejection>,
) -> Result<Json<HotspotsView>, ApiError> {
    const PATH: &str = "/v1/views/hotspots";
    people_only(&s, &p, PATH).await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let window = duration_param("window", q.window.as_deref(), Duration::from_secs(3600))?;
    let limit = q.limit.unwrap_or(20);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` must be 1 to 1000; got {limit}"),
        ));
    }
    match s.oversight.hotspots_view(window, limit).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(refusal(&s, &p, PATH, e).await),
    }
}

/// Body of `POST /v1/agents/{id}/quarantine`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineBody {
    /// The approver group whose approval the agent's writes need.
    pub group: Option<String>,
    /// Why (kept in evidence).
    pub reason: Option<String>,
}

/// Quarantine an agent: every write action it proposes needs `group`'s
/// approval, besides what policy asks.
#[utoipa::path(
    post, path = "/v1/agents/{id}/quarantine", tag = "agents",
    params(("id" = String, Path, description = "agent id")),
    request_body = QuarantineBody,
    responses((status = 200), (status = 400, description = "invalid_body"), (status = 403, description = "forbidden: operators only"), (status = 404, description = "unknown_agent, unknown_group")),
    security(("bearer" = []))
)]
pub async fn quarantine(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<QuarantineBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    set_quarantine(s, p, id, body, true).await
}

/// Release a quarantined agent.
#[utoipa::path(
    post, path = "/v1/agents/{id}/release", tag = "agents",
    params(("id" = String, Path, description = "agent id")),
    request_body(content = QuarantineBody, description = "optional: `reason`"),
    responses((status = 200), (status = 403, description = "forbidden: operators only"), (status = 404, description = "unknown_agent")),
    security(("bearer" = []))
)]
pub async fn release(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<QuarantineBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    set_quarantine(s, p, id, body, false).await
}

async fn set_quarantine(
    s: AppState,
    p: Principal,
    id: String,
    body: Result<Json<QuarantineBody>, JsonRejection>,
    on: bool,
) -> Result<Json<Value>, ApiError> {
    let path = if on {
        "/v1/agents/{id}/quarantine"
    } else {
        "/v1/agents/{id}/release"
    };
    operators_only(&s, &p, path).await?;
    let b = match optional(body) {
        Ok(b) => b,
        Err(e) => return Err(client_refusal(&s, &p, path, e).await),
    };
    let group = match (on, b.group) {
        (true, None) => {
            let e = ApiError::bad_request(
                "invalid_body",
                "give `group`: the approver group whose approval the agent's writes will need",
            );
            return Err(client_refusal(&s, &p, path, e).await);
        }
        (true, g) => g,
        (false, _) => None,
    };
    match s
        .runtime
        .controls()
        .set_quarantine(&id, group, &p.id, b.reason)
        .await
    {
        Ok(row) => Ok(Json(json!({
            "agent": row.agent,
            "quarantine": row.quarantine,
            "paused": row.paused,
            "changed_by": row.changed_by,
        }))),
        Err(e) => Err(client_refusal(&s, &p, path, e).await),
    }
}

/// Body of `POST /v1/tools/{id}/circuit`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CircuitBody {
    /// How long it stays open, e.g. `10m` (default `10m`); `0s` closes it.
    pub open_for: Option<String>,
    /// Why (kept in evidence).
    pub reason: Option<String>,
}

/// Open (or, with `open_for = "0s"`, close) a tool's circuit: its
/// proposals are denied `tool_circuit_open` meanwhile.
#[utoipa::path(
    post, path = "/v1/tools/{id}/circuit", tag = "agents",
    params(("id" = String, Path, description = "tool id")),
    request_body(content = CircuitBody, description = "optional"),
    responses((status = 200), (status = 400, description = "invalid_body"), (status = 403, description = "forbidden: operators and the owner of the tool's system only"), (status = 404, description = "unknown_tool")),
    security(("bearer" = []))
)]
pub async fn circuit(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<CircuitBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    const PATH: &str = "/v1/tools/{id}/circuit";
    // Operators, and the owner of the tool's system (a person, or the
    // members and owner of the owning team).
    if !owns_system_of(&s, &p, &id) {
        operators_only(&s, &p, PATH).await?;
    }
    let b = match optional(body) {
        Ok(b) => b,
        Err(e) => return Err(client_refusal(&s, &p, PATH, e).await),
    };
    let open_for = match b.open_for.as_deref() {
        None => Some(Duration::from_secs(600)),
        Some(t) => match humantime::parse_duration(t) {
            Ok(d) if d.is_zero() => None,
            Ok(d) => Some(d),
            Err(_) => {
                let e = ApiError::bad_request(
                    "invalid_body",
                    format!("`open_for` must be a duration such as `10m`; got `{t}`"),
                );
                return Err(client_refusal(&s, &p, PATH, e).await);
            }
        },
    };
    match s
        .runtime
        .controls()
        .set_circuit(&id, open_for, &p.id, b.reason)
        .await
    {
        Ok(row) => Ok(Json(json!({
            "tool": row.tool,
            "open": open_for.is_some(),
            "open_until": open_for.map(|_| warden_evidence::time_from_micros(row.open_until_us)),
            "changed_by": row.opened_by,
        }))),
        Err(e) => Err(client_refusal(&s, &p, PATH, e).await),
    }
}
