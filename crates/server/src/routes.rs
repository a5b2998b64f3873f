//! The routes. Each handler authenticates (the `Principal` extractor),
//! checks its role, calls one library method, and answers JSON.

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_evidence::{Record, RecordKind};
use warden_model::Role;
use warden_store::Filter;

use crate::AppState;
use crate::auth::{Kind, Principal};
use crate::error::ApiError;

/// Every route, with the body limit and a JSON 404.
pub fn router(state: AppState, body_limit: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/whoami", get(whoami))
        .route("/v1/actions", axum::routing::post(crate::actions::propose))
        .route("/v1/audit", get(audit_query))
        .route("/v1/audit/verify", get(audit_verify))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such route; see /v1/openapi.json once the actions API lands".into(),
    }
}

async fn healthz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = s.engine.current();
    let size = s
        .store
        .leaf_count()
        .await
        .map_err(|e| ApiError::internal(format!("database: {e}")))?;
    Ok(Json(json!({
        "status": "ok",
        "pack": engine.pack().name,
        "policy_version": engine.policy_version(),
        "log_size": size,
    })))
}

async fn whoami(p: Principal) -> Json<Value> {
    Json(json!({
        "id": p.id,
        "kind": match p.kind { Kind::Agent => "agent", Kind::Person => "person" },
        "roles": p.roles,
    }))
}

/// Records a refused request of `p` (kind `access_denied` or
/// `request_rejected`: its code and message, never its body or token), then
/// returns the error.
pub(crate) async fn record_refusal(
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

/// Records a refusal for a role, then returns it.
pub(crate) async fn refuse(s: &AppState, p: &Principal, path: &str, err: ApiError) -> ApiError {
    record_refusal(s, RecordKind::AccessDenied, p, path, err).await
}

async fn allow(s: &AppState, p: &Principal, path: &str, roles: &[Role]) -> Result<(), ApiError> {
    match p.require(roles) {
        Ok(()) => Ok(()),
        Err(e) => Err(refuse(s, p, path, e).await),
    }
}

/// Query parameters of `GET /v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
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
    limit: Option<u32>,
}

fn time_param(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    v.map(|t| {
        warden_evidence::micros(t).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("`{name}` must be an RFC 3339 time such as 2026-11-25T10:00:00Z"),
            )
        })
    })
    .transpose()
}

async fn audit_query(
    State(s): State<AppState>,
    p: Principal,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    allow(&s, &p, "/v1/audit", &[Role::Auditor, Role::Operator]).await?;
    let Query(q) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`limit` must be between 1 and 10000",
        ));
    }
    let filter = Filter {
        since_us: time_param("since", q.since.as_deref())?,
        until_us: time_param("until", q.until.as_deref())?,
        agent: q.agent,
        tool: q.tool,
        workflow: q.workflow,
        run: q.run,
        kind: q.kind,
        decision: q.decision,
        status: q.status,
        code: q.code,
        policy: q.policy,
        approver: q.approver,
        text: q.text,
        limit,
    };
    let found = s
        .store
        .query(&filter)
        .await
        .map_err(|e| ApiError::internal(format!("database: {e}")))?;
    let records: Vec<Value> = found
        .iter()
        .map(|r| match &r.record {
            Some(rec) => serde_json::to_value(rec).unwrap_or_default(),
            None => json!({ "seq": r.seq, "kind": r.kind, "pruned": true }),
        })
        .collect();
    Ok(Json(json!({ "records": records })))
}

async fn audit_verify(State(s): State<AppState>, p: Principal) -> Result<Json<Value>, ApiError> {
    allow(&s, &p, "/v1/audit/verify", &[Role::Auditor, Role::Operator]).await?;
    let report = s
        .store
        .verify(s.trusted.clone(), |_| {})
        .await
        .map_err(|e| ApiError::internal(format!("database: {e}")))?;
    Ok(Json(json!({ "ok": report.ok(), "report": report })))
}
