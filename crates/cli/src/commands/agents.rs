//! `warden agents pause|resume|quarantine|release` and `warden tools
//! circuit`: an operator's kill switches, against a running server.

use serde_json::{Value, json};

use super::remote::{Remote, call, show, text};
use crate::cli::Exit;

/// `warden agents ...`
#[derive(Debug, clap::Subcommand)]
pub enum AgentsCommand {
    /// Kill switch: every proposal of the agent is denied `agent_paused`
    /// until it is resumed.
    Pause {
        /// The agent id.
        agent: String,
        /// Why (recorded as evidence).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resume a paused agent.
    Resume {
        /// The agent id.
        agent: String,
        /// Why (recorded as evidence).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Quarantine an agent: every write action it proposes needs the
    /// approval of `--group`, besides what policy asks.
    Quarantine {
        /// The agent id.
        agent: String,
        /// The approver group whose approval its writes need.
        #[arg(long)]
        group: String,
        /// Why (recorded as evidence).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Release a quarantined agent.
    Release {
        /// The agent id.
        agent: String,
        /// Why (recorded as evidence).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `warden tools ...`
#[derive(Debug, clap::Subcommand)]
pub enum ToolsCommand {
    /// Open a tool's circuit: its proposals are denied `tool_circuit_open`
    /// for a while. `--close` closes it early.
    Circuit {
        /// The tool id.
        tool: String,
        /// How long it stays open.
        #[arg(long, default_value = "10m", conflicts_with = "close")]
        open_for: String,
        /// Close the circuit now.
        #[arg(long)]
        close: bool,
        /// Why (recorded as evidence).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Runs `warden agents ...`.
pub fn run(cmd: AgentsCommand) -> anyhow::Result<Exit> {
    let (agent, verb, body, remote) = match cmd {
        AgentsCommand::Pause {
            agent,
            reason,
            remote,
        } => (agent, "pause", json!({ "reason": reason }), remote),
        AgentsCommand::Resume {
            agent,
            reason,
            remote,
        } => (agent, "resume", json!({ "reason": reason }), remote),
        AgentsCommand::Quarantine {
            agent,
            group,
            reason,
            remote,
        } => (
            agent,
            "quarantine",
            json!({ "group": group, "reason": reason }),
            remote,
        ),
        AgentsCommand::Release {
            agent,
            reason,
            remote,
        } => (agent, "release", json!({ "reason": reason }), remote),
    };
    let path = format!("/v1/agents/{agent}/{verb}");
    Ok(
        match call(&remote, reqwest::Method::POST, &path, &[], Some(body))? {
            Ok(v) => show(&remote, &v, |v| print_agent(&agent, v)),
            Err(exit) => exit,
        },
    )
}

/// Runs `warden tools ...`.
pub fn run_tools(cmd: ToolsCommand) -> anyhow::Result<Exit> {
    let ToolsCommand::Circuit {
        tool,
        open_for,
        close,
        reason,
        remote,
    } = cmd;
    let open_for = if close { "0s".to_owned() } else { open_for };
    let path = format!("/v1/tools/{tool}/circuit");
    let body = json!({ "open_for": open_for, "reason": reason });
    Ok(
        match call(&remote, reqwest::Method::POST, &path, &[], Some(body))? {
            Ok(v) => show(&remote, &v, |v| {
                if v.get("open").and_then(Value::as_bool).unwrap_or(false) {
                    println!(
                        "circuit of {tool} is open until {}: its proposals are denied tool_circuit_open",
                        text(v, "open_until")
                    );
                } else {
                    println!("circuit of {tool} is closed");
                }
            }),
            Err(exit) => exit,
        },
    )
}

fn print_agent(agent: &str, v: &Value) {
    let paused = v.get("paused").and_then(Value::as_bool).unwrap_or(false);
    let quarantine = v.get("quarantine").and_then(Value::as_str);
    println!(
        "agent {agent}: {}{}",
        if paused {
            "paused (every proposal denied agent_paused)"
        } else {
            "running"
        },
        quarantine
            .map(|g| format!(", quarantined (its writes need {g}'s approval)"))
            .unwrap_or_default()
    );
}
