//! On-call routes: resolving their URLs and keys, the payload each kind
//! expects, and sending one notification.
//!
//! - `webhook`: the incident as JSON, signed like approval webhooks
//!   (`X-Warden-Signature: sha256=<hex>` over `<timestamp>.<body>`, with
//!   `X-Warden-Timestamp`), plus `X-Warden-Event` and `X-Warden-Delivery`
//!   (the notification id: a receiver drops repeats by it).
//! - `slack`: an incoming-webhook message (`text` plus `blocks`).
//! - `pagerduty`: an Events API v2 event; `dedup_key` is the incident id,
//!   so acknowledging and resolving in Warden does the same in PagerDuty.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use warden_model::{IncidentState, Pack, RouteKind};
use warden_store::IncidentRow;

/// A route with its URL and secrets read.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) kind: RouteKind,
    pub(crate) url: String,
    pub(crate) secret: Option<Vec<u8>>,
    pub(crate) routing_key: Option<String>,
}

/// Every route of the pack: usable ones, and why the others are disabled.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: BTreeMap<String, Resolved>,
    disabled: BTreeMap<String, String>,
}

impl Router {
    /// Reads each route's URL and keys; a route whose variable or file
    /// cannot be read is disabled with a warning.
    pub fn build(pack: &Pack) -> Self {
        let mut out = Self::default();
        for r in pack.routes.values() {
            let read = |s: &warden_model::ValueSource| s.read(&pack.root);
            let resolved = (|| -> Result<Resolved, String> {
                Ok(Resolved {
                    kind: r.kind,
                    url: read(&r.url)?,
                    secret: r
                        .secret
                        .as_ref()
                        .map(read)
                        .transpose()?
                        .map(String::into_bytes),
                    routing_key: r.routing_key.as_ref().map(read).transpose()?,
                })
            })();
            match resolved {
                Ok(x) => {
                    out.routes.insert(r.id.clone(), x);
                }
                Err(why) => {
                    tracing::warn!(route = %r.id, reason = %why, "on-call route disabled");
                    out.disabled.insert(r.id.clone(), why);
                }
            }
        }
        out
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Resolved> {
        self.routes.get(id)
    }

    /// Why route `id` is disabled, if it is.
    pub fn disabled(&self, id: &str) -> Option<&str> {
        self.disabled.get(id).map(String::as_str)
    }

    /// The usable routes among `ids`, in order.
    pub fn usable(&self, ids: &[String]) -> Vec<String> {
        ids.iter()
            .filter(|r| self.routes.contains_key(*r))
            .cloned()
            .collect()
    }
}

fn pd_severity(s: &str) -> &'static str {
    match s {
        "critical" => "critical",
        "high" => "error",
        "warning" => "warning",
        _ => "info",
    }
}

/// The payload of `step` of incident `i` for a route of `kind`, without
/// secrets (a PagerDuty routing key is added when sent).
pub fn payload_for(kind: RouteKind, i: &IncidentRow, step: &str, pack_name: &str) -> Value {
    let subject: Value = serde_json::from_str(&i.subject).unwrap_or(Value::Null);
    let detail: Value = serde_json::from_str(&i.detail).unwrap_or(Value::Null);
    let ack_by = i.due_us.map(warden_evidence::time_from_micros);
    match kind {
        RouteKind::Webhook => json!({
            "event": format!("incident.{}", step_event(step)),
            "step": step,
            "pack": pack_name,
            "drill": i.drill,
            "incident": {
                "id": i.id,
                "playbook": i.playbook,
                "detector": i.detector,
                "state": i.state,
                "severity": i.severity,
                "owner": i.owner,
                "on_call": detail.get("on_call"),
                "summary": i.summary,
                "subject": subject,
                "first_event": warden_evidence::time_from_micros(i.first_event_us),
                "first_seq": i.first_seq,
                "detected": warden_evidence::time_from_micros(i.detected_us),
                "acknowledge_by": ack_by,
                "level": i.level,
                "breaches": i.breaches,
                "triggers": i.triggers,
                "acknowledged_by": i.acked_by,
                "resolved_by": i.resolved_by,
                "findings": detail.get("findings"),
                "actions": detail.get("actions"),
            },
        }),
        RouteKind::Slack => {
            let head = match step_event(step) {
                "acknowledged" => format!(
                    "Acknowledged by {}: {}",
                    i.acked_by.as_deref().unwrap_or("?"),
                    i.summary
                ),
                "resolved" => format!(
                    "Resolved by {}: {}",
                    i.resolved_by.as_deref().unwrap_or("?"),
                    i.summary
                ),
                "escalated" => format!(
                    "[{}] Escalated (response window missed): {}",
                    i.severity.to_uppercase(),
                    i.summary
                ),
                _ => format!("[{}] {}", i.severity.to_uppercase(), i.summary),
            };
            let text = format!(
                "{head}\nIncident {} · playbook `{}` · owner {} · {}",
                i.id,
                i.playbook,
                i.owner,
                match &ack_by {
                    Some(t) if i.state == IncidentState::Open =>
                        format!("acknowledge by {t}: `warden incidents ack {}`", i.id),
                    _ => format!("state {}", i.state),
                }
            );
            json!({
                "text": text,
                "blocks": [
                    { "type": "section", "text": { "type": "mrkdwn", "text": text } },
                    { "type": "context", "elements": [
                        { "type": "mrkdwn", "text": format!("Warden · pack `{pack_name}` · detector `{}`", i.detector) }
                    ] }
                ]
            })
        }
        RouteKind::PagerDuty => {
            let action = match step_event(step) {
                "acknowledged" => "acknowledge",
                "resolved" => "resolve",
                _ => "trigger",
            };
            let mut v = json!({
                "event_action": action,
                "dedup_key": i.id,
            });
            if action == "trigger" {
                let summary: String = i.summary.chars().take(1024).collect();
                v["payload"] = json!({
                    "summary": summary,
                    "severity": pd_severity(&i.severity),
                    "source": format!("warden/{pack_name}"),
                    "component": subject.get("tool").or_else(|| subject.get("agent")),
                    "group": subject.get("system"),
                    "class": i.detector,
                    "timestamp": warden_evidence::time_from_micros(i.detected_us),
                    "custom_details": {
                        "incident": i.id,
                        "playbook": i.playbook,
                        "owner": i.owner,
                        "subject": subject,
                        "findings": detail.get("findings"),
                        "level": i.level,
                    },
                });
                v["client"] = json!("Warden");
            }
            v
        }
    }
}

/// `opened`, `escalated`, `acknowledged`, `resolved` of a step name
/// (`escalated-2` → `escalated`).
pub(crate) fn step_event(step: &str) -> &str {
    step.split('-').next().unwrap_or(step)
}

/// Sends one notification; `Ok(status)` on a 2xx answer.
pub(crate) async fn send(
    http: &reqwest::Client,
    route: &Resolved,
    id: &str,
    step: &str,
    payload: &str,
) -> Result<u16, String> {
    let body: Vec<u8> = match route.kind {
        RouteKind::PagerDuty => {
            let mut v: Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
            v["routing_key"] = json!(route.routing_key.clone().unwrap_or_default());
            v.to_string().into_bytes()
        }
        _ => payload.as_bytes().to_vec(),
    };
    let mut req = http
        .post(&route.url)
        .header("content-type", "application/json");
    if route.kind == RouteKind::Webhook {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        req = req
            .header("x-warden-event", format!("incident.{}", step_event(step)))
            .header("x-warden-delivery", id)
            .header("x-warden-timestamp", ts.to_string());
        if let Some(key) = &route.secret {
            req = req.header(
                "x-warden-signature",
                warden_evidence::webhook_signature(key, ts, &body),
            );
        }
    }
    match req.body(body).send().await {
        Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
        Ok(r) => {
            let status = r.status();
            let text: String = r
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            Err(format!("{status}: {text}"))
        }
        Err(e) => Err(e.to_string()),
    }
}
