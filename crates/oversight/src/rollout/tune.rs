//! `tune`: suggestions from recorded history, each a concrete pack change
//! that replay then verifies. Never a change that would have let through a
//! request a person denied.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use warden_evidence::{Check, RecordKind};
use warden_model::{Outcome, load_test_cases};
use warden_policy::{Effect, Engine, Threshold};
use warden_store::{ScanRow, Store};

use super::{Human, OUTCOME_KINDS, Window, parse, scan_of};
use crate::OversightError;

/// How suggestions are made.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// Approved requests a raised threshold must rest on.
    pub min_samples: u64,
}

impl Default for TuneOptions {
    fn default() -> Self {
        Self { min_samples: 20 }
    }
}

/// What `tune` found.
#[derive(Debug, Clone, Serialize)]
pub struct Tuning {
    /// Proposals in the window.
    pub proposals: u64,
    /// Threshold changes, one per gate that has one.
    pub thresholds: Vec<ThresholdSuggestion>,
    /// Gates with a numeric threshold and no suggestion, with the reason.
    pub kept: Vec<Kept>,
    /// Policies that decided nothing in the window (listed, not changed).
    pub dead: Vec<DeadPolicy>,
}

/// Raise a gate's threshold.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdSuggestion {
    /// The gate.
    #[serde(flatten)]
    pub gate: Threshold,
    /// The suggested constant.
    pub to: i64,
    /// Requests the gate stopped in the window.
    pub gated: u64,
    /// Of which approved with a value the new threshold passes: the
    /// approvals it saves.
    pub saved: u64,
    /// Milliseconds those requests waited for people.
    pub saved_ms: u64,
    /// Milliseconds every request needing the gate's group waited.
    pub group_ms: u64,
    /// The lowest value a person did not approve (denied or let expire),
    /// which the new threshold stays below.
    pub lowest_not_approved: Option<i64>,
    /// The files changed (path in the pack → new text): the policy file,
    /// and test files whose cases were moved.
    #[serde(skip)]
    pub files: BTreeMap<String, String>,
    /// Test cases that expected the gate at a value it now passes, moved
    /// above the new threshold by the same margin.
    pub tests_moved: Vec<String>,
}

/// A gate left as it is.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    /// The gate.
    pub policy: String,
    /// Why.
    pub reason: String,
}

/// A policy that decided nothing in the window.
#[derive(Debug, Clone, Serialize)]
pub struct DeadPolicy {
    /// Policy id.
    pub policy: String,
    /// What it is and what never happened.
    pub finding: &'static str,
}

#[derive(Deserialize)]
struct Decided {
    #[serde(default)]
    checks: Vec<Check>,
    #[serde(default)]
    args: Option<serde_json::Value>,
}

/// One gated request: its value per threshold gate that fired, its groups.
struct Gated {
    values: Vec<(usize, i64)>,
    groups: Vec<String>,
    requested_us: i64,
}

#[derive(Default)]
struct Samples {
    gated: u64,
    /// (value, what people decided, ms waited).
    seen: Vec<(i64, Human, u64)>,
}

/// Reads the window and makes suggestions for `engine`'s pack.
pub async fn tune(
    store: &Store,
    engine: &Engine,
    window: &Window,
    options: &TuneOptions,
) -> Result<Tuning, OversightError> {
    let gates = engine.thresholds();
    let mut used: HashMap<String, u64> = HashMap::new();
    let mut samples: Vec<Samples> = gates.iter().map(|_| Samples::default()).collect();
    let mut group_ms: BTreeMap<String, u64> = BTreeMap::new();
    let mut open: HashMap<String, Gated> = HashMap::new();
    let mut proposals = 0u64;
    let mut kinds = vec![RecordKind::ActionDecided];
    kinds.extend_from_slice(OUTCOME_KINDS);
    let scan = scan_of(window, &kinds, &[RecordKind::ActionDecided], None);
    store
        .scan(&scan, |rows: Vec<ScanRow>| {
            for row in &rows {
                if row.kind == RecordKind::ActionDecided.as_str() {
                    if !window.contains(row) {
                        continue;
                    }
                    let Some(d) = parse::<Decided>(row)? else {
                        continue;
                    };
                    let Some(check) = d.checks.first() else {
                        continue;
                    };
                    proposals += 1;
                    for p in &check.policies {
                        *used.entry(p.id.clone()).or_default() += 1;
                    }
                    if row.decision.as_deref() != Some("approval_required") {
                        continue;
                    }
                    let mut values = Vec::new();
                    for (i, g) in gates.iter().enumerate() {
                        if !check.policies.iter().any(|p| p.id == g.policy) {
                            continue;
                        }
                        samples[i].gated += 1;
                        // A redacted (or missing) value is no evidence.
                        if let Some(v) = d
                            .args
                            .as_ref()
                            .and_then(|a| a.get(&g.field))
                            .and_then(serde_json::Value::as_i64)
                        {
                            values.push((i, v));
                        }
                    }
                    if let Some(a) = &row.action {
                        open.insert(
                            a.clone(),
                            Gated {
                                values,
                                groups: check.approval.keys().cloned().collect(),
                                requested_us: row.time_us,
                            },
                        );
                    }
                    continue;
                }
                let Some(h) = Human::of_row(row) else {
                    continue;
                };
                let Some(g) = row.action.as_ref().and_then(|a| open.remove(a)) else {
                    continue;
                };
                let waited =
                    u64::try_from(row.time_us.saturating_sub(g.requested_us) / 1000).unwrap_or(0);
                if h != Human::Cancelled {
                    for grp in &g.groups {
                        *group_ms.entry(grp.clone()).or_default() += waited;
                    }
                }
                for (i, v) in g.values {
                    samples[i].seen.push((v, h, waited));
                }
            }
            Ok::<(), OversightError>(())
        })
        .await?;
    let mut out = Tuning {
        proposals,
        thresholds: Vec::new(),
        kept: Vec::new(),
        dead: Vec::new(),
    };
    for (gate, s) in gates.into_iter().zip(samples) {
        let total_ms = group_ms.get(&gate.group).copied().unwrap_or(0);
        match suggest(engine, &gate, &s, options, total_ms) {
            Ok(sug) => out.thresholds.push(sug),
            Err(reason) => out.kept.push(Kept {
                policy: gate.policy.clone(),
                reason,
            }),
        }
    }
    if proposals > 0 {
        for p in engine.policies() {
            if used.contains_key(&p.id) || p.is_shadow() {
                continue;
            }
            let finding = match (p.effect, &p.gate) {
                (Effect::Forbid, Some(_)) => "approval gate never triggered",
                (Effect::Forbid, None) => "forbid never hit",
                (Effect::Permit, _) => "permit never used",
            };
            out.dead.push(DeadPolicy {
                policy: p.id.clone(),
                finding,
            });
        }
    }
    Ok(out)
}

fn suggest(
    engine: &Engine,
    gate: &Threshold,
    s: &Samples,
    o: &TuneOptions,
    group_ms: u64,
) -> Result<ThresholdSuggestion, String> {
    // The new threshold stays below every value a person did not approve.
    let limit = s
        .seen
        .iter()
        .filter(|(_, h, _)| matches!(h, Human::Denied | Human::Expired))
        .map(|(v, _, _)| *v)
        .min();
    let approved: Vec<i64> = s
        .seen
        .iter()
        .filter(|(v, h, _)| *h == Human::Approved && limit.is_none_or(|l| *v < l))
        .map(|(v, _, _)| *v)
        .collect();
    if (approved.len() as u64) < o.min_samples {
        return Err(format!(
            "{} approved request{} below the lowest value a person did not approve; at least {} needed",
            approved.len(),
            if approved.len() == 1 { "" } else { "s" },
            o.min_samples
        ));
    }
    let Some(max_ok) = approved.iter().copied().max() else {
        return Err("no approved requests".into());
    };
    // `>`: values up to `to` pass; `>=`: values below `to` pass.
    let (lo, hi) = match gate.op {
        ">" => (max_ok, limit.map(|l| l.saturating_sub(1))),
        _ => (max_ok.saturating_add(1), limit),
    };
    let to = round_in(lo, hi);
    if to <= gate.value {
        return Err(format!(
            "every value above {} that people approved is already near a value they did not approve",
            gate.value
        ));
    }
    let passes = |v: i64| if gate.op == ">" { v <= to } else { v < to };
    let saved_rows: Vec<&(i64, Human, u64)> = s
        .seen
        .iter()
        .filter(|(v, h, _)| *h == Human::Approved && passes(*v))
        .collect();
    let (files, tests_moved) = rewrite(engine, gate, to).ok_or_else(|| {
        format!(
            "could not find `{} {} {}` in the policy's text",
            gate.field, gate.op, gate.value
        )
    })?;
    Ok(ThresholdSuggestion {
        gate: gate.clone(),
        to,
        gated: s.gated,
        saved: saved_rows.len() as u64,
        saved_ms: saved_rows.iter().map(|r| r.2).sum(),
        group_ms,
        lowest_not_approved: limit,
        files,
        tests_moved,
    })
}

/// `lo` rounded up to two significant digits when that stays within `hi`
/// (nothing unseen passes beyond that rounding); otherwise `lo` rounded
/// down to two significant digits (a few approved requests stay gated,
/// nothing new passes).
fn round_in(lo: i64, hi: Option<i64>) -> i64 {
    if lo < 100 {
        return lo;
    }
    let step = 10i64.pow(lo.ilog10() - 1);
    let up = lo.saturating_add(step - 1) / step * step;
    if hi.is_none_or(|h| up <= h) {
        up
    } else {
        lo / step * step
    }
}

/// The files a suggestion changes (path in the pack → new text): the
/// gate's policy file, and the test files whose cases expect the gate to
/// fire at a value the new threshold passes (those cases move above the
/// new threshold by the same margin, so "one cent above" stays one cent
/// above). Returns the files and the moved cases' names.
fn rewrite(
    engine: &Engine,
    gate: &Threshold,
    to: i64,
) -> Option<(BTreeMap<String, String>, Vec<String>)> {
    let mut files = BTreeMap::new();
    let info = engine.policies().iter().find(|p| p.id == gate.policy)?;
    // `file:line:column` of the policy's first line.
    let mut parts = info.location.rsplitn(3, ':');
    let _col = parts.next()?;
    let line: usize = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    let file = engine
        .pack()
        .policy_files
        .iter()
        .find(|f| f.name() == name)?;
    let start: usize = file
        .text()
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let needle = format!("args.{}", gate.field);
    let text = replace_number(file.text(), start, &needle, gate.op, gate.value, to)?;
    files.insert(name.to_owned(), text);
    let fires_now = |v: i64| {
        if gate.op == ">" {
            v > gate.value
        } else {
            v >= gate.value
        }
    };
    let passes_then = |v: i64| if gate.op == ">" { v <= to } else { v < to };
    let (cases, _) = load_test_cases(engine.pack());
    let mut moved: Vec<(String, usize, i64, i64, String)> = Vec::new();
    for c in &cases {
        let Some(v) = c.args.get(&gate.field).and_then(serde_json::Value::as_i64) else {
            continue;
        };
        if c.expect.decision == Outcome::ApprovalRequired && fires_now(v) && passes_then(v) {
            moved.push((
                c.at.file.name().to_owned(),
                c.at.span.start,
                v,
                to.saturating_add(v.saturating_sub(gate.value)),
                c.name.clone(),
            ));
        }
    }
    // Later cases first, so earlier offsets stay valid.
    moved.sort_by_key(|m| std::cmp::Reverse(m.1));
    for (fname, at, old, new, _) in &moved {
        let current = match files.get(fname) {
            Some(t) => t.clone(),
            None => engine
                .pack()
                .test_files
                .iter()
                .find(|f| f.name() == fname)?
                .text()
                .to_owned(),
        };
        let text = replace_number(&current, *at, &gate.field, "=", *old, *new)?;
        files.insert(fname.clone(), text);
    }
    Some((files, moved.into_iter().rev().map(|m| m.4).collect()))
}

/// `text` with the first `<key> <op> <old>` at or after `start` (any
/// spacing, the key optionally quoted) changed to `<new>`.
fn replace_number(
    text: &str,
    start: usize,
    key: &str,
    op: &str,
    old: i64,
    new: i64,
) -> Option<String> {
    let mut from = start;
    while let Some(i) = text.get(from..)?.find(key) {
        let at = from + i + key.len();
        let rest = text[at..].trim_start_matches('"').trim_start();
        if let Some(after_op) = rest.strip_prefix(op)
            && !after_op.starts_with('=')
        {
            let num = after_op.trim_start();
            let digits: String = num.chars().take_while(char::is_ascii_digit).collect();
            if digits.parse::<i64>().ok() == Some(old) {
                let num_at = text.len() - num.len();
                let mut out = String::with_capacity(text.len() + 4);
                out.push_str(&text[..num_at]);
                out.push_str(&new.to_string());
                out.push_str(&text[num_at + digits.len()..]);
                return Some(out);
            }
        }
        from = at;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_numbers_inside_the_range() {
        assert_eq!(round_in(24_990, Some(31_000)), 25_000);
        assert_eq!(round_in(25_000, Some(25_436)), 25_000);
        assert_eq!(round_in(25_300, Some(25_436)), 25_000);
        assert_eq!(round_in(24_990, None), 25_000);
        assert_eq!(round_in(9_990, Some(12_000)), 10_000);
        assert_eq!(round_in(7, Some(7)), 7);
    }

    #[test]
    fn numbers_are_replaced_after_their_key_only() {
        let cedar = "when { context.args.amount_cents >= 5 && context.args.amount_cents > 10000 }";
        assert_eq!(
            replace_number(cedar, 0, "args.amount_cents", ">", 10000, 25000).as_deref(),
            Some("when { context.args.amount_cents >= 5 && context.args.amount_cents > 25000 }")
        );
        let toml = "args = { \"amount_cents\" = 10001 }\nx = { amount_cents=10001 }";
        assert_eq!(
            replace_number(toml, 10, "amount_cents", "=", 10001, 25001).as_deref(),
            Some("args = { \"amount_cents\" = 25001 }\nx = { amount_cents=10001 }")
        );
        assert_eq!(replace_number(toml, 0, "amount_cents", "=", 7, 8), None);
    }
}
