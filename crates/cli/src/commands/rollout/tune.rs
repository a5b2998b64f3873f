//! `warden tune --out DIR`: suggestions from recorded history, each a copy
//! of the pack with one change, verified by replaying it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use warden_oversight::rollout::replay::{ReplayOptions, replay};
use warden_oversight::rollout::tune::{TuneOptions, tune};
use warden_oversight::rollout::{Verdict, Window};

use super::replay::candidate;
use super::{HistoryArgs, runtime};
use crate::cli::Exit;

/// `warden tune`
#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    /// The pack in force (the one that made the recorded decisions).
    #[arg(long, default_value = ".")]
    pub pack: PathBuf,
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Where to write one modified copy of the pack per suggestion.
    #[arg(long)]
    pub out: PathBuf,
    /// Approved requests a raised threshold must rest on.
    #[arg(long, default_value_t = 20)]
    pub min_samples: u64,
    /// Print the suggestions as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: TuneArgs) -> anyhow::Result<Exit> {
    let engine = match candidate(&a.pack)? {
        Ok(e) => e,
        Err(exit) => return Ok(exit),
    };
    let (pack, out) = (std::path::absolute(&a.pack)?, std::path::absolute(&a.out)?);
    if out.starts_with(&pack) {
        anyhow::bail!("--out must be outside the pack directory (it receives copies of the pack)");
    }
    let window = a.history.window()?;
    let rt = runtime()?;
    let store = rt.block_on(a.history.open())?;
    let found = rt.block_on(tune(
        &store,
        &engine,
        &window,
        &TuneOptions {
            min_samples: a.min_samples,
        },
    ))?;
    if found.proposals == 0 {
        rt.block_on(store.close());
        anyhow::bail!(
            "no recorded proposals {}: nothing to tune from",
            HistoryArgs::describe(&window)
        );
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create `{}`", a.out.display()))?;
    let mut verified = Vec::new();
    for s in &found.thresholds {
        let dir = a.out.join(&s.gate.policy);
        write_copy(&a.pack, &dir, &s.files)?;
        // Verify by replay: the copy must load, pass its tests, and never
        // pass a request a person denied.
        let copy = match candidate(&dir)? {
            Ok(e) => e,
            Err(exit) => return Ok(exit),
        };
        let report = rt.block_on(replay(
            &store,
            &copy,
            &window,
            &ReplayOptions::default(),
            |_| {},
        ))?;
        let removed: u64 = report
            .changes
            .iter()
            .filter(|g| matches!(g.recorded, Verdict::Approval(_)) && g.candidate == Verdict::Allow)
            .map(|g| g.count)
            .sum();
        let denied: u64 = report
            .changes
            .iter()
            .filter(|g| g.loosened)
            .filter_map(|g| g.people.map(|p| p.denied))
            .sum();
        let md = super::replay::markdown(&report, &window);
        std::fs::write(dir.join("REPLAY.md"), md)?;
        std::fs::write(
            dir.join("replay.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        let share = if s.group_ms == 0 {
            0.0
        } else {
            s.saved_ms as f64 * 100.0 / s.group_ms as f64
        };
        let line = format!(
            "raise {} → {} in `{}`: −{removed} approvals {} (−{share:.0} % of {}'s approval time); {denied} requests that {} denied would have passed",
            s.gate.value,
            s.to,
            s.gate.policy,
            span(&window),
            s.gate.group,
            s.gate.group
        );
        verified.push((s, dir, line, report.loosened, denied));
    }
    rt.block_on(store.close());
    if a.json {
        let out = serde_json::json!({
            "proposals": found.proposals,
            "thresholds": verified.iter().map(|(s, dir, line, _, denied)| serde_json::json!({
                "suggestion": s,
                "pack": dir,
                "summary": line,
                "denied_would_pass": denied,
            })).collect::<Vec<_>>(),
            "kept": found.kept,
            "dead": found.dead,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(Exit::Ok);
    }
    println!(
        "suggestions from {} recorded proposals {} — from history, to be reviewed, not applied",
        found.proposals,
        HistoryArgs::describe(&window)
    );
    if verified.is_empty() {
        println!("\nno threshold to raise");
    }
    for (s, dir, line, _, _) in &verified {
        println!("\n  {line}");
        println!(
            "    based on {} approved requests; lowest value a person did not approve: {}",
            s.saved,
            s.lowest_not_approved
                .map_or_else(|| "none".to_owned(), |v| v.to_string())
        );
        println!("    candidate pack: {}", dir.display());
        if !s.tests_moved.is_empty() {
            println!(
                "    test cases moved above the new threshold: {}",
                s.tests_moved
                    .iter()
                    .map(|t| format!("\"{t}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        println!(
            "    check it:       warden replay --pack {} --since {}",
            dir.display(),
            a.history.since
        );
    }
    for k in &found.kept {
        println!("\n  keep `{}`: {}", k.policy, k.reason);
    }
    if !found.dead.is_empty() {
        println!("\npolicies that decided nothing in the window (listed, not changed)");
        for d in &found.dead {
            println!("  {}: {}", d.policy, d.finding);
        }
    }
    Ok(Exit::Ok)
}

/// "in 30 days".
fn span(w: &Window) -> String {
    let now = warden_evidence::micros(&warden_evidence::now()).unwrap_or(0);
    let end = w.until_us.unwrap_or(now);
    let days = end.saturating_sub(w.since_us.unwrap_or(end)).max(0) as f64 / 86_400e6;
    if days >= 1.0 {
        format!("in {days:.0} days")
    } else {
        format!("in {:.0} hours", days * 24.0)
    }
}

/// Copies the pack to `dir` (replacing an earlier copy) with `files`
/// (path in the pack → text) replaced.
fn write_copy(
    pack: &Path,
    dir: &Path,
    files: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot replace `{}`", dir.display()))?;
    }
    copy_dir(pack, dir)?;
    for (file, text) in files {
        let target = dir.join(file);
        std::fs::write(&target, text)
            .with_context(|| format!("cannot write `{}`", target.display()))?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create `{}`", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest)
                .with_context(|| format!("cannot copy `{}`", path.display()))?;
        }
    }
    Ok(())
}
