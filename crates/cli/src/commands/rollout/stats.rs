//! `warden approvals stats`: where human approval time goes, and the
//! signals of approval fatigue.

use warden_oversight::rollout::approvals::{ApprovalStats, StatsOptions, approval_stats};

use super::{HistoryArgs, duration_ms, runtime};
use crate::cli::Exit;
use crate::render::Table;

/// `warden approvals stats`
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Only requests that need this group, and its approvers' answers.
    #[arg(long)]
    pub group: Option<String>,
    /// An approval within this time of the request reaching the approver
    /// counts as fast (a rubber-stamping signal).
    #[arg(long, default_value = "5s")]
    pub fast: humantime::Duration,
    /// Print the statistics as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: StatsArgs) -> anyhow::Result<Exit> {
    let window = a.history.window()?;
    let options = StatsOptions {
        group: a.group.clone(),
        fast_ms: u64::try_from(a.fast.as_millis()).unwrap_or(u64::MAX),
        ..StatsOptions::default()
    };
    let stats = runtime()?.block_on(async {
        let store = a.history.open().await?;
        let s = approval_stats(&store, &window, &options).await;
        store.close().await;
        anyhow::Ok(s?)
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print(&stats, &HistoryArgs::describe(&window));
    }
    Ok(Exit::Ok)
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn print(s: &ApprovalStats, window: &str) {
    println!(
        "{} approval requests {window}{}; people spent {} waiting on them in all",
        s.requests,
        s.group
            .as_ref()
            .map(|g| format!(" needing `{g}`"))
            .unwrap_or_default(),
        duration_ms(s.waited_ms)
    );
    if s.requests == 0 {
        return;
    }
    println!("\nper gate and group");
    let mut t = Table::new(&[
        "GATE",
        "GROUPS",
        ">REQUESTS",
        ">APPROVED",
        ">DENIED",
        ">EXPIRED",
        ">P50",
        ">P95",
        ">TIME SHARE",
    ]);
    for g in &s.gates {
        let decided = (g.approved + g.denied + g.expired).max(1) as f64;
        t.row(vec![
            format!(
                "{}{}",
                g.gates.join(" + "),
                if g.automation_candidate { " *" } else { "" }
            ),
            g.groups.join(", "),
            g.requests.to_string(),
            pct(g.approved as f64 / decided),
            pct(g.denied as f64 / decided),
            pct(g.expired as f64 / decided),
            g.p50_ms.map(duration_ms).unwrap_or_default(),
            g.p95_ms.map(duration_ms).unwrap_or_default(),
            pct(g.time_share),
        ]);
    }
    t.print("  ");
    println!(
        "\nper approver (fast: approved within {})",
        duration_ms(s.fast_ms)
    );
    let mut t = Table::new(&[
        "APPROVER",
        ">DECISIONS",
        ">APPROVED",
        ">MEDIAN",
        ">PER DAY",
        ">FAST",
    ]);
    for p in &s.approvers {
        t.row(vec![
            format!("{}{}", p.approver, if p.fatigue { " !" } else { "" }),
            p.decisions.to_string(),
            pct(p.approval_rate),
            p.median_ms.map(duration_ms).unwrap_or_default(),
            format!("{:.1}", p.per_day),
            format!("{} ({})", p.fast, pct(p.fast_share)),
        ]);
    }
    t.print("  ");
    if !s.flags.is_empty() {
        println!("\nflags (* automation candidate, ! fatigue signal)");
        for f in &s.flags {
            println!("  {f}");
        }
    }
}
