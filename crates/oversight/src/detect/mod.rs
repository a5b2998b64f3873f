//! Detectors over the live event stream: each committed evidence record
//! goes through every playbook's detector, which keeps its own windowed
//! state and returns a [`Trigger`] when its pattern shows.
//!
//! Detectors are plain synchronous state machines (no I/O), so they are
//! cheap per event and tested without a server. The `stuck` detector also
//! looks at the store on a timer (see `crate::engine`), since a run that
//! makes no progress produces no event.

mod cascade;
mod output;
mod retry;
mod violation;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use warden_evidence::{Record, RecordKind};
use warden_model::{Detector, IncidentSeverity, Pack, Playbook};

/// What an incident is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// The agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The run's workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The approval request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Tools involved (a system's failing tools).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
}

/// A detector fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The playbook whose detector fired.
    pub playbook: String,
    /// Repeat triggers with this key group into the open incident.
    pub dedup_key: String,
    /// One line for people.
    pub summary: String,
    /// What it is about.
    pub subject: Subject,
    /// Severity, when the finding sets one (else the playbook's).
    pub severity: Option<IncidentSeverity>,
    /// µs of the first event of the pattern.
    pub first_event_us: i64,
    /// Its evidence record.
    pub first_seq: Option<u64>,
    /// The detector's findings.
    pub detail: Value,
    /// Found on would-be outcomes of shadow mode (or policies on trial):
    /// the incident pages, and its playbook's pause, quarantine and
    /// circuit actions are recorded as skipped.
    pub shadow: bool,
    /// The drill whose traffic fired it (`drl_…`): the incident is
    /// labelled a drill and its pages say DRILL.
    pub drill: Option<String>,
}

/// A sliding window of event times (µs), with a cap so a flood cannot
/// grow it without bound.
#[derive(Debug, Default, Clone)]
pub(crate) struct Window {
    events: VecDeque<(i64, u64, u32)>,
}

/// Most events a window holds; older ones are dropped first.
const WINDOW_CAP: usize = 4096;

impl Window {
    /// Adds `n` events at `t` (evidence `seq`) and drops those older than
    /// `width`; returns how many are in the window.
    pub(crate) fn add(&mut self, t: i64, seq: u64, n: u32, width: Duration) -> u32 {
        self.events.push_back((t, seq, n));
        if self.events.len() > WINDOW_CAP {
            self.events.pop_front();
        }
        self.trim(t, width);
        self.events.iter().map(|e| e.2).sum()
    }

    pub(crate) fn trim(&mut self, now: i64, width: Duration) {
        let from = now - i64::try_from(width.as_micros()).unwrap_or(i64::MAX);
        while self.events.front().is_some_and(|e| e.0 < from) {
            self.events.pop_front();
        }
    }

    /// Time and seq of the oldest event in the window.
    pub(crate) fn first(&self) -> Option<(i64, u64)> {
        self.events.front().map(|e| (e.0, e.1))
    }

    pub(crate) fn clear(&mut self) {
        self.events.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// The parts of a record detectors read, parsed once per event.
#[derive(Debug)]
pub struct Event<'a> {
    /// The record.
    pub record: &'a Record,
    /// Its time, µs.
    pub t: i64,
    /// The tool's system.
    pub system: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// `record` with its time parsed and its tool's system looked up.
    pub fn new(record: &'a Record, pack: &'a Pack) -> Self {
        let system = record
            .tool
            .as_deref()
            .and_then(|t| pack.tools.get(t))
            .map(|t| t.system.as_str());
        Self {
            t: record.time_micros(),
            record,
            system,
        }
    }

    pub(crate) fn kind(&self) -> RecordKind {
        self.record.kind
    }

    pub(crate) fn agent(&self) -> Option<&str> {
        self.record.agent.as_deref()
    }

    pub(crate) fn tool(&self) -> Option<&str> {
        self.record.tool.as_deref()
    }

    pub(crate) fn detail(&self, key: &str) -> Option<&Value> {
        self.record.detail.as_ref().and_then(|d| d.get(key))
    }

    /// The forbid policies that decided its record.
    pub(crate) fn forbids(&self) -> impl Iterator<Item = &'a warden_evidence::CheckedPolicy> {
        self.record
            .checks
            .iter()
            .flat_map(|c| c.policies.iter())
            .filter(|p| p.effect == "forbid")
    }

    pub(crate) fn subject(&self) -> Subject {
        Subject {
            agent: self.record.agent.clone(),
            tool: self.record.tool.clone(),
            system: self.system.map(str::to_owned),
            run: self.record.run.clone(),
            workflow: self.record.workflow.clone(),
            ..Subject::default()
        }
    }
}

/// One playbook's detector and its state.
#[derive(Debug)]
enum State {
    Violation(violation::Violation),
    Retry(retry::Retry),
    Cascade(cascade::Cascade),
    Output(output::Output),
    /// Works from the store on a timer.
    Stuck,
}

#[derive(Debug)]
struct Armed {
    playbook: Arc<Playbook>,
    state: State,
}

impl Armed {
    fn applies(&self, e: &Event<'_>) -> bool {
        let p = &self.playbook;
        (p.agents.is_empty() || e.agent().is_some_and(|a| p.agents.iter().any(|x| x == a)))
            && (p.tools.is_empty() || e.tool().is_some_and(|t| p.tools.iter().any(|x| x == t)))
            && (p.systems.is_empty() || e.system.is_some_and(|s| p.systems.iter().any(|x| x == s)))
            && (p.workflows.is_empty()
                || e.record
                    .workflow
                    .as_deref()
                    .is_some_and(|w| p.workflows.iter().any(|x| x == w)))
            && (p.policies.is_empty()
                || e.forbids()
                    .any(|f| p.policies.iter().any(|(id, _)| *id == f.id)))
            && (p.severities.is_empty()
                || e.forbids().any(|f| {
                    // A policy without `@severity` counts as `high`.
                    let s = f
                        .annotations
                        .get("severity")
                        .map_or(Some(IncidentSeverity::High), |s| IncidentSeverity::parse(s));
                    s.is_some_and(|s| p.severities.contains(&s))
                }))
    }
}

/// Every playbook's detector.
#[derive(Debug, Default)]
pub struct Detectors {
    armed: Vec<Armed>,
}

impl Detectors {
    /// The detectors of `pack`'s playbooks, with fresh state.
    pub fn new(pack: &Pack) -> Self {
        let armed = pack
            .playbooks
            .values()
            .map(|p| Armed {
                state: match &p.detector {
                    Detector::PolicyViolation { denials, window } => {
                        State::Violation(violation::Violation::new(*denials, *window))
                    }
                    Detector::RetryStorm { retries, window } => {
                        State::Retry(retry::Retry::new(*retries, *window))
                    }
                    Detector::FailureCascade {
                        error_rate,
                        min_calls,
                        tools_failing,
                        window,
                    } => State::Cascade(cascade::Cascade::new(
                        *error_rate,
                        *min_calls,
                        *tools_failing,
                        *window,
                    )),
                    Detector::UnusualOutput {
                        sigma,
                        min_samples,
                        scan,
                    } => State::Output(output::Output::new(*sigma, *min_samples, *scan)),
                    Detector::Stuck { .. } => State::Stuck,
                },
                playbook: Arc::new(p.clone()),
            })
            .collect();
        Self { armed }
    }

    /// Feeds one event to every detector; returns what fired.
    pub fn observe(&mut self, e: &Event<'_>, pack: &Pack) -> Vec<Trigger> {
        let mut out = Vec::new();
        if is_oversight_kind(e.kind()) {
            return out;
        }
        for a in &mut self.armed {
            if !a.applies(e) {
                continue;
            }
            let found = match &mut a.state {
                State::Violation(s) => s.observe(e),
                State::Retry(s) => s.observe(e),
                State::Cascade(s) => s.observe(e, pack),
                State::Output(s) => s.observe(e, pack),
                State::Stuck => Vec::new(),
            };
            for mut t in found {
                t.playbook.clone_from(&a.playbook.id);
                out.push(t);
            }
        }
        out
    }
}

/// Records oversight writes itself: never fed back to the detectors.
fn is_oversight_kind(k: RecordKind) -> bool {
    matches!(
        k,
        RecordKind::IncidentOpened
            | RecordKind::IncidentAcknowledged
            | RecordKind::IncidentEscalated
            | RecordKind::IncidentResolved
            | RecordKind::NotificationDelivered
            | RecordKind::NotificationFailed
            | RecordKind::CircuitOpened
            | RecordKind::CircuitClosed
            | RecordKind::AgentQuarantined
            | RecordKind::AgentReleased
            | RecordKind::AgentPaused
            | RecordKind::AgentResumed
            | RecordKind::KeyRotated
    )
}

/// A trigger with the playbook filled in by [`Detectors::observe`].
pub(crate) fn trigger(
    dedup_key: String,
    summary: String,
    subject: Subject,
    first: (i64, u64),
    detail: Value,
) -> Trigger {
    Trigger {
        playbook: String::new(),
        dedup_key,
        summary,
        subject,
        severity: None,
        first_event_us: first.0,
        first_seq: Some(first.1),
        detail,
        shadow: false,
        drill: None,
    }
}

#[cfg(test)]
mod tests;
