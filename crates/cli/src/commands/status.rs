//! `warden status`: the operational views as tables — runs by state and
//! stuck runs, kill switches in force, the approval bottleneck, tool
//! hotspots and active incidents.

use serde_json::{Value, json};

use super::remote::{Remote, age, call, secs, text};
use crate::cli::Exit;
use crate::render::Table;

/// `warden status`
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// A running run is stuck after this long without progress.
    #[arg(long, default_value = "15m")]
    pub idle: String,
    /// Hotspots count actions proposed within this window.
    #[arg(long, default_value = "1h")]
    pub window: String,
}

/// Runs `warden status`.
pub fn run(a: StatusArgs) -> anyhow::Result<Exit> {
    let r = &a.remote;
    let get =
        |path: &str, query: &[(&str, String)]| call(r, reqwest::Method::GET, path, query, None);
    let runs = match get("/v1/views/runs", &[("idle", a.idle.clone())])? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    let approvals = match get("/v1/views/approvals", &[])? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    let hotspots = match get(
        "/v1/views/hotspots",
        &[("window", a.window.clone()), ("limit", "10".into())],
    )? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    let incidents = match get(
        "/v1/incidents",
        &[("state", "active".into()), ("limit", "20".into())],
    )? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    if r.json {
        let all = json!({
            "runs": runs, "approvals": approvals,
            "hotspots": hotspots, "incidents": incidents["incidents"],
        });
        println!("{all:#}");
        return Ok(Exit::Ok);
    }
    print_runs(&runs);
    println!();
    print_approvals(&approvals);
    println!();
    print_hotspots(&hotspots, &a.window);
    println!();
    print_incidents(&incidents);
    Ok(Exit::Ok)
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn float(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn pairs(v: &Value, key: &str) -> Vec<(String, String)> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, x)| {
                    let x = match x {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), x)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn print_runs(v: &Value) {
    let states = pairs(v, "by_state");
    println!(
        "RUNS   {}",
        if states.is_empty() {
            "none".into()
        } else {
            states
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join("   ")
        }
    );
    let stuck = items(v, "stuck");
    println!(
        "  stuck (no progress for {}): {}",
        secs(int(v, "idle_after_s")),
        stuck.len()
    );
    if !stuck.is_empty() {
        let mut t = Table::new(&["RUN", "WORKFLOW", "AGENT", "IDLE"]);
        for s in stuck {
            t.row(vec![
                text(s, "run").to_owned(),
                text(s, "workflow").to_owned(),
                text(s, "agent").to_owned(),
                secs(int(s, "idle_s")),
            ]);
        }
        t.print("  ");
    }
    let paused: Vec<&str> = items(v, "paused_agents")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let quarantined = pairs(v, "quarantined_agents");
    let circuits = pairs(v, "open_circuits");
    println!(
        "  paused agents: {}",
        if paused.is_empty() {
            "none".into()
        } else {
            paused.join(", ")
        }
    );
    println!(
        "  quarantined agents: {}",
        if quarantined.is_empty() {
            "none".into()
        } else {
            quarantined
                .iter()
                .map(|(a, g)| format!("{a} (writes need {g})"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!(
        "  open circuits: {}",
        if circuits.is_empty() {
            "none".into()
        } else {
            circuits
                .iter()
                .map(|(t, until)| format!("{t} (until {until})"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
}

fn print_approvals(v: &Value) {
    let groups = items(v, "groups");
    println!("APPROVALS   {} pending", int(v, "pending"));
    if groups.is_empty() {
        return;
    }
    let mut t = Table::new(&[
        "GROUP",
        ">PENDING",
        ">AGE P50",
        ">AGE P95",
        ">OLDEST",
        "OLDEST REQUEST",
    ]);
    for g in groups {
        t.row(vec![
            text(g, "group").to_owned(),
            int(g, "pending").to_string(),
            secs(float(g, "age_p50_s") as i64),
            secs(float(g, "age_p95_s") as i64),
            secs(float(g, "oldest_age_s") as i64),
            text(g, "oldest").to_owned(),
        ]);
    }
    t.print("  ");
}

fn print_hotspots(v: &Value, window: &str) {
    let tools = items(v, "tools");
    println!("HOTSPOTS   tools by failures and retries, last {window}");
    if tools.is_empty() {
        println!("  no actions in the window");
        return;
    }
    let mut t = Table::new(&[
        "TOOL",
        "SYSTEM",
        ">ACTIONS",
        ">FAILED",
        ">DENIED",
        ">RETRIES",
        ">FAIL RATE",
    ]);
    for x in tools {
        t.row(vec![
            text(x, "tool").to_owned(),
            text(x, "system").to_owned(),
            int(x, "actions").to_string(),
            int(x, "failed").to_string(),
            int(x, "denied").to_string(),
            int(x, "retries").to_string(),
            format!("{:.1}%", float(x, "failure_rate")),
        ]);
    }
    t.print("  ");
}

fn print_incidents(v: &Value) {
    let list = items(v, "incidents");
    println!("INCIDENTS   {} active", list.len());
    if list.is_empty() {
        return;
    }
    let mut t = Table::new(&["ID", "STATE", "SEVERITY", "OWNER", "AGE", "SUMMARY"]);
    for i in list {
        t.row(vec![
            text(i, "id").to_owned(),
            text(i, "state").to_owned(),
            text(i, "severity").to_owned(),
            text(i, "owner").to_owned(),
            age(text(i, "detected")),
            text(i, "summary").to_owned(),
        ]);
    }
    t.print("  ");
}
