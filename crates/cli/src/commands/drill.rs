//! `warden drill run|list|show|history`: rehearse playbooks with real
//! traffic marked as a drill, and measure detection, paging and response.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::remote::{Remote, age, call, millis, show, text};
use crate::cli::Exit;
use crate::render::Table;

/// A playbook not drilled for this long is listed as stale.
const STALE_DAYS: i64 = 30;

/// `warden drill ...`
#[derive(Debug, clap::Subcommand)]
pub enum DrillCommand {
    /// Run a drill the pack declares against a running server (operator
    /// token in WARDEN_TOKEN); exit 0 when every playbook passed.
    Run {
        /// The drill's id in the pack (`[[drills]]`).
        name: String,
        /// Acknowledge and resolve each incident as this person once it is
        /// paged (for CI). Without it, real people answer, and the drill
        /// waits up to each playbook's response window.
        #[arg(long, value_name = "PERSON")]
        ack_as: Option<String>,
        /// Also write the report as Markdown to FILE.
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// The drills a pack declares, and the playbooks no drill exercises.
    List {
        /// The governance pack directory.
        #[arg(long, default_value = ".")]
        pack: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One drill run with its report.
    Show {
        /// The drill run id (drl_...).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Drill runs per playbook (the trend), and playbooks never drilled or
    /// not drilled for 30 days.
    History {
        /// The pack in force, to list playbooks never drilled.
        #[arg(long)]
        pack: Option<PathBuf>,
        /// At most this many runs, newest first.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Runs `warden drill ...`.
pub fn run(cmd: DrillCommand) -> anyhow::Result<Exit> {
    match cmd {
        DrillCommand::Run {
            name,
            ack_as,
            markdown,
            remote,
        } => run_drill(&remote, &name, ack_as, markdown),
        DrillCommand::List { pack, json } => list(&pack, json),
        DrillCommand::Show { id, remote } => {
            let path = format!("/v1/drills/{id}");
            Ok(
                match call(&remote, reqwest::Method::GET, &path, &[], None)? {
                    Ok(v) => show(&remote, &v, |v| print_report(&v["report"])),
                    Err(exit) => exit,
                },
            )
        }
        DrillCommand::History {
            pack,
            limit,
            remote,
        } => history(&remote, pack, limit),
    }
}

fn run_drill(
    remote: &Remote,
    name: &str,
    ack_as: Option<String>,
    markdown: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    if let Some(m) = &markdown
        && let Some(dir) = m.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        eprintln!(
            "error: --markdown: directory `{}` does not exist",
            dir.display()
        );
        return Ok(Exit::Unusable);
    }
    let body = json!({ "drill": name, "ack_as": ack_as });
    let started = match call(remote, reqwest::Method::POST, "/v1/drills", &[], Some(body))? {
        Ok(v) => v,
        // Unknown drill or person, a drill already running, no permission.
        Err(_) => return Ok(Exit::Unusable),
    };
    let id = text(&started, "id").to_owned();
    if !remote.json {
        println!(
            "drill {id} (`{name}`) started: real traffic as `{}`, marked as a drill; pages say DRILL",
            started["report"]["agent"].as_str().unwrap_or("?")
        );
        match &ack_as {
            Some(p) => println!("incidents are acknowledged and resolved as `{p}` once paged"),
            None => println!(
                "waiting for people to acknowledge and resolve, up to each playbook's response window (Ctrl-C aborts and cleans up)"
            ),
        }
    }
    let stop = interrupt_flag();
    let path = format!("/v1/drills/{id}");
    let mut aborted = false;
    let begun = Instant::now();
    let mut last_note = Instant::now();
    let report = loop {
        std::thread::sleep(Duration::from_millis(250));
        if stop.load(Ordering::SeqCst) && !aborted {
            aborted = true;
            eprintln!("interrupted: aborting drill {id} (the server undoes what it changed)");
            let _ = call(remote, reqwest::Method::DELETE, &path, &[], None)?;
        }
        let v = match call(remote, reqwest::Method::GET, &path, &[], None)? {
            Ok(v) => v,
            Err(exit) => return Ok(exit),
        };
        if text(&v, "state") != "running" {
            break v;
        }
        if !remote.json && last_note.elapsed() >= Duration::from_secs(10) {
            last_note = Instant::now();
            println!("… still running ({}s)", begun.elapsed().as_secs());
        }
    };
    let r = &report["report"];
    if let Some(m) = &markdown {
        std::fs::write(m, markdown_report(r))
            .with_context(|| format!("cannot write {}", m.display()))?;
    }
    if remote.json {
        println!("{:#}", report);
    } else {
        print_report(r);
        if let Some(m) = &markdown {
            println!("report written to {}", m.display());
        }
    }
    Ok(if text(r, "state") == "passed" {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Set once Ctrl-C is pressed (the drill is then aborted, not abandoned).
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&flag);
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                f.store(true, Ordering::SeqCst);
            }
        });
    });
    flag
}

fn ms_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_i64)
        .map_or_else(|| "-".into(), millis)
}

fn actions_of(p: &Value) -> String {
    let a: Vec<String> = p["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{} {}",
                text(a, "do"),
                if a["effective"] == json!(true) {
                    "held"
                } else {
                    "NOT held"
                }
            )
        })
        .collect();
    if a.is_empty() {
        "-".into()
    } else {
        a.join(", ")
    }
}

fn rows(r: &Value) -> Vec<Vec<String>> {
    r["playbooks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                text(p, "playbook").to_owned(),
                text(p, "incident").to_owned(),
                ms_of(p, "detect_ms"),
                ms_of(p, "page_ms"),
                ms_of(p, "ack_ms"),
                ms_of(p, "resolve_ms"),
                p["respond_within_s"].as_u64().map_or_else(
                    || "-".into(),
                    |s| millis(i64::try_from(s * 1000).unwrap_or(i64::MAX)),
                ),
                actions_of(p),
                if p["pass"] == json!(true) {
                    "pass"
                } else {
                    "FAIL"
                }
                .to_owned(),
            ]
        })
        .collect()
}

const HEAD: [&str; 9] = [
    "PLAYBOOK", "INCIDENT", "DETECT", "PAGED", "ACKED", "RESOLVED", "WINDOW", "ACTIONS", "RESULT",
];

fn print_report(r: &Value) {
    println!(
        "drill {} (`{}`, {}) as `{}`: {}",
        text(r, "id"),
        text(r, "drill"),
        text(r, "scenario"),
        text(r, "agent"),
        text(r, "state").to_uppercase()
    );
    if let Some(o) = r["outcomes"].as_object() {
        let parts: Vec<String> = o.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!("sent {} proposal(s): {}", r["sent"], parts.join(", "));
    }
    let mut t = Table::new(&HEAD);
    for row in rows(r) {
        t.row(row);
    }
    t.print("");
    println!("(times from the first drill event)");
    for p in r["playbooks"].as_array().into_iter().flatten() {
        for why in p["problems"].as_array().into_iter().flatten() {
            println!("  {}: {}", text(p, "playbook"), why.as_str().unwrap_or(""));
        }
    }
    for w in r["problems"].as_array().into_iter().flatten() {
        println!("  {}", w.as_str().unwrap_or(""));
    }
    for o in r["other_incidents"].as_array().into_iter().flatten() {
        println!(
            "also opened {} (playbook `{}`)",
            text(o, "incident"),
            text(o, "playbook")
        );
    }
    for u in r["undone"].as_array().into_iter().flatten() {
        println!("undone: {}", u.as_str().unwrap_or(""));
    }
}

fn markdown_report(r: &Value) -> String {
    let mut s = format!(
        "# Drill `{}` — {}\n\n- Run: `{}`, scenario `{}`, agent `{}`\n- Started {} by `{}`, finished {}\n- Pack version `{}`\n\n",
        text(r, "drill"),
        text(r, "state"),
        text(r, "id"),
        text(r, "scenario"),
        text(r, "agent"),
        text(r, "started"),
        text(r, "started_by"),
        text(r, "finished"),
        text(r, "pack_version"),
    );
    s.push_str(&format!(
        "| {} |\n|{}\n",
        HEAD.join(" | "),
        "---|".repeat(HEAD.len())
    ));
    for row in rows(r) {
        s.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    s.push_str("\nTimes are from the first drill event.\n");
    let mut notes = Vec::new();
    for p in r["playbooks"].as_array().into_iter().flatten() {
        for why in p["problems"].as_array().into_iter().flatten() {
            notes.push(format!(
                "- `{}`: {}",
                text(p, "playbook"),
                why.as_str().unwrap_or("")
            ));
        }
    }
    if !notes.is_empty() {
        s.push_str("\n## Problems\n\n");
        s.push_str(&notes.join("\n"));
        s.push('\n');
    }
    let undone: Vec<String> = r["undone"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str().map(|u| format!("- {u}")))
        .collect();
    if !undone.is_empty() {
        s.push_str("\n## Undone at the end\n\n");
        s.push_str(&undone.join("\n"));
        s.push('\n');
    }
    s
}

fn list(pack: &std::path::Path, as_json: bool) -> anyhow::Result<Exit> {
    let loaded = match warden_model::load(pack) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Unusable);
        }
    };
    let p = &loaded.pack;
    let undrilled: Vec<&str> = p
        .playbooks
        .keys()
        .filter(|pb| !p.drills.values().any(|d| d.playbooks.contains(pb)))
        .map(String::as_str)
        .collect();
    if as_json {
        let drills: Vec<Value> = p
            .drills
            .values()
            .map(|d| {
                json!({
                    "id": d.id,
                    "scenario": d.scenario.as_str(),
                    "agent": d.agent,
                    "playbooks": d.playbooks,
                    "proposals": d.steps.iter().map(|s| s.repeat).sum::<u32>(),
                    "detect_within_s": d.detect_within.as_secs(),
                    "description": d.description,
                })
            })
            .collect();
        println!(
            "{:#}",
            json!({ "drills": drills, "playbooks_without_drill": undrilled })
        );
        return Ok(Exit::Ok);
    }
    if p.drills.is_empty() {
        println!("pack `{}` declares no drills", p.name);
    } else {
        let mut t = Table::new(&[
            "DRILL",
            "SCENARIO",
            "AGENT",
            "PLAYBOOKS",
            "PROPOSALS",
            "DESCRIPTION",
        ]);
        for d in p.drills.values() {
            t.row(vec![
                d.id.clone(),
                d.scenario.as_str().to_owned(),
                d.agent.clone(),
                d.playbooks.join(", "),
                d.steps.iter().map(|s| s.repeat).sum::<u32>().to_string(),
                d.description.clone().unwrap_or_default(),
            ]);
        }
        t.print("");
    }
    if !undrilled.is_empty() {
        println!("playbooks no drill exercises: {}", undrilled.join(", "));
    }
    Ok(Exit::Ok)
}

#[derive(Default)]
struct Trend {
    runs: u32,
    passed: u32,
    last: Option<(String, bool, Value)>,
}

fn history(remote: &Remote, pack: Option<PathBuf>, limit: u32) -> anyhow::Result<Exit> {
    let declared: Option<Vec<String>> = match &pack {
        None => None,
        Some(dir) => match warden_model::load(dir) {
            Ok(l) => Some(l.pack.playbooks.keys().cloned().collect()),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(Exit::Unusable);
            }
        },
    };
    let v = match call(
        remote,
        reqwest::Method::GET,
        "/v1/drills",
        &[("limit", limit.to_string())],
        None,
    )? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    let runs = v.as_array().cloned().unwrap_or_default();
    // Newest first: the first run seen of a playbook is its last.
    let mut by_pb: BTreeMap<String, Trend> = BTreeMap::new();
    for run in &runs {
        let r = &run["report"];
        for p in r["playbooks"].as_array().into_iter().flatten() {
            let t = by_pb.entry(text(p, "playbook").to_owned()).or_default();
            t.runs += 1;
            let pass = p["pass"] == json!(true);
            if pass {
                t.passed += 1;
            }
            if t.last.is_none() {
                t.last = Some((text(run, "started").to_owned(), pass, p.clone()));
            }
        }
    }
    let now = warden_evidence::micros(&warden_evidence::now()).unwrap_or(0);
    let stale_us = STALE_DAYS * 86_400 * 1_000_000;
    let never: Vec<String> = declared
        .iter()
        .flatten()
        .filter(|pb| !by_pb.contains_key(*pb))
        .cloned()
        .collect();
    let stale: Vec<String> = by_pb
        .iter()
        .filter(|(_, t)| {
            t.last
                .as_ref()
                .and_then(|(at, _, _)| warden_evidence::micros(at))
                .is_some_and(|at| now - at > stale_us)
        })
        .map(|(pb, _)| pb.clone())
        .collect();
    if remote.json {
        let playbooks: Vec<Value> = by_pb
            .iter()
            .map(|(pb, t)| {
                let (at, pass, last) = t.last.clone().unwrap_or_default();
                json!({
                    "playbook": pb, "runs": t.runs, "passed": t.passed,
                    "last_run": at, "last_passed": pass,
                    "last_detect_ms": last.get("detect_ms"), "last_page_ms": last.get("page_ms"),
                    "last_ack_ms": last.get("ack_ms"),
                })
            })
            .collect();
        println!(
            "{:#}",
            json!({ "runs": runs.len(), "playbooks": playbooks, "never_drilled": never, "stale": stale, "stale_after_days": STALE_DAYS })
        );
        return Ok(Exit::Ok);
    }
    if by_pb.is_empty() {
        println!("no drills have run");
    } else {
        let mut t = Table::new(&[
            "PLAYBOOK", "RUNS", "PASSED", "LAST RUN", "LAST", "DETECT", "PAGED", "ACKED",
        ]);
        for (pb, tr) in &by_pb {
            let (at, pass, last) = tr.last.clone().unwrap_or_default();
            t.row(vec![
                pb.clone(),
                tr.runs.to_string(),
                tr.passed.to_string(),
                format!("{} ago", age(&at)),
                if pass { "pass" } else { "FAIL" }.to_owned(),
                ms_of(&last, "detect_ms"),
                ms_of(&last, "page_ms"),
                ms_of(&last, "ack_ms"),
            ]);
        }
        t.print("");
    }
    if !never.is_empty() {
        println!("never drilled: {}", never.join(", "));
    }
    if !stale.is_empty() {
        println!("not drilled for {STALE_DAYS} days: {}", stale.join(", "));
    }
    Ok(Exit::Ok)
}
