//! The export format: JSON Lines that carry everything needed to verify the
//! log with no database: a header, every signed checkpoint, then every leaf
//! with its exact record bytes and an inclusion proof against the export's
//! final checkpoint.
//!
//! ```text
//! {"type":"header","format":"warden-audit-export/1","origin":"...","size":3,"root":"<hex>",...}
//! {"type":"checkpoint","note":"<signed note>"}
//! {"type":"leaf","seq":0,"leaf_hash":"<hex>","body":"<canonical record JSON>","proof":["<hex>",...]}
//! ```
//!
//! `body` is the record's canonical JSON as a string, so its bytes, and so
//! its hash, survive any JSON tooling; `jq '.body | fromjson'` reads it.
//! A pruned leaf has `"body": null`.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{SignedCheckpoint, VerifierKey};
use crate::error::EvidenceError;
use crate::merkle::{Hash, Tree, verify_inclusion};
use crate::verify::{FindingKind, LeafRow, Report, Verifier};

/// The format name in the header.
pub const EXPORT_FORMAT: &str = "warden-audit-export/1";

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportLine {
    /// First line.
    Header {
        /// [`EXPORT_FORMAT`].
        format: String,
        /// The log's origin.
        origin: String,
        /// Leaves in the export.
        size: u64,
        /// Root over them (hex), signed by the last checkpoint.
        root: String,
        /// When the export was made.
        exported_at: String,
        /// The log's public keys, for reference only: a verifier trusts the
        /// keys it is given, not these.
        public_keys: Vec<String>,
    },
    /// A signed checkpoint.
    Checkpoint {
        /// The signed note.
        note: String,
    },
    /// A leaf.
    Leaf {
        /// Position.
        seq: u64,
        /// Leaf hash (hex).
        leaf_hash: String,
        /// The canonical record JSON; `null` once pruned.
        body: Option<String>,
        /// Inclusion proof against the header's size and root (hex).
        proof: Vec<String>,
    },
}

/// Writes an export.
pub struct ExportWriter<W: Write> {
    out: W,
    tree: Tree,
}

impl<W: Write> ExportWriter<W> {
    /// Starts an export of the log whose leaf hashes make `tree`, ending at
    /// `last` (a checkpoint over the whole tree); writes the header and
    /// every checkpoint.
    pub fn start(
        mut out: W,
        tree: Tree,
        checkpoints: &[SignedCheckpoint],
        public_keys: Vec<String>,
        exported_at: String,
    ) -> Result<Self, EvidenceError> {
        let last = checkpoints
            .iter()
            .rfind(|c| c.checkpoint.size == tree.size())
            .ok_or_else(|| {
                EvidenceError::Checkpoint("no checkpoint covers the whole log".into())
            })?;
        let header = ExportLine::Header {
            format: EXPORT_FORMAT.into(),
            origin: last.checkpoint.origin.clone(),
            size: tree.size(),
            root: hex::encode(tree.root()),
            exported_at,
            public_keys,
        };
        let io = |e: std::io::Error| EvidenceError::Io {
            path: "export".into(),
            source: e,
        };
        write_line(&mut out, &header).map_err(io)?;
        for c in checkpoints {
            write_line(
                &mut out,
                &ExportLine::Checkpoint {
                    note: c.note.clone(),
                },
            )
            .map_err(io)?;
        }
        Ok(Self { out, tree })
    }

    /// Writes the next leaf (in order).
    pub fn leaf(&mut self, seq: u64, body: Option<&[u8]>) -> Result<(), EvidenceError> {
        let io = |e: std::io::Error| EvidenceError::Io {
            path: "export".into(),
            source: e,
        };
        let size = self.tree.size();
        let hash = self
            .tree
            .leaves()
            .get(seq as usize)
            .copied()
            .ok_or_else(|| EvidenceError::Proof(format!("leaf {seq} is beyond the tree")))?;
        let proof = self
            .tree
            .inclusion_proof(seq, size)
            .unwrap_or_default()
            .iter()
            .map(hex::encode)
            .collect();
        let body = body
            .map(|b| String::from_utf8(b.to_vec()))
            .transpose()
            .map_err(|_| EvidenceError::Canonical(format!("leaf {seq} is not UTF-8")))?;
        let line = ExportLine::Leaf {
            seq,
            leaf_hash: hex::encode(hash),
            body,
            proof,
        };
        write_line(&mut self.out, &line).map_err(io)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, EvidenceError> {
        self.out.flush().map_err(|e| EvidenceError::Io {
            path: "export".into(),
            source: e,
        })?;
        Ok(self.out)
    }
}

fn write_line<W: Write>(out: &mut W, line: &ExportLine) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

fn hash_of(hex_text: &str) -> Option<Hash> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// Verifies an export with no database, trusting only `trusted` keys:
/// recomputes every leaf hash and the tree, checks each leaf's inclusion
/// proof against the header's root, every checkpoint's signature, and that
/// the header's root is the one the final checkpoint signed.
pub fn verify_export<R: BufRead>(
    input: R,
    trusted: Vec<VerifierKey>,
) -> Result<Report, EvidenceError> {
    let mut lines = input.lines().enumerate();
    let err = |line: usize, message: String| EvidenceError::Export {
        line: line + 1,
        message,
    };
    let (size, root) = match lines.next() {
        Some((i, text)) => {
            let text = text.map_err(|e| err(i, e.to_string()))?;
            match serde_json::from_str::<ExportLine>(&text) {
                Ok(ExportLine::Header {
                    format, size, root, ..
                }) if format == EXPORT_FORMAT => (
                    size,
                    hash_of(&root).ok_or_else(|| err(i, "header root is not a hash".into()))?,
                ),
                Ok(ExportLine::Header { format, .. }) => {
                    return Err(err(i, format!("unknown export format `{format}`")));
                }
                _ => return Err(err(i, "the first line must be the export header".into())),
            }
        }
        None => return Err(err(0, "empty file".into())),
    };
    let mut checkpoints = Vec::new();
    let mut leaves = Vec::new();
    for (i, text) in lines {
        let text = text.map_err(|e| err(i, e.to_string()))?;
        if text.trim().is_empty() {
            continue;
        }
        let line: ExportLine =
            serde_json::from_str(&text).map_err(|e| err(i, format!("not an export line: {e}")))?;
        match line {
            ExportLine::Header { .. } => return Err(err(i, "a second header".into())),
            ExportLine::Checkpoint { note } => {
                checkpoints.push(SignedCheckpoint::parse(&note).map_err(|e| err(i, e.to_string()))?)
            }
            ExportLine::Leaf {
                seq,
                leaf_hash,
                body,
                proof,
            } => {
                let hash = hash_of(&leaf_hash)
                    .ok_or_else(|| err(i, format!("leaf {seq}: leaf_hash is not a hash")))?;
                let proof: Option<Vec<Hash>> = proof.iter().map(|p| hash_of(p)).collect();
                let proof = proof.ok_or_else(|| err(i, format!("leaf {seq}: bad proof hash")))?;
                leaves.push((
                    LeafRow {
                        seq,
                        leaf_hash: hash,
                        body: body.map(String::into_bytes),
                    },
                    proof,
                ));
            }
        }
    }
    let final_signed = checkpoints
        .iter()
        .any(|c| c.checkpoint.size == size && c.checkpoint.root == root);
    let mut v = Verifier::new(checkpoints, trusted);
    for (row, proof) in &leaves {
        v.push(row);
        if !verify_inclusion(row.seq, size, &row.leaf_hash, proof, &root) {
            v.find(
                FindingKind::Modified,
                Some(row.seq),
                format!(
                    "leaf {}: its inclusion proof does not lead to the exported root",
                    row.seq
                ),
            );
        }
    }
    if !final_signed {
        v.find(
            FindingKind::Modified,
            None,
            format!("no checkpoint signs the exported root at size {size}"),
        );
    }
    Ok(v.finish())
}
