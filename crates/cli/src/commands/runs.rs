//! `warden runs cancel`: end a workflow run (the run's agent or an
//! operator), cancelling its pending approval requests with it.

use serde_json::json;

use super::remote::{Remote, call, show, text};
use crate::cli::Exit;

/// `warden runs ...`
#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// Cancel a running run: it accepts no more actions, and its pending
    /// approval requests are cancelled (their actions end `cancelled`).
    Cancel {
        /// The run id (run_...).
        id: String,
        /// Why (recorded as evidence).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Runs `warden runs ...`.
pub fn run(cmd: RunsCommand) -> anyhow::Result<Exit> {
    let RunsCommand::Cancel { id, reason, remote } = cmd;
    let path = format!("/v1/runs/{id}/cancel");
    let body = json!({ "reason": reason });
    Ok(
        match call(&remote, reqwest::Method::POST, &path, &[], Some(body))? {
            Ok(v) => show(&remote, &v, |v| {
                println!("run {id} is {}", text(v, "state"));
            }),
            Err(exit) => exit,
        },
    )
}
