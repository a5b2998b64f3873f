//! Test databases: a fresh SQLite file, or a fresh PostgreSQL database
//! created for the test and dropped after it.

use std::path::Path;

use sqlx::Connection;
use tempfile::TempDir;
use warden_evidence::{Record, Redactor, RunGenerator};
use warden_policy::Engine;
use warden_store::{AuditLog, DataDir, Durability, LogOptions, Store};

pub const PG_ENV: &str = "WARDEN_TEST_DATABASE_URL";

pub struct TestDb {
    _dir: TempDir,
    pub data: DataDir,
    pub url: Option<String>,
    pub store: Store,
    admin: Option<(String, String)>,
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl TestDb {
    /// A fresh database of `kind`, or `None` (with the reason printed) when
    /// PostgreSQL is not configured.
    pub async fn new(kind: Kind) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let (url, admin) = match kind {
            Kind::Sqlite => (None, None),
            Kind::Postgres => {
                let Ok(base) = std::env::var(PG_ENV) else {
                    eprintln!(
                        "skipped: {PG_ENV} is not set (.ci/run sets it to the local PostgreSQL)"
                    );
                    return None;
                };
                let name = format!(
                    "warden_test_{}",
                    hex::encode(
                        warden_evidence::SigningKeyPair::generate("n")
                            .unwrap()
                            .key_id()
                            .to_be_bytes()
                    )
                );
                sqlx::any::install_default_drivers();
                let mut c = sqlx::AnyConnection::connect(&base).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
                let url = with_database(&base, &name);
                (Some(url), Some((base, name)))
            }
        };
        let store = Store::open(&data, url.as_deref(), Durability::ProcessCrash)
            .await
            .unwrap();
        Some(Self {
            _dir: dir,
            data,
            url,
            store,
            admin,
        })
    }

    pub async fn log(&self) -> AuditLog {
        let opts = LogOptions {
            checkpoint_interval: None,
            ..LogOptions::default()
        };
        AuditLog::open(self.store.clone(), self.data.signer().clone(), opts)
            .await
            .unwrap()
    }

    /// Drops a PostgreSQL test database.
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((base, name)) = self.admin {
            let mut c = sqlx::AnyConnection::connect(&base).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await
            .unwrap();
        }
    }

    /// Verifies the log, trusting the data directory's key.
    pub async fn verify(&self) -> warden_evidence::Report {
        self.store
            .verify(vec![self.data.signer().verifier()], |_| {})
            .await
            .unwrap()
    }

    /// Verifies the log and asserts it is intact.
    pub async fn verify_ok(&self) -> warden_evidence::Report {
        let report = self.verify().await;
        assert!(report.ok(), "{:?}", report.findings);
        report
    }

    /// A second, independent connection: "behind Warden's back".
    pub async fn backdoor(&self) -> sqlx::AnyConnection {
        let url = match &self.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data.sqlite_file().display()),
        };
        sqlx::AnyConnection::connect(&url).await.unwrap()
    }
}

/// `base` with its database replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (base, String::new()),
    };
    let host_at = head.find("://").map_or(0, |i| i + 3);
    match head[host_at..].find('/') {
        Some(i) => format!("{}/{name}{query}", &head[..host_at + i]),
        None => format!("{head}/{name}{query}"),
    }
}

pub fn engine() -> Engine {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/support-refunds");
    Engine::load(&dir).unwrap().engine
}

/// `runs` generated refund runs, starting 2026-11-01, one every minute.
pub fn records(engine: &Engine, redactor: &Redactor, runs: u64) -> Vec<Record> {
    let mut g = RunGenerator::new(engine, redactor, 11, 1_793_491_200_000_000, 60_000_000);
    (0..runs).flat_map(|n| g.run(n).unwrap()).collect()
}

/// Runs the async test function `name(&TestDb)` against both backends.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            use $crate::common::{Kind, TestDb};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(db) = TestDb::new(Kind::Sqlite).await {
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = TestDb::new(Kind::Postgres).await {
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            }
        }
    };
}
