//! `warden replay --pack CANDIDATE`: the candidate pack against recorded
//! history. Exit 0: nothing loosened; 1: some decision loosened; 2: the
//! input is unusable (missing or broken pack, failing pack tests, bad
//! window, empty window).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use warden_oversight::rollout::replay::{
    CandidateTests, ReplayOptions, ReplayReport, candidate_tests, replay,
};
use warden_oversight::rollout::{Verdict, Window, ticked};
use warden_policy::Engine;

use super::{HistoryArgs, runtime};
use crate::cli::{ErrorFormat, Exit};
use crate::render::Table;

/// `warden replay`
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The candidate pack directory.
    #[arg(long)]
    pub pack: PathBuf,
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as Markdown (for a pull request).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Exit 0 even when decisions loosen.
    #[arg(long)]
    pub allow_loosening: bool,
    /// Example records shown per group of changes.
    #[arg(long, default_value_t = 3)]
    pub examples: usize,
}

/// Compiles a candidate pack and runs its tests; `Err(exit)` (2) after
/// saying what is wrong.
pub fn candidate(pack: &std::path::Path) -> anyhow::Result<Result<Engine, Exit>> {
    if !pack.join("warden.toml").is_file() {
        eprintln!(
            "error: `{}` is not a pack directory (no warden.toml)",
            pack.display()
        );
        return Ok(Err(Exit::Unusable));
    }
    let engine = match crate::commands::compile(pack, ErrorFormat::Human)? {
        Ok(c) => c.engine,
        Err(_) => {
            eprintln!("error: the candidate pack is invalid; fix it before replaying");
            return Ok(Err(Exit::Unusable));
        }
    };
    let CandidateTests { passed, failures } = candidate_tests(&engine);
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("  FAIL {f}");
        }
        eprintln!(
            "error: {} of the candidate pack's test cases fail ({passed} pass); fix them before replaying",
            failures.len()
        );
        return Ok(Err(Exit::Unusable));
    }
    Ok(Ok(engine))
}

pub fn run(a: ReplayArgs) -> anyhow::Result<Exit> {
    let engine = match candidate(&a.pack)? {
        Ok(e) => e,
        Err(exit) => return Ok(exit),
    };
    let window = a.history.window()?;
    let report = runtime()?.block_on(async {
        let store = a.history.open().await?;
        let mut shown = 0u64;
        let report = replay(
            &store,
            &engine,
            &window,
            &ReplayOptions {
                examples: a.examples,
            },
            |n| {
                if !a.json && n >= shown + 100_000 {
                    shown = n;
                    eprintln!("  replayed {n} proposals");
                }
            },
        )
        .await;
        store.close().await;
        anyhow::Ok(report?)
    })?;
    if report.replayed == 0 && report.erased == 0 {
        anyhow::bail!(
            "no recorded proposals {} matching the filters: nothing to replay",
            HistoryArgs::describe(&window)
        );
    }
    if let Some(path) = &a.markdown {
        std::fs::write(path, markdown(&report, &window))
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &window);
    }
    let loosened = report.loosened > 0;
    if !a.json {
        if loosened && a.allow_loosening {
            println!(
                "\n{} decisions loosened; accepted (--allow-loosening)",
                report.loosened
            );
        } else if loosened {
            println!(
                "\n{} decisions loosened: exit 1 (review them; --allow-loosening accepts)",
                report.loosened
            );
        } else {
            println!("\nno decision loosened");
        }
    }
    Ok(if loosened && !a.allow_loosening {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

/// The outcomes that occur, recorded ones first, in a stable order.
fn labels(r: &ReplayReport) -> (Vec<Verdict>, Vec<Verdict>) {
    let rows: BTreeSet<Verdict> = r.matrix.iter().map(|c| c.recorded.clone()).collect();
    let cols: BTreeSet<Verdict> = r.matrix.iter().map(|c| c.candidate.clone()).collect();
    (rows.into_iter().collect(), cols.into_iter().collect())
}

fn cell(r: &ReplayReport, row: &Verdict, col: &Verdict) -> u64 {
    r.matrix
        .iter()
        .find(|c| &c.recorded == row && &c.candidate == col)
        .map_or(0, |c| c.count)
}

fn args_text(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(119).collect::<String>())
    } else {
        s
    }
}

fn print_report(r: &ReplayReport, w: &Window) {
    println!(
        "replayed {} recorded proposals {} with pack `{}` ({})",
        r.replayed,
        HistoryArgs::describe(w),
        r.candidate.pack,
        r.candidate.policy_version
    );
    println!(
        "unchanged {}  changed {} (loosened {}, tightened {})  indeterminate {}{}",
        r.unchanged,
        r.changed,
        r.loosened,
        r.tightened,
        r.indeterminate,
        if r.erased > 0 {
            format!("  erased {}", r.erased)
        } else {
            String::new()
        }
    );
    let (rows, cols) = labels(r);
    println!("\nrecorded (rows) × candidate (columns)");
    let mut head = vec!["RECORDED".to_owned()];
    head.extend(cols.iter().map(|c| format!(">{c}")));
    let mut t = Table::new(&head);
    for row in &rows {
        let mut cells = vec![row.to_string()];
        cells.extend(cols.iter().map(|c| cell(r, row, c).to_string()));
        t.row(cells);
    }
    t.print("  ");
    println!("\nsummary");
    for s in &r.summary {
        println!("  {s}");
    }
    if !r.changes.is_empty() {
        println!("\nchanged decisions, by the policies that decide them now");
        for g in &r.changes {
            let by = if g.policies.is_empty() {
                "no policy grants them (default deny)".to_owned()
            } else {
                ticked(&g.policies, ", ")
            };
            println!(
                "  {} {} → {}: {}  ({by})",
                if g.loosened { "LOOSENED " } else { "tightened" },
                g.recorded,
                g.candidate,
                g.count
            );
            if let Some(p) = &g.people {
                println!(
                    "    people decided: approved {}, denied {}, expired {}, cancelled {}, open {}",
                    p.approved, p.denied, p.expired, p.cancelled, p.open
                );
            }
            for e in &g.examples {
                println!(
                    "    #{} {} {} {} {}",
                    e.seq,
                    e.time,
                    e.agent,
                    e.tool,
                    args_text(&e.args)
                );
                println!("      then: {}", e.recorded_reason);
                println!("      now:  {}", e.candidate_reason);
                println!("      see:  {}", e.timeline);
            }
        }
    }
    if !r.undetermined.is_empty() {
        println!("\nindeterminate: decisions that depend on redacted fields (never guessed)");
        for g in &r.undetermined {
            println!(
                "  {} on {}: {} (recorded {}; could be {})",
                g.count,
                ticked(&g.fields, ", "),
                if g.count == 1 {
                    "proposal"
                } else {
                    "proposals"
                },
                g.recorded,
                g.possible
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            );
            for e in &g.examples {
                println!("    #{} {} {} {}", e.seq, e.agent, e.tool, e.timeline);
            }
        }
    }
}

/// The report as Markdown, for a pull request.
pub fn markdown(r: &ReplayReport, w: &Window) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Policy replay: `{}`\n", r.candidate.pack);
    let _ = writeln!(
        s,
        "{} recorded proposals {} replayed with `{}`.\n",
        r.replayed,
        HistoryArgs::describe(w),
        r.candidate.policy_version
    );
    let verdict = if r.loosened > 0 {
        format!("**{} decisions loosened**", r.loosened)
    } else {
        "**No decision loosened**".to_owned()
    };
    let _ = writeln!(
        s,
        "{verdict} · unchanged {} · changed {} (loosened {}, tightened {}) · indeterminate {}\n",
        r.unchanged, r.changed, r.loosened, r.tightened, r.indeterminate
    );
    for line in &r.summary {
        let _ = writeln!(s, "- {line}");
    }
    let (rows, cols) = labels(r);
    let _ = writeln!(s, "\n| recorded \\ candidate | {} |", ticked(&cols, " | "));
    let _ = writeln!(s, "|---|{}", "---:|".repeat(cols.len()));
    for row in &rows {
        let _ = writeln!(
            s,
            "| `{row}` | {} |",
            cols.iter()
                .map(|c| cell(r, row, c).to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    if !r.changes.is_empty() {
        let _ = writeln!(s, "\n### Changed decisions\n");
        let _ = writeln!(s, "| change | count | decided now by | people decided |");
        let _ = writeln!(s, "|---|---:|---|---|");
        for g in &r.changes {
            let people = g.people.map_or_else(
                || "–".to_owned(),
                |p| {
                    format!(
                        "approved {}, denied {}, expired {}, open {}",
                        p.approved, p.denied, p.expired, p.open
                    )
                },
            );
            let _ = writeln!(
                s,
                "| {}`{}` → `{}` | {} | {} | {people} |",
                if g.loosened { "⚠️ " } else { "" },
                g.recorded,
                g.candidate,
                g.count,
                if g.policies.is_empty() {
                    "default deny".to_owned()
                } else {
                    ticked(&g.policies, ", ")
                }
            );
        }
        let _ = writeln!(s, "\n<details><summary>Examples</summary>\n");
        for g in &r.changes {
            for e in &g.examples {
                let _ = writeln!(
                    s,
                    "- #{} {} `{}` `{}` `{}`  \n  then: {}  \n  now: {}  \n  `{}`",
                    e.seq,
                    e.time,
                    e.agent,
                    e.tool,
                    e.args,
                    e.recorded_reason,
                    e.candidate_reason,
                    e.timeline
                );
            }
        }
        let _ = writeln!(s, "\n</details>");
    }
    if !r.undetermined.is_empty() {
        let _ = writeln!(s, "\n### Indeterminate (depend on redacted fields)\n");
        for g in &r.undetermined {
            let _ = writeln!(
                s,
                "- {} proposals depend on {}: recorded `{}`, could be {}",
                g.count,
                ticked(&g.fields, ", "),
                g.recorded,
                ticked(&g.possible, " or ")
            );
        }
    }
    s
}
