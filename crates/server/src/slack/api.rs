//! The few Slack Web API methods Warden calls, with the bot token.
//!
//! Slack answers HTTP 200 with `{"ok": false, "error": "..."}` for most
//! failures, and 429 with `Retry-After` when rate limited; both become a
//! [`SlackCallError`] that says whether and when to try again.

use std::time::Duration;

use serde_json::{Value, json};

/// The `event_type` of the metadata on every message Warden posts: how a
/// message posted before a crash is found again.
pub(crate) const METADATA_EVENT: &str = "warden_approval";

/// Why a call failed.
#[derive(Debug)]
pub(crate) struct SlackCallError {
    pub(crate) message: String,
    /// Slack asked to wait this long (429).
    pub(crate) retry_after: Option<Duration>,
}

impl std::fmt::Display for SlackCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn failed(message: impl Into<String>) -> SlackCallError {
    SlackCallError {
        message: message.into(),
        retry_after: None,
    }
}

/// A Slack Web API client for one app.
#[derive(Clone)]
pub(crate) struct SlackApi {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl SlackApi {
    /// Calls write method `method` with a JSON body; the answer when `ok`
    /// is true.
    async fn call(&self, method: &str, body: &Value) -> Result<Value, SlackCallError> {
        self.send(method, "application/json; charset=utf-8", body.to_string())
            .await
    }

    /// Calls read method `method` with form arguments (read methods take
    /// no JSON bodies).
    async fn call_form(
        &self,
        method: &str,
        args: &[(&str, &str)],
    ) -> Result<Value, SlackCallError> {
        let body =
            serde_urlencoded::to_string(args).map_err(|e| failed(format!("{method}: {e}")))?;
        self.send(method, "application/x-www-form-urlencoded", body)
            .await
    }

    async fn send(
        &self,
        method: &str,
        content_type: &str,
        body: String,
    ) -> Result<Value, SlackCallError> {
        let r = self
            .http
            .post(format!("{}/{method}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| failed(format!("{method}: {e}")))?;
        let status = r.status();
        if status.as_u16() == 429 {
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(30);
            return Err(SlackCallError {
                message: format!("{method}: rate limited by Slack (retry after {wait} s)"),
                retry_after: Some(Duration::from_secs(wait)),
            });
        }
        if !status.is_success() {
            return Err(failed(format!("{method}: HTTP {status}")));
        }
        let v: Value = r
            .json()
            .await
            .map_err(|e| failed(format!("{method}: unreadable answer: {e}")))?;
        if v.get("ok").and_then(Value::as_bool) == Some(true) {
            Ok(v)
        } else {
            let e = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error given");
            Err(failed(format!("{method}: {e}")))
        }
    }

    /// Posts `message` (`text` and `blocks`) to `channel`, tagged with the
    /// request's id; returns the message's `ts`.
    pub(crate) async fn post(
        &self,
        channel: &str,
        approval_id: &str,
        message: &Value,
    ) -> Result<String, SlackCallError> {
        let mut body = message.clone();
        body["channel"] = json!(channel);
        body["metadata"] = json!({
            "event_type": METADATA_EVENT,
            "event_payload": { "approval_id": approval_id },
        });
        body["unfurl_links"] = json!(false);
        let v = self.call("chat.postMessage", &body).await?;
        v.get("ts")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| failed("chat.postMessage: no ts in the answer"))
    }

    /// Replaces message `ts` in `channel` with `message`.
    pub(crate) async fn update(
        &self,
        channel: &str,
        ts: &str,
        message: &Value,
    ) -> Result<(), SlackCallError> {
        let mut body = message.clone();
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        self.call("chat.update", &body).await.map(|_| ())
    }

    /// The `ts` of a message Warden posted to `channel` for `approval_id`
    /// since `oldest` (Unix seconds), if there is one: how a post whose
    /// answer was lost (a crash, a timeout) is found instead of posted again.
    pub(crate) async fn find(
        &self,
        channel: &str,
        approval_id: &str,
        oldest: i64,
    ) -> Result<Option<String>, SlackCallError> {
        let mut cursor: Option<String> = None;
        // A request's message is among the channel's newest; 5 pages of
        // 200 is far more than an approval channel sees in minutes.
        for _ in 0..5 {
            let oldest = oldest.to_string();
            let mut args = vec![
                ("channel", channel),
                ("oldest", oldest.as_str()),
                ("include_all_metadata", "true"),
                ("limit", "200"),
            ];
            if let Some(c) = &cursor {
                args.push(("cursor", c.as_str()));
            }
            let v = self.call_form("conversations.history", &args).await?;
            let found = v
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|m| {
                    let md = m.get("metadata");
                    md.and_then(|d| d.get("event_type")).and_then(Value::as_str)
                        == Some(METADATA_EVENT)
                        && md
                            .and_then(|d| d.pointer("/event_payload/approval_id"))
                            .and_then(Value::as_str)
                            == Some(approval_id)
                })
                .and_then(|m| m.get("ts").and_then(Value::as_str).map(str::to_owned));
            if found.is_some() {
                return Ok(found);
            }
            cursor = v
                .pointer("/response_metadata/next_cursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(None)
    }

    /// Shows `text` to `user` only, in `channel`.
    pub(crate) async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), SlackCallError> {
        let body = json!({ "channel": channel, "user": user, "text": text });
        self.call("chat.postEphemeral", &body).await.map(|_| ())
    }

    /// Opens `view` (a modal) for the press `trigger_id` came with.
    pub(crate) async fn open_view(
        &self,
        trigger_id: &str,
        view: &Value,
    ) -> Result<(), SlackCallError> {
        let body = json!({ "trigger_id": trigger_id, "view": view });
        self.call("views.open", &body).await.map(|_| ())
    }
}
