//! Post-incident reviews: what happened, and the pack version that carries
//! the fix (or why nothing changed). A review is an evidence record linked
//! to the incident, and is kept on the incident for `incidents show`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use warden_evidence::RecordKind;
use warden_model::IncidentState;
use warden_store::StateWrite;

use crate::error::OversightError;
use crate::incidents::{IncidentView, record};
use crate::{Oversight, now_us};

/// A post-incident review as written by its author.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// What happened and what was learned.
    pub summary: String,
    /// The pack version (`sha256:…`, or its first 12 hex digits) that
    /// carries the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_change: Option<String>,
    /// Why no policy change was needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_change: Option<String>,
    /// The runbook updated or followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
}

impl Review {
    /// Checks the review reads as one: a summary, exactly one of
    /// `pack_change` and `no_change`, a runbook that is an http(s) URL.
    pub fn check(&self) -> Result<(), OversightError> {
        let bad = |m: &str| Err(OversightError::InvalidBody(m.to_owned()));
        if self.summary.trim().is_empty() {
            return bad("a review needs a `summary` of what happened");
        }
        if self.summary.len() > 10_000 {
            return bad("`summary` is longer than 10,000 bytes");
        }
        match (&self.pack_change, &self.no_change) {
            (Some(_), Some(_)) => {
                return bad(
                    "give either `pack_change` (the pack version with the fix) or `no_change` (why none was needed), not both",
                );
            }
            (None, None) => {
                return bad(
                    "say what changed: `pack_change` (the pack version with the fix) or `no_change` (why none was needed)",
                );
            }
            (Some(v), None) => {
                let hex = v.strip_prefix("sha256:").unwrap_or(v);
                if hex.len() < 12 || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return bad(
                        "`pack_change` is a pack version: `sha256:<hex>` or at least its first 12 hex digits (`warden validate` prints it)",
                    );
                }
            }
            (None, Some(r)) if r.trim().is_empty() => {
                return bad("`no_change` needs the reason");
            }
            _ => {}
        }
        if let Some(u) = &self.runbook
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return bad("`runbook` is a URL (http:// or https://)");
        }
        Ok(())
    }
}

/// Whether pack version `a` names `b` (full, or a prefix of 12+ digits).
pub fn same_version(a: &str, b: &str) -> bool {
    let a = a.strip_prefix("sha256:").unwrap_or(a);
    let b = b.strip_prefix("sha256:").unwrap_or(b);
    a.len() >= 12 && b.len() >= 12 && (a.starts_with(b) || b.starts_with(a))
}

impl Oversight {
    /// Records `review` of resolved incident `id` by `person` (its owner,
    /// the owning team, the person on call, or an operator).
    pub async fn review(
        &self,
        id: &str,
        person: &str,
        review: Review,
    ) -> Result<IncidentView, OversightError> {
        review.check()?;
        let _g = self.0.ops.lock().await;
        let engine = self.0.engine.current();
        let pack = engine.pack();
        let mut r = self
            .store()
            .incident(id)
            .await?
            .ok_or_else(|| OversightError::UnknownIncident(id.to_owned()))?;
        if !Self::may_answer(pack, person, &r) {
            return Err(OversightError::NotResponder {
                person: person.to_owned(),
                what: "review",
                id: id.to_owned(),
            });
        }
        if r.state != IncidentState::Resolved {
            return Err(OversightError::IncidentState {
                id: id.to_owned(),
                state: r.state,
                why: "a post-incident review follows resolution: resolve it first",
            });
        }
        let now = now_us();
        let mut detail: Value = serde_json::from_str(&r.detail).unwrap_or_else(|_| json!({}));
        let entry = json!({
            "summary": review.summary,
            "pack_change": review.pack_change,
            "no_change": review.no_change,
            "runbook": review.runbook,
            "by": person,
            "at": warden_evidence::time_from_micros(now),
            "pack_in_force": pack.version.as_str(),
        });
        if let Value::Object(m) = &mut detail {
            m.insert("review".into(), entry.clone());
        }
        r.detail = detail.to_string();
        r.updated_us = now;
        let message = match &review.pack_change {
            Some(v) => format!("incident {id} reviewed by `{person}`: fixed in pack version {v}"),
            None => format!("incident {id} reviewed by `{person}`: no policy change"),
        };
        let rec = record(
            RecordKind::IncidentReviewed,
            &r,
            message,
            json!({ "review": entry }),
        );
        self.0
            .log
            .commit(vec![rec], vec![StateWrite::Incident(r.clone())])
            .await?;
        Ok(IncidentView::from_row(&r))
    }
}
