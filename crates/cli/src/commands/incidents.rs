//! `warden incidents list|show|ack|resolve|review`: the on-call owner's
//! side of oversight, against a running server.

use serde_json::{Value, json};

use super::remote::{Remote, age, call, millis, show, text};
use crate::cli::Exit;
use crate::render::Table;

/// `warden incidents ...`
#[derive(Debug, clap::Subcommand)]
pub enum IncidentsCommand {
    /// List incidents, newest first (default: open and acknowledged ones).
    List {
        #[command(flatten)]
        remote: Remote,
        /// active (open or acknowledged), open, acknowledged, resolved or all.
        #[arg(long, default_value = "active")]
        state: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one incident: what fired, who was paged, how fast, what was done.
    Show {
        /// The incident id (inc_...).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Acknowledge an incident: escalation stops.
    Ack {
        /// The incident id (inc_...).
        id: String,
        /// A note (recorded as evidence).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resolve an incident.
    Resolve {
        /// The incident id (inc_...).
        id: String,
        /// A note (recorded as evidence).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Record the post-incident review of a resolved incident: what
    /// happened, and the pack version with the fix or why none was needed.
    #[command(group(clap::ArgGroup::new("change").required(true).args(["pack_change", "no_change"])))]
    Review {
        /// The incident id (inc_...).
        id: String,
        /// What happened and what was learned.
        #[arg(long)]
        summary: String,
        /// The pack version that carries the fix (`warden validate` prints it).
        #[arg(long, value_name = "VERSION")]
        pack_change: Option<String>,
        /// Why no policy change was needed.
        #[arg(long, value_name = "REASON")]
        no_change: Option<String>,
        /// The runbook updated or followed (a URL).
        #[arg(long, value_name = "URL")]
        runbook: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Runs `warden incidents ...`.
pub fn run(cmd: IncidentsCommand) -> anyhow::Result<Exit> {
    match cmd {
        IncidentsCommand::List {
            remote,
            state,
            limit,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if state != "all" {
                query.push(("state", state));
            }
            Ok(
                match call(&remote, reqwest::Method::GET, "/v1/incidents", &query, None)? {
                    Ok(v) => show(&remote, &v, print_list),
                    Err(exit) => exit,
                },
            )
        }
        IncidentsCommand::Show { id, remote } => {
            let path = format!("/v1/incidents/{id}");
            Ok(
                match call(&remote, reqwest::Method::GET, &path, &[], None)? {
                    Ok(v) => show(&remote, &v, print_one),
                    Err(exit) => exit,
                },
            )
        }
        IncidentsCommand::Ack { id, note, remote } => answer(&remote, &id, "ack", note),
        IncidentsCommand::Resolve { id, note, remote } => answer(&remote, &id, "resolve", note),
        IncidentsCommand::Review {
            id,
            summary,
            pack_change,
            no_change,
            runbook,
            remote,
        } => {
            let path = format!("/v1/incidents/{id}/review");
            let body = json!({
                "summary": summary,
                "pack_change": pack_change,
                "no_change": no_change,
                "runbook": runbook,
            });
            Ok(
                match call(&remote, reqwest::Method::POST, &path, &[], Some(body))? {
                    Ok(v) => show(&remote, &v, |v| {
                        println!("{id}: review recorded");
                        print_one(v);
                    }),
                    // The server refused the review as written.
                    Err(_) => Exit::Unusable,
                },
            )
        }
    }
}

fn answer(remote: &Remote, id: &str, verb: &str, note: Option<String>) -> anyhow::Result<Exit> {
    let path = format!("/v1/incidents/{id}/{verb}");
    let body = json!({ "note": note });
    Ok(
        match call(remote, reqwest::Method::POST, &path, &[], Some(body))? {
            Ok(v) => show(remote, &v, |v| {
                println!("{id} is now {}", text(v, "state"));
                print_one(v);
            }),
            Err(exit) => exit,
        },
    )
}

fn ms(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_i64)
        .map_or_else(|| "-".into(), millis)
}

/// `agent support-bot, tool issue_refund` from the subject.
fn subject(v: &Value) -> String {
    v.get("subject")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, x)| match x {
                    Value::String(s) => Some(format!("{k} {s}")),
                    Value::Array(a) if !a.is_empty() => Some(format!(
                        "{k} {}",
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("+")
                    )),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn print_list(v: &Value) {
    let items = v
        .get("incidents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        println!("no incidents");
        return;
    }
    let mut t = Table::new(&[
        "ID", "STATE", "SEVERITY", "PLAYBOOK", "OWNER", "AGE", "TTD", "TTA", "SUMMARY",
    ]);
    for i in &items {
        t.row(vec![
            text(i, "id").to_owned(),
            text(i, "state").to_owned(),
            text(i, "severity").to_owned(),
            text(i, "playbook").to_owned(),
            text(i, "owner").to_owned(),
            age(text(i, "detected")),
            ms(i, "ttd_ms"),
            ms(i, "tta_ms"),
            text(i, "summary").to_owned(),
        ]);
    }
    t.print("");
}

fn print_one(v: &Value) {
    println!(
        "incident  {}  ({}, {}){}",
        text(v, "id"),
        text(v, "state"),
        text(v, "severity"),
        v.get("drill")
            .and_then(Value::as_str)
            .map(|d| format!("  DRILL {d}"))
            .unwrap_or_default()
    );
    println!("summary   {}", text(v, "summary"));
    println!(
        "playbook  {}  detector {}",
        text(v, "playbook"),
        text(v, "detector")
    );
    println!(
        "owner     {}{}",
        text(v, "owner"),
        v.get("on_call")
            .and_then(Value::as_str)
            .map(|p| format!("  (on call: {p})"))
            .unwrap_or_default()
    );
    println!("about     {}", subject(v));
    println!(
        "first     {}{}",
        text(v, "first_event"),
        v.get("first_seq")
            .and_then(Value::as_i64)
            .map(|s| format!("  (evidence #{s})"))
            .unwrap_or_default()
    );
    println!(
        "detected  {}  ({} ago), time to detect {}",
        text(v, "detected"),
        age(text(v, "detected")),
        ms(v, "ttd_ms")
    );
    if let Some(by) = v.get("acknowledge_by").and_then(Value::as_str) {
        println!("ack by    {by}");
    }
    if let Some(t) = v.get("acknowledged").and_then(Value::as_str) {
        println!(
            "acked     {t} by {}, time to acknowledge {}",
            text(v, "acknowledged_by"),
            ms(v, "tta_ms")
        );
    }
    if let Some(t) = v.get("resolved").and_then(Value::as_str) {
        println!(
            "resolved  {t} by {}, time to resolve {}",
            text(v, "resolved_by"),
            ms(v, "ttr_ms")
        );
    }
    println!(
        "triggers  {}   breaches {}   paged level {}",
        v.get("triggers").and_then(Value::as_i64).unwrap_or(0),
        v.get("breaches").and_then(Value::as_i64).unwrap_or(0),
        v.get("level").and_then(Value::as_i64).unwrap_or(0)
    );
    let detail = v.get("detail").cloned().unwrap_or(Value::Null);
    if let Some(r) = detail.get("routes").and_then(Value::as_array) {
        let r: Vec<&str> = r.iter().filter_map(Value::as_str).collect();
        println!(
            "routes    {}",
            if r.is_empty() {
                "none usable".into()
            } else {
                r.join(" → ")
            }
        );
    }
    for s in detail
        .get("skipped_routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "skipped   {} (disabled: {})",
            text(s, "route"),
            text(s, "disabled")
        );
    }
    for a in detail
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ok = a.get("ok").and_then(Value::as_bool).unwrap_or(false);
        let mut extra = a.clone();
        if let Some(o) = extra.as_object_mut() {
            o.remove("do");
            o.remove("ok");
        }
        println!(
            "action    {} {}{}",
            text(a, "do"),
            if ok { "done" } else { "NOT done" },
            if extra.as_object().is_some_and(|o| !o.is_empty()) {
                format!(" {extra}")
            } else {
                String::new()
            }
        );
    }
    if let Some(f) = detail.get("findings") {
        println!("findings  {f}");
    }
    for n in v
        .get("notifications")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "notified  {:<14} via {:<14} {:<10} {} attempt(s){}",
            text(n, "step"),
            format!("{} ({})", text(n, "route"), text(n, "kind")),
            text(n, "state"),
            n.get("attempts").and_then(Value::as_i64).unwrap_or(0),
            n.get("last_error")
                .and_then(Value::as_str)
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(r) = v.get("review").filter(|r| !r.is_null()) {
        println!(
            "review    by {} at {}: {}",
            text(r, "by"),
            text(r, "at"),
            text(r, "summary")
        );
        match r.get("pack_change").and_then(Value::as_str) {
            Some(ver) => println!("fix       pack version {ver}"),
            None => println!("fix       no policy change: {}", text(r, "no_change")),
        }
        if let Some(u) = r.get("runbook").and_then(Value::as_str) {
            println!("runbook   {u}");
        }
    }
}
