//! `warden audit erase`: a data-subject erasure, through the running
//! server (its log writer sequences the `records_erased` record).

use serde_json::json;

use crate::cli::Exit;
use crate::commands::remote::{Remote, call, show};

/// `warden audit erase`
#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    /// `FIELD=VALUE`: records holding VALUE under FIELD (in clear or as its
    /// redaction token), or as the token of a value the output scanner
    /// redacted, lose their payload. Leaf hashes stay: the log verifies.
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    pub filter: String,
    /// Why: the request's reference (recorded).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub remote: Remote,
}

/// Runs `warden audit erase`.
pub fn run(a: EraseArgs) -> anyhow::Result<Exit> {
    let Some((field, value)) = a.filter.split_once('=') else {
        anyhow::bail!("--where takes FIELD=VALUE, e.g. --where customer_id=cus_42");
    };
    let body = json!({ "field": field.trim(), "value": value, "reason": a.reason });
    Ok(
        match call(
            &a.remote,
            reqwest::Method::POST,
            "/v1/audit/erase",
            &[],
            Some(body),
        )? {
            Ok(v) => show(&a.remote, &v, |v| {
                println!(
                    "erased the payloads of {} records ({} actions, {} runs); their leaf hashes remain, so the log still verifies; recorded as #{}",
                    v["erased"],
                    v["actions"].as_array().map_or(0, Vec::len),
                    v["runs"].as_array().map_or(0, Vec::len),
                    v["record"]
                );
            }),
            Err(exit) => exit,
        },
    )
}
