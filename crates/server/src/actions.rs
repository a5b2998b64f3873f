//! The actions API: `POST /v1/actions` (propose), `GET /v1/actions/{id}`
//! (with `?wait=` to long-poll) and `POST /v1/actions/{id}/outcome` (check
//! mode). Handlers authenticate, parse, call one runtime method and map
//! the result; the gates, state and evidence live in `runtime`.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use warden_model::Role;
use warden_runtime::{ActionView, Mode, Proposal, Report};

use crate::AppState;
use crate::auth::{Kind, Principal};
use crate::error::ApiError;
use crate::routes::{client_refusal, refuse, runtime_refusal};

/// The body of `POST /v1/actions`. The agent is the token's, never a field.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalBody {
    /// Tool id, e.g. `stripe.refund`.
    pub tool: String,
    /// Arguments, checked against the tool's JSON Schema.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// `enforce` (Warden executes through the tool's connector) or `check`
    /// (Warden decides, the agent executes and reports). Default `check`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The workflow run (from `POST /v1/runs`); its graph gates step order.
    #[serde(default)]
    pub run_id: Option<String>,
    /// The same key from the same agent returns the same action.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Why the agent wants it (recorded).
    #[serde(default)]
    pub reason: Option<String>,
    /// Ignored: the agent is always the token's. Accepted so a client that
    /// sends it is not broken, recorded, never trusted.
    #[serde(default, rename = "agent")]
    #[schema(value_type = Option<String>)]
    pub claimed_agent: Option<Value>,
}

fn empty_object() -> Value {
    json!({})
}

/// Query of `GET /v1/actions/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    /// Long-poll: wait up to this long (e.g. `30s`, at most `60s`) for the
    /// action to reach a final state.
    pub wait: Option<String>,
}

/// Largest `?wait=`.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Maps a JSON body rejection to its code.
pub(crate) fn body_error(e: JsonRejection) -> ApiError {
    let code = match e {
        JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
        JsonRejection::JsonSyntaxError(_) => "invalid_json",
        JsonRejection::BytesRejection(_) => "payload_too_large",
        _ => "invalid_body",
    };
    ApiError {
        status: e.status(),
        code,
        message: e.body_text(),
    }
}

/// The status of a proposal's answer: 202 while executing, 200 for an
/// idempotent replay, 201 otherwise.
fn created_status(view: &ActionView, replayed: bool) -> StatusCode {
    if replayed {
        StatusCode::OK
    } else if view.status == warden_model::ActionStatus::Executing {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    }
}

/// Propose an action.
#[utoipa::path(
    post, path = "/v1/actions", tag = "actions",
    request_body = ProposalBody,
    responses(
        (status = 201, description = "decided (and executed, in enforce mode)", body = ActionView),
        (status = 200, description = "the action of an earlier proposal with this idempotency key", body = ActionView),
        (status = 202, description = "enforce mode: still executing; long-poll GET /v1/actions/{id}?wait=30s", body = ActionView),
        (status = 400, description = "invalid_json, invalid_body, invalid_arguments, not_executable"),
        (status = 401, description = "unauthenticated"),
        (status = 403, description = "forbidden (not an agent), run_forbidden"),
        (status = 404, description = "unknown_tool, unknown_run"),
        (status = 409, description = "run_closed, idempotency_conflict"),
        (status = 413, description = "payload_too_large"),
        (status = 429, description = "rate_limited"),
    ),
    security(("bearer" = []))
)]
pub async fn propose(
    State(s): State<AppState>,
    p: Principal,
    body: Result<Json<ProposalBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const PATH: &str = "/v1/actions";
    if p.kind != Kind::Agent {
        let e = ApiError::forbidden(format!(
            "`{}` is a person; only agents propose actions",
            p.id
        ));
        return Err(refuse(&s, &p, PATH, e).await);
    }
    s.rate_limit(&p)?;
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return Err(client_refusal(&s, &p, PATH, body_error(e)).await),
    };
    let mode = match body.mode.as_deref() {
        None | Some("check") => Mode::Check,
        Some("enforce") => Mode::Enforce,
        Some(other) => {
            let err = ApiError::bad_request(
                "invalid_body",
                format!("`mode` must be `check` or `enforce`, not `{other}`"),
            );
            return Err(client_refusal(&s, &p, PATH, err).await);
        }
    };
    if let Some(k) = &body.idempotency_key
        && (k.is_empty() || k.len() > 255)
    {
        let err = ApiError::bad_request(
            "invalid_body",
            "`idempotency_key` must be 1 to 255 characters",
        );
        return Err(client_refusal(&s, &p, PATH, err).await);
    }
    let proposal = Proposal {
        tool: body.tool,
        arguments: body.arguments,
        run_id: body.run_id,
        mode,
        idempotency_key: body.idempotency_key,
        reason: body.reason,
        claimed_agent: body.claimed_agent,
        drill: None,
    };
    let started = std::time::Instant::now();
    match s.runtime.submit(&p.id, proposal).await {
        Ok(sub) => {
            if !sub.replayed {
                s.metrics.decided(&sub.action, started.elapsed());
            }
            let status = created_status(&sub.action, sub.replayed);
            let mut v = serde_json::to_value(&sub.action).unwrap_or_default();
            v["evidence_seq"] = json!(sub.evidence_seq);
            v["replayed"] = json!(sub.replayed);
            Ok((status, Json(v)))
        }
        Err(e) => {
            s.metrics.rejected(e.code());
            Err(runtime_refusal(&s, &p, PATH, e).await)
        }
    }
}

/// Parses `30s`, `500ms`, `2m`; at most [`MAX_WAIT`].
fn wait_param(v: Option<&str>) -> Result<Duration, ApiError> {
    match v {
        None => Ok(Duration::ZERO),
        Some(t) => match humantime::parse_duration(t).ok() {
            Some(d) if d <= MAX_WAIT => Ok(d),
            _ => Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "`wait` must be a duration such as `30s` or `500ms`, at most 60s; got `{t}`"
                ),
            )),
        },
    }
}

/// Who may see which actions: an agent its own, operators and auditors all.
pub(crate) async fn viewer<'a>(
    s: &AppState,
    p: &'a Principal,
    path: &str,
) -> Result<Option<&'a str>, ApiError> {
    match p.kind {
        Kind::Agent => Ok(Some(p.id.as_str())),
        Kind::Person => match p.require(&[Role::Operator, Role::Auditor]) {
            Ok(()) => Ok(None),
            Err(e) => Err(refuse(s, p, path, e).await),
        },
    }
}

/// An action's state; `?wait=30s` long-polls until it is final, or
/// approved for the agent after an approval (check mode).
#[utoipa::path(
    get, path = "/v1/actions/{id}", tag = "actions",
    params(("id" = String, Path, description = "action id"), WaitParams),
    responses(
        (status = 200, body = ActionView),
        (status = 400, description = "invalid_query"),
        (status = 404, description = "unknown_action"),
    ),
    security(("bearer" = []))
)]
pub async fn get_action(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    q: Result<Query<WaitParams>, QueryRejection>,
) -> Result<Json<ActionView>, ApiError> {
    let who = viewer(&s, &p, "/v1/actions/{id}").await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let wait = wait_param(q.wait.as_deref())?;
    let view = s.runtime.action(&id, who).await?;
    if view.is_settled() || wait.is_zero() {
        return Ok(Json(view));
    }
    match s.runtime.wait(&id, wait).await? {
        Some(v) if v.is_settled() => Ok(Json(v)),
        _ => Ok(Json(s.runtime.action(&id, who).await?)),
    }
}

/// Report the outcome of a `check`-mode action the agent executed.
#[utoipa::path(
    post, path = "/v1/actions/{id}/outcome", tag = "actions",
    params(("id" = String, Path, description = "action id")),
    request_body = Report,
    responses(
        (status = 200, body = ActionView),
        (status = 400, description = "invalid_json, invalid_body"),
        (status = 404, description = "unknown_action"),
        (status = 409, description = "invalid_transition: not an approved check-mode action, or already reported"),
    ),
    security(("bearer" = []))
)]
pub async fn outcome(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<Report>, JsonRejection>,
) -> Result<Json<ActionView>, ApiError> {
    const PATH: &str = "/v1/actions/{id}/outcome";
    if p.kind != Kind::Agent {
        let e = ApiError::forbidden("only the agent that proposed an action reports its outcome");
        return Err(refuse(&s, &p, PATH, e).await);
    }
    let report = match body {
        Ok(Json(r)) => r,
        Err(e) => return Err(client_refusal(&s, &p, PATH, body_error(e)).await),
    };
    match s.runtime.report(&p.id, &id, report).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(runtime_refusal(&s, &p, PATH, e).await),
    }
}
