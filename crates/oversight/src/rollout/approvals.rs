//! Approval statistics: where human approval time goes, per gate and group
//! and per approver, with the signals of approval fatigue.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warden_evidence::{ApprovalOutcome, Check, RecordKind};
use warden_store::{ScanRow, Store};

use super::{Window, and_list, group_labels, parse, percentile, scan_of, ticked};
use crate::OversightError;

/// Thresholds of the statistics.
#[derive(Debug, Clone)]
pub struct StatsOptions {
    /// Only requests that need this group, and its approvers' answers.
    pub group: Option<String>,
    /// An approval within this many milliseconds of the request reaching
    /// the approver is "fast" (a rubber-stamping signal).
    pub fast_ms: u64,
    /// A gate approved at least this share of the time ...
    pub automate_rate: f64,
    /// ... over at least this many requests is a candidate for automation.
    pub automate_min: u64,
    /// An approver with at least this many answers who approves at least
    /// `automate_rate` of them, most of them fast, shows approval fatigue.
    pub fatigue_min: u64,
}

impl Default for StatsOptions {
    fn default() -> Self {
        Self {
            group: None,
            fast_ms: 5_000,
            automate_rate: 0.99,
            automate_min: 50,
            fatigue_min: 20,
        }
    }
}

/// Approval statistics over a window.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalStats {
    /// From (RFC 3339), if bounded.
    pub since: Option<String>,
    /// Until (RFC 3339), if bounded.
    pub until: Option<String>,
    /// Only this group, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The "fast" threshold, in milliseconds.
    pub fast_ms: u64,
    /// Approval requests created in the window.
    pub requests: u64,
    /// Milliseconds requests waited for people, in all (decided ones).
    pub waited_ms: u64,
    /// Per gate and group, most waited-on first.
    pub gates: Vec<GateStats>,
    /// Per approver, most answers first.
    pub approvers: Vec<ApproverStats>,
    /// Gates worth automating and approvers showing fatigue, as sentences.
    pub flags: Vec<String>,
}

/// One gate (or set of gates that fired together) and the groups it asked.
#[derive(Debug, Clone, Serialize)]
pub struct GateStats {
    /// The gate policies that determined the requests.
    pub gates: Vec<String>,
    /// The groups asked (`finance`, or `finance:2` for a quorum of two).
    pub groups: Vec<String>,
    /// Requests.
    pub requests: u64,
    /// Approved.
    pub approved: u64,
    /// Denied by an approver.
    pub denied: u64,
    /// Expired unanswered.
    pub expired: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Still open.
    pub open: u64,
    /// Approved share of the decided (approved, denied, expired).
    pub approval_rate: f64,
    /// Time from request to its end (approved, denied, expired), median.
    pub p50_ms: Option<u64>,
    /// ... and 95th percentile.
    pub p95_ms: Option<u64>,
    /// Share of all the time requests waited for people.
    pub time_share: f64,
    /// Approved ≥ the automation rate over ≥ the minimum requests.
    pub automation_candidate: bool,
}

/// One approver.
#[derive(Debug, Clone, Serialize)]
pub struct ApproverStats {
    /// Person id.
    pub approver: String,
    /// Answers given.
    pub decisions: u64,
    /// Of which approvals.
    pub approved: u64,
    /// `approved / decisions`.
    pub approval_rate: f64,
    /// Median time from the request reaching them to their answer.
    pub median_ms: Option<u64>,
    /// Answers per day of the window.
    pub per_day: f64,
    /// Approvals given within the "fast" threshold.
    pub fast: u64,
    /// `fast / approved`.
    pub fast_share: f64,
    /// Approves (nearly) everything, mostly fast.
    pub fatigue: bool,
}

#[derive(Deserialize)]
struct Decided {
    #[serde(default)]
    checks: Vec<Check>,
}

#[derive(Deserialize)]
struct Answered {
    #[serde(default)]
    approvals: Vec<ApprovalOutcome>,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

/// (gate policy ids, groups asked): what a row of the statistics is about.
type GateKey = Arc<(Vec<String>, Vec<String>)>;

/// A request waiting in the log read so far.
struct Open {
    key: GateKey,
    requested_us: Option<i64>,
    escalated: Vec<(String, i64)>,
}

#[derive(Default)]
struct GateAcc {
    approved: u64,
    denied: u64,
    expired: u64,
    cancelled: u64,
    open: u64,
    waits: Vec<u64>,
}

#[derive(Default)]
struct ApproverAcc {
    decisions: u64,
    approved: u64,
    fast: u64,
    latencies: Vec<u64>,
}

/// Computes approval statistics over `window` (its time bounds; the
/// agent, tool and workflow filters apply too).
pub async fn approval_stats(
    store: &Store,
    window: &Window,
    options: &StatsOptions,
) -> Result<ApprovalStats, OversightError> {
    let kinds = [
        RecordKind::ActionDecided,
        RecordKind::ApprovalRequested,
        RecordKind::ApprovalEscalated,
        RecordKind::ApprovalRecorded,
        RecordKind::ApprovalGranted,
        RecordKind::ApprovalExpired,
        RecordKind::ApprovalCancelled,
    ];
    let scan = scan_of(
        window,
        &kinds,
        &[
            RecordKind::ActionDecided,
            RecordKind::ApprovalRecorded,
            RecordKind::ApprovalEscalated,
        ],
        Some("approval_required"),
    );
    let mut open: HashMap<String, Open> = HashMap::new();
    let mut keys: HashMap<(Vec<String>, Vec<String>), GateKey> = HashMap::new();
    let mut gates: BTreeMap<GateKey, GateAcc> = BTreeMap::new();
    let mut people: BTreeMap<String, ApproverAcc> = BTreeMap::new();
    let (mut first_us, mut last_us) = (i64::MAX, i64::MIN);
    store
        .scan(&scan, |rows: Vec<ScanRow>| {
            for row in &rows {
                let Some(action) = &row.action else { continue };
                if row.kind == RecordKind::ActionDecided.as_str() {
                    if row.decision.as_deref() != Some("approval_required") || !window.contains(row)
                    {
                        continue;
                    }
                    let Some(d) = parse::<Decided>(row)? else {
                        continue;
                    };
                    let Some(check) = d.checks.first() else {
                        continue;
                    };
                    if options
                        .group
                        .as_ref()
                        .is_some_and(|g| !check.approval.contains_key(g))
                    {
                        continue;
                    }
                    let gate_ids: Vec<String> =
                        check.policies.iter().map(|p| p.id.clone()).collect();
                    let groups = group_labels(&check.approval);
                    let k = (gate_ids, groups);
                    let key = keys.entry(k.clone()).or_insert_with(|| Arc::new(k)).clone();
                    gates.entry(key.clone()).or_default();
                    first_us = first_us.min(row.time_us);
                    last_us = last_us.max(row.time_us);
                    open.insert(
                        action.clone(),
                        Open {
                            key,
                            requested_us: None,
                            escalated: Vec::new(),
                        },
                    );
                    continue;
                }
                let Some(req) = open.get_mut(action) else {
                    continue;
                };
                last_us = last_us.max(row.time_us);
                let kind = row.kind.as_str();
                if kind == RecordKind::ApprovalRequested.as_str() {
                    req.requested_us = Some(row.time_us);
                    continue;
                }
                if kind == RecordKind::ApprovalEscalated.as_str() {
                    let Some(a) = parse::<Answered>(row)? else {
                        continue;
                    };
                    if let Some(to) = a
                        .detail
                        .as_ref()
                        .and_then(|d| d.get("to"))
                        .and_then(|t| t.as_str())
                    {
                        req.escalated.push((to.to_owned(), row.time_us));
                    }
                    continue;
                }
                let requested = req.requested_us.unwrap_or(row.time_us);
                let end = if kind == RecordKind::ApprovalRecorded.as_str() {
                    let Some(a) = parse::<Answered>(row)? else {
                        continue;
                    };
                    for v in &a.approvals {
                        if options.group.as_ref().is_some_and(|g| g != &v.group) {
                            continue;
                        }
                        // The request reached the approver when it was made,
                        // or when it escalated to the group they answered
                        // through.
                        let reached = v
                            .via
                            .as_ref()
                            .and_then(|via| {
                                req.escalated
                                    .iter()
                                    .find(|(g, _)| g == via)
                                    .map(|(_, t)| *t)
                            })
                            .unwrap_or(requested);
                        let took =
                            u64::try_from(row.time_us.saturating_sub(reached) / 1000).unwrap_or(0);
                        let p = people.entry(v.approver.clone()).or_default();
                        p.decisions += 1;
                        p.latencies.push(took);
                        if v.decision == "approve" {
                            p.approved += 1;
                            if took <= options.fast_ms {
                                p.fast += 1;
                            }
                        }
                    }
                    if row.status.as_deref() == Some("denied") {
                        Some("denied")
                    } else {
                        None
                    }
                } else if kind == RecordKind::ApprovalGranted.as_str() {
                    Some("approved")
                } else if kind == RecordKind::ApprovalExpired.as_str() {
                    Some("expired")
                } else if kind == RecordKind::ApprovalCancelled.as_str() {
                    Some("cancelled")
                } else {
                    None
                };
                let Some(end) = end else { continue };
                let Some(req) = open.remove(action) else {
                    continue;
                };
                let g = gates.entry(req.key).or_default();
                let waited =
                    u64::try_from(row.time_us.saturating_sub(requested) / 1000).unwrap_or(0);
                match end {
                    "approved" => g.approved += 1,
                    "denied" => g.denied += 1,
                    "expired" => g.expired += 1,
                    _ => g.cancelled += 1,
                }
                if end != "cancelled" {
                    g.waits.push(waited);
                }
            }
            Ok::<(), OversightError>(())
        })
        .await?;
    for req in open.into_values() {
        gates.entry(req.key).or_default().open += 1;
    }
    Ok(finish(window, options, gates, people, first_us, last_us))
}

fn finish(
    window: &Window,
    o: &StatsOptions,
    gates: BTreeMap<GateKey, GateAcc>,
    people: BTreeMap<String, ApproverAcc>,
    first_us: i64,
    last_us: i64,
) -> ApprovalStats {
    let waited_ms: u64 = gates.values().flat_map(|g| g.waits.iter()).sum();
    let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut flags = Vec::new();
    let mut gate_rows: Vec<GateStats> = gates
        .into_iter()
        .map(|(key, mut g)| {
            g.waits.sort_unstable();
            let decided = g.approved + g.denied + g.expired;
            let rate = share(g.approved, decided);
            let candidate = decided >= o.automate_min && rate >= o.automate_rate;
            let (ids, groups) = (key.0.clone(), key.1.clone());
            if candidate {
                flags.push(format!(
                    "gate {} approved {:.1} % of {decided} requests by {}: a candidate for automation (try `warden tune`)",
                    ticked(&ids, " + "),
                    rate * 100.0,
                    and_list(&groups.iter().map(String::as_str).collect::<Vec<_>>()),
                ));
            }
            GateStats {
                gates: ids,
                groups,
                requests: decided + g.cancelled + g.open,
                approved: g.approved,
                denied: g.denied,
                expired: g.expired,
                cancelled: g.cancelled,
                open: g.open,
                approval_rate: rate,
                p50_ms: percentile(&g.waits, 50.0),
                p95_ms: percentile(&g.waits, 95.0),
                time_share: share(g.waits.iter().sum(), waited_ms),
                automation_candidate: candidate,
            }
        })
        .collect();
    gate_rows.sort_by(|a, b| {
        b.time_share
            .total_cmp(&a.time_share)
            .then(b.requests.cmp(&a.requests))
    });
    let start = window.since_us.unwrap_or(first_us);
    let end = window.until_us.unwrap_or(last_us).max(start);
    let days = (end.saturating_sub(start) as f64 / 86_400e6).max(1.0);
    let mut approvers: Vec<ApproverStats> = people
        .into_iter()
        .map(|(approver, mut p)| {
            p.latencies.sort_unstable();
            let rate = share(p.approved, p.decisions);
            let fast_share = share(p.fast, p.approved);
            let fatigue = p.decisions >= o.fatigue_min && rate >= o.automate_rate && fast_share >= 0.5;
            if fatigue {
                flags.push(format!(
                    "{approver} approved {:.1} % of {} requests, {:.0} % of them within {} s: approval fatigue or rubber-stamping",
                    rate * 100.0,
                    p.decisions,
                    fast_share * 100.0,
                    o.fast_ms as f64 / 1000.0
                ));
            }
            ApproverStats {
                approver,
                decisions: p.decisions,
                approved: p.approved,
                approval_rate: rate,
                median_ms: percentile(&p.latencies, 50.0),
                per_day: p.decisions as f64 / days,
                fast: p.fast,
                fast_share,
                fatigue,
            }
        })
        .collect();
    approvers.sort_by(|a, b| {
        b.decisions
            .cmp(&a.decisions)
            .then(a.approver.cmp(&b.approver))
    });
    let (since, until) = window.bounds();
    ApprovalStats {
        since,
        until,
        group: o.group.clone(),
        fast_ms: o.fast_ms,
        requests: gate_rows.iter().map(|g| g.requests).sum(),
        waited_ms,
        gates: gate_rows,
        approvers,
        flags,
    }
}
