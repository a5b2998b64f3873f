//! `POST /v1/integrations/slack/interactions`: Approve and Deny presses,
//! and the denial form's submission.
//!
//! In order: Slack's v0 signature (HMAC-SHA256 of `v0:<timestamp>:<body>`
//! with the signing secret) and a timestamp within 5 minutes; a replay of
//! the same signed request is refused on every replica; the payload is
//! read; the Slack user must be a person of the pack. Slack is answered at
//! once (its limit is 3 seconds) and the answer is given after, through
//! `Runtime::answer_from`: the same rules as the API (membership,
//! separation of duties, one answer per person, quorum, expiry, policy
//! evaluated again). A press that may not decide gets an ephemeral message
//! saying why. Every refusal is evidence; an accepted press is the
//! request's `approval_recorded` record, noting the Slack user and channel.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_evidence::{Record, RecordKind};
use warden_runtime::{DecisionBody, RuntimeError, Verdict};

use super::{SlackApp, blocks};
use crate::AppState;
use crate::console::now_us;
use crate::error::ApiError;

/// The route, for records.
pub(crate) const PATH: &str = "/v1/integrations/slack/interactions";
/// Oldest (and furthest in the future) timestamp accepted.
const WINDOW_SECS: i64 = 300;

/// What was pressed.
#[derive(Debug, Clone)]
enum Press {
    Approve,
    /// The Deny button: opens the denial form.
    DenyButton {
        trigger_id: String,
    },
    /// The denial form, submitted.
    Deny {
        reason: String,
    },
}

/// A press, read from Slack's payload.
#[derive(Debug, Clone)]
struct Interaction {
    press: Press,
    approval_id: String,
    user: String,
    team: Option<String>,
    channel: Option<String>,
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

/// Handles one interaction.
pub(crate) async fn interactions(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(app) = s.slack.app(&s.engine) else {
        return error(
            StatusCode::NOT_FOUND,
            "slack_not_configured",
            "Slack is not set up: the pack has no [slack] section, or its secrets cannot be read",
        )
        .into_response();
    };
    let now = now_us();
    if let Err(e) = verify(&app.signing_secret, &headers, &body, now / 1_000_000) {
        record(&s, RecordKind::AccessDenied, e.code, &e.message, json!({})).await;
        return e.into_response();
    }
    // The same signed request twice is a replay, whoever sends it.
    let mut h = Sha256::new();
    h.update(
        headers
            .get("x-slack-request-timestamp")
            .map(|v| v.as_bytes())
            .unwrap_or_default(),
    );
    h.update(b":");
    h.update(&body);
    let key = hex::encode(h.finalize());
    match s
        .store
        .first_sight(&key, now, 2 * WINDOW_SECS * 1_000_000)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let e = error(
                StatusCode::CONFLICT,
                "replayed",
                "this signed Slack request was already received: a replay is never acted on",
            );
            record(&s, RecordKind::AccessDenied, e.code, &e.message, json!({})).await;
            return e.into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check a Slack interaction for replay");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable; press again shortly",
            )
            .into_response();
        }
    }
    let i = match parse(&body) {
        Ok(Some(i)) => i,
        // Interactions Warden does not act on (a closed form, other apps'
        // blocks) are acknowledged and ignored.
        Ok(None) => return StatusCode::OK.into_response(),
        Err(message) => {
            let e = error(StatusCode::BAD_REQUEST, "invalid_payload", message);
            record(
                &s,
                RecordKind::RequestRejected,
                e.code,
                &e.message,
                json!({}),
            )
            .await;
            return e.into_response();
        }
    };
    let pack = s.engine.current();
    let person = pack
        .pack()
        .people
        .values()
        .find(|p| p.slack.as_deref() == Some(i.user.as_str()))
        .map(|p| p.id.clone());
    let origin = json!({ "slack": { "user": i.user, "team": i.team, "channel": i.channel } });
    let Some(person) = person else {
        let message = format!(
            "Warden does not know your Slack account ({}): nothing was decided. Ask your Warden admins to add `slack = \"{}\"` to your [[people]] entry.",
            i.user, i.user
        );
        record(
            &s,
            RecordKind::AccessDenied,
            "unknown_slack_user",
            &format!(
                "Slack user {} pressed on approval request {}, and is no person of the pack",
                i.user, i.approval_id
            ),
            json!({ "approval_id": i.approval_id, "origin": origin }),
        )
        .await;
        if let Press::Deny { .. } = i.press {
            return form_error(&message);
        }
        tokio::spawn(async move { tell(&app, &i, &message).await });
        return StatusCode::OK.into_response();
    };
    if let Press::Deny { reason } = &i.press
        && reason.trim().is_empty()
    {
        return form_error("A denial needs a reason: it is recorded as evidence.");
    }
    // Slack waits 3 seconds at most: answer now, decide after.
    let (s2, app2) = (s.clone(), Arc::clone(&app));
    tokio::spawn(async move { act(&s2, &app2, i, &person, origin).await });
    StatusCode::OK.into_response()
}

/// The denial form shown again with `message` under the reason.
fn form_error(message: &str) -> Response {
    (
        StatusCode::OK,
        Json(json!({ "response_action": "errors", "errors": { blocks::REASON: message } })),
    )
        .into_response()
}

/// Checks Slack's signature and timestamp (`now` in Unix seconds).
fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), ApiError> {
    use hmac::{KeyInit, Mac};
    let unsigned = |m: &str| error(StatusCode::UNAUTHORIZED, "invalid_signature", m);
    let ts = headers
        .get("x-slack-request-timestamp")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unsigned("no X-Slack-Request-Timestamp header: not a request from Slack"))?;
    let t: i64 = ts
        .trim()
        .parse()
        .map_err(|_| unsigned("X-Slack-Request-Timestamp is not a Unix time"))?;
    // `abs_diff`: a timestamp near i64's limits must not overflow.
    let off = now.abs_diff(t);
    if off > WINDOW_SECS.unsigned_abs() {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "stale_request",
            format!(
                "the request was signed {off} s from now; at most {WINDOW_SECS} s are accepted"
            ),
        ));
    }
    let given = headers
        .get("x-slack-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("v0="))
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| unsigned("no v0 X-Slack-Signature header: not a request from Slack"))?;
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .map_err(|_| unsigned("the signing secret cannot key an HMAC"))?;
    mac.update(b"v0:");
    mac.update(ts.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| unsigned("the X-Slack-Signature does not match the app's signing secret"))
}

/// Reads the form-encoded `payload`: a press Warden acts on, `None` for
/// one it ignores, or why it cannot be read.
fn parse(body: &[u8]) -> Result<Option<Interaction>, String> {
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("the body is not a form: {e}"))?;
    let raw = form
        .iter()
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v)
        .ok_or("the form has no `payload` field")?;
    let p: Value = serde_json::from_str(raw).map_err(|e| format!("`payload` is not JSON: {e}"))?;
    let text = |ptr: &str| p.pointer(ptr).and_then(Value::as_str).map(str::to_owned);
    let user = text("/user/id").ok_or("the payload has no user.id")?;
    let team = text("/team/id").or_else(|| text("/user/team_id"));
    match p.get("type").and_then(Value::as_str) {
        Some("block_actions") => {
            let action = p
                .pointer("/actions/0")
                .ok_or("a block_actions payload without actions")?;
            let id = action
                .get("action_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let approval_id = action
                .get("value")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let press = match id {
                blocks::APPROVE => Press::Approve,
                blocks::DENY => Press::DenyButton {
                    trigger_id: text("/trigger_id").ok_or("a Deny press without a trigger_id")?,
                },
                _ => return Ok(None),
            };
            Ok(Some(Interaction {
                press,
                approval_id: approval_id.ok_or("a press without the request's id as its value")?,
                user,
                team,
                channel: text("/channel/id").or_else(|| text("/container/channel_id")),
            }))
        }
        Some("view_submission") => {
            if text("/view/callback_id").as_deref() != Some(blocks::DENY_FORM) {
                return Ok(None);
            }
            let meta: Value = text("/view/private_metadata")
                .and_then(|m| serde_json::from_str(&m).ok())
                .ok_or("the denial form lost its private_metadata")?;
            let reason = p
                .pointer(&format!("/view/state/values/{0}/{0}/value", blocks::REASON))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Ok(Some(Interaction {
                press: Press::Deny { reason },
                approval_id: meta
                    .get("approval_id")
                    .and_then(Value::as_str)
                    .ok_or("the denial form names no request")?
                    .to_owned(),
                user,
                team,
                channel: meta
                    .get("channel")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }))
        }
        Some("view_closed" | "block_suggestion" | "shortcut" | "message_action") => Ok(None),
        Some(other) => Err(format!(
            "interaction type `{other}` is not one Warden handles"
        )),
        None => Err("the payload has no type".to_owned()),
    }
}

/// Does what the press asks, after Slack was answered.
async fn act(s: &AppState, app: &SlackApp, i: Interaction, person: &str, origin: Value) {
    let decision = match &i.press {
        Press::Approve => DecisionBody {
            decision: Verdict::Approve,
            comment: None,
        },
        Press::Deny { reason } => DecisionBody {
            decision: Verdict::Deny,
            comment: Some(reason.trim().to_owned()),
        },
        Press::DenyButton { trigger_id } => {
            open_form(s, app, &i, person, trigger_id).await;
            return;
        }
    };
    match s
        .runtime
        .answer_from(person, &i.approval_id, decision, Some(origin))
        .await
    {
        // The message is updated by the sender, like every change.
        Ok(_) => {}
        Err(e) => refused(s, app, &i, person, e).await,
    }
}

/// Opens the denial form, unless `person` may not answer (then says why).
async fn open_form(s: &AppState, app: &SlackApp, i: &Interaction, person: &str, trigger_id: &str) {
    let row = match s.store.approval(&i.approval_id).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            return refused(
                s,
                app,
                i,
                person,
                RuntimeError::UnknownApproval(i.approval_id.clone()),
            )
            .await;
        }
        Err(e) => return refused(s, app, i, person, e.into()).await,
    };
    if let Err(e) = s.runtime.may_answer(person, &row) {
        return refused(s, app, i, person, e).await;
    }
    let view = warden_runtime::ApprovalView::recorded(&row);
    let channel = i.channel.clone().unwrap_or_default();
    if let Err(e) = app
        .api
        .open_view(trigger_id, &blocks::deny_form(&view, &channel))
        .await
    {
        tracing::warn!(approval = %i.approval_id, error = %e, "cannot open the Slack denial form");
        let link = app
            .console_url
            .as_deref()
            .map(|b| {
                format!(
                    " Deny it in the console: {b}/console/approvals/{}",
                    i.approval_id
                )
            })
            .unwrap_or_default();
        tell(
            app,
            i,
            &format!("Slack could not open the denial form ({e}); nothing was decided.{link}"),
        )
        .await;
    }
}

/// Records a refused press and tells the presser why, ephemerally.
async fn refused(s: &AppState, app: &SlackApp, i: &Interaction, person: &str, e: RuntimeError) {
    let p = crate::auth::Principals::person(s.engine.current().pack(), person);
    let err = match p {
        Some(p) => match e {
            e @ (RuntimeError::NotAnApprover { .. } | RuntimeError::SeparationOfDuties { .. }) => {
                crate::routes::refuse(s, &p, PATH, ApiError::from(e)).await
            }
            e => crate::routes::runtime_refusal(s, &p, PATH, e).await,
        },
        None => ApiError::from(e),
    };
    let text = if err.status.is_server_error() {
        "Warden could not record your answer (it is unavailable); nothing was decided. Press again shortly."
            .to_owned()
    } else {
        format!(
            "Your answer was not recorded: {}.",
            err.message.trim_end_matches('.')
        )
    };
    tell(app, i, &text).await;
}

/// Tells the presser `text` where they pressed (only they see it).
async fn tell(app: &SlackApp, i: &Interaction, text: &str) {
    let Some(channel) = &i.channel else {
        tracing::warn!(user = %i.user, %text, "a Slack press without a channel: cannot answer ephemerally");
        return;
    };
    if let Err(e) = app.api.ephemeral(channel, &i.user, text).await {
        tracing::warn!(user = %i.user, error = %e, "cannot send an ephemeral Slack message");
    }
}

/// Records a refusal that has no person to name (a forged or replayed
/// request, an unknown Slack user, an unreadable payload).
async fn record(s: &AppState, kind: RecordKind, code: &str, message: &str, detail: Value) {
    let mut r = Record::new(kind);
    r.code = Some(code.to_owned());
    r.message = Some(format!("Slack interaction refused: {message}"));
    r.detail = Some(json!({ "path": PATH }));
    r.add_detail(detail);
    if let Err(e) = s.log.append(r).await {
        tracing::error!(error = %e, "cannot record a refused Slack interaction");
    }
}
