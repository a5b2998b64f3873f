//! Audit log load tool: append throughput with group commit (SQLite at both
//! durability levels, PostgreSQL when `WARDEN_TEST_DATABASE_URL` is set),
//! `verify` speed, and a query by agent and time window over 1,000,000
//! records. Prints markdown rows for docs/PERFORMANCE.md.
//!
//! Run: `cargo bench -p warden-store --bench audit` (add `-- quick` for a
//! 100,000-record run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden_evidence::{Record, RunGenerator, SigningKeyPair};
use warden_policy::Engine;
use warden_store::{AuditLog, DataDir, Durability, Filter, LogOptions, Store};

const WRITERS: usize = 64;

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let big: u64 = if quick { 100_000 } else { 1_000_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(big));
}

fn records(engine: &Engine, data: &DataDir, at_least: u64, start_us: i64) -> Vec<Record> {
    let mut g = RunGenerator::new(engine, data.redactor(), 5, start_us, 20_000_000);
    let mut out = Vec::with_capacity(at_least as usize + 16);
    let mut n = 0;
    while (out.len() as u64) < at_least {
        out.extend(g.run(n).unwrap());
        n += 1;
    }
    out
}

fn pct(v: &mut [Duration], q: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i].as_secs_f64() * 1e3
}

/// fsync cost of this disk, measured in the same run: 4 KiB write + fsync.
fn fsync_ms(dir: &Path) -> (f64, f64) {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).unwrap();
    let mut t = Vec::new();
    for _ in 0..200 {
        let s = Instant::now();
        f.write_all(&[7u8; 4096]).unwrap();
        f.sync_data().unwrap();
        t.push(s.elapsed());
    }
    (pct(&mut t, 0.5), pct(&mut t, 0.99))
}

/// Appends `recs` with `WRITERS` concurrent writers; returns records/s and
/// per-append p50/p99 in ms.
async fn append_all(log: &AuditLog, recs: Vec<Record>) -> (f64, f64, f64) {
    let n = recs.len();
    let queue = Arc::new(std::sync::Mutex::new(recs.into_iter()));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (queue, log) = (queue.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let next = queue.lock().unwrap().next();
                let Some(r) = next else { break };
                let s = Instant::now();
                log.append(r).await.unwrap();
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    (rate, pct(&mut lat, 0.5), pct(&mut lat, 0.99))
}

async fn open_log(store: &Store, signer: &SigningKeyPair) -> AuditLog {
    let opts = LogOptions {
        checkpoint_interval: None,
        ..LogOptions::default()
    };
    AuditLog::open(store.clone(), signer.clone(), opts)
        .await
        .unwrap()
}

async fn run(big: u64) {
    let engine =
        Engine::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds"))
            .unwrap()
            .engine;
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (f50, f99) = fsync_ms(tmp.path());
    println!("fsync (4 KiB write + fdatasync) on this disk: p50 {f50:.2} ms, p99 {f99:.2} ms");
    println!();
    println!(
        "| backend | durability | records | writers | records/s | append p50 ms | append p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    let start = 1_790_000_000_000_000;

    // Append throughput on fresh databases.
    for (label, durability) in [
        ("process-crash", Durability::ProcessCrash),
        ("power-loss", Durability::PowerLoss),
    ] {
        let dir = tmp.path().join(label);
        let data = DataDir::open(&dir).unwrap();
        let store = Store::open(&data, None, durability).await.unwrap();
        let log = open_log(&store, data.signer()).await;
        let recs = records(&engine, &data, 100_000, start);
        let n = recs.len();
        let (rate, p50, p99) = append_all(&log, recs).await;
        println!("| SQLite | {label} | {n} | {WRITERS} | {rate:.0} | {p50:.2} | {p99:.2} |");
        log.close().await.unwrap();
        store.close().await;
    }
    if let Ok(url) = std::env::var("WARDEN_TEST_DATABASE_URL") {
        let dir = tmp.path().join("pg");
        let data = DataDir::open(&dir).unwrap();
        let db = "warden_bench_audit";
        admin(&url, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
        admin(&url, &format!("CREATE DATABASE {db}")).await;
        let pg_url = match url.rfind('/') {
            Some(i) if i > url.find("://").map_or(0, |j| j + 2) => format!("{}/{db}", &url[..i]),
            _ => format!("{url}/{db}"),
        };
        let store = Store::open(&data, Some(&pg_url), Durability::PowerLoss)
            .await
            .unwrap();
        let log = open_log(&store, data.signer()).await;
        let recs = records(&engine, &data, 100_000, start);
        let n = recs.len();
        let (rate, p50, p99) = append_all(&log, recs).await;
        println!(
            "| PostgreSQL 15 | synchronous_commit=on | {n} | {WRITERS} | {rate:.0} | {p50:.2} | {p99:.2} |"
        );
        log.close().await.unwrap();
        let t = Instant::now();
        let report = store
            .verify(vec![data.signer().verifier()], |_| {})
            .await
            .unwrap();
        assert!(report.ok());
        eprintln!(
            "PostgreSQL verify: {} records in {:.2}s ({:.0}/s)",
            report.leaves,
            t.elapsed().as_secs_f64(),
            report.leaves as f64 / t.elapsed().as_secs_f64()
        );
        store.close().await;
        admin(&url, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    } else {
        eprintln!("PostgreSQL skipped: WARDEN_TEST_DATABASE_URL is not set");
    }

    // One big log: verify and queries.
    println!();
    let dir = tmp.path().join("big");
    let data = DataDir::open(&dir).unwrap();
    let store = Store::open(&data, None, Durability::ProcessCrash)
        .await
        .unwrap();
    let log = open_log(&store, data.signer()).await;
    let recs = records(&engine, &data, big, start);
    let n = recs.len() as u64;
    let (rate, _, _) = append_all(&log, recs).await;
    eprintln!("filled {n} records at {rate:.0} records/s");
    log.close().await.unwrap();
    let size = std::fs::metadata(data.sqlite_file())
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "| log of {n} records (SQLite, {:.0} MB) | | |",
        size as f64 / 1e6
    );
    println!("|---|---|---|");

    let t = Instant::now();
    let report = store
        .verify(vec![data.signer().verifier()], |_| {})
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(report.ok(), "{:?}", report.findings);
    println!(
        "| `verify` (hashes, order, records, checkpoint) | {secs:.2} s | {:.0} records/s |",
        n as f64 / secs
    );

    // Queries: one agent, a one-hour window, at 50 different places.
    let first = start;
    let last = first + (n as i64 / 6) * 20_000_000;
    let mut lat = Vec::new();
    let mut hits = 0;
    for i in 0..50i64 {
        let since = first + (last - first) / 50 * i;
        let f = Filter {
            agent: Some("billing-bot".into()),
            since_us: Some(since),
            until_us: Some(since + 3_600_000_000),
            limit: 100,
            ..Filter::default()
        };
        let s = Instant::now();
        hits += store.query(&f).await.unwrap().len();
        lat.push(s.elapsed());
    }
    println!(
        "| query: agent + 1 h window, newest 100 (50 windows, {} rows each on average) | p50 {:.2} ms | p99 {:.2} ms |",
        hits / 50,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    let mut lat = Vec::new();
    for i in 0..20 {
        let s = Instant::now();
        store
            .run_records(&format!("run-{:07}", i * 997))
            .await
            .unwrap();
        lat.push(s.elapsed());
    }
    println!(
        "| timeline: every record of one run | p50 {:.2} ms | p99 {:.2} ms |",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    store.close().await;
}

async fn admin(url: &str, sql: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .unwrap();
}
