//! `failure_cascade`: a tool's or a system's error rate at or above X% over
//! at least N calls within a window, or K distinct tools of one system
//! failing within the window.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use serde_json::json;
use warden_evidence::RecordKind;
use warden_model::{ActionStatus, Pack};

use super::{Event, Subject, Trigger, trigger};

/// Calls of one tool or system: (time, seq, failed, tool).
#[derive(Debug, Default)]
struct Calls {
    calls: VecDeque<(i64, u64, bool, String)>,
}

const CAP: usize = 4096;

impl Calls {
    fn add(&mut self, t: i64, seq: u64, failed: bool, tool: &str, width: Duration) {
        self.calls.push_back((t, seq, failed, tool.to_owned()));
        if self.calls.len() > CAP {
            self.calls.pop_front();
        }
        let from = t - i64::try_from(width.as_micros()).unwrap_or(i64::MAX);
        while self.calls.front().is_some_and(|c| c.0 < from) {
            self.calls.pop_front();
        }
    }

    fn failed(&self) -> usize {
        self.calls.iter().filter(|c| c.2).count()
    }

    fn first_failure(&self) -> Option<(i64, u64)> {
        self.calls.iter().find(|c| c.2).map(|c| (c.0, c.1))
    }

    fn failing_tools(&self) -> BTreeSet<&str> {
        self.calls
            .iter()
            .filter(|c| c.2)
            .map(|c| c.3.as_str())
            .collect()
    }
}

#[derive(Debug)]
pub(crate) struct Cascade {
    error_rate: f64,
    min_calls: u32,
    tools_failing: u32,
    window: Duration,
    tools: HashMap<String, Calls>,
    systems: HashMap<String, Calls>,
}

impl Cascade {
    pub(crate) fn new(
        error_rate: f64,
        min_calls: u32,
        tools_failing: u32,
        window: Duration,
    ) -> Self {
        Self {
            error_rate,
            min_calls,
            tools_failing,
            window,
            tools: HashMap::new(),
            systems: HashMap::new(),
        }
    }

    fn rate_exceeded(&self, c: &Calls) -> Option<(usize, usize, f64)> {
        let n = c.calls.len();
        let failed = c.failed();
        if n < self.min_calls as usize || n == 0 {
            return None;
        }
        let rate = failed as f64 * 100.0 / n as f64;
        (rate >= self.error_rate).then_some((failed, n, rate))
    }

    pub(crate) fn observe(&mut self, e: &Event<'_>, _pack: &Pack) -> Vec<Trigger> {
        let r = e.record;
        if r.kind != RecordKind::ActionExecuted {
            return Vec::new();
        }
        let (Some(tool), Some(status)) = (e.tool(), r.status) else {
            return Vec::new();
        };
        let failed = status == ActionStatus::Failed;
        let window = self.window;
        let mut out = Vec::new();
        let calls = self.tools.entry(tool.to_owned()).or_default();
        calls.add(e.t, r.seq, failed, tool, window);
        if failed
            && let Some(calls) = self.tools.get(tool)
            && let Some((f, n, rate)) = self.rate_exceeded(calls)
        {
            let first = calls.first_failure().unwrap_or((e.t, r.seq));
            out.push(trigger(
                format!("tool:{tool}"),
                format!(
                    "`{tool}` failed {f} of {n} calls ({rate:.0}%) within {}s (threshold {}%)",
                    window.as_secs(),
                    self.error_rate
                ),
                e.subject(),
                first,
                json!({ "scope": "tool", "failed": f, "calls": n, "error_rate": rate, "last_code": r.code, "window_s": window.as_secs() }),
            ));
            if let Some(c) = self.tools.get_mut(tool) {
                c.calls.clear();
            }
        }
        let Some(system) = e.system else {
            return out;
        };
        let calls = self.systems.entry(system.to_owned()).or_default();
        calls.add(e.t, r.seq, failed, tool, window);
        if !failed {
            return out;
        }
        let Some(calls) = self.systems.get(system) else {
            return out;
        };
        let failing: Vec<String> = calls
            .failing_tools()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let by_tools = failing.len() >= self.tools_failing as usize && self.tools_failing > 1;
        let by_rate = self.rate_exceeded(calls);
        if by_tools || (by_rate.is_some() && out.is_empty()) {
            let first = calls.first_failure().unwrap_or((e.t, r.seq));
            let (f, n) = (calls.failed(), calls.calls.len());
            let summary = if by_tools {
                format!(
                    "{} tools of system `{system}` failing within {}s: {}",
                    failing.len(),
                    window.as_secs(),
                    failing.join(", ")
                )
            } else {
                format!(
                    "system `{system}` failed {f} of {n} calls within {}s (threshold {}%)",
                    window.as_secs(),
                    self.error_rate
                )
            };
            out.push(trigger(
                format!("system:{system}"),
                summary,
                Subject {
                    agent: None,
                    tool: None,
                    system: Some(system.to_owned()),
                    run: None,
                    workflow: None,
                    approval: None,
                    tools: failing.clone(),
                },
                first,
                json!({ "scope": "system", "failing_tools": failing, "failed": f, "calls": n, "window_s": window.as_secs() }),
            ));
            if let Some(c) = self.systems.get_mut(system) {
                c.calls.clear();
            }
        }
        out
    }
}
