//! `/v1/audit`: query, verify, and data-subject erasure.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_evidence::{Record, RecordKind};
use warden_model::Role;
use warden_store::Filter;

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::{allow, client_refusal};

/// Query parameters of `GET /v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
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

/// Query evidence records (auditors, operators); newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams), responses((status = 200), (status = 400, description = "invalid_query"), (status = 403, description = "forbidden")), security(("bearer" = [])))]
pub(crate) async fn query(
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
        ..Filter::default()
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

/// Verify the whole log: leaves, tree, signed checkpoints.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", responses((status = 200), (status = 403, description = "forbidden")), security(("bearer" = [])))]
pub(crate) async fn verify(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<Value>, ApiError> {
    allow(&s, &p, "/v1/audit/verify", &[Role::Auditor, Role::Operator]).await?;
    let report = s
        .store
        .verify(s.trusted.clone(), |_| {})
        .await
        .map_err(|e| ApiError::internal(format!("database: {e}")))?;
    Ok(Json(json!({ "ok": report.ok(), "report": report })))
}

/// `POST /v1/audit/erase`: one value of one data subject.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EraseBody {
    /// The field that holds the value in arguments or results
    /// (`customer_id`); for values the output scanner redacted, any name.
    field: String,
    /// The value, as the subject gave it (a string or a number).
    #[schema(value_type = Object)]
    value: Value,
    /// Why: the request's reference (`DSR-2026-118`). Recorded.
    reason: String,
}

/// Longest field name, value and reason accepted.
const MAX_ERASE_TEXT: usize = 1_000;

/// Erase the payloads of every record that holds a data subject's value
/// (auditors, operators). Leaf hashes stay, so the log still verifies; the
/// erasure is itself a record (`records_erased`).
#[utoipa::path(
    post, path = "/v1/audit/erase", tag = "audit",
    request_body = EraseBody,
    responses((status = 200, description = "what was erased"), (status = 400, description = "invalid_json, invalid_body"), (status = 403, description = "forbidden: auditors and operators")),
    security(("bearer" = []))
)]
pub(crate) async fn erase(
    State(s): State<AppState>,
    p: Principal,
    body: Result<Json<EraseBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    const PATH: &str = "/v1/audit/erase";
    allow(&s, &p, PATH, &[Role::Auditor, Role::Operator]).await?;
    let reject = |e: ApiError| client_refusal(&s, &p, PATH, e);
    let b = match body {
        Ok(Json(b)) => b,
        Err(e) => return Err(reject(crate::actions::body_error(e)).await),
    };
    let value = match &b.value {
        Value::String(v) => v.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(x) => x.to_string(),
        _ => {
            return Err(reject(ApiError::bad_request(
                "invalid_body",
                "`value` must be a string or a number",
            ))
            .await);
        }
    };
    let blank = |t: &str| t.trim().is_empty() || t.len() > MAX_ERASE_TEXT;
    if blank(&b.field) || blank(&value) || blank(&b.reason) {
        return Err(reject(ApiError::bad_request(
            "invalid_body",
            format!(
                "`field`, `value` and `reason` must be non-empty and at most {MAX_ERASE_TEXT} bytes"
            ),
        ))
        .await);
    }
    let query = s
        .redactor
        .erasure_query(&b.field, &value)
        .map_err(|e| ApiError::internal(format!("redaction: {e}")))?;
    let mut rec = Record::new(RecordKind::RecordsErased);
    rec.message = Some(format!(
        "data-subject erasure by {}: payloads holding the `{}` value were dropped",
        p.id, b.field
    ));
    rec.detail = Some(json!({ "by": p.id, "reason": b.reason }));
    let report = s
        .log
        .erase(&query, rec)
        .await
        .map_err(|e| ApiError::internal(format!("database: {e}")))?;
    Ok(Json(json!({
        "erased": report.erased.seqs.len(),
        "seqs": report.erased.seqs,
        "actions": report.erased.actions,
        "runs": report.erased.runs,
        "record": report.receipt.seq,
    })))
}
