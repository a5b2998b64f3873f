//! The routes. Each handler authenticates (the `Principal` extractor),
//! checks its role, calls one library method, and answers JSON.

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use warden_evidence::{Record, RecordKind};
use warden_model::Role;
use warden_runtime::RuntimeError;

use crate::AppState;
use crate::auth::{Kind, Principal};
use crate::error::ApiError;

/// Every route, with the body limit, metrics and a JSON 404.
pub fn router(state: AppState, body_limit: usize) -> Router {
    use axum::routing::post;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/whoami", get(whoami))
        .route("/v1/actions", post(crate::actions::propose))
        .route("/v1/actions/{id}", get(crate::actions::get_action))
        .route("/v1/actions/{id}/outcome", post(crate::actions::outcome))
        .route("/v1/approvals", get(crate::approvals::list))
        .route("/v1/approvals/{id}", get(crate::approvals::show))
        .route(
            "/v1/approvals/{id}/decision",
            post(crate::approvals::decide),
        )
        .route("/v1/runs", post(crate::runs::start_run))
        .route("/v1/runs/{id}", get(crate::runs::get_run))
        .route("/v1/runs/{id}/cancel", post(crate::runs::cancel_run))
        .route("/v1/approvals/{id}/cancel", post(crate::approvals::cancel))
        .route("/v1/agents/{id}/pause", post(crate::runs::pause))
        .route("/v1/agents/{id}/resume", post(crate::runs::resume))
        .route(
            "/v1/agents/{id}/quarantine",
            post(crate::oversight::quarantine),
        )
        .route("/v1/agents/{id}/release", post(crate::oversight::release))
        .route("/v1/tools/{id}/circuit", post(crate::oversight::circuit))
        .route("/v1/incidents", get(crate::oversight::list))
        .route("/v1/incidents/{id}", get(crate::oversight::show))
        .route("/v1/incidents/{id}/ack", post(crate::oversight::ack))
        .route(
            "/v1/incidents/{id}/resolve",
            post(crate::oversight::resolve),
        )
        .route("/v1/incidents/{id}/review", post(crate::oversight::review))
        .route(
            "/v1/drills",
            get(crate::drills::list).post(crate::drills::start),
        )
        .route(
            "/v1/drills/{id}",
            get(crate::drills::show).delete(crate::drills::abort),
        )
        .route("/v1/views/runs", get(crate::oversight::runs_view))
        .route("/v1/views/approvals", get(crate::oversight::approvals_view))
        .route("/v1/views/hotspots", get(crate::oversight::hotspots_view))
        .route(
            "/v1/views/approvals/stats",
            get(crate::rollout::approval_stats_view),
        )
        .route("/v1/replay", post(crate::rollout::replay))
        .route("/v1/audit", get(crate::audit::query))
        .route("/v1/audit/verify", get(crate::audit::verify))
        .route("/v1/audit/erase", post(crate::audit::erase))
        .route(crate::slack::INTERACTIONS, post(crate::slack::interactions))
        .merge(crate::mcp::service(state.clone(), body_limit))
        .merge(crate::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Times every request by its route pattern (never the raw path, so ids do
/// not explode the label set).
async fn observe(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let mcp = req.uri().path() == "/mcp";
    let json_body = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let start = std::time::Instant::now();
    let mut resp = json_errors(next.run(req).await, mcp, json_body).await;
    // Closing an MCP session is done, not accepted for later: 200, which
    // clients (the Python SDK) expect.
    if mcp && method == "DELETE" && resp.status() == axum::http::StatusCode::ACCEPTED {
        *resp.status_mut() = axum::http::StatusCode::OK;
    }
    s.metrics
        .request(&method, &route, resp.status().as_u16(), start.elapsed());
    resp
}

/// Client errors answered in plain text by an extractor or a library (a
/// path that is not UTF-8, a body `/mcp` cannot parse) become the API's
/// JSON error; on `/mcp`, a JSON body that does not parse is a JSON-RPC
/// parse error (-32700).
async fn json_errors(
    resp: axum::response::Response,
    mcp: bool,
    json_body: bool,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = resp.status();
    let plain = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !status.is_client_error() || !plain {
        return resp;
    }
    let text = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    if mcp && json_body && matches!(status.as_u16(), 400 | 415 | 422) {
        let body = json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": -32700, "message": format!("parse error: {text}") },
        });
        return (axum::http::StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let code = match status.as_u16() {
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        _ => "invalid_request",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("invalid request")
            .to_owned()
    } else {
        text
    };
    ApiError {
        status,
        code,
        message,
    }
    .into_response()
}

async fn not_found() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such route; the API is described at /v1/openapi.json".into(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this route does not take that method; see /v1/openapi.json".into(),
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    Json(crate::openapi::ApiDoc::openapi())
}

async fn metrics(State(s): State<AppState>) -> impl axum::response::IntoResponse {
    let snap = crate::metrics::OversightSnapshot {
        incidents: s.store.incident_counts().await.unwrap_or_default(),
        approvals: s
            .oversight
            .approvals_view()
            .await
            .map(|v| v.groups)
            .unwrap_or_default(),
    };
    s.metrics.oversight(s.oversight.stats(), &snap);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(&s.runtime),
    )
}

/// Health: the pack and policy version in force, the log size.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200)))]
pub(crate) async fn healthz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = s.engine.current();
    let size = s
        .store
        .leaf_count()
        .await
        .map_err(|e| ApiError::internal(format!("database: {e}")))?;
    // A refused reload leaves the old pack serving: healthy enough to
    // answer, but not what the operator deployed.
    let refused = s.refused_reload.lock().ok().and_then(|r| r.clone());
    Ok(Json(json!({
        "status": if refused.is_some() { "degraded" } else { "ok" },
        "pack": engine.pack().name,
        "policy_version": engine.policy_version(),
        "log_size": size,
        "reload_refused": refused,
    })))
}

/// The authenticated caller: id, kind, roles.
#[utoipa::path(get, path = "/v1/whoami", tag = "meta", responses((status = 200), (status = 401, description = "unauthenticated")), security(("bearer" = [])))]
pub(crate) async fn whoami(p: Principal) -> Json<Value> {
    Json(json!({
        "id": p.id,
        "kind": match p.kind { Kind::Agent => "agent", Kind::Person => "person" },
        "roles": p.roles,
    }))
}

/// Records a refused request of `p` (kind `access_denied` or
/// `request_rejected`: its code and message, never its body or token), then
/// returns the error.
async fn record_refusal(
    s: &AppState,
    kind: RecordKind,
    p: &Principal,
    path: &str,
    err: ApiError,
) -> ApiError {
    let mut r = Record::new(kind);
    let mut detail = json!({ "path": path, "status": err.status.as_u16() });
    match p.kind {
        Kind::Agent => r.agent = Some(p.id.clone()),
        Kind::Person => detail["person"] = json!(p.id),
    }
    r.code = Some(err.code.to_owned());
    r.message = Some(err.message.clone());
    r.detail = Some(detail);
    if let Err(e) = s.log.append(r).await {
        tracing::error!(error = %e, "cannot record a refused request");
    }
    err
}

/// The answer to a runtime error for `p`: recorded as [`client_refusal`]
/// does, unless the runtime recorded it already
/// ([`RuntimeError::is_recorded`]).
pub(crate) async fn runtime_refusal(
    s: &AppState,
    p: &Principal,
    path: &str,
    e: RuntimeError,
) -> ApiError {
    if e.is_recorded() {
        return e.into();
    }
    client_refusal(s, p, path, e).await
}

/// The answer to a refused request of `p`, the one place that records
/// refusals of the lower layers: a client error leaves a
/// `request_rejected` record (its code, never the body); Warden's own
/// errors (5xx) are answered without one.
pub(crate) async fn client_refusal(
    s: &AppState,
    p: &Principal,
    path: &str,
    e: impl Into<ApiError>,
) -> ApiError {
    let err: ApiError = e.into();
    if err.status.is_server_error() {
        err
    } else {
        record_refusal(s, RecordKind::RequestRejected, p, path, err).await
    }
}

/// Records a refusal for a role, then returns it.
pub(crate) async fn refuse(s: &AppState, p: &Principal, path: &str, err: ApiError) -> ApiError {
    record_refusal(s, RecordKind::AccessDenied, p, path, err).await
}

pub(crate) async fn allow(
    s: &AppState,
    p: &Principal,
    path: &str,
    roles: &[Role],
) -> Result<(), ApiError> {
    match p.require(roles) {
        Ok(()) => Ok(()),
        Err(e) => Err(refuse(s, p, path, e).await),
    }
}
