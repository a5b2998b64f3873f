//! Workflow runs (`POST /v1/runs`, `GET /v1/runs/{id}`) and the kill switch
//! (`POST /v1/agents/{id}/pause|resume`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use warden_model::{Role, Trigger};
use warden_runtime::RunView;

use crate::AppState;
use crate::actions::{body_error, viewer};
use crate::auth::{Kind, Principal};
use crate::error::ApiError;
use crate::routes::{client_refusal, refuse, runtime_refusal};

/// The body of `POST /v1/runs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// The workflow id, e.g. `refund-request`.
    pub workflow: String,
    /// What started the run: `{source, reference?, requester?}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub trigger: Option<Trigger>,
}

/// Start a workflow run.
#[utoipa::path(
    post, path = "/v1/runs", tag = "runs",
    request_body = RunBody,
    responses(
        (status = 201, body = RunView),
        (status = 400, description = "invalid_json, invalid_body"),
        (status = 403, description = "forbidden: only agents start runs"),
        (status = 404, description = "unknown_workflow"),
    ),
    security(("bearer" = []))
)]
pub async fn start_run(
    State(s): State<AppState>,
    p: Principal,
    body: Result<Json<RunBody>, JsonRejection>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    const PATH: &str = "/v1/runs";
    if p.kind != Kind::Agent {
        let e = ApiError::forbidden("only agents start runs");
        return Err(refuse(&s, &p, PATH, e).await);
    }
    s.rate_limit(&p)?;
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            let err = body_error(e);
            return Err(client_refusal(&s, &p, PATH, err).await);
        }
    };
    // Drill traffic is left out of statistics and replay: only Warden's
    // drill runner may mark it, never a caller.
    if body
        .trigger
        .as_ref()
        .is_some_and(|t| t.source == warden_model::DRILL_SOURCE)
    {
        let err = ApiError::bad_request(
            "invalid_body",
            "trigger source `drill` is reserved for Warden's drills (`warden drill run`)",
        );
        return Err(client_refusal(&s, &p, PATH, err).await);
    }
    match s
        .runtime
        .start_run(&p.id, &body.workflow, body.trigger)
        .await
    {
        Ok(v) => Ok((StatusCode::CREATED, Json(v))),
        Err(e) => Err(runtime_refusal(&s, &p, PATH, e).await),
    }
}

/// A run's state, steps and actions.
#[utoipa::path(
    get, path = "/v1/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunView), (status = 404, description = "unknown_run")),
    security(("bearer" = []))
)]
pub async fn get_run(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let who = viewer(&s, &p, "/v1/runs/{id}").await?;
    Ok(Json(s.runtime.run(&id, who).await?))
}

/// The body of `POST /v1/agents/{id}/pause|resume`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    /// Why (recorded).
    #[serde(default)]
    pub reason: Option<String>,
}

async fn set_paused(
    s: &AppState,
    p: &Principal,
    agent: &str,
    paused: bool,
    body: Result<Json<PauseBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let path = if paused {
        "/v1/agents/{id}/pause"
    } else {
        "/v1/agents/{id}/resume"
    };
    if let Err(e) = p.require(&[Role::Operator]) {
        return Err(refuse(s, p, path, e).await);
    }
    let reason = match body {
        Ok(Json(b)) => b.reason,
        Err(JsonRejection::MissingJsonContentType(_)) => None,
        Err(e) => {
            let err = body_error(e);
            return Err(client_refusal(s, p, path, err).await);
        }
    };
    let row = s
        .runtime
        .controls()
        .set_paused(agent, paused, &p.id, reason)
        .await?;
    Ok(Json(json!({
        "agent": row.agent,
        "paused": row.paused,
        "quarantine": row.quarantine,
        "reason": row.reason,
        "changed_by": row.changed_by,
    })))
}

/// Pause an agent (kill switch): every proposal is denied `agent_paused`.
#[utoipa::path(
    post, path = "/v1/agents/{id}/pause", tag = "agents",
    params(("id" = String, Path, description = "agent id")),
    request_body(content = PauseBody, description = "optional"),
    responses((status = 200), (status = 403, description = "forbidden: operators only"), (status = 404, description = "unknown_agent")),
    security(("bearer" = []))
)]
pub async fn pause(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<PauseBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&s, &p, &id, true, body).await
}

/// Resume a paused agent.
#[utoipa::path(
    post, path = "/v1/agents/{id}/resume", tag = "agents",
    params(("id" = String, Path, description = "agent id")),
    request_body(content = PauseBody, description = "optional"),
    responses((status = 200), (status = 403, description = "forbidden: operators only"), (status = 404, description = "unknown_agent")),
    security(("bearer" = []))
)]
pub async fn resume(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<PauseBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&s, &p, &id, false, body).await
}

/// Body of the cancel endpoints.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Why (recorded).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Who may cancel: the agent itself (its own runs and requests), or an
/// operator; anyone else is refused (and recorded).
pub(crate) async fn canceller<'a>(
    s: &AppState,
    p: &'a Principal,
    path: &str,
) -> Result<warden_runtime::Canceller<'a>, ApiError> {
    match p.kind {
        Kind::Agent => Ok(warden_runtime::Canceller::Agent(&p.id)),
        Kind::Person => match p.require(&[Role::Operator]) {
            Ok(()) => Ok(warden_runtime::Canceller::Operator(&p.id)),
            Err(e) => Err(refuse(s, p, path, e).await),
        },
    }
}

/// The reason of an optional cancel body.
pub(crate) async fn cancel_reason(
    s: &AppState,
    p: &Principal,
    path: &str,
    body: Result<Json<CancelBody>, JsonRejection>,
) -> Result<Option<String>, ApiError> {
    match body {
        Ok(Json(b)) => Ok(b.reason),
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(None),
        Err(e) => Err(client_refusal(s, p, path, body_error(e)).await),
    }
}

/// Cancel a running run: it accepts no more actions, and its pending
/// approval requests are cancelled with it (their actions end `cancelled`).
#[utoipa::path(
    post, path = "/v1/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "run id")),
    request_body(content = CancelBody, description = "optional"),
    responses((status = 200, body = RunView), (status = 400, description = "invalid_json, invalid_body"), (status = 403, description = "forbidden: the run's agent or an operator"), (status = 404, description = "unknown_run"), (status = 409, description = "run_closed")),
    security(("bearer" = []))
)]
pub async fn cancel_run(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<CancelBody>, JsonRejection>,
) -> Result<Json<RunView>, ApiError> {
    const PATH: &str = "/v1/runs/{id}/cancel";
    let by = canceller(&s, &p, PATH).await?;
    let reason = cancel_reason(&s, &p, PATH, body).await?;
    match s.runtime.cancel_run(&id, by, reason).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(runtime_refusal(&s, &p, PATH, e).await),
    }
}
