//! `retry_storm`: retries of one run or one tool at or above a threshold
//! within a window. A retry is a connector re-send (attempts beyond the
//! first) or the identical request (agent, tool, arguments) proposed again
//! within the window.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use warden_evidence::RecordKind;

use super::{Event, Subject, Trigger, Window, trigger};

#[derive(Debug)]
pub(crate) struct Retry {
    retries: u32,
    window: Duration,
    /// Last proposal time of each (agent, tool, arguments hash).
    seen: HashMap<(String, String, String), i64>,
    per_key: HashMap<String, Window>,
}

/// Proposals remembered before stale ones are pruned.
const SEEN_CAP: usize = 50_000;

impl Retry {
    pub(crate) fn new(retries: u32, window: Duration) -> Self {
        Self {
            retries,
            window,
            seen: HashMap::new(),
            per_key: HashMap::new(),
        }
    }

    fn width_us(&self) -> i64 {
        i64::try_from(self.window.as_micros()).unwrap_or(i64::MAX)
    }

    pub(crate) fn observe(&mut self, e: &Event<'_>) -> Vec<Trigger> {
        let r = e.record;
        let (n, how) = match r.kind {
            RecordKind::ActionExecuted => {
                let attempts = e.detail("attempts").and_then(|v| v.as_u64()).unwrap_or(1);
                if attempts <= 1 {
                    return Vec::new();
                }
                (
                    u32::try_from(attempts - 1).unwrap_or(u32::MAX),
                    "re-sent by the connector",
                )
            }
            RecordKind::ActionDecided => {
                let (Some(agent), Some(tool), Some(args)) =
                    (e.agent(), e.tool(), r.args_sha256.as_deref())
                else {
                    return Vec::new();
                };
                let key = (agent.to_owned(), tool.to_owned(), args.to_owned());
                let width = self.width_us();
                let again = self
                    .seen
                    .insert(key, e.t)
                    .is_some_and(|prev| e.t - prev <= width);
                if self.seen.len() > SEEN_CAP {
                    self.seen.retain(|_, t| e.t - *t <= width);
                }
                if !again {
                    return Vec::new();
                }
                (1, "proposed again")
            }
            _ => return Vec::new(),
        };
        let (key, subject) = match (&r.run, e.tool()) {
            (Some(run), _) => (
                format!("run:{run}"),
                Subject {
                    run: Some(run.clone()),
                    ..e.subject()
                },
            ),
            (None, Some(tool)) => (format!("tool:{tool}"), e.subject()),
            (None, None) => return Vec::new(),
        };
        let window = self.window;
        let w = self.per_key.entry(key.clone()).or_default();
        let total = w.add(e.t, r.seq, n, window);
        if self.per_key.len() > SEEN_CAP {
            self.per_key.retain(|_, w| {
                w.trim(e.t, window);
                !w.is_empty()
            });
        }
        let Some(w) = self.per_key.get_mut(&key) else {
            return Vec::new();
        };
        if total < self.retries {
            return Vec::new();
        }
        let first = w.first().unwrap_or((e.t, r.seq));
        w.clear();
        vec![trigger(
            key.clone(),
            format!(
                "{total} retries of {key} within {}s (threshold {}); last {how}",
                window.as_secs(),
                self.retries
            ),
            subject,
            first,
            json!({ "retries": total, "window_s": window.as_secs(), "last": how, "last_action": r.action }),
        )]
    }
}
