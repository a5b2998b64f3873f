//! `warden audit ...`: the evidence layer from the command line.

mod erase;
mod export;
mod query;
mod seed;
mod timeline;
mod verify;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use warden_evidence::VerifierKey;
use warden_store::{AuditLog, DataDir, Durability, LogOptions, Store};

use crate::cli::Exit;

/// Where the audit log lives: every `audit` command takes these.
#[derive(Debug, Clone, clap::Args)]
pub struct Location {
    /// Data directory: the SQLite database and the checkpoint and redaction
    /// keys (created on first use).
    #[arg(
        long,
        env = "WARDEN_DATA",
        default_value = "warden-data",
        value_name = "DIR"
    )]
    pub data: PathBuf,
    /// PostgreSQL URL (postgres://...) to use instead of the data
    /// directory's SQLite file; the keys stay in the data directory.
    #[arg(long, env = "WARDEN_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// What an acknowledged write survives (SQLite): process-crash or
    /// power-loss.
    #[arg(long, default_value = "process-crash", value_parser = parse_durability)]
    pub durability: Durability,
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    s.parse()
}

/// `warden audit`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the tree, check every checkpoint, and name the first bad
    /// leaf: modified, deleted, reordered or truncated.
    Verify(verify::VerifyArgs),
    /// Find records by agent, tool, workflow, run, decision, status, code,
    /// policy, approver, time or text.
    Query(Box<query::QueryArgs>),
    /// Reconstruct one run from its records: trigger, actions, checks,
    /// approvals, outcomes, durations.
    Timeline(timeline::TimelineArgs),
    /// Write the whole log, checkpoints and inclusion proofs as JSON Lines.
    Export(export::ExportArgs),
    /// Drop the payload of old records, keeping their leaf hashes.
    Prune(export::PruneArgs),
    /// Data-subject erasure (through the server): drop the payloads of the
    /// records holding a value, keeping their leaf hashes.
    Erase(erase::EraseArgs),
    /// Sign a checkpoint of the log now and print it.
    Checkpoint(export::CheckpointArgs),
    /// Print the public key that verifies this log's checkpoints.
    PublicKey(export::PublicKeyArgs),
    /// Replace the checkpoint signing key; the change is itself a record.
    RotateKey(export::CheckpointArgs),
    /// Append generated refund runs (decided by the example pack) for demos,
    /// tests and benchmarks.
    Seed(seed::SeedArgs),
}

/// Runs an `audit` subcommand.
pub fn run(cmd: AuditCommand) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        match cmd {
            AuditCommand::Verify(a) => verify::run(a).await,
            AuditCommand::Query(a) => query::run(*a).await,
            AuditCommand::Timeline(a) => timeline::run(a).await,
            AuditCommand::Export(a) => export::run(a).await,
            AuditCommand::Prune(a) => export::prune(a).await,
            AuditCommand::Checkpoint(a) => export::checkpoint(a).await,
            AuditCommand::PublicKey(a) => export::public_key(a).await,
            AuditCommand::RotateKey(a) => export::rotate_key(a).await,
            AuditCommand::Seed(a) => seed::run(a).await,
            // The one command that asks the server (a blocking client).
            AuditCommand::Erase(a) => tokio::task::spawn_blocking(move || erase::run(a)).await?,
        }
    })
}

/// Appends one record to the log in `data` (or `database_url`), signs a
/// checkpoint, and returns the receipt. `build` makes the record with the
/// data directory's redaction key.
pub fn append_one(
    data: &Path,
    database_url: Option<String>,
    build: impl FnOnce(&DataDir) -> anyhow::Result<warden_evidence::Record>,
) -> anyhow::Result<warden_store::Receipt> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let loc = Location {
            data: data.to_owned(),
            database_url,
            durability: Durability::default(),
        };
        let (dir, log) = open_log(&loc).await?;
        let receipt = log.append(build(&dir)?).await?;
        log.close().await?;
        Ok(receipt)
    })
}

/// Opens the data directory and the database.
pub async fn open(loc: &Location) -> anyhow::Result<(DataDir, Store)> {
    let data = DataDir::open(&loc.data)
        .with_context(|| format!("cannot open data directory `{}`", loc.data.display()))?;
    let store = Store::open(&data, loc.database_url.as_deref(), loc.durability)
        .await
        .with_context(|| match &loc.database_url {
            Some(_) => "cannot open the PostgreSQL database".to_owned(),
            None => format!("cannot open `{}`", data.sqlite_file().display()),
        })?;
    Ok((data, store))
}

/// Opens the log for writing (checkpoints only on demand).
pub async fn open_log(loc: &Location) -> anyhow::Result<(DataDir, AuditLog)> {
    let (data, store) = open(loc).await?;
    let opts = LogOptions {
        checkpoint_interval: None,
        ..LogOptions::default()
    };
    let log = AuditLog::open(store, data.signer().clone(), opts).await?;
    Ok((data, log))
}

/// A `--public-key` value: the key text, or a file holding it.
pub fn parse_key(arg: &str) -> anyhow::Result<VerifierKey> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("cannot read `{arg}`"))?
    } else {
        arg.to_owned()
    };
    Ok(VerifierKey::parse(&text)?)
}

/// A time bound: RFC 3339 (`2026-11-25T10:00:00Z`) or a duration ago (`2h`,
/// `7d`). Returns µs since the epoch.
pub fn parse_time(arg: &str) -> anyhow::Result<i64> {
    warden_evidence::time_or_ago(arg).ok_or_else(|| {
        anyhow::anyhow!(
            "`{arg}` is neither an RFC 3339 time (2026-11-25T10:00:00Z) nor a duration (90m, 2h, 7d)"
        )
    })
}
