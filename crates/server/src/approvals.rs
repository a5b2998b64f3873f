//! The approvals API: `GET /v1/approvals` (the approver's inbox, oldest
//! first), `GET /v1/approvals/{id}` and `POST /v1/approvals/{id}/decision`.
//! People only: operators and auditors see every request, other people
//! those of the groups they belong to. The rules of answering live in
//! `runtime`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use warden_model::Role;
use warden_runtime::{ApprovalFilter, ApprovalView, DecisionBody, RuntimeError};

use crate::AppState;
use crate::actions::body_error;
use crate::auth::{Kind, Principal};
use crate::error::ApiError;
use crate::routes::{client_refusal, refuse, runtime_refusal};

/// Largest page of `GET /v1/approvals`.
const MAX_LIMIT: u32 = 1000;

/// Query of `GET /v1/approvals`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `pending` (default), `approved`, `denied`, `expired` or `all`.
    pub state: Option<String>,
    /// Only requests this group may answer.
    pub group: Option<String>,
    /// At most this many, oldest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The answer of `GET /v1/approvals`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApprovalList {
    /// Requests, oldest first.
    pub approvals: Vec<ApprovalView>,
    /// How many match in all (the page may hold fewer).
    pub total: i64,
}

/// The groups whose requests `p` may see: `None` for all (operators and
/// auditors), else the groups `p` belongs to. Agents and people in no
/// group are refused (and recorded).
pub(crate) async fn scope(
    s: &AppState,
    p: &Principal,
    path: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    match visible_groups(s, p) {
        Ok(g) => Ok(g),
        Err(e) => Err(refuse(s, p, path, e).await),
    }
}

/// [`scope`] without recording a refusal (the console asks on every page).
pub(crate) fn visible_groups(s: &AppState, p: &Principal) -> Result<Option<Vec<String>>, ApiError> {
    if p.kind == Kind::Agent {
        return Err(ApiError::forbidden(
            "approval requests are for people; agents long-poll their action",
        ));
    }
    if p.require(&[Role::Operator, Role::Auditor]).is_ok() {
        return Ok(None);
    }
    let engine = s.engine.current();
    let groups: Vec<String> = engine
        .pack()
        .approver_groups
        .values()
        .filter(|g| g.members.iter().any(|m| m == &p.id))
        .map(|g| g.id.clone())
        .collect();
    if groups.is_empty() {
        return Err(ApiError::forbidden(format!(
            "`{}` is in no approver group and has no operator or auditor role",
            p.id
        )));
    }
    Ok(Some(groups))
}

/// Approval requests, oldest first: the approver's inbox.
#[utoipa::path(
    get, path = "/v1/approvals", tag = "approvals",
    params(ListParams),
    responses(
        (status = 200, body = ApprovalList),
        (status = 400, description = "invalid_query"),
        (status = 403, description = "forbidden: agents, and people in no group without a role"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<ApprovalList>, ApiError> {
    const PATH: &str = "/v1/approvals";
    let scope = scope(&s, &p, PATH).await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let state = match q.state.as_deref() {
        None | Some("pending") => Some("pending".to_owned()),
        Some("all") => None,
        Some(st @ ("approved" | "denied" | "expired")) => Some(st.to_owned()),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("`state` must be pending, approved, denied, expired or all; got `{other}`"),
            ));
        }
    };
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` must be 1 to {MAX_LIMIT}; got {limit}"),
        ));
    }
    let filter = ApprovalFilter {
        state,
        group: q.group,
        any_group: scope,
        limit,
        ..ApprovalFilter::default()
    };
    match s.runtime.approvals(&filter).await {
        Ok((approvals, total)) => Ok(Json(ApprovalList { approvals, total })),
        Err(e) => Err(runtime_refusal(&s, &p, PATH, e).await),
    }
}

/// One approval request with its full context.
#[utoipa::path(
    get, path = "/v1/approvals/{id}", tag = "approvals",
    params(("id" = String, Path, description = "approval request id")),
    responses(
        (status = 200, body = ApprovalView),
        (status = 403, description = "forbidden"),
        (status = 404, description = "unknown_approval"),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApprovalView>, ApiError> {
    const PATH: &str = "/v1/approvals/{id}";
    let scope = scope(&s, &p, PATH).await?;
    match s.runtime.approval(&id, scope.as_deref()).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(runtime_refusal(&s, &p, PATH, e).await),
    }
}

/// Approve or deny a request. The last approval its quorum needs
/// re-evaluates policy with the pack in force, then executes the action
/// once (enforce) or approves it for the agent (check).
#[utoipa::path(
    post, path = "/v1/approvals/{id}/decision", tag = "approvals",
    params(("id" = String, Path, description = "approval request id")),
    request_body = DecisionBody,
    responses(
        (status = 200, body = ApprovalView, description = "the request after this answer"),
        (status = 400, description = "invalid_json, invalid_body"),
        (status = 403, description = "not_an_approver, separation_of_duties, forbidden"),
        (status = 404, description = "unknown_approval"),
        (status = 409, description = "approval_closed (decided or expired), already_answered"),
    ),
    security(("bearer" = []))
)]
pub async fn decide(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<DecisionBody>, JsonRejection>,
) -> Result<Json<ApprovalView>, ApiError> {
    const PATH: &str = "/v1/approvals/{id}/decision";
    if p.kind == Kind::Agent {
        let e = ApiError::forbidden("agents cannot answer approval requests");
        return Err(refuse(&s, &p, PATH, e).await);
    }
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            let err = body_error(e);
            return Err(client_refusal(&s, &p, PATH, err).await);
        }
    };
    match s.runtime.answer(&p.id, &id, body).await {
        Ok(v) => Ok(Json(v)),
        // Answering without the right is an access question.
        Err(e @ (RuntimeError::NotAnApprover { .. } | RuntimeError::SeparationOfDuties { .. })) => {
            Err(refuse(&s, &p, PATH, ApiError::from(e)).await)
        }
        Err(e) => Err(runtime_refusal(&s, &p, PATH, e).await),
    }
}

/// Cancel a pending approval request: it takes no more answers and its
/// action ends `cancelled` without executing. The agent that asked, or an
/// operator.
#[utoipa::path(
    post, path = "/v1/approvals/{id}/cancel", tag = "approvals",
    params(("id" = String, Path, description = "approval request id")),
    request_body(content = crate::runs::CancelBody, description = "optional"),
    responses((status = 200, body = ApprovalView), (status = 400, description = "invalid_json, invalid_body"), (status = 403, description = "forbidden: the requesting agent or an operator"), (status = 404, description = "unknown_approval"), (status = 409, description = "approval_closed")),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: Result<Json<crate::runs::CancelBody>, JsonRejection>,
) -> Result<Json<ApprovalView>, ApiError> {
    const PATH: &str = "/v1/approvals/{id}/cancel";
    let by = crate::runs::canceller(&s, &p, PATH).await?;
    let reason = crate::runs::cancel_reason(&s, &p, PATH, body).await?;
    match s.runtime.cancel_approval(&id, by, reason).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(runtime_refusal(&s, &p, PATH, e).await),
    }
}
