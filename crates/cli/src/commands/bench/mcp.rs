//! `warden bench --mcp N`: the latency Warden's MCP gateway adds over
//! calling the upstream directly, and calls/s through the gateway.
//!
//! Starts the example's knowledge-base MCP server (`warden-example-kb`,
//! next to this binary) on streamable HTTP, points a copy of the pack's
//! `kb` upstream at it, and starts Warden on that copy (durable evidence on
//! this machine's disk). Then, one call at a time, N `search_articles` calls
//! straight to the upstream and N `kb_search_articles` calls through
//! `/mcp`, interleaved in rounds so both see the same machine state; then
//! `--concurrency` agents call through the gateway for `--duration`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use super::{BenchArgs, TempDir, percentile_ms, tempdir};
use crate::cli::Exit;

type Client = RunningService<RoleClient, ClientConfig>;

async fn connect(url: &str, token: Option<&str>) -> anyhow::Result<Client> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(t) = token {
        config = config.auth_header(t.to_owned());
    }
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("warden-bench", env!("CARGO_PKG_VERSION")),
    )
    .serve(StreamableHttpClientTransport::from_config(config))
    .await
    .with_context(|| format!("cannot connect to {url}"))
}

async fn timed(c: &Client, tool: &str) -> anyhow::Result<u64> {
    let args = json!({"query": "damaged refund"});
    let start = Instant::now();
    let r = c
        .call_tool(
            CallToolRequestParams::new(tool.to_owned())
                .with_arguments(args.as_object().cloned().unwrap_or_default()),
        )
        .await?;
    let us = start.elapsed().as_micros() as u64;
    if r.is_error == Some(true) {
        bail!("`{tool}` answered an error: {:?}", r.content);
    }
    Ok(us)
}

/// Starts `warden-example-kb --http 127.0.0.1:0`; its child and URL.
fn start_kb() -> anyhow::Result<(std::process::Child, String)> {
    let exe = std::env::current_exe()?;
    let kb = exe
        .parent()
        .map(|d| d.join("warden-example-kb"))
        .filter(|p| p.is_file())
        .context(
            "warden-example-kb is not next to this binary: run `cargo build --release` first",
        )?;
    let mut child = std::process::Command::new(kb)
        .args(["--http", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot start warden-example-kb")?;
    let mut line = String::new();
    let stderr = child.stderr.take().context("no stderr")?;
    BufReader::new(stderr).read_line(&mut line)?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .with_context(|| format!("no URL in {line:?}"))?
        .to_owned();
    Ok((child, url))
}

/// A copy of `pack` whose `kb` upstream is reached at `url`.
fn pack_copy(pack: &Path, url: &str, dir: &Path) -> anyhow::Result<()> {
    let copy = |from: &Path, to: &Path| -> anyhow::Result<()> {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            if e.file_type()?.is_file() {
                std::fs::copy(e.path(), to.join(e.file_name()))?;
            }
        }
        Ok(())
    };
    copy(pack, dir)?;
    copy(&pack.join("policies"), &dir.join("policies"))?;
    let manifest = std::fs::read_to_string(pack.join("warden.toml"))?;
    let replaced = manifest.replace(
        "command = [\"warden-example-kb\"]",
        &format!("url = \"{url}\""),
    );
    if replaced == manifest {
        bail!("the pack has no `kb` upstream started as `warden-example-kb`");
    }
    std::fs::write(dir.join("warden.toml"), replaced)?;
    Ok(())
}

fn pcts(us: &mut [u64]) -> Value {
    us.sort_unstable();
    json!({"p50": percentile_ms(us, 0.5), "p90": percentile_ms(us, 0.9), "p99": percentile_ms(us, 0.99)})
}

pub(super) async fn run(a: &BenchArgs, n: usize) -> anyhow::Result<Exit> {
    let (mut kb, kb_url) = start_kb()?;
    let dir = tempdir()?;
    let _guard = TempDir(dir.clone());
    let pack = dir.join("pack");
    pack_copy(&a.pack, &kb_url, &pack)?;
    let (base, _tmp) = super::start_server(a, &pack).await?;
    let token = a
        .tokens
        .first()
        .map(String::as_str)
        .unwrap_or("demo-support-bot");
    let direct = connect(&kb_url, None).await?;
    let gateway = connect(&format!("{base}/mcp"), Some(token)).await?;
    eprintln!("bench mcp: {n} calls direct to {kb_url} and {n} through {base}/mcp, one at a time");
    // Warm-up: connections, the upstream listing, SQLite pages.
    for _ in 0..50 {
        timed(&direct, "search_articles").await?;
        timed(&gateway, "kb_search_articles").await?;
    }
    let (mut d, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        d.push(timed(&direct, "search_articles").await?);
        g.push(timed(&gateway, "kb_search_articles").await?);
    }
    let direct_ms = pcts(&mut d);
    let gateway_ms = pcts(&mut g);
    let added =
        |k: &str| gateway_ms[k].as_f64().unwrap_or(0.0) - direct_ms[k].as_f64().unwrap_or(0.0);
    // Throughput: concurrent agents through the gateway.
    let workers = a.concurrency.clamp(1, 256);
    let span: Duration = a.duration.into();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (ok, failed, url) = (Arc::clone(&ok), Arc::clone(&failed), format!("{base}/mcp"));
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            let Ok(c) = connect(&url, Some(&token)).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            while started.elapsed() < span {
                match timed(&c, "kb_search_articles").await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    let _ = kb.kill();
    let report = json!({
        "calls": n,
        "direct_ms": direct_ms,
        "through_warden_ms": gateway_ms,
        "added_ms": {"p50": added("p50"), "p90": added("p90"), "p99": added("p99")},
        "throughput": {"workers": workers, "seconds": secs, "ok": ok, "failed": failed,
                       "calls_per_s": ok as f64 / secs},
        "durability": format!("{:?}", a.durability),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "direct to the upstream  ms: p50 {:.3}  p90 {:.3}  p99 {:.3}\n\
             through Warden /mcp     ms: p50 {:.3}  p90 {:.3}  p99 {:.3}\n\
             added by Warden         ms: p50 {:.3}  p90 {:.3}  p99 {:.3}\n\
             throughput: {ok} calls in {secs:.1}s with {workers} agents: {:.0} calls/s, {failed} failed",
            direct_ms["p50"].as_f64().unwrap_or(0.0),
            direct_ms["p90"].as_f64().unwrap_or(0.0),
            direct_ms["p99"].as_f64().unwrap_or(0.0),
            gateway_ms["p50"].as_f64().unwrap_or(0.0),
            gateway_ms["p90"].as_f64().unwrap_or(0.0),
            gateway_ms["p99"].as_f64().unwrap_or(0.0),
            added("p50"),
            added("p90"),
            added("p99"),
            ok as f64 / secs,
        );
    }
    Ok(if failed == 0 { Exit::Ok } else { Exit::Failed })
}
