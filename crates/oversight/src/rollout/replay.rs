//! `replay`: every recorded proposal in a window decided again by a
//! candidate pack, compared with what was decided then.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;
use warden_evidence::{REDACTED_PREFIX, Record, RecordKind};
use warden_model::{RequestContext, load_test_cases};
use warden_policy::{Engine, Replayed, Request, run_case};
use warden_store::{ScanRow, Store};

use super::{Human, OUTCOME_KINDS, People, Verdict, Window, and_list, parse, scan_of, ticked};
use crate::OversightError;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Example records kept per group of changes.
    pub examples: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self { examples: 3 }
    }
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The candidate pack's name and content hash.
    pub candidate: Candidate,
    /// The window replayed.
    pub window: WindowView,
    /// Recorded proposals decided again.
    pub replayed: u64,
    /// Decided the same (outcome, groups and quorum).
    pub unchanged: u64,
    /// Decided differently.
    pub changed: u64,
    /// Changed so that more gets through (see [`Verdict::loosened_by`]).
    pub loosened: u64,
    /// Changed the other way.
    pub tightened: u64,
    /// Depend on redacted argument values: not replayable exactly.
    pub indeterminate: u64,
    /// Proposals whose record was erased (payload dropped): not replayable.
    pub erased: u64,
    /// Recorded outcome × candidate outcome, with counts.
    pub matrix: Vec<Cell>,
    /// The changed decisions, grouped by the change and the policies that
    /// determine the new outcome; loosening first, then by count.
    pub changes: Vec<ChangeGroup>,
    /// The indeterminate decisions, grouped by the fields they depend on.
    pub undetermined: Vec<UndeterminedGroup>,
    /// The sentences a reviewer needs.
    pub summary: Vec<String>,
}

/// The candidate pack.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Pack name.
    pub pack: String,
    /// Content hash.
    pub policy_version: String,
}

/// The window, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct WindowView {
    /// From (RFC 3339), if bounded.
    pub since: Option<String>,
    /// Until (RFC 3339), if bounded.
    pub until: Option<String>,
    /// Filters.
    #[serde(flatten)]
    pub filters: Window,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Outcome recorded then.
    pub recorded: Verdict,
    /// Outcome the candidate gives.
    pub candidate: Verdict,
    /// How many proposals.
    pub count: u64,
}

/// Changed decisions with the same change and determining policies.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeGroup {
    /// Outcome recorded then.
    pub recorded: Verdict,
    /// Outcome the candidate gives.
    pub candidate: Verdict,
    /// Whether the change lets more through.
    pub loosened: bool,
    /// The candidate's determining policies (none for a default deny).
    pub policies: Vec<String>,
    /// How many proposals.
    pub count: u64,
    /// For recorded approvals: what the people decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub people: Option<People>,
    /// A few of them.
    pub examples: Vec<Example>,
}

/// Decisions that depend on redacted fields.
#[derive(Debug, Clone, Serialize)]
pub struct UndeterminedGroup {
    /// The redacted fields the decision depends on.
    pub fields: Vec<String>,
    /// Outcome recorded then.
    pub recorded: Verdict,
    /// Outcomes the candidate could give, depending on those values.
    pub possible: Vec<Verdict>,
    /// How many proposals.
    pub count: u64,
    /// A few of them.
    pub examples: Vec<Example>,
}

/// One recorded proposal and its two decisions.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// Position of the `action_decided` record.
    pub seq: u64,
    /// When it was decided.
    pub time: String,
    /// Agent.
    pub agent: String,
    /// Tool.
    pub tool: String,
    /// The action id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The run id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Arguments as recorded (sensitive fields redacted).
    pub args: Value,
    /// Why it was decided as it was.
    pub recorded_reason: String,
    /// Why the candidate decides as it does.
    pub candidate_reason: String,
    /// The command that shows its timeline.
    pub timeline: String,
}

/// The candidate pack's own test cases, run before a replay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CandidateTests {
    /// Cases that passed.
    pub passed: usize,
    /// What failed, one line each (unreadable cases too).
    pub failures: Vec<String>,
}

/// Runs the candidate's test cases: a replay of a pack whose own tests
/// fail is refused.
pub fn candidate_tests(engine: &Engine) -> CandidateTests {
    let (cases, diags) = load_test_cases(engine.pack());
    let mut out = CandidateTests::default();
    for d in diags.iter().filter(|d| d.is_error()) {
        out.failures.push(d.to_string());
    }
    for case in &cases {
        let r = run_case(engine, case);
        if r.passed() {
            out.passed += 1;
        } else {
            out.failures.push(format!(
                "test `{}` ({}): {}",
                case.name,
                case.at,
                r.failures.join("; ")
            ));
        }
    }
    out
}

/// One recorded decision replayed.
struct Replay1 {
    record: Record,
    recorded: Verdict,
    candidate: Verdict,
    policies: Vec<String>,
    reason: String,
    fields: Vec<String>,
    possible: Vec<Verdict>,
}

/// Decides one `action_decided` record again (`None`: it has no check).
fn replay_one(engine: &Engine, record: Record) -> Option<Replay1> {
    let recorded = Verdict::of_check(record.checks.first()?);
    let empty = Value::Object(Default::default());
    let args = record.args.as_ref().unwrap_or(&empty);
    let redacted: Vec<String> = args
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_str().is_some_and(|s| s.starts_with(REDACTED_PREFIX)))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let context = RequestContext {
        workflow: record.workflow.clone(),
        run: record.run.clone(),
        trigger: record.trigger.clone(),
        // The counters, run data and facts as they were when the request
        // was decided.
        usage: record.usage.clone(),
        steps: record.run_steps.clone(),
        facts: record.facts.clone(),
    };
    let req = Request {
        agent: record.agent.as_deref().unwrap_or_default(),
        tool: record.tool.as_deref().unwrap_or_default(),
        args,
        approvals: &[],
        context: &context,
    };
    let (candidate, policies, reason, fields, possible) = match engine
        .decide_recorded(&req, &redacted)
    {
        Replayed::Decided(d) => (
            Verdict::of_decision(&d),
            d.policies.iter().map(|p| p.id.clone()).collect(),
            d.message(),
            Vec::new(),
            Vec::new(),
        ),
        Replayed::Indeterminate { fields, possible } => {
            let reason = format!(
                "depends on the redacted field{} {}",
                if fields.len() == 1 { "" } else { "s" },
                ticked(&fields, ", ")
            );
            let mut possible: Vec<Verdict> = possible.iter().map(Verdict::of_decision).collect();
            possible.sort();
            possible.dedup();
            (Verdict::Indeterminate, Vec::new(), reason, fields, possible)
        }
    };
    Some(Replay1 {
        record,
        recorded,
        candidate,
        policies,
        reason,
        fields,
        possible,
    })
}

fn example(r: &Replay1) -> Example {
    let rec = &r.record;
    let timeline = match (&rec.run, &rec.action) {
        (Some(run), _) => format!("warden audit timeline {run}"),
        (None, Some(action)) => format!("warden audit query --text {action}"),
        (None, None) => format!("warden audit query --text {}", rec.seq),
    };
    Example {
        seq: rec.seq,
        time: rec.time.clone(),
        agent: rec.agent.clone().unwrap_or_default(),
        tool: rec.tool.clone().unwrap_or_default(),
        action: rec.action.clone(),
        run: rec.run.clone(),
        args: rec.args.clone().unwrap_or(Value::Null),
        recorded_reason: rec.message.clone().unwrap_or_default(),
        candidate_reason: r.reason.clone(),
        timeline,
    }
}

/// Replays the proposals `window` selects from `store` with `engine`.
/// `progress` is called with the number of decisions replayed so far.
pub async fn replay(
    store: &Store,
    engine: &Engine,
    window: &Window,
    options: &ReplayOptions,
    mut progress: impl FnMut(u64),
) -> Result<ReplayReport, OversightError> {
    let mut kinds = vec![RecordKind::ActionDecided];
    kinds.extend_from_slice(OUTCOME_KINDS);
    let scan = scan_of(window, &kinds, &[RecordKind::ActionDecided], None);
    let mut acc = Accumulator::new(options.examples);
    let decided = RecordKind::ActionDecided.as_str();
    store
        .scan(&scan, |rows: Vec<ScanRow>| {
            // Decide the page's proposals on every core, then fold in order.
            let mut todo: Vec<(usize, Record)> = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                if row.kind == decided && window.contains(row) {
                    match parse::<Record>(row)? {
                        Some(r) => todo.push((i, r)),
                        None => acc.report.erased += 1,
                    }
                }
            }
            let mut results = decide_all(engine, todo);
            results.reverse();
            for (i, row) in rows.iter().enumerate() {
                if row.kind == decided {
                    if results.last().is_some_and(|(j, _)| *j == i)
                        && let Some((_, r)) = results.pop()
                        && let Some(r) = r
                    {
                        acc.add(r);
                    }
                } else if let Some(h) = Human::of_row(row) {
                    acc.human(row, h);
                }
            }
            progress(acc.report.replayed);
            Ok::<(), OversightError>(())
        })
        .await?;
    let (since, until) = window.bounds();
    Ok(acc.finish(
        Candidate {
            pack: engine.pack().name.clone(),
            policy_version: engine.policy_version().to_owned(),
        },
        WindowView {
            since,
            until,
            filters: window.clone(),
        },
    ))
}

/// Replays records on all cores, keeping each one's index.
fn decide_all(engine: &Engine, todo: Vec<(usize, Record)>) -> Vec<(usize, Option<Replay1>)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || todo.len() < 256 {
        return todo
            .into_iter()
            .map(|(i, r)| (i, replay_one(engine, r)))
            .collect();
    }
    let chunk = todo.len().div_ceil(threads);
    let mut parts: Vec<Vec<(usize, Record)>> = Vec::new();
    let mut rest = todo;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        parts.push(rest);
        rest = tail;
    }
    parts.push(rest);
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                s.spawn(move || {
                    part.into_iter()
                        .map(|(i, r)| (i, replay_one(engine, r)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

struct Accumulator {
    report: ReplayReport,
    examples: usize,
    matrix: BTreeMap<(Verdict, Verdict), u64>,
    groups: Vec<ChangeGroup>,
    by_key: HashMap<(Verdict, Verdict, Vec<String>), usize>,
    undetermined: Vec<UndeterminedGroup>,
    undetermined_by: HashMap<(Vec<String>, Verdict), usize>,
    /// Changed proposals whose recorded approval request has not ended yet
    /// in the log read so far: action → change group.
    waiting: HashMap<String, usize>,
}

impl Accumulator {
    fn new(examples: usize) -> Self {
        Self {
            report: ReplayReport {
                candidate: Candidate {
                    pack: String::new(),
                    policy_version: String::new(),
                },
                window: WindowView {
                    since: None,
                    until: None,
                    filters: Window::default(),
                },
                replayed: 0,
                unchanged: 0,
                changed: 0,
                loosened: 0,
                tightened: 0,
                indeterminate: 0,
                erased: 0,
                matrix: Vec::new(),
                changes: Vec::new(),
                undetermined: Vec::new(),
                summary: Vec::new(),
            },
            examples,
            matrix: BTreeMap::new(),
            groups: Vec::new(),
            by_key: HashMap::new(),
            undetermined: Vec::new(),
            undetermined_by: HashMap::new(),
            waiting: HashMap::new(),
        }
    }

    fn add(&mut self, r: Replay1) {
        self.report.replayed += 1;
        *self
            .matrix
            .entry((r.recorded.clone(), r.candidate.clone()))
            .or_default() += 1;
        if r.candidate == Verdict::Indeterminate {
            self.report.indeterminate += 1;
            let key = (r.fields.clone(), r.recorded.clone());
            let i = *self.undetermined_by.entry(key).or_insert_with(|| {
                self.undetermined.push(UndeterminedGroup {
                    fields: r.fields.clone(),
                    recorded: r.recorded.clone(),
                    possible: Vec::new(),
                    count: 0,
                    examples: Vec::new(),
                });
                self.undetermined.len() - 1
            });
            let g = &mut self.undetermined[i];
            g.count += 1;
            for p in &r.possible {
                if !g.possible.contains(p) {
                    g.possible.push(p.clone());
                }
            }
            if g.examples.len() < self.examples {
                g.examples.push(example(&r));
            }
            return;
        }
        if r.candidate == r.recorded {
            self.report.unchanged += 1;
            return;
        }
        self.report.changed += 1;
        let loosened = r.recorded.loosened_by(&r.candidate);
        if loosened {
            self.report.loosened += 1;
        } else {
            self.report.tightened += 1;
        }
        let mut policies = r.policies.clone();
        policies.sort();
        let key = (r.recorded.clone(), r.candidate.clone(), policies.clone());
        let i = *self.by_key.entry(key).or_insert_with(|| {
            self.groups.push(ChangeGroup {
                recorded: r.recorded.clone(),
                candidate: r.candidate.clone(),
                loosened,
                policies,
                count: 0,
                people: matches!(r.recorded, Verdict::Approval(_)).then(People::default),
                examples: Vec::new(),
            });
            self.groups.len() - 1
        });
        let g = &mut self.groups[i];
        g.count += 1;
        if g.examples.len() < self.examples {
            g.examples.push(example(&r));
        }
        if matches!(r.recorded, Verdict::Approval(_))
            && let Some(a) = &r.record.action
        {
            self.waiting.insert(a.clone(), i);
        }
    }

    fn human(&mut self, row: &ScanRow, h: Human) {
        let Some(i) = row.action.as_ref().and_then(|a| self.waiting.remove(a)) else {
            return;
        };
        if let Some(p) = &mut self.groups[i].people {
            p.add(Some(h));
        }
    }

    fn finish(mut self, candidate: Candidate, window: WindowView) -> ReplayReport {
        for (_, i) in self.waiting.drain() {
            if let Some(p) = &mut self.groups[i].people {
                p.add(None);
            }
        }
        self.groups.sort_by(|a, b| {
            b.loosened
                .cmp(&a.loosened)
                .then(b.count.cmp(&a.count))
                .then(a.recorded.cmp(&b.recorded))
        });
        self.undetermined
            .sort_by_key(|g| std::cmp::Reverse(g.count));
        let mut r = self.report;
        r.candidate = candidate;
        r.window = window;
        r.matrix = self
            .matrix
            .into_iter()
            .map(|((recorded, candidate), count)| Cell {
                recorded,
                candidate,
                count,
            })
            .collect();
        r.undetermined = self.undetermined;
        r.summary = summary(&r, &self.groups);
        r.changes = self.groups;
        r
    }
}

/// The sentences a reviewer needs, per kind of change.
fn summary(r: &ReplayReport, groups: &[ChangeGroup]) -> Vec<String> {
    let mut out = Vec::new();
    if r.replayed == 0 {
        out.push("no recorded proposals in the window".to_owned());
        return out;
    }
    if r.changed == 0 && r.indeterminate == 0 {
        out.push(format!(
            "all {} replayed proposals are decided as they were",
            r.replayed
        ));
    } else if r.changed == 0 {
        out.push(format!(
            "{} of {} replayed proposals are decided as they were; none is decided differently",
            r.unchanged, r.replayed
        ));
    }
    // Aggregate the groups by (recorded, candidate).
    let mut by: BTreeMap<(Verdict, Verdict), (u64, People)> = BTreeMap::new();
    for g in groups {
        let e = by
            .entry((g.recorded.clone(), g.candidate.clone()))
            .or_default();
        e.0 += g.count;
        if let Some(p) = &g.people {
            e.1.approved += p.approved;
            e.1.denied += p.denied;
            e.1.expired += p.expired;
            e.1.cancelled += p.cancelled;
            e.1.open += p.open;
        }
    }
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    for ((from, to), (n, people)) in &by {
        let who = and_list(&from.groups());
        let now = match to {
            Verdict::Allow if matches!(from, Verdict::Approval(_)) => {
                "would now be allowed without approval".to_owned()
            }
            Verdict::Allow => format!("that were {from} would now be allowed"),
            Verdict::Deny => format!("that were {from} would now be denied"),
            Verdict::Approval(_) => format!("that were {from} would now need {to}"),
            Verdict::Indeterminate => continue,
        };
        let mut s = format!("{n} proposal{} {now}", plural(*n));
        if matches!(from, Verdict::Approval(_)) {
            let decided = if people.approved == *n {
                format!("; {who} approved all {n}")
            } else {
                let mut parts = vec![format!("{who} approved {}", people.approved)];
                if people.denied > 0 {
                    parts.push(format!("denied {}", people.denied));
                }
                if people.expired > 0 {
                    parts.push(format!("let {} expire", people.expired));
                }
                if people.cancelled > 0 {
                    parts.push(format!("{} were cancelled", people.cancelled));
                }
                if people.open > 0 {
                    parts.push(format!("{} are still open", people.open));
                }
                format!("; {}", parts.join(", "))
            };
            s.push_str(&decided);
        }
        out.push(s);
        if from.loosened_by(to) && people.denied > 0 {
            let verb = if *to == Verdict::Allow {
                "be allowed"
            } else {
                "get through with fewer approvals"
            };
            out.push(format!(
                "{} would now {verb} that {who} denied",
                people.denied
            ));
        }
    }
    if r.indeterminate > 0 {
        let mut fields: Vec<&str> = r
            .undetermined
            .iter()
            .flat_map(|g| g.fields.iter().map(String::as_str))
            .collect();
        fields.sort_unstable();
        fields.dedup();
        out.push(format!(
            "{} proposal{} cannot be replayed exactly: the decision depends on the redacted field{} {}",
            r.indeterminate,
            plural(r.indeterminate),
            plural(fields.len() as u64),
            ticked(&fields, ", ")
        ));
    }
    if r.erased > 0 {
        out.push(format!(
            "{} proposal{} erased (payload dropped): not replayed",
            r.erased,
            plural(r.erased)
        ));
    }
    out
}
