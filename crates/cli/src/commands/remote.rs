//! What every command against a running server shares: where the server
//! is, whose token, one blocking API call that prints the server's error,
//! and small formatting helpers.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::cli::Exit;

/// Where the server is and who is asking.
#[derive(Debug, clap::Args)]
pub struct Remote {
    /// The Warden server.
    #[arg(long, env = "WARDEN_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Your bearer token (a person's: approver, operator or auditor).
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Print the server's JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// One API call: `Ok(Ok(json))` on success, `Ok(Err(exit))` after printing
/// the server's error, `Err` when the server cannot be reached.
pub fn call(
    remote: &Remote,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<Value>,
) -> anyhow::Result<Result<Value, Exit>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let mut url = format!("{}{path}", remote.server.trim_end_matches('/'));
    for (i, (k, v)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(k);
        url.push('=');
        url.push_str(&encode(v));
    }
    let mut req = client.request(method, &url).bearer_auth(&remote.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .with_context(|| format!("cannot reach the Warden server at {}", remote.server))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .with_context(|| format!("the server at {} did not answer JSON", remote.server))?;
    if status.is_success() {
        return Ok(Ok(v));
    }
    if remote.json {
        println!("{v:#}");
    } else {
        eprintln!(
            "error: {} ({}): {}",
            v.pointer("/error/code")
                .and_then(Value::as_str)
                .unwrap_or("error"),
            status.as_u16(),
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
    }
    Ok(Err(Exit::Failed))
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A string field, or `-`.
pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

/// How long ago an RFC 3339 time was, for people.
pub fn age(rfc3339: &str) -> String {
    let Some(then) = warden_evidence::micros(rfc3339) else {
        return "-".into();
    };
    let now = warden_evidence::micros(&warden_evidence::now()).unwrap_or(then);
    secs((now - then).max(0) / 1_000_000)
}

/// Seconds for people: 42s, 3m05s, 2h10m, 1d04h.
pub fn secs(s: i64) -> String {
    match s {
        ..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d{:02}h", s / 86_400, (s / 3600) % 24),
    }
}

/// Milliseconds for people: 850ms, 12.4s, then as [`secs`].
pub fn millis(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        secs(ms / 1000)
    }
}

/// Prints `v` as JSON when asked, else with `human`; the exit is `Ok`.
pub fn show(remote: &Remote, v: &Value, human: impl FnOnce(&Value)) -> Exit {
    if remote.json {
        println!("{v:#}");
    } else {
        human(v);
    }
    Exit::Ok
}
