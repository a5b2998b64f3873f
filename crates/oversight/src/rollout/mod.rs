//! The rollout loop over recorded history: [`replay`] a candidate pack
//! against the decisions the log holds, [`approvals`] statistics (where
//! human approval time goes) and [`tune`] suggestions that replay verifies.
//!
//! Everything here streams the log ([`warden_store::Store::scan`]) in
//! position order: memory grows with what is reported (changed decisions,
//! open approval requests), never with the log.

pub mod approvals;
pub mod replay;
pub mod tune;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use warden_evidence::{Check, RecordKind};
use warden_model::{ActionStatus, Outcome};
use warden_policy::Decision;
use warden_store::{Scan, ScanRow};

use crate::OversightError;

/// Which recorded decisions an analysis looks at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Window {
    /// From this time on (µs since the epoch, inclusive).
    #[serde(skip)]
    pub since_us: Option<i64>,
    /// Before this time (µs since the epoch, exclusive).
    #[serde(skip)]
    pub until_us: Option<i64>,
    /// Only this agent's proposals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Only this tool's proposals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Only proposals in runs of this workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Drill traffic too (left out by default).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drills: bool,
}

impl Window {
    /// Whether a row's time, agent, tool and workflow are inside.
    pub fn contains(&self, row: &ScanRow) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        self.since_us.is_none_or(|t| row.time_us >= t)
            && self.until_us.is_none_or(|t| row.time_us < t)
            && eq(&self.agent, &row.agent)
            && eq(&self.tool, &row.tool)
            && eq(&self.workflow, &row.workflow)
    }

    /// The window's bounds as RFC 3339 (`None` for an open end).
    pub fn bounds(&self) -> (Option<String>, Option<String>) {
        (
            self.since_us.map(warden_evidence::time_from_micros),
            self.until_us.map(warden_evidence::time_from_micros),
        )
    }
}

/// Parses a scanned row's body as `T` (`None` once its payload was
/// erased); a body that does not parse is a corrupt log.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    row: &ScanRow,
) -> Result<Option<T>, OversightError> {
    row.body
        .as_deref()
        .map(|b| {
            serde_json::from_str::<T>(b).map_err(|e| {
                OversightError::Store(warden_store::StoreError::Corrupt(format!(
                    "leaf {}: {e}",
                    row.seq
                )))
            })
        })
        .transpose()
}

/// A scan of `kinds` from the window's start, with the bodies of `bodies`
/// only, and (when set) only the `action_decided` rows of `decision`.
pub(crate) fn scan_of(
    window: &Window,
    kinds: &[RecordKind],
    bodies: &[RecordKind],
    decision: Option<&str>,
) -> Scan {
    let words = |ks: &[RecordKind]| ks.iter().map(|k| k.as_str().to_owned()).collect();
    Scan {
        kinds: words(kinds),
        since_us: window.since_us,
        page: 0,
        bodies: Some(words(bodies)),
        decision: decision.map(str::to_owned),
        drills: window.drills,
    }
}

/// `finance`, or `finance:2` for a quorum of two: the groups of an approval.
pub(crate) fn group_labels(groups: &BTreeMap<String, u32>) -> Vec<String> {
    groups
        .iter()
        .map(|(g, q)| {
            if *q > 1 {
                format!("{g}:{q}")
            } else {
                g.clone()
            }
        })
        .collect()
}

/// "`a`, `b`": ids for people, each in backticks, joined by `sep`.
pub fn ticked<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The kinds of record that end an approval request, with what people
/// decided.
pub(crate) const OUTCOME_KINDS: &[RecordKind] = &[
    RecordKind::ApprovalGranted,
    RecordKind::ApprovalRecorded,
    RecordKind::ApprovalExpired,
    RecordKind::ApprovalCancelled,
];

/// What people decided on an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Human {
    /// Every required group reached its quorum.
    Approved,
    /// An approver denied.
    Denied,
    /// Nobody answered in time.
    Expired,
    /// The agent, an operator or the run's end cancelled it.
    Cancelled,
}

impl Human {
    /// The end of an approval request a scanned row records, if it is one
    /// (read from the indexed columns: no parsing).
    pub(crate) fn of_row(row: &ScanRow) -> Option<Self> {
        let kind = |k: RecordKind| row.kind == k.as_str();
        if kind(RecordKind::ApprovalGranted) {
            Some(Self::Approved)
        } else if kind(RecordKind::ApprovalRecorded)
            && row.status.as_deref() == Some(ActionStatus::Denied.as_str())
        {
            Some(Self::Denied)
        } else if kind(RecordKind::ApprovalExpired) {
            Some(Self::Expired)
        } else if kind(RecordKind::ApprovalCancelled) {
            Some(Self::Cancelled)
        } else {
            None
        }
    }
}

/// What people decided on a set of approval requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct People {
    /// Approved.
    pub approved: u64,
    /// Denied by an approver.
    pub denied: u64,
    /// Expired unanswered.
    pub expired: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Still waiting when the log was read (or ended without a record).
    pub open: u64,
}

impl People {
    pub(crate) fn add(&mut self, h: Option<Human>) {
        match h {
            Some(Human::Approved) => self.approved += 1,
            Some(Human::Denied) => self.denied += 1,
            Some(Human::Expired) => self.expired += 1,
            Some(Human::Cancelled) => self.cancelled += 1,
            None => self.open += 1,
        }
    }

    /// How many requests.
    pub fn total(&self) -> u64 {
        self.approved + self.denied + self.expired + self.cancelled + self.open
    }
}

/// A decision's outcome as replay compares it: allow, deny, approval by
/// these groups with these quorums, or indeterminate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Allowed.
    Allow,
    /// Needs these groups' approvals (group → quorum).
    Approval(BTreeMap<String, u32>),
    /// Denied (by a forbid, no grant, bad arguments or an error).
    Deny,
    /// Depends on redacted argument values.
    Indeterminate,
}

impl Verdict {
    /// The outcome a recorded check names.
    pub fn of_check(c: &Check) -> Self {
        match c.decision {
            Outcome::Allow => Self::Allow,
            Outcome::Deny => Self::Deny,
            Outcome::ApprovalRequired => Self::Approval(c.approval.clone()),
        }
    }

    /// The outcome of a decision.
    pub fn of_decision(d: &Decision) -> Self {
        match d.outcome {
            Outcome::Allow => Self::Allow,
            Outcome::Deny => Self::Deny,
            Outcome::ApprovalRequired => Self::Approval(
                d.approval
                    .as_ref()
                    .map(|a| a.groups.iter().cloned().collect())
                    .unwrap_or_default(),
            ),
        }
    }

    /// Whether `to` lets through what `self` did not: deny → anything
    /// else, approval → allow, and an approval with a group dropped or a
    /// lower quorum. Indeterminate is neither looser nor tighter.
    pub fn loosened_by(&self, to: &Verdict) -> bool {
        match (self, to) {
            (Self::Indeterminate, _) | (_, Self::Indeterminate) => false,
            (Self::Deny, Self::Allow | Self::Approval(_)) => true,
            (Self::Approval(_), Self::Allow) => true,
            (Self::Approval(old), Self::Approval(new)) => old
                .iter()
                .any(|(g, q)| new.get(g).copied().unwrap_or(0) < *q),
            _ => false,
        }
    }

    /// The groups an approval names (none otherwise).
    pub fn groups(&self) -> Vec<&str> {
        match self {
            Self::Approval(g) => g.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow => f.write_str("allow"),
            Self::Deny => f.write_str("deny"),
            Self::Indeterminate => f.write_str("indeterminate"),
            Self::Approval(g) => write!(f, "approval({})", group_labels(g).join(", ")),
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// "finance", "finance and security".
pub(crate) fn and_list(items: &[&str]) -> String {
    match items {
        [] => "the approvers".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `p`-th percentile (0–100) of sorted samples, nearest rank.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loosening_is_what_lets_more_through() {
        let fin = |q| Verdict::Approval(BTreeMap::from([("finance".to_owned(), q)]));
        assert!(Verdict::Deny.loosened_by(&Verdict::Allow));
        assert!(Verdict::Deny.loosened_by(&fin(1)));
        assert!(fin(1).loosened_by(&Verdict::Allow));
        assert!(fin(2).loosened_by(&fin(1)));
        assert!(!fin(1).loosened_by(&fin(2)));
        assert!(!Verdict::Allow.loosened_by(&Verdict::Deny));
        assert!(!Verdict::Deny.loosened_by(&Verdict::Indeterminate));
        let other = Verdict::Approval(BTreeMap::from([("security".to_owned(), 1)]));
        assert!(fin(1).loosened_by(&other), "a group swapped drops finance");
        assert_eq!(fin(2).to_string(), "approval(finance:2)");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&s, 50.0), Some(50));
        assert_eq!(percentile(&s, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
