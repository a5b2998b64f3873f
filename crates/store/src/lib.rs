//! Warden's storage: one interface over SQLite (the default: one file in the
//! data directory) and PostgreSQL (for teams running several replicas).
//!
//! Both run through sqlx's `Any` driver with SQL written once, in the subset
//! the two share; schemas are embedded migrations applied on open
//! (`migrations/sqlite`, `migrations/postgres`). Every table of later layers
//! goes through [`Store`].
//!
//! The audit log ([`AuditLog`]) appends evidence records with group commit:
//! a single writer task batches every pending append into one transaction
//! and acknowledges each only after that transaction is durable.

mod approvals;
mod console;
mod datadir;
mod erase;
mod error;
mod log;
mod oversight;
mod read;
mod slack;
mod sql;
mod state;
mod usage;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use approvals::{ApprovalFilter, ApprovalOrder, ApprovalRow};
pub use console::{RunFilter, SessionRow};
pub use datadir::{CHECKPOINT_KEY_FILE, DB_FILE, DataDir, REDACTION_KEY_FILE};
pub use erase::{Erasure, ErasureReport};
pub use error::StoreError;
pub use log::{AuditLog, LogOptions, Receipt};
pub use oversight::{
    ApprovalAges, CircuitRow, DrillRow, HotspotRow, IncidentFilter, IncidentRow, NotificationRow,
    RunCounts,
};
pub use read::{Filter, LogHealth, Scan, ScanRow, StoredRecord};
pub use slack::{SlackMessageRow, SlackOpen};
pub use state::{ActionRow, AgentStateRow, RunRow, StateWrite};
pub use usage::UsageEvent;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// What an acknowledged write survives (SQLite; PostgreSQL always commits
/// with its server's `synchronous_commit`, by default power-loss safe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives the Warden process crashing (`synchronous=NORMAL` in WAL
    /// mode): the default for SQLite.
    #[default]
    ProcessCrash,
    /// Survives the machine losing power (`synchronous=FULL`: an fsync per
    /// commit).
    PowerLoss,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "process-crash" => Ok(Self::ProcessCrash),
            "power-loss" => Ok(Self::PowerLoss),
            _ => Err(format!(
                "unknown durability `{s}`; expected process-crash or power-loss"
            )),
        }
    }
}

/// An open database with its schema migrated.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens the SQLite database in `data` (creating it), or the PostgreSQL
    /// database at `database_url`, and applies migrations.
    pub async fn open(
        data: &DataDir,
        database_url: Option<&str>,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        match database_url {
            None => Self::open_sqlite(&data.sqlite_file(), durability).await,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::open_postgres(url).await
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                Self::open_sqlite(Path::new(path), durability).await
            }
            Some(url) => Err(StoreError::UnsupportedUrl(url.to_owned())),
        }
    }

    /// Opens (creating) a SQLite file.
    pub async fn open_sqlite(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let sync = match durability {
            Durability::ProcessCrash => "NORMAL",
            Durability::PowerLoss => "FULL",
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let pragmas = match sync {
                        "FULL" => {
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000; PRAGMA temp_store=MEMORY;"
                        }
                        _ => {
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; PRAGMA temp_store=MEMORY;"
                        }
                    };
                    sqlx::raw_sql(pragmas).execute(conn).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
        })
    }

    /// Opens a PostgreSQL database.
    pub async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            backend: Backend::Postgres,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for layers that add their own tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
