//! `warden audit verify`

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context as _;
use warden_evidence::{Report, verify_export};

use super::{Location, open, parse_key};
use crate::cli::Exit;

/// `warden audit verify`
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub loc: Location,
    /// Verify an export file instead of the database (needs no database).
    #[arg(long, value_name = "FILE", requires = "public_key")]
    pub export: Option<PathBuf>,
    /// Trust checkpoints signed by this key (the text from `warden audit
    /// public-key`, or a file holding it). Repeatable. Without it, the
    /// database's first key and the data directory's key are trusted.
    #[arg(long = "public-key", value_name = "KEY")]
    pub public_key: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: VerifyArgs) -> anyhow::Result<Exit> {
    let mut trusted = a
        .public_key
        .iter()
        .map(|k| parse_key(k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = if let Some(file) = &a.export {
        let f = std::fs::File::open(file)
            .with_context(|| format!("cannot open `{}`", file.display()))?;
        verify_export(BufReader::new(f), trusted)?
    } else {
        let (data, store) = open(&a.loc).await?;
        if trusted.is_empty() {
            if let Some(first) = store.signing_keys().await?.into_iter().next() {
                trusted.push(first);
            }
            trusted.push(data.signer().verifier());
            if !a.json {
                eprintln!(
                    "note: trusting the log's own keys; pass --public-key for a check independent of this machine"
                );
            }
        }
        let total = store.leaf_count().await?;
        let show = !a.json && total >= 200_000;
        let report = store
            .verify(trusted, |n| {
                if show && n % 200_000 < 20_000 {
                    eprintln!("  verified {n} of {total} leaves");
                }
            })
            .await?;
        store.close().await;
        report
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.ok() { Exit::Ok } else { Exit::Failed })
}

fn print_report(r: &Report) {
    match r.first() {
        None => {
            println!(
                "ok: {} records ({} pruned), {} checkpoints verified",
                r.leaves, r.pruned, r.checkpoints
            );
            match (&r.latest_checkpoint_size, &r.latest_checkpoint_time) {
                (Some(size), Some(time)) => println!("latest checkpoint: size {size}, {time}"),
                _ => println!(
                    "warning: no checkpoint signs this log yet: run `warden audit checkpoint`"
                ),
            }
            println!("root: {}", r.root);
        }
        Some(first) => {
            let at = first
                .seq
                .map(|s| format!(" at leaf {s}"))
                .unwrap_or_default();
            println!("FAILED: {}{at}: {}", first.kind, first.message);
            for f in r.findings.iter().skip(1) {
                println!("  also {}: {}", f.kind, f.message);
            }
            println!(
                "read {} records, {} checkpoints; root as read: {}",
                r.leaves, r.checkpoints, r.root
            );
        }
    }
}
