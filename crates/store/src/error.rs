//! Errors of the storage layer.

use warden_evidence::EvidenceError;

/// What can go wrong opening or using the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one Warden supports.
    #[error(
        "unsupported database URL `{0}`: use postgres://... (or omit it for SQLite in the data directory)"
    )]
    UnsupportedUrl(String),
    /// Connecting, querying or committing failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file in the data directory.
    #[error("{path}: {message}")]
    DataDir {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Building or checking evidence.
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    /// A stored value is not what Warden wrote.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The audit log's writer has stopped (the process is shutting down, or
    /// a previous error stopped it).
    #[error("the audit log writer is not running")]
    Closed,
    /// A batch could not be committed; none of its records were appended.
    #[error("append failed, nothing from this batch was written: {0}")]
    AppendFailed(String),
    /// Bad input to a query.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
}
