//! `warden bench --oversight N`: time to detect under load. While the
//! usual load runs (`--concurrency` workers proposing for `--duration`),
//! a probe makes N critical policy violations one after another — a $9,000
//! refund by support-bot, which `@severity("critical")` policy
//! `refund-cap-5000` forbids — waits for each incident to appear in
//! `/v1/incidents`, and resolves it so the next one opens anew.
//!
//! Reports the server's time to detect (first event → incident, `ttd_ms`),
//! the probe's end-to-end time (proposal sent → incident listed, polled
//! every 5 ms), the load's throughput and latency, and the detectors' own
//! CPU per event from `/metrics`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{BenchArgs, call, percentile_ms, run_phase};
use crate::cli::Exit;

const PROBE_AGENT: &str = "Bearer demo-support-bot";
const OPERATOR: &str = "Bearer demo-olivia";

/// Sum of a metric's samples in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(super) async fn run(a: &BenchArgs, base: &str, n: usize) -> anyhow::Result<Exit> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency + 2)
        .build()?;
    let args: Value = serde_json::from_str(&a.args).context("--args is not JSON")?;
    let body = std::sync::Arc::new(
        json!({ "tool": a.tool, "arguments": args, "mode": a.mode }).to_string(),
    );
    eprintln!(
        "bench: {n} critical violations under {} workers' load against {base}",
        a.concurrency
    );
    let load = {
        let client = client.clone();
        let base = base.to_owned();
        let a2 = a.clone();
        let measure: Duration = a.duration.into();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = run_phase(&client, &base, &a2, &body, measure, Some(())).await;
            r.map(|(lat, tally)| (lat, tally, started.elapsed()))
        })
    };
    // Let the load reach its pace first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ttd_us = Vec::with_capacity(n);
    let mut e2e_us = Vec::with_capacity(n);
    for i in 0..n {
        let refund = json!({
            "tool": "stripe.refund",
            "arguments": {"order_id": format!("ord_probe{i}"), "customer_id": "cus_probe", "amount_cents": 900_000, "reason": "other"},
        });
        let sent = Instant::now();
        let a = call(
            client
                .post(format!("{base}/v1/actions"))
                .body(refund.to_string()),
            PROBE_AGENT,
        )
        .await?;
        if a["code"] != "policy_denied" {
            bail!("the probe was not denied by policy: {a}");
        }
        let incident = loop {
            let v = call(
                client.get(format!("{base}/v1/incidents?state=open&limit=50")),
                OPERATOR,
            )
            .await?;
            let found = v["incidents"].as_array().and_then(|l| {
                l.iter()
                    .find(|x| {
                        x["dedup_key"] == "agent:support-bot"
                            && x["playbook"] == "policy-violations"
                    })
                    .cloned()
            });
            if let Some(x) = found {
                break x;
            }
            if sent.elapsed() > Duration::from_secs(30) {
                bail!(
                    "no incident 30 s after violation {i}: is the pack's `policy-violations` playbook in force?"
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        e2e_us.push(sent.elapsed().as_micros() as u64);
        ttd_us.push(incident["ttd_ms"].as_u64().unwrap_or(0) * 1000);
        let id = incident["id"].as_str().unwrap_or_default();
        call(
            client
                .post(format!("{base}/v1/incidents/{id}/resolve"))
                .body(r#"{"note":"bench probe"}"#),
            OPERATOR,
        )
        .await?;
    }
    let (mut lat, tally, elapsed) = load.await.context("the load workers failed")??;
    lat.sort_unstable();
    ttd_us.sort_unstable();
    e2e_us.sort_unstable();
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let events = metric(&metrics, "warden_oversight_events_total");
    let detect_s = metric(&metrics, "warden_oversight_detect_seconds_total");
    let missed = metric(&metrics, "warden_oversight_events_missed_total");
    let ok = tally.ok.load(std::sync::atomic::Ordering::Relaxed);
    let pct = |v: &[u64], q: f64| percentile_ms(v, q);
    let report = json!({
        "server": base,
        "violations": n,
        "time_to_detect_ms": { "p50": pct(&ttd_us, 0.5), "p95": pct(&ttd_us, 0.95), "max": pct(&ttd_us, 1.0) },
        "violation_to_incident_listed_ms": { "p50": pct(&e2e_us, 0.5), "p95": pct(&e2e_us, 0.95), "max": pct(&e2e_us, 1.0) },
        "load": {
            "concurrency": a.concurrency,
            "proposals": ok,
            "throughput_per_s": ok as f64 / elapsed.as_secs_f64(),
            "latency_ms": { "p50": pct(&lat, 0.5), "p99": pct(&lat, 0.99) },
        },
        "detectors": {
            "events": events,
            "missed": missed,
            "cpu_us_per_event": if events > 0.0 { detect_s * 1e6 / events } else { 0.0 },
        },
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{n} critical violations under load ({} proposals at {:.0}/s, p50 {:.2} ms, p99 {:.2} ms)\n\
             time to detect (first event → incident): p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms\n\
             violation sent → incident listed:        p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms\n\
             detectors: {events:.0} events, {:.2} µs CPU per event, {missed:.0} missed",
            ok,
            ok as f64 / elapsed.as_secs_f64(),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&ttd_us, 0.5),
            pct(&ttd_us, 0.95),
            pct(&ttd_us, 1.0),
            pct(&e2e_us, 0.5),
            pct(&e2e_us, 0.95),
            pct(&e2e_us, 1.0),
            if events > 0.0 {
                detect_s * 1e6 / events
            } else {
                0.0
            },
        );
    }
    Ok(Exit::Ok)
}
