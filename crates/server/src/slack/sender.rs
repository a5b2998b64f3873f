//! Posts and updates the Slack messages of approval requests.
//!
//! A due message (its request changed since it was last shown) is claimed
//! with a lease, so replicas sharing a database never send it together;
//! the outcome is committed with the revision shown. A message not yet
//! posted whose earlier claim may have reached Slack (the process died, or
//! the answer was lost) is looked up by its metadata first: a request is
//! never posted twice to a channel.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use warden_evidence::RecordKind;
use warden_runtime::ApprovalView;
use warden_store::{SlackMessageRow, StateWrite};

use super::api::SlackCallError;
use super::{SlackApp, blocks};
use crate::AppState;
use crate::console::now_us;

/// How long a claimed message is held by its sender.
const LEASE: Duration = Duration::from_secs(60);
/// How often due messages are looked for without a local change (retries,
/// other replicas' changes).
const TICK: Duration = Duration::from_secs(1);
/// Failed calls before giving up on a revision (about half an hour of
/// backoff); the request's next change tries again.
const MAX_ATTEMPTS: i64 = 12;
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Errors no retry can fix: give up at once, with the reason in evidence.
const PERMANENT: &[&str] = &[
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
];

/// Starts the sender: it runs until the process ends.
pub(crate) fn start(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = state.log.subscribe();
        loop {
            match deliver_due(&state).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "Slack sender"),
            }
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                () = approval_change(&mut events) => {}
            }
        }
    })
}

/// Returns at the next committed change of an approval request.
async fn approval_change(
    events: &mut tokio::sync::broadcast::Receiver<Arc<warden_evidence::Record>>,
) {
    loop {
        match events.recv().await {
            Ok(r) => {
                if matches!(
                    r.kind,
                    RecordKind::ApprovalRequested
                        | RecordKind::ApprovalRecorded
                        | RecordKind::ApprovalGranted
                        | RecordKind::ApprovalEscalated
                        | RecordKind::ApprovalExpired
                        | RecordKind::ApprovalCancelled
                        | RecordKind::ActionReevaluated
                ) {
                    return;
                }
            }
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Sends every due message once; returns how many were tried.
async fn deliver_due(state: &AppState) -> Result<usize, warden_store::StoreError> {
    let Some(app) = state.slack.app(&state.engine) else {
        return Ok(0);
    };
    let now = now_us();
    let due = state.store.due_slack_messages(now, 16).await?;
    let mut sends = Vec::new();
    for m in due {
        let lease = now.saturating_add(i64::try_from(LEASE.as_micros()).unwrap_or(i64::MAX));
        if !state.store.claim_slack_message(&m, now, lease).await? {
            continue;
        }
        let (state, app) = (state.clone(), Arc::clone(&app));
        sends.push(tokio::spawn(async move { send(&state, &app, m).await }));
    }
    let tried = sends.len();
    for s in sends {
        match s.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a Slack message's state"),
            Err(e) => tracing::warn!(error = %e, "Slack send task failed"),
            Ok(Ok(())) => {}
        }
    }
    Ok(tried)
}

/// Brings message `m` up to date with its request and commits the outcome.
async fn send(
    state: &AppState,
    app: &SlackApp,
    mut m: SlackMessageRow,
) -> Result<(), warden_store::StoreError> {
    let row = state.store.approval(&m.approval_id).await?;
    let now = now_us();
    let mut records = Vec::new();
    let result = match &row {
        None => Err(SlackCallError {
            message: format!("approval request `{}` is not in the store", m.approval_id),
            retry_after: None,
        }),
        Some(row) => {
            let view = ApprovalView::recorded(row);
            let message = blocks::message(
                &view,
                state.engine.current().pack(),
                app.console_url.as_deref(),
            );
            show(app, &m, &message).await
        }
    };
    m.attempts += 1;
    m.updated_us = now;
    m.lease_us = None;
    match result {
        Ok((ts, posted)) => {
            if posted && let Some(row) = &row {
                let mut r = warden_runtime::approval_record(RecordKind::NotificationDelivered, row);
                r.message = Some(format!(
                    "approval request {} posted to Slack channel {}",
                    m.approval_id, m.channel
                ));
                r.add_detail(json!({ "via": "slack", "channel": m.channel, "ts": ts, "attempts": m.attempts }),
                );
                records.push(r);
            }
            m.ts = Some(ts);
            m.shown = m.wanted;
            m.attempts = 0;
            m.failed = false;
            m.last_error = None;
            m.next_us = now;
        }
        Err(e) => {
            if e.message.ends_with("message_not_found") {
                // The message was deleted in Slack: post it again.
                m.ts = None;
            }
            let permanent = PERMANENT.iter().any(|p| e.message.ends_with(p));
            if permanent || m.attempts >= MAX_ATTEMPTS {
                m.failed = true;
                tracing::error!(approval = %m.approval_id, channel = %m.channel, error = %e, "Slack message not sent: giving up until the request changes");
                if let Some(row) = &row {
                    let mut r =
                        warden_runtime::approval_record(RecordKind::NotificationFailed, row);
                    r.code = Some("notification_failed".into());
                    r.message = Some(format!(
                        "approval request {} could not be shown in Slack channel {} after {} attempt{}: {e}",
                        m.approval_id,
                        m.channel,
                        m.attempts,
                        if m.attempts == 1 { "" } else { "s" }
                    ));
                    r.add_detail(json!({ "via": "slack", "channel": m.channel, "attempts": m.attempts, "error": e.message }),
                    );
                    records.push(r);
                }
            } else {
                tracing::warn!(approval = %m.approval_id, channel = %m.channel, attempt = m.attempts, error = %e, "Slack message failed; will retry");
            }
            let exp = u32::try_from(m.attempts - 1).unwrap_or(u32::MAX).min(20);
            let wait = e.retry_after.unwrap_or_else(|| {
                Duration::from_secs(1)
                    .saturating_mul(2u32.saturating_pow(exp))
                    .min(MAX_BACKOFF)
            });
            m.next_us = now.saturating_add(i64::try_from(wait.as_micros()).unwrap_or(i64::MAX));
            m.last_error = Some(e.message);
        }
    }
    state
        .log
        .commit(records, vec![StateWrite::SlackMessage(m)])
        .await?;
    Ok(())
}

/// Updates the message, or posts it (first looking for an earlier post
/// whose answer was lost). Returns its `ts` and whether it was posted now.
async fn show(
    app: &SlackApp,
    m: &SlackMessageRow,
    message: &serde_json::Value,
) -> Result<(String, bool), SlackCallError> {
    if let Some(ts) = &m.ts {
        app.api.update(&m.channel, ts, message).await?;
        return Ok((ts.clone(), false));
    }
    if m.post_tries > 0 {
        let since = m.created_us / 1_000_000 - 60;
        if let Some(ts) = app.api.find(&m.channel, &m.approval_id, since).await? {
            app.api.update(&m.channel, &ts, message).await?;
            return Ok((ts, false));
        }
    }
    let ts = app.api.post(&m.channel, &m.approval_id, message).await?;
    Ok((ts, true))
}
