//! Warden's evidence layer: what is recorded, and how anyone can prove it was
//! not changed.
//!
//! - [`Record`]: one per lifecycle event, written as RFC 8785 canonical JSON
//!   ([`canonical`]); sensitive arguments replaced by keyed tokens
//!   ([`Redactor`]); tool results redacted by declared fields and the
//!   output [`scan`]ner ([`ResultRules`]); erasure by value ([`ErasureQuery`]).
//! - [`merkle`]: records are leaves of an RFC 6962 Merkle tree, with
//!   inclusion and consistency proofs.
//! - [`checkpoint`]: signed tree heads in the C2SP signed-note format.
//! - [`Verifier`]: finds the first modified, deleted, reordered or truncated
//!   leaf; [`export`] carries a log to a machine with no database.
//!
//! This crate does no I/O of its own beyond the reader and writer it is
//! given: storage lives in `warden-store`.

pub mod canonical;
pub mod checkpoint;
mod erase;
mod error;
pub mod export;
mod generate;
pub mod merkle;
mod record;
mod redact;
mod result;
pub mod scan;
mod verify;

pub use checkpoint::{Checkpoint, SignedCheckpoint, SigningKeyPair, VerifierKey};
pub use erase::ErasureQuery;
pub use error::EvidenceError;
pub use export::{ExportLine, ExportWriter, verify_export};
pub use generate::RunGenerator;
pub use merkle::{Frontier, Hash, Tree};
pub use record::{
    ApprovalOutcome, Check, CheckedPolicy, RECORD_VERSION, Record, RecordKind, decision_status,
    format_time, micros, now, time_from_micros, time_or_ago,
};
pub use redact::{REDACTED_PREFIX, Redactor, args_hash, webhook_signature};
pub use result::{RedactedResult, ResultRules};
pub use verify::{Finding, FindingKind, LeafRow, Report, Verifier};
