//! A local stand-in for the Slack Web API (Slack itself cannot be reached
//! from tests): an HTTP server that answers `chat.postMessage`,
//! `chat.update`, `chat.postEphemeral`, `views.open` and
//! `conversations.history` as Slack does, keeps the channels' messages,
//! and records every call. It can be taken down (HTTP 503) and can swallow
//! the answer to a post (the message is kept, the connection dropped), as
//! a crash or a network failure would.

use std::io::{BufReader, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// The bot token the stand-in accepts.
pub const BOT_TOKEN: &str = "xoxb-test-warden";
/// The app's signing secret in tests.
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// One Web API call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
}

/// A message in a channel.
#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    messages: Vec<Message>,
}

pub struct SlackStandIn {
    /// The Web API's base URL (`http://127.0.0.1:port/api`).
    pub api: String,
    state: Arc<Mutex<State>>,
    down: Arc<AtomicBool>,
    swallow_posts: Arc<AtomicUsize>,
}

impl SlackStandIn {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api = format!("http://{}/api", listener.local_addr().unwrap());
        let me = Self {
            api,
            state: Arc::default(),
            down: Arc::default(),
            swallow_posts: Arc::default(),
        };
        let (state, down, swallow) = (
            Arc::clone(&me.state),
            Arc::clone(&me.down),
            Arc::clone(&me.swallow_posts),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (state, down, swallow) =
                    (Arc::clone(&state), Arc::clone(&down), Arc::clone(&swallow));
                std::thread::spawn(move || serve(conn, &state, &down, &swallow));
            }
        });
        me
    }

    /// While down, every call answers 503.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The next `n` posts are kept but never answered.
    pub fn swallow_posts(&self, n: usize) {
        self.swallow_posts.store(n, Ordering::SeqCst);
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        let s = self.state.lock().unwrap();
        s.calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Posts made for `approval_id` (by the metadata Warden attaches).
    pub fn posts_for(&self, approval_id: &str) -> Vec<Call> {
        self.calls("chat.postMessage")
            .into_iter()
            .filter(|c| c.body["metadata"]["event_payload"]["approval_id"] == approval_id)
            .collect()
    }

    /// The message showing `approval_id` in `channel`, as it is now.
    pub fn message(&self, channel: &str, approval_id: &str) -> Option<Message> {
        let s = self.state.lock().unwrap();
        s.messages
            .iter()
            .find(|m| {
                m.channel == channel
                    && m.body["metadata"]["event_payload"]["approval_id"] == approval_id
            })
            .cloned()
    }

    /// Ephemeral messages shown to `user`.
    pub fn ephemerals(&self, user: &str) -> Vec<String> {
        self.calls("chat.postEphemeral")
            .into_iter()
            .filter(|c| c.body["user"] == user)
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn serve(
    conn: std::net::TcpStream,
    state: &Mutex<State>,
    down: &AtomicBool,
    swallow: &AtomicUsize,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let Some((path, headers, raw)) = crate::common::read_request(&mut reader) else {
            return;
        };
        let method = path.trim_start_matches("/api/").to_owned();
        let (status, answer) = if down.load(Ordering::SeqCst) {
            (
                "503 Service Unavailable",
                json!({"ok": false, "error": "service_unavailable"}),
            )
        } else if headers.get("authorization").map(String::as_str)
            != Some(&format!("Bearer {BOT_TOKEN}"))
        {
            ("200 OK", json!({"ok": false, "error": "invalid_auth"}))
        } else {
            let ct = headers.get("content-type").cloned().unwrap_or_default();
            let body: Value = if ct.starts_with("application/json") {
                serde_json::from_slice(&raw).unwrap_or(Value::Null)
            } else {
                let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&raw).unwrap();
                Value::Object(
                    form.into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )
            };
            let mut s = state.lock().unwrap();
            s.calls.push(Call {
                method: method.clone(),
                body: body.clone(),
            });
            let answer = answer(&mut s, &method, &body);
            if method == "chat.postMessage"
                && swallow
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                // Kept, never answered: the caller cannot know it posted.
                return;
            }
            ("200 OK", answer)
        };
        let text = answer.to_string();
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(s: &mut State, method: &str, body: &Value) -> Value {
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    match method {
        "chat.postMessage" => {
            if !channel.starts_with('C') {
                return json!({"ok": false, "error": "channel_not_found"});
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let ts = format!("{now}.{:06}", s.messages.len() + 1);
            s.messages.push(Message {
                channel: channel.clone(),
                ts: ts.clone(),
                body: body.clone(),
            });
            json!({"ok": true, "channel": channel, "ts": ts, "message": body})
        }
        "chat.update" => {
            let ts = body["ts"].as_str().unwrap_or_default();
            match s
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
            {
                Some(m) => {
                    let metadata = m.body["metadata"].clone();
                    m.body = body.clone();
                    m.body["metadata"] = metadata;
                    json!({"ok": true, "channel": channel, "ts": ts})
                }
                None => json!({"ok": false, "error": "message_not_found"}),
            }
        }
        "conversations.history" => {
            let oldest: f64 = body["oldest"]
                .as_str()
                .and_then(|o| o.parse().ok())
                .unwrap_or(0.0);
            let with_metadata = body["include_all_metadata"] == "true";
            let messages: Vec<Value> = s
                .messages
                .iter()
                .rev()
                .filter(|m| m.channel == channel && m.ts.parse::<f64>().unwrap() >= oldest)
                .map(|m| {
                    let mut v = json!({"type": "message", "ts": m.ts, "text": m.body["text"]});
                    if with_metadata {
                        v["metadata"] = m.body["metadata"].clone();
                    }
                    v
                })
                .collect();
            json!({"ok": true, "messages": messages, "has_more": false})
        }
        "chat.postEphemeral" => json!({"ok": true, "message_ts": "1700000001.000001"}),
        "views.open" => json!({"ok": true, "view": {"id": "V0123"}}),
        _ => json!({"ok": false, "error": "unknown_method"}),
    }
}

// --- Slack's side of an interaction: payloads built and signed as Slack does ---

/// Slack's `X-Slack-Signature` for `body` sent at `ts`.
pub fn sign(secret: &str, ts: i64, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn form(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

/// A fresh trigger id and action time, as every press has.
pub fn fresh() -> (String, String) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (
        format!("6801234567.5601234567.{n:012x}"),
        format!("{}.{:06}", t.as_secs(), t.subsec_micros()),
    )
}

/// A `block_actions` payload: `user` pressed `action` on the message of
/// `approval` in `channel`.
pub fn button(user: &str, action: &str, approval: &str, channel: &str, message_ts: &str) -> String {
    let (trigger, action_ts) = fresh();
    form(&json!({
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": "T05WARDEN"},
        "api_app_id": "A05WARDEN",
        "token": "verification-token-is-deprecated",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": false},
        "trigger_id": trigger,
        "team": {"id": "T05WARDEN", "domain": "example"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": message_ts, "text": "Approval needed"},
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T05WARDEN/1/xyz",
        "actions": [{
            "action_id": action, "block_id": "warden_answer",
            "text": {"type": "plain_text", "text": "Approve"},
            "value": approval, "type": "button",
            "action_ts": action_ts,
        }],
    }))
}

/// A `view_submission` of the denial form with `reason`.
pub fn denial(user: &str, approval: &str, channel: &str, reason: &str) -> String {
    let (trigger, _) = fresh();
    form(&json!({
        "type": "view_submission",
        "team": {"id": "T05WARDEN", "domain": "example"},
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": "T05WARDEN"},
        "api_app_id": "A05WARDEN",
        "trigger_id": trigger,
        "view": {
            "id": "V0123", "type": "modal", "callback_id": "warden_deny_form",
            "private_metadata": json!({"approval_id": approval, "channel": channel}).to_string(),
            "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}},
        },
        "response_urls": [],
    }))
}
