//! `warden bench --approvals N [--pending M]`: the approval path's own cost.
//! Round trips one at a time — a $500 refund proposed in enforce mode
//! (request created), approved by a finance member (quorum met, policy
//! evaluated again, execution started), then long-polled until executed —
//! and, with `--pending`, the inbox over many pending requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{BenchArgs, call};
use crate::cli::Exit;

const AGENT: &str = "Bearer demo-support-bot";
const APPROVER: &str = "Bearer demo-dave";

fn refund(order: &str) -> String {
    json!({
        "tool": "stripe.refund",
        "mode": "enforce",
        "arguments": {"order_id": order, "customer_id": "cus_bench", "amount_cents": 50_000, "reason": "damaged"},
    })
    .to_string()
}

/// p50, p99 and max of `us` (sorted in place), in ms.
fn pcts(us: &mut [u64]) -> Value {
    us.sort_unstable();
    let p = |q: f64| super::percentile_ms(us, q);
    json!({ "p50": p(0.5), "p99": p(0.99), "max": us.last().map_or(0.0, |m| *m as f64 / 1000.0) })
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

pub(super) async fn run(a: &BenchArgs, base: &str) -> anyhow::Result<Exit> {
    let n = a.approvals.unwrap_or(0);
    // Order ids unique to this run: the identical request proposed again
    // would return the earlier action (by design), not a new request.
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency.max(1))
        .build()?;
    let (mut propose, mut approve, mut execute, mut total, mut overhead) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    eprintln!("bench: {n} approval round trips against {base}");
    for i in 0..n {
        let t0 = Instant::now();
        let act = call(
            client
                .post(format!("{base}/v1/actions"))
                .body(refund(&format!("ord_rt{tag}x{i}"))),
            AGENT,
        )
        .await
        .context("proposing")?;
        let t1 = Instant::now();
        let (Some(action), Some(approval)) =
            (act["action_id"].as_str(), act["approval_id"].as_str())
        else {
            bail!("the refund did not wait for approval: {act}");
        };
        let ap = call(
            client
                .post(format!("{base}/v1/approvals/{approval}/decision"))
                .body(r#"{"decision":"approve"}"#),
            APPROVER,
        )
        .await
        .context("approving")?;
        let t2 = Instant::now();
        if ap["state"] != "approved" {
            bail!("not approved: {ap}");
        }
        let done = call(
            client.get(format!("{base}/v1/actions/{action}?wait=30s")),
            AGENT,
        )
        .await
        .context("waiting for the execution")?;
        let t3 = Instant::now();
        if done["status"] != "succeeded" {
            bail!("not executed: {done}");
        }
        let us = |d: std::time::Duration| d.as_micros() as u64;
        propose.push(us(t1 - t0));
        approve.push(us(t2 - t1));
        execute.push(us(t3 - t2));
        total.push(us(t3 - t0));
        // The connector's own time (the mock's configured latency) is not
        // Warden's: subtract what the outcome reports.
        let tool_ms = done["outcome"]["elapsed_ms"].as_u64().unwrap_or(0);
        overhead.push(us(t3 - t0).saturating_sub(tool_ms * 1000));
    }
    let mut report = json!({
        "server": base,
        "round_trips": n,
        "latency_ms": {
            "propose_request_created": pcts(&mut propose),
            "approve_reevaluated_execution_started": pcts(&mut approve),
            "until_executed": pcts(&mut execute),
            "total": pcts(&mut total),
            "total_minus_connector_time": pcts(&mut overhead),
        },
    });
    if a.pending > 0 {
        report["pending"] = pending(a, base, &client, tag).await?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let l = &report["latency_ms"];
        let line = |name: &str, v: &Value| {
            println!(
                "{name:<44} p50 {:>7.2}  p99 {:>7.2}  max {:>7.2}",
                v["p50"].as_f64().unwrap_or(0.0),
                v["p99"].as_f64().unwrap_or(0.0),
                v["max"].as_f64().unwrap_or(0.0)
            );
        };
        println!("{n} approval round trips (ms):");
        line(
            "propose (request created, durable)",
            &l["propose_request_created"],
        );
        line(
            "approve (re-evaluated, execution started)",
            &l["approve_reevaluated_execution_started"],
        );
        line("then until executed (long-poll)", &l["until_executed"]);
        line("total", &l["total"]);
        line(
            "total minus the connector's own time",
            &l["total_minus_connector_time"],
        );
        if let Some(p) = report.get("pending") {
            println!(
                "{} pending requests created at {:.0}/s; inbox over {} pending (ms):",
                p["created"],
                p["created_per_s"].as_f64().unwrap_or(0.0),
                p["pending_total"]
            );
            line("oldest 100, operator", &p["list_oldest_100_ms"]);
            line("oldest 100 of group finance", &p["list_group_filter_ms"]);
            line(
                "oldest 100, as a finance member",
                &p["list_as_group_member_ms"],
            );
            println!(
                "process RSS: {} MiB before, {} MiB after (server and client together)",
                p["process_rss_mib"]["before"], p["process_rss_mib"]["after"]
            );
        }
    }
    Ok(Exit::Ok)
}

/// Creates `a.pending` pending requests with `a.concurrency` workers, then
/// times the inbox over them.
async fn pending(
    a: &BenchArgs,
    base: &str,
    client: &reqwest::Client,
    tag: u128,
) -> anyhow::Result<Value> {
    let rss_before = rss_kib();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (client, base, next) = (client.clone(), base.to_owned(), Arc::clone(&next));
        let total = a.pending;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                call(
                    client
                        .post(format!("{base}/v1/actions"))
                        .body(refund(&format!("ord_p{tag}x{i}"))),
                    AGENT,
                )
                .await?;
                if (i + 1) % 10_000 == 0 {
                    eprintln!("bench: {} pending requests created", i + 1);
                }
            }
        }));
    }
    for t in tasks {
        t.await.context("a bench worker failed")??;
    }
    let created_s = started.elapsed().as_secs_f64();
    let rss_after = rss_kib();
    let time_list = async |path: &str, auth: &str| -> anyhow::Result<(Value, i64)> {
        let mut lat = Vec::new();
        let mut count = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let v = call(client.get(format!("{base}{path}")), auth).await?;
            lat.push(t.elapsed().as_micros() as u64);
            count = v["total"].as_i64().unwrap_or(0);
        }
        Ok((pcts(&mut lat), count))
    };
    let (oldest_100, total) = time_list("/v1/approvals?limit=100", "Bearer demo-tina").await?;
    let (by_group, _) =
        time_list("/v1/approvals?group=finance&limit=100", "Bearer demo-tina").await?;
    let (as_member, _) = time_list("/v1/approvals?limit=100", APPROVER).await?;
    Ok(json!({
        "created": a.pending,
        "created_per_s": a.pending as f64 / created_s,
        "pending_total": total,
        "list_oldest_100_ms": oldest_100,
        "list_group_filter_ms": by_group,
        "list_as_group_member_ms": as_member,
        "process_rss_mib": {
            "before": rss_before.map(|k| k / 1024),
            "after": rss_after.map(|k| k / 1024),
            "note": "the bench process: server (when started here) and client together",
        },
    }))
}
