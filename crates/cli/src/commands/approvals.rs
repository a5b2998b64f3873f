//! `warden approvals list|show|approve|deny`: the approver's side, against
//! a running server (`--server`, `WARDEN_SERVER`) with the person's token
//! (`--token`, `WARDEN_TOKEN`).

use serde_json::{Value, json};

use super::remote::{Remote, age, call, text};
use crate::cli::Exit;
use crate::render::Table;

/// `warden approvals ...`
#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCommand {
    /// Approval statistics from the audit log: per gate and group, per
    /// approver, automation candidates and fatigue signals.
    Stats(crate::commands::rollout::stats::StatsArgs),
    /// List approval requests, oldest first (default: pending ones you may answer).
    List {
        #[command(flatten)]
        remote: Remote,
        /// pending, approved, denied, expired or all.
        #[arg(long, default_value = "pending")]
        state: String,
        /// Only requests this group may answer.
        #[arg(long)]
        group: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one request with everything an approver needs to decide.
    Show {
        /// The approval request id (apr_...).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Approve a request.
    Approve {
        /// The approval request id (apr_...).
        id: String,
        /// Why (recorded as evidence).
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Deny a request: the action ends `denied` with `approval_denied`.
    Deny {
        /// The approval request id (apr_...).
        id: String,
        /// Why (recorded as evidence).
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Cancel a pending request (the agent that asked, or an operator): its
    /// action ends `cancelled` without executing.
    Cancel {
        /// The approval request id (apr_...).
        id: String,
        /// Why (recorded as evidence).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Runs `warden approvals ...`.
pub fn run(cmd: ApprovalsCommand) -> anyhow::Result<Exit> {
    match cmd {
        ApprovalsCommand::Stats(a) => crate::commands::rollout::stats::run(a),
        ApprovalsCommand::List {
            remote,
            state,
            group,
            limit,
        } => {
            let mut query = vec![("state", state), ("limit", limit.to_string())];
            if let Some(g) = group {
                query.push(("group", g));
            }
            let v = match call(&remote, reqwest::Method::GET, "/v1/approvals", &query, None)? {
                Ok(v) => v,
                Err(exit) => return Ok(exit),
            };
            if remote.json {
                println!("{v:#}");
            } else {
                print_list(&v);
            }
            Ok(Exit::Ok)
        }
        ApprovalsCommand::Show { id, remote } => {
            let path = format!("/v1/approvals/{id}");
            let v = match call(&remote, reqwest::Method::GET, &path, &[], None)? {
                Ok(v) => v,
                Err(exit) => return Ok(exit),
            };
            if remote.json {
                println!("{v:#}");
            } else {
                print_one(&v);
            }
            Ok(Exit::Ok)
        }
        ApprovalsCommand::Approve {
            id,
            comment,
            remote,
        } => answer(&remote, &id, "approve", comment),
        ApprovalsCommand::Deny {
            id,
            comment,
            remote,
        } => answer(&remote, &id, "deny", comment),
        ApprovalsCommand::Cancel { id, reason, remote } => {
            let path = format!("/v1/approvals/{id}/cancel");
            let body = json!({ "reason": reason });
            let v = match call(&remote, reqwest::Method::POST, &path, &[], Some(body))? {
                Ok(v) => v,
                Err(exit) => return Ok(exit),
            };
            if remote.json {
                println!("{v:#}");
            } else {
                println!("cancelled {id}: the request is now {}", text(&v, "state"));
                print_one(&v);
            }
            Ok(Exit::Ok)
        }
    }
}

fn answer(
    remote: &Remote,
    id: &str,
    decision: &str,
    comment: Option<String>,
) -> anyhow::Result<Exit> {
    let path = format!("/v1/approvals/{id}/decision");
    let body = json!({ "decision": decision, "comment": comment });
    let v = match call(remote, reqwest::Method::POST, &path, &[], Some(body))? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    if remote.json {
        println!("{v:#}");
    } else {
        let verb = if decision == "approve" {
            "approved"
        } else {
            "denied"
        };
        println!("{verb} {id}: the request is now {}", text(&v, "state"));
        print_one(&v);
    }
    Ok(Exit::Ok)
}

/// `finance 1/2 (+support-leads)` for each requirement.
fn needs(v: &Value) -> String {
    v.get("requires")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let extra: Vec<&str> = r
                        .get("eligible")
                        .and_then(Value::as_array)
                        .map(|e| e.iter().skip(1).filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    format!(
                        "{} {}/{}{}",
                        text(r, "group"),
                        r.get("approvals").and_then(Value::as_u64).unwrap_or(0),
                        r.get("quorum").and_then(Value::as_u64).unwrap_or(0),
                        if extra.is_empty() {
                            String::new()
                        } else {
                            format!(" (+{})", extra.join(", +"))
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn print_list(v: &Value) {
    let items = v
        .get("approvals")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = v.get("total").and_then(Value::as_i64).unwrap_or(0);
    if items.is_empty() {
        println!("no approval requests");
        return;
    }
    let mut t = Table::new(&["ID", "AGE", "STATE", "AGENT", "TOOL", "NEEDS", "DUE"]);
    for a in &items {
        t.row(vec![
            text(a, "approval_id").to_owned(),
            age(text(a, "created")),
            text(a, "state").to_owned(),
            text(a, "agent").to_owned(),
            text(a, "tool").to_owned(),
            needs(a),
            a.get("due")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned(),
        ]);
    }
    t.print("");
    if total > items.len() as i64 {
        println!("({} of {total} shown; --limit shows more)", items.len());
    }
}

fn print_one(v: &Value) {
    println!(
        "approval  {}  ({})",
        text(v, "approval_id"),
        text(v, "state")
    );
    println!("action    {}", text(v, "action_id"));
    println!("agent     {}", text(v, "agent"));
    println!("tool      {}  risk {}", text(v, "tool"), text(v, "risk"));
    if let Some(run) = v.get("run_id").and_then(Value::as_str) {
        println!("run       {run}  workflow {}", text(v, "workflow"));
    }
    if let Some(t) = v.get("trigger") {
        println!("trigger   {t}");
    }
    if let Some(a) = v.get("arguments") {
        println!("arguments {a}");
    }
    println!("request   {}", text(v, "request_sha256"));
    println!("why       {}", text(v, "message"));
    if let Some(r) = v.get("reason").and_then(Value::as_str) {
        println!("agent says {r}");
    }
    println!("needs     {}", needs(v));
    for vote in v
        .get("votes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "  {} {} for {}{}",
            text(vote, "approver"),
            if text(vote, "decision") == "approve" {
                "approved"
            } else {
                "denied"
            },
            text(vote, "group"),
            vote.get("comment")
                .and_then(Value::as_str)
                .map(|c| format!(": \"{c}\""))
                .unwrap_or_default()
        );
    }
    println!(
        "requested {} ({} ago), escalations {}",
        text(v, "created"),
        age(text(v, "created")),
        v.get("escalations").and_then(Value::as_i64).unwrap_or(0)
    );
    if let Some(d) = v.get("due").and_then(Value::as_str) {
        println!("next step {d}");
    }
}
