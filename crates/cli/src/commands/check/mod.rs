//! `warden check`: the readiness checklist before scaling, each item pass
//! / warn / fail with the facts behind it and how to fix it; exit 0 only
//! when none fails, so CI and a release process can gate on it.

mod items;

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{Value, json};
use warden_oversight::{IncidentView, Router};
use warden_store::{DB_FILE, IncidentFilter};

use self::items::{Facts, Item, QUERY_INDEXES, Status};
use super::audit::{Location, open};
use crate::cli::Exit;

/// `warden check`
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The governance pack directory.
    #[arg(long, default_value = ".")]
    pub pack: PathBuf,
    /// A running server to read the log, incidents and drills from
    /// (an operator's or auditor's token in WARDEN_TOKEN).
    #[arg(long, conflicts_with_all = ["data", "database_url"])]
    pub server: Option<String>,
    /// Your bearer token, with --server.
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A Warden data directory to read the log from.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// A PostgreSQL log to read (postgres://...).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

fn now_us() -> i64 {
    warden_evidence::micros(&warden_evidence::now()).unwrap_or(0)
}

/// Runs `warden check`.
pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    let engine = match super::engine(&args.pack)? {
        Ok(e) => e,
        Err(_) => return Ok(Exit::Unusable),
    };
    let pack = engine.pack();
    let (tests, diags) = warden_model::load_test_cases(pack);
    if diags.iter().any(warden_model::Diagnostic::is_error) {
        eprintln!(
            "error: the pack's tests do not load: run `warden test {}`",
            args.pack.display()
        );
        return Ok(Exit::Unusable);
    }
    let facts = match gather(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(Exit::Unusable);
        }
    };
    let router = Router::build(pack);
    let now = now_us();
    let items: Vec<Item> = vec![
        items::named_owner(pack, &router),
        items::write_policy(&engine, &tests),
        items::high_impact(&engine),
        items::audit(pack, &facts, now),
        items::alerting(pack, &router, &facts, now),
        items::reviews(&facts),
    ];
    let failed = items.iter().filter(|i| i.status == Status::Fail).count();
    let warned = items.iter().filter(|i| i.status == Status::Warn).count();
    let report = json!({
        "pack": pack.name,
        "version": pack.version.as_str(),
        "source": facts.source,
        "ready": failed == 0,
        "failed": failed,
        "warned": warned,
        "items": items,
    });
    if let Some(m) = &args.markdown {
        std::fs::write(m, markdown(&report))
            .with_context(|| format!("cannot write {}", m.display()))?;
    }
    if args.json {
        println!("{report:#}");
    } else {
        print(&report);
    }
    Ok(if failed == 0 { Exit::Ok } else { Exit::Failed })
}

fn gather(args: &CheckArgs) -> anyhow::Result<Facts> {
    if let Some(server) = &args.server {
        let Some(token) = &args.token else {
            anyhow::bail!("--server needs a token: set WARDEN_TOKEN (an operator or auditor)");
        };
        let remote = super::remote::Remote {
            server: server.clone(),
            token: token.clone(),
            json: args.json,
        };
        let get = |path: &str| -> anyhow::Result<Value> {
            match super::remote::call(&remote, reqwest::Method::GET, path, &[], None)? {
                Ok(v) => Ok(v),
                Err(_) => anyhow::bail!("the server refused `GET {path}`"),
            }
        };
        return Ok(Facts {
            source: Some(format!("server {server}")),
            verify: Some(get("/v1/audit/verify")?),
            resolved: Some(
                get("/v1/incidents?state=resolved&limit=1000")?["incidents"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            ),
            drills: Some(
                get("/v1/drills?limit=1000")?
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            ),
            ..Facts::default()
        });
    }
    if args.data.is_none() && args.database_url.is_none() {
        return Ok(Facts::default());
    }
    let loc = Location {
        data: args
            .data
            .clone()
            .unwrap_or_else(|| PathBuf::from("warden-data")),
        database_url: args.database_url.clone(),
        durability: warden_store::Durability::default(),
    };
    if loc.database_url.is_none() && !loc.data.join(DB_FILE).is_file() {
        anyhow::bail!(
            "no audit log in `{}` (pass the data directory of a Warden server)",
            loc.data.display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (data, store) = open(&loc).await?;
        let mut trusted = Vec::new();
        if let Some(first) = store.signing_keys().await?.into_iter().next() {
            trusted.push(first);
        }
        trusted.push(data.signer().verifier());
        let report = store.verify(trusted, |_| {}).await?;
        let health = store.log_health().await?;
        let resolved = store
            .incidents(&IncidentFilter {
                state: Some("resolved".into()),
                limit: 1000,
            })
            .await?
            .iter()
            .map(|r| serde_json::to_value(IncidentView::from_row(r)))
            .collect::<Result<Vec<_>, _>>()?;
        let drills = store
            .drills(false, 1000)
            .await?
            .iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "started": warden_evidence::time_from_micros(d.started_us),
                    "report": serde_json::from_str::<Value>(&d.report).unwrap_or(Value::Null),
                })
            })
            .collect();
        Ok(Facts {
            source: Some(match &loc.database_url {
                Some(_) => "PostgreSQL log".to_owned(),
                None => format!("log in {}", loc.data.display()),
            }),
            verify: Some(json!({ "ok": report.ok(), "report": report })),
            missing_indexes: Some(
                QUERY_INDEXES
                    .iter()
                    .filter(|i| !health.indexes.iter().any(|x| x == *i))
                    .map(|i| (*i).to_owned())
                    .collect(),
            ),
            newest_pruned_us: Some(health.newest_pruned_us),
            actions_without_final: Some(health.actions_without_final),
            resolved: Some(resolved),
            drills: Some(drills),
        })
    })
}

fn word(s: &Value) -> &str {
    match s.as_str() {
        Some("pass") => "PASS",
        Some("warn") => "WARN",
        _ => "FAIL",
    }
}

fn print(r: &Value) {
    println!(
        "readiness of pack `{}`{}",
        r["pack"].as_str().unwrap_or("?"),
        r["source"]
            .as_str()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    );
    for i in r["items"].as_array().into_iter().flatten() {
        println!(
            "\n{}  {}",
            word(&i["status"]),
            i["title"].as_str().unwrap_or("")
        );
        for f in i["facts"].as_array().into_iter().flatten() {
            println!("      {}", f.as_str().unwrap_or(""));
        }
        if let Some(fix) = i["fix"].as_str() {
            println!("      fix: {fix}");
        }
    }
    println!(
        "\n{}: {} failed, {} warned",
        if r["ready"] == json!(true) {
            "ready"
        } else {
            "NOT ready"
        },
        r["failed"],
        r["warned"]
    );
}

fn markdown(r: &Value) -> String {
    let mut s = format!(
        "# Readiness — `{}`\n\nPack version `{}`. {}: {} failed, {} warned.\n\n| item | status | regulations |\n|---|---|---|\n",
        r["pack"].as_str().unwrap_or("?"),
        r["version"].as_str().unwrap_or("?"),
        if r["ready"] == json!(true) {
            "Ready"
        } else {
            "**Not ready**"
        },
        r["failed"],
        r["warned"]
    );
    for i in r["items"].as_array().into_iter().flatten() {
        let regs: Vec<&str> = i["regulations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            i["title"].as_str().unwrap_or(""),
            word(&i["status"]),
            regs.join("; ")
        ));
    }
    for i in r["items"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "\n## {} — {}\n\n",
            i["title"].as_str().unwrap_or(""),
            word(&i["status"])
        ));
        for f in i["facts"].as_array().into_iter().flatten() {
            s.push_str(&format!("- {}\n", f.as_str().unwrap_or("")));
        }
        if let Some(fix) = i["fix"].as_str() {
            s.push_str(&format!("\nFix: {fix}\n"));
        }
    }
    s
}
