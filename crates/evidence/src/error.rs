//! Errors of the evidence layer.

/// What can go wrong building, signing or checking evidence.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// A value could not be written as canonical JSON.
    #[error("cannot canonicalize JSON: {0}")]
    Canonical(String),
    /// A key file or key string is malformed.
    #[error("invalid key: {0}")]
    Key(String),
    /// A checkpoint (signed note) is malformed.
    #[error("invalid checkpoint: {0}")]
    Checkpoint(String),
    /// A proof does not match.
    #[error("invalid proof: {0}")]
    Proof(String),
    /// An export file is malformed.
    #[error("invalid export, line {line}: {message}")]
    Export {
        /// 1-based line of the JSONL file.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The operating system's random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
}
