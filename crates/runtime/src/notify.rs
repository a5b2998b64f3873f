//! Approver-group webhooks: a new or escalated approval request is POSTed as
//! JSON to the group's `notify` URL, signed with HMAC-SHA256 when the pack
//! names a secret.
//!
//! The signature header is `X-Warden-Signature: sha256=<hex>`, the HMAC of
//! `<timestamp>.<body>` where the timestamp (Unix seconds) is sent as
//! `X-Warden-Timestamp`; a receiver recomputes it and rejects old
//! timestamps. Delivery is tried three times with backoff in the
//! background; a failure is logged. (A durable outbox for every notifier
//! comes with the oversight layer.)

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use warden_evidence::webhook_signature as signature;
use warden_model::Pack;

/// Attempts per notification.
const ATTEMPTS: u32 = 3;

/// One group's webhook, resolved.
#[derive(Debug, Clone)]
struct Hook {
    url: String,
    secret: Option<Vec<u8>>,
}

/// The webhooks of every approver group that has one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Notifier {
    client: Option<reqwest::Client>,
    hooks: BTreeMap<String, Hook>,
    /// Slack channel by group, when Slack is set up and its secrets can be
    /// read (the server's Slack sender posts and updates the messages).
    slack: BTreeMap<String, String>,
}

impl Notifier {
    /// The webhooks of `pack`'s groups. A group whose URL or secret cannot
    /// be read gets no notifications; a warning says why.
    pub(crate) fn build(pack: &Pack) -> Self {
        let mut hooks = BTreeMap::new();
        for g in pack.approver_groups.values() {
            let Some(n) = &g.notify else { continue };
            let url = n.url.read(&pack.root);
            let secret = n.secret.as_ref().map(|s| s.read(&pack.root)).transpose();
            match (url, secret) {
                (Ok(url), Ok(secret)) => {
                    hooks.insert(
                        g.id.clone(),
                        Hook {
                            url,
                            secret: secret.map(String::into_bytes),
                        },
                    );
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(group = %g.id, reason = %e, "approval notifications disabled for this group");
                }
            }
        }
        let client = if hooks.is_empty() {
            None
        } else {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| tracing::warn!(error = %e, "cannot build an HTTP client: approval notifications disabled"))
                .ok()
        };
        let slack = match &pack.slack {
            Some(s) => match s.secrets(&pack.root) {
                Ok(_) => s.channels.clone(),
                Err(reason) => {
                    tracing::warn!(%reason, "Slack approvals disabled: requests wait in the console and the API");
                    BTreeMap::new()
                }
            },
            None => BTreeMap::new(),
        };
        Self {
            client,
            hooks,
            slack,
        }
    }

    /// The Slack channel `group`'s requests are posted to, when Slack is on.
    pub(crate) fn slack_channel(&self, group: &str) -> Option<&str> {
        self.slack.get(group).map(String::as_str)
    }

    /// Whether `group` has a webhook.
    pub(crate) fn has(&self, group: &str) -> bool {
        self.client.is_some() && self.hooks.contains_key(group)
    }

    /// POSTs `payload` to `group`'s webhook in the background.
    pub(crate) fn send(&self, group: &str, event: &'static str, payload: Value) {
        let (Some(client), Some(hook)) = (self.client.clone(), self.hooks.get(group).cloned())
        else {
            return;
        };
        let group = group.to_owned();
        tokio::spawn(async move {
            let body = payload.to_string().into_bytes();
            let mut backoff = Duration::from_millis(500);
            for attempt in 1..=ATTEMPTS {
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut req = client
                    .post(&hook.url)
                    .header("content-type", "application/json")
                    .header("x-warden-event", event)
                    .header("x-warden-timestamp", ts.to_string())
                    .body(body.clone());
                if let Some(key) = &hook.secret {
                    req = req.header("x-warden-signature", signature(key, ts, &body));
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(%group, attempt, status = %r.status(), "approval webhook refused")
                    }
                    Err(e) => {
                        tracing::warn!(%group, attempt, error = %e, "approval webhook failed")
                    }
                }
                if attempt < ATTEMPTS {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
            tracing::error!(%group, event, "approval notification not delivered");
        });
    }
}
