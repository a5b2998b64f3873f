//! `warden bench`: a load generator that drives a real Warden server over
//! loopback with concurrent agents and reports throughput and latency
//! percentiles. Without `--server` it starts one in this process on the
//! given pack with a fresh data directory, so the figures include durable
//! evidence on this machine's disk.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use warden_server::{ServeConfig, serve};
use warden_store::Durability;

use crate::cli::Exit;

mod approvals;
mod mcp;
mod oversight;

/// `warden bench`
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// A running server to drive (e.g. http://127.0.0.1:8080); without it
    /// one is started here on `--pack` with a temporary data directory.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The pack for the server started here.
    #[arg(long, value_name = "DIR", default_value = "examples/support-refunds")]
    pub pack: PathBuf,
    /// PostgreSQL for the server started here (SQLite in a temp dir otherwise).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// SQLite durability for the server started here.
    #[arg(long, default_value = "process-crash")]
    pub durability: Durability,
    /// Agent bearer tokens, used round-robin by the workers.
    #[arg(long = "token", default_values_t = ["demo-support-bot".to_string(), "demo-billing-bot".to_string()])]
    pub tokens: Vec<String>,
    /// The tool proposed.
    #[arg(long, default_value = "crm.lookup_customer")]
    pub tool: String,
    /// Its arguments (JSON).
    #[arg(long, default_value = r#"{"customer_id":"cus_bench"}"#)]
    pub args: String,
    /// `check` or `enforce`.
    #[arg(long, default_value = "check")]
    pub mode: String,
    /// Concurrent connections (agents' workers).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to measure.
    #[arg(long, default_value = "10s")]
    pub duration: humantime::Duration,
    /// Warm-up before measuring.
    #[arg(long, default_value = "2s")]
    pub warmup: humantime::Duration,
    /// Target proposals per second in all (open loop: latency counts from
    /// each request's scheduled time); without it, as fast as possible.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Approval scenario: measure this many approval round trips (a $500
    /// refund proposed in enforce mode, approved by a finance member,
    /// executed), one at a time.
    #[arg(long, value_name = "N")]
    pub approvals: Option<usize>,
    /// Approval scenario: then create this many pending requests and
    /// measure the inbox (`GET /v1/approvals`) over them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub pending: usize,
    /// MCP scenario: N calls straight to the example's knowledge-base MCP
    /// server and N through Warden's /mcp (the latency Warden adds), then
    /// `--concurrency` agents through /mcp for `--duration` (calls/s).
    #[arg(long, value_name = "N")]
    pub mcp: Option<usize>,
    /// Oversight scenario: under the usual load, N critical policy
    /// violations one after another; reports time to detect and the
    /// detectors' CPU per event.
    #[arg(long, value_name = "N")]
    pub oversight: Option<usize>,
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

pub fn run(a: BenchArgs) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(bench(a))
}

async fn bench(a: BenchArgs) -> anyhow::Result<Exit> {
    let args: Value = serde_json::from_str(&a.args).context("--args is not JSON")?;
    if a.tokens.is_empty() || a.concurrency == 0 {
        bail!("give at least one --token and a --concurrency of 1 or more");
    }
    if let Some(n) = a.mcp {
        return mcp::run(&a, n).await;
    }
    let (base, _tmp) = server(&a).await?;
    if a.approvals.is_some() {
        return approvals::run(&a, &base).await;
    }
    if let Some(n) = a.oversight {
        return oversight::run(&a, &base, n).await;
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    let log_size = |client: reqwest::Client, base: String| async move {
        let v: Value = client
            .get(format!("{base}/healthz"))
            .send()
            .await?
            .json()
            .await?;
        Ok::<u64, anyhow::Error>(v["log_size"].as_u64().unwrap_or(0))
    };
    let body = json!({ "tool": a.tool, "arguments": args, "mode": a.mode }).to_string();
    let body = Arc::new(body);
    let warmup: Duration = a.warmup.into();
    let measure: Duration = a.duration.into();
    eprintln!(
        "bench: {} workers, {} for {} after {} warm-up, against {base}",
        a.concurrency,
        a.rate.map_or("max rate".to_string(), |r| format!("{r}/s")),
        humantime::format_duration(measure),
        humantime::format_duration(warmup),
    );
    // Warm-up, not measured.
    run_phase(&client, &base, &a, &body, warmup, None).await?;
    let before = log_size(client.clone(), base.clone()).await?;
    let started = Instant::now();
    let (mut lat, tally) = run_phase(&client, &base, &a, &body, measure, Some(())).await?;
    let elapsed = started.elapsed();
    let after = log_size(client.clone(), base.clone()).await?;
    lat.sort_unstable();
    let pct = |p: f64| percentile_ms(&lat, p);
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let report = json!({
        "server": base,
        "tool": a.tool,
        "mode": a.mode,
        "concurrency": a.concurrency,
        "target_rate": a.rate,
        "seconds": elapsed.as_secs_f64(),
        "ok": ok,
        "failed": failed,
        "throughput_per_s": ok as f64 / elapsed.as_secs_f64(),
        "latency_ms": {
            "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "p999": pct(0.999),
            "max": lat.last().map_or(0.0, |m| *m as f64 / 1000.0),
        },
        "records_appended": after.saturating_sub(before),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{ok} proposals in {:.1}s: {:.0}/s, {failed} failed\nlatency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\naudit records appended while measuring: {}",
            elapsed.as_secs_f64(),
            ok as f64 / elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(0.999),
            lat.last().map_or(0.0, |m| *m as f64 / 1000.0),
            after.saturating_sub(before)
        );
    }
    Ok(if failed == 0 { Exit::Ok } else { Exit::Failed })
}

/// Runs the workers for `span`; returns latencies in µs when `measure`.
async fn run_phase(
    client: &reqwest::Client,
    base: &str,
    a: &BenchArgs,
    body: &Arc<String>,
    span: Duration,
    measure: Option<()>,
) -> anyhow::Result<(Vec<u64>, Arc<Tally>)> {
    let tally = Arc::new(Tally::default());
    let end = Instant::now() + span;
    // Open loop: each worker sends on its own schedule.
    let interval = a
        .rate
        .filter(|r| *r > 0)
        .map(|r| Duration::from_secs_f64(a.concurrency as f64 / r as f64));
    let mut tasks = Vec::with_capacity(a.concurrency);
    let workers = a.concurrency as f64;
    for w in 0..a.concurrency {
        let client = client.clone();
        let url = format!("{base}/v1/actions");
        let token = format!("Bearer {}", a.tokens[w % a.tokens.len()]);
        let body = Arc::clone(body);
        let tally = Arc::clone(&tally);
        let record = measure.is_some();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let start = Instant::now();
            let mut n: u32 = 0;
            loop {
                let scheduled = match interval {
                    Some(i) => {
                        // Spread the workers' first sends over one interval.
                        let at = start + i.mul_f64(w as f64 / workers) + i.saturating_mul(n);
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    None => Instant::now(),
                };
                if scheduled >= end {
                    break;
                }
                n += 1;
                let resp = client
                    .post(&url)
                    .header("authorization", &token)
                    .header("content-type", "application/json")
                    .body(body.as_str().to_owned())
                    .send()
                    .await;
                let ok = match resp {
                    Ok(r) => {
                        let good = r.status().is_success();
                        let _ = r.bytes().await;
                        good
                    }
                    Err(_) => false,
                };
                if ok {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    if record {
                        lat.push(scheduled.elapsed().as_micros() as u64);
                    }
                } else {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.context("a bench worker failed")?);
    }
    Ok((all, tally))
}

/// The server to drive: `--server`, or one started in this process on a
/// fresh data directory (removed when the returned guard drops).
async fn server(a: &BenchArgs) -> anyhow::Result<(String, Option<TempDir>)> {
    match &a.server {
        Some(url) => Ok((url.trim_end_matches('/').to_owned(), None)),
        None => start_server(a, &a.pack).await,
    }
}

/// Starts a server in this process on `pack` with a fresh data directory.
async fn start_server(
    a: &BenchArgs,
    pack: &std::path::Path,
) -> anyhow::Result<(String, Option<TempDir>)> {
    let dir = tempdir()?;
    let config = ServeConfig {
        pack: pack.to_path_buf(),
        data: dir.clone(),
        database_url: a.database_url.clone(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        durability: a.durability,
        checkpoint_every: Duration::from_secs(60),
        body_limit: 1 << 20,
        rate_limit: None,
        sync_wait: Duration::from_secs(10),
        watch_pack: false,
    };
    let tmp = TempDir(dir);
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Err(e) = serve(config, move |addr| {
            let _ = tx.send(addr);
        })
        .await
        {
            eprintln!("error: the bench server stopped: {e}");
        }
    });
    let addr = rx.await.context("the bench server did not start")?;
    Ok((format!("http://{addr}"), Some(tmp)))
}

/// One API call with `auth`; an error status is an error with the body.
pub(crate) async fn call(req: reqwest::RequestBuilder, auth: &str) -> anyhow::Result<Value> {
    let resp = req
        .header("authorization", auth)
        .header("content-type", "application/json")
        .send()
        .await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if !status.is_success() {
        bail!("{status}: {v}");
    }
    Ok(v)
}

/// The `q` quantile (0..=1) of sorted µs latencies, in ms (0 when empty).
pub(crate) fn percentile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[i] as f64 / 1000.0
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let dir = std::env::temp_dir().join(format!("warden-bench-{}", hex::encode(b)));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Removes the bench's data directory when the bench ends.
pub(crate) struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
