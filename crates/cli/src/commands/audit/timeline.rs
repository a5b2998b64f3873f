//! `warden audit timeline RUN`: a run reconstructed from its records alone.

use warden_evidence::{Record, RecordKind};

use super::{Location, open};
use crate::cli::Exit;

/// `warden audit timeline`
#[derive(Debug, clap::Args)]
pub struct TimelineArgs {
    /// The run id.
    pub run: String,
    #[command(flatten)]
    pub loc: Location,
    /// Print the run's records as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: TimelineArgs) -> anyhow::Result<Exit> {
    let (_data, store) = open(&a.loc).await?;
    let rows = store.run_records(&a.run).await?;
    store.close().await;
    if rows.is_empty() {
        anyhow::bail!("no records for run `{}`", a.run);
    }
    if a.json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| match &r.record {
                Some(rec) => serde_json::to_value(rec).unwrap_or_default(),
                None => serde_json::json!({"seq": r.seq, "kind": r.kind, "pruned": true}),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(Exit::Ok);
    }
    let start = rows.first().map_or(0, |r| r.time_us);
    let end = rows.last().map_or(0, |r| r.time_us);
    let first = rows.iter().find_map(|r| r.record.as_ref());
    println!("run {}", a.run);
    if let Some(r) = first {
        println!(
            "  workflow {}   agent {}",
            r.workflow.as_deref().unwrap_or("-"),
            r.agent.as_deref().unwrap_or("-")
        );
    }
    println!(
        "  {} records, {} → {} ({})",
        rows.len(),
        warden_evidence::time_from_micros(start),
        warden_evidence::time_from_micros(end),
        span(end.saturating_sub(start))
    );
    let mut action_start: Option<(String, i64)> = None;
    for row in &rows {
        let offset = format!("+{}", span(row.time_us.saturating_sub(start)));
        let Some(r) = &row.record else {
            println!(
                "{offset:>12}  #{:<6} {} (payload pruned)",
                row.seq, row.kind
            );
            continue;
        };
        let head = format!("{offset:>12}  #{:<6}", row.seq);
        match r.kind {
            RecordKind::RunStarted => {
                let t = r.trigger.as_ref();
                println!(
                    "{head} run started by {} {}{}",
                    t.map_or("-", |t| t.source.as_str()),
                    t.and_then(|t| t.reference.as_deref()).unwrap_or(""),
                    t.and_then(|t| t.requester.as_deref())
                        .map(|q| format!(" (requested by {q})"))
                        .unwrap_or_default()
                );
            }
            RecordKind::ActionDecided => {
                if action_start
                    .as_ref()
                    .is_none_or(|(a, _)| Some(a) != r.action.as_ref())
                {
                    action_start = r.action.clone().map(|a| (a, row.time_us));
                }
                println!("{head} {} {}", tool(r), args(r));
                print_checks(r);
                if let Some(w) = r.detail.as_ref().and_then(|d| d.get("would_be"))
                    && !w.is_null()
                {
                    println!(
                        "{:>22}shadow: enforcement would answer {}{}",
                        "",
                        w.get("status").and_then(|v| v.as_str()).unwrap_or("-"),
                        w.get("code")
                            .and_then(|v| v.as_str())
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default()
                    );
                }
                println!("{:>22}→ {}", "", status(r));
            }
            RecordKind::ApprovalRecorded => {
                for ap in &r.approvals {
                    println!(
                        "{head} {} {} for {} after {}{}",
                        ap.approver,
                        if ap.decision == "approve" {
                            "approved"
                        } else {
                            "denied"
                        },
                        ap.group,
                        span(
                            i64::try_from(ap.latency_ms)
                                .unwrap_or(0)
                                .saturating_mul(1000)
                        ),
                        ap.comment
                            .as_deref()
                            .map(|c| format!(": \"{c}\""))
                            .unwrap_or_default()
                    );
                }
                if r.status.is_some_and(|s| s.is_final()) {
                    println!("{:>22}→ {}", "", status(r));
                }
            }
            RecordKind::ActionExecuted => {
                let took = action_start
                    .as_ref()
                    .filter(|(a, _)| Some(a) == r.action.as_ref())
                    .map(|(_, t)| {
                        format!(
                            ", {} after it was proposed",
                            span(row.time_us.saturating_sub(*t))
                        )
                    })
                    .unwrap_or_default();
                println!("{head} executed {} → {}{took}", tool(r), status(r));
            }
            RecordKind::RunFinished => println!(
                "{head} run finished: {}",
                r.message.as_deref().unwrap_or("-")
            ),
            RecordKind::ApprovalRequested
            | RecordKind::ApprovalGranted
            | RecordKind::ApprovalEscalated => {
                println!("{head} {}", r.message.as_deref().unwrap_or(r.kind.as_str()))
            }
            RecordKind::ActionReevaluated => {
                println!("{head} re-evaluated {} after approval", tool(r));
                print_checks(r);
                println!("{:>22}→ {}", "", status(r));
            }
            RecordKind::ApprovalExpired => println!(
                "{head} {} → {}",
                r.message.as_deref().unwrap_or(r.kind.as_str()),
                status(r)
            ),
            RecordKind::ActionRecovered => println!(
                "{head} recovered {}: {}",
                tool(r),
                r.message.as_deref().unwrap_or("-")
            ),
            RecordKind::KeyRotated
            | RecordKind::AgentPaused
            | RecordKind::AgentResumed
            | RecordKind::AccessDenied
            | RecordKind::PackReloaded
            | RecordKind::RequestRejected
            | RecordKind::AgentQuarantined
            | RecordKind::AgentReleased
            | RecordKind::CircuitOpened
            | RecordKind::CircuitClosed
            | RecordKind::IncidentOpened
            | RecordKind::IncidentAcknowledged
            | RecordKind::IncidentEscalated
            | RecordKind::IncidentResolved
            | RecordKind::NotificationDelivered
            | RecordKind::NotificationFailed
            | RecordKind::ActionReproposed
            | RecordKind::RunCancelled
            | RecordKind::ApprovalCancelled
            | RecordKind::RecordsErased
            | RecordKind::DrillStarted
            | RecordKind::DrillFinished
            | RecordKind::IncidentReviewed => {
                println!("{head} {}", r.message.as_deref().unwrap_or(r.kind.as_str()))
            }
        }
    }
    Ok(Exit::Ok)
}

/// The policy checks of a decision record, one line each.
fn print_checks(r: &Record) {
    for c in &r.checks {
        let ids: Vec<&str> = c.policies.iter().map(|p| p.id.as_str()).collect();
        let code = c.code.map(|c| format!(" ({c})")).unwrap_or_default();
        let gates: Vec<String> = c
            .approval
            .iter()
            .map(|(g, q)| format!("{g} x{q}"))
            .collect();
        println!(
            "{:>22}check: {}{code}{}{}  [policy {}]",
            "",
            c.decision,
            if ids.is_empty() {
                String::new()
            } else {
                format!(" by {}", ids.join(", "))
            },
            if gates.is_empty() {
                String::new()
            } else {
                format!(", needs {}", gates.join(", "))
            },
            short(&c.policy_version)
        );
    }
}

fn tool(r: &Record) -> String {
    r.tool.clone().unwrap_or_else(|| "-".into())
}

fn args(r: &Record) -> String {
    r.args.as_ref().map(|a| a.to_string()).unwrap_or_default()
}

fn status(r: &Record) -> String {
    match (r.status, &r.code) {
        (Some(s), Some(c)) => format!("{s} ({c})"),
        (Some(s), None) => s.to_string(),
        (None, _) => "-".into(),
    }
}

fn short(version: &str) -> &str {
    let v = version.strip_prefix("sha256:").unwrap_or(version);
    v.get(..12).unwrap_or(v)
}

/// A duration in µs, for people: 850ms, 12.4s, 3m05s, 2h10m.
fn span(us: i64) -> String {
    let ms = us / 1000;
    match ms {
        ..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}
