//! `POST /v1/actions`: an agent proposes an action; Warden runs the gates
//! (known tool, arguments against the tool's JSON Schema, policy) and
//! answers only after the decision is durable in the audit log.
//!
//! Check mode only, for now: Warden decides and the agent executes. Enforce
//! mode (Warden executes through a connector), runs and step order, and
//! approvals arrive with the runtime layer.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use warden_evidence::{Record, RecordKind, decision_status};
use warden_model::{DenyCode, RequestContext, Trigger};
use warden_policy::Request;

use crate::AppState;
use crate::auth::{Kind, Principal};
use crate::error::ApiError;
use crate::routes::refuse;

/// The body of `POST /v1/actions`. The agent is the token's, never a field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// Tool id, e.g. `stripe.refund`.
    pub tool: String,
    /// Arguments, checked against the tool's JSON Schema.
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// `check` (Warden decides, the agent executes). `enforce` is not yet
    /// available.
    #[serde(default)]
    pub mode: Option<String>,
    /// The workflow the action belongs to.
    #[serde(default)]
    pub workflow: Option<String>,
    /// The run id.
    #[serde(default)]
    pub run_id: Option<String>,
    /// What started the run.
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// Why the agent wants it (recorded).
    #[serde(default)]
    pub reason: Option<String>,
    /// Ignored: the agent is always the token's. Accepted so a client that
    /// sends it is not broken, and never trusted.
    #[serde(default, rename = "agent")]
    pub claimed_agent: Option<Value>,
}

fn empty_object() -> Value {
    json!({})
}

fn action_id() -> Result<String, ApiError> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(format!("act_{}", hex::encode(b)))
}

/// Records an unusable proposal (its code and message, never its body),
/// then returns the error.
async fn rejected(s: &AppState, p: &Principal, err: ApiError) -> ApiError {
    crate::routes::record_refusal(s, RecordKind::RequestRejected, p, "/v1/actions", err).await
}

/// `POST /v1/actions`
pub async fn propose(
    State(s): State<AppState>,
    p: Principal,
    body: Result<Json<Proposal>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if p.kind != Kind::Agent {
        let e = ApiError::forbidden(format!(
            "`{}` is a person; only agents propose actions",
            p.id
        ));
        return Err(refuse(&s, &p, "/v1/actions", e).await);
    }
    let prop = match body {
        Ok(Json(prop)) => prop,
        Err(e) => {
            let code = match e {
                JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
                JsonRejection::JsonSyntaxError(_) => "invalid_json",
                _ => "invalid_body",
            };
            let err = ApiError {
                status: e.status(),
                code,
                message: e.body_text(),
            };
            return Err(rejected(&s, &p, err).await);
        }
    };
    match prop.mode.as_deref() {
        None | Some("check") => {}
        Some("enforce") => {
            let err = ApiError::bad_request(
                "unsupported_mode",
                "enforce mode (Warden executes through a connector) is not available yet; use `check`",
            );
            return Err(rejected(&s, &p, err).await);
        }
        Some(other) => {
            let err = ApiError::bad_request(
                "invalid_body",
                format!("`mode` must be `check` or `enforce`, not `{other}`"),
            );
            return Err(rejected(&s, &p, err).await);
        }
    }
    let engine = s.engine.current();
    let context = RequestContext {
        workflow: prop.workflow.clone(),
        run: prop.run_id.clone(),
        trigger: prop.trigger.clone(),
    };
    let req = Request {
        agent: &p.id,
        tool: &prop.tool,
        args: &prop.arguments,
        approvals: &[],
        context: &context,
    };
    let decision = engine.decide(&req);
    let id = action_id()?;
    let (status, code) = decision_status(&decision);
    let mut r = Record::decided(&req, &decision);
    r.action = Some(id.clone());
    r.detail = Some(json!({
        "mode": "check",
        "reason": prop.reason,
        "claimed_agent": prop.claimed_agent,
    }));
    s.redactor
        .apply_for_pack(&mut r, engine.pack(), &prop.arguments)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // Durable before acknowledged.
    let receipt = s
        .log
        .append(r)
        .await
        .map_err(|e| ApiError::internal(format!("cannot record the decision: {e}")))?;
    // Unusable requests are client errors, recorded all the same.
    match decision.code {
        Some(DenyCode::UnknownTool) => {
            return Err(ApiError {
                status: StatusCode::NOT_FOUND,
                code: "unknown_tool",
                message: decision.message(),
            });
        }
        Some(DenyCode::InvalidArguments) => {
            return Err(ApiError::bad_request(
                "invalid_arguments",
                decision.message(),
            ));
        }
        _ => {}
    }
    let body = json!({
        "action_id": id,
        "status": status,
        "code": code,
        "decision": decision,
        "evidence_seq": receipt.seq,
    });
    Ok((StatusCode::CREATED, Json(body)))
}
