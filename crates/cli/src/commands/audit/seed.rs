//! `warden audit seed`: generated refund runs, decided by the real engine.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use warden_evidence::RunGenerator;

use super::{Location, open_log};
use crate::cli::Exit;

/// `warden audit seed`
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub loc: Location,
    /// The support-refunds pack that decides the generated requests.
    #[arg(long, default_value = "examples/support-refunds")]
    pub pack: PathBuf,
    /// How many refund runs to generate (at most 10,000,000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub runs: u64,
    /// Runs appended at once (each run's records stay in order).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seed of the generator: the same seed gives the same records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time between two runs' starts; the last run starts about now.
    #[arg(long, default_value = "1m")]
    pub every: humantime::Duration,
    /// Print each acknowledged append as a JSON line on stdout
    /// (`{"seq":..,"leaf_hash":".."}`), as soon as it is durable.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: SeedArgs) -> anyhow::Result<Exit> {
    let engine = match crate::commands::engine(&a.pack)? {
        Ok(e) => e,
        Err(exit) => return Ok(exit),
    };
    if !engine.pack().tools.contains_key("stripe.refund") {
        anyhow::bail!(
            "`{}` is not the support-refunds pack (no tool `stripe.refund`)",
            a.pack.display()
        );
    }
    let (data, log) = open_log(&a.loc).await?;
    let spacing = i64::try_from(a.every.as_micros()).unwrap_or(60_000_000);
    let now = warden_evidence::micros(&warden_evidence::now()).unwrap_or(0);
    // Approvals can take hours: start early enough that every record is in
    // the past.
    let start = now
        .saturating_sub(spacing.saturating_mul(i64::try_from(a.runs).unwrap_or(0)))
        .saturating_sub(4 * 3_600_000_000);
    let redactor = data.redactor().clone();
    let mut generator = RunGenerator::new(&engine, &redactor, a.seed, start, spacing);
    let mut runs = Vec::with_capacity(a.runs as usize);
    for n in 0..a.runs {
        runs.push(generator.run(n).context("generating a run")?);
    }
    let total: u64 = runs.iter().map(|r| r.len() as u64).sum();
    if !a.json {
        eprintln!(
            "appending {} runs ({total} records) with {} concurrent writers",
            a.runs, a.concurrency
        );
    }
    let queue = Arc::new(std::sync::Mutex::new(runs.into_iter()));
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (queue, done, log) = (queue.clone(), done.clone(), log.clone());
        let json = a.json;
        workers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(run) = next else { break };
                for record in run {
                    let receipt = log.append(record).await?;
                    if json {
                        let mut out = std::io::stdout().lock();
                        writeln!(
                            out,
                            "{{\"seq\":{},\"leaf_hash\":\"{}\"}}",
                            receipt.seq,
                            hex::encode(receipt.leaf_hash)
                        )?;
                        out.flush()?;
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if !json && total >= 10_000 && n % (total / 10).max(1) == 0 {
                        eprintln!("  {n} of {total} records");
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await.context("a writer stopped")??;
    }
    let elapsed = t.elapsed();
    let cp = log.close().await?;
    if !a.json {
        eprintln!(
            "appended {total} records in {:.2}s ({:.0} records/s); checkpoint at size {}",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64().max(1e-9),
            cp.checkpoint.size
        );
    }
    Ok(Exit::Ok)
}
