//! `policy_violation`: denied attempts per agent at or above a threshold
//! within a window; a denial by a policy annotated `@severity("critical")`
//! at once.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use warden_evidence::RecordKind;
use warden_model::{ActionStatus, IncidentSeverity};

use super::{Event, Trigger, Window, trigger};

#[derive(Debug)]
pub(crate) struct Violation {
    denials: u32,
    window: Duration,
    per_agent: HashMap<String, Window>,
}

impl Violation {
    pub(crate) fn new(denials: u32, window: Duration) -> Self {
        Self {
            denials,
            window,
            per_agent: HashMap::new(),
        }
    }

    pub(crate) fn observe(&mut self, e: &Event<'_>) -> Vec<Trigger> {
        let r = e.record;
        if r.kind != RecordKind::ActionDecided {
            return Vec::new();
        }
        let denied =
            r.status == Some(ActionStatus::Denied) && r.code.as_deref() == Some("policy_denied");
        // Shadow mode (or a policy on trial) let it through, but enforcement
        // would have denied it: rollout must see violations too.
        let shadow = !denied
            && e.detail("would_be")
                .and_then(|w| w.get("code"))
                .and_then(|c| c.as_str())
                == Some("policy_denied");
        if !denied && !shadow {
            return Vec::new();
        }
        let Some(agent) = e.agent() else {
            return Vec::new();
        };
        let policies: Vec<&str> = r
            .checks
            .iter()
            .flat_map(|c| c.policies.iter())
            .filter(|p| p.effect == "forbid")
            .map(|p| p.id.as_str())
            .collect();
        let critical = r
            .checks
            .iter()
            .flat_map(|c| c.policies.iter())
            .find(|p| p.annotations.get("severity").map(String::as_str) == Some("critical"));
        if let Some(p) = critical.filter(|_| denied) {
            let mut t = trigger(
                format!("agent:{agent}"),
                format!(
                    "`{agent}` attempted `{}`, which critical policy `{}` forbids",
                    e.tool().unwrap_or("?"),
                    p.id
                ),
                e.subject(),
                (e.t, r.seq),
                json!({
                    "critical_policy": p.id,
                    "reason": p.annotations.get("reason"),
                    "action": r.action,
                }),
            );
            t.severity = Some(IncidentSeverity::Critical);
            return vec![t];
        }
        let key = if shadow {
            format!("shadow:{agent}")
        } else {
            agent.to_owned()
        };
        let w = self.per_agent.entry(key).or_default();
        let n = w.add(e.t, r.seq, 1, self.window);
        if n < self.denials {
            return Vec::new();
        }
        let first = w.first().unwrap_or((e.t, r.seq));
        w.clear();
        let summary = format!(
            "`{agent}` had {n} denied attempts within {}s (threshold {})",
            self.window.as_secs(),
            self.denials
        );
        let mut t = trigger(
            if shadow {
                format!("shadow:agent:{agent}")
            } else {
                format!("agent:{agent}")
            },
            if shadow {
                format!("shadow: {summary}, would-be denials recorded without blocking")
            } else {
                summary
            },
            e.subject(),
            first,
            json!({
                "denials": n,
                "window_s": self.window.as_secs(),
                "last_tool": e.tool(),
                "last_policies": policies,
                "last_action": r.action,
                "shadow": shadow,
            }),
        );
        t.shadow = shadow;
        vec![t]
    }
}
