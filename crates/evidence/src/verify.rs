//! Verification of a log: leaves in order against their stored hashes, the
//! tree against every signed checkpoint, and the checkpoints' signatures.
//!
//! The same [`Verifier`] serves the database (`warden audit verify`) and an
//! export file on a machine with no database.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{SignedCheckpoint, VerifierKey};
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::record::RecordKind;

/// One stored leaf, as read back.
#[derive(Debug, Clone)]
pub struct LeafRow {
    /// Position claimed by the storage.
    pub seq: u64,
    /// The leaf hash stored with it.
    pub leaf_hash: Hash,
    /// The canonical record bytes; `None` once pruned.
    pub body: Option<Vec<u8>>,
}

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A record's content no longer hashes to its leaf hash, or a range of
    /// leaves no longer hashes to a signed root.
    Modified,
    /// A leaf is missing from the sequence.
    Deleted,
    /// A record sits at another position than the one it was appended at.
    Reordered,
    /// The log ends before the size a signed checkpoint covers.
    Truncated,
    /// A checkpoint's signature does not verify with any trusted key.
    BadSignature,
    /// A stored body is not a record.
    Unreadable,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Modified => "modified",
            Self::Deleted => "deleted",
            Self::Reordered => "reordered",
            Self::Truncated => "truncated",
            Self::BadSignature => "bad_signature",
            Self::Unreadable => "unreadable",
        })
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Its kind.
    pub kind: FindingKind,
    /// The first leaf concerned, when one can be named.
    pub seq: Option<u64>,
    /// What was found, for people.
    pub message: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Leaves read.
    pub leaves: u64,
    /// Leaves whose payload was pruned (hash only).
    pub pruned: u64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Size of the newest valid checkpoint.
    pub latest_checkpoint_size: Option<u64>,
    /// Time of the newest valid checkpoint.
    pub latest_checkpoint_time: Option<String>,
    /// Root hash of the whole log as read (hex).
    pub root: String,
    /// Problems, in log order; empty when the log verifies.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The first problem found.
    pub fn first(&self) -> Option<&Finding> {
        self.findings.first()
    }
}

/// Most findings kept in a report; the first is what matters.
const MAX_FINDINGS: usize = 100;

#[derive(Deserialize)]
struct Head {
    seq: u64,
    kind: RecordKind,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

/// What one leaf says on its own; `None` when its payload was pruned.
struct Content {
    hash_ok: bool,
    head: Result<Head, String>,
}

fn inspect(row: &LeafRow) -> Option<Content> {
    let body = row.body.as_ref()?;
    Some(Content {
        hash_ok: leaf_hash(body) == row.leaf_hash,
        head: serde_json::from_slice::<Head>(body).map_err(|e| e.to_string()),
    })
}

/// Streaming verifier: feed leaves in storage order with [`Verifier::push`],
/// then call [`Verifier::finish`].
#[derive(Debug)]
pub struct Verifier {
    checkpoints: Vec<SignedCheckpoint>,
    next_checkpoint: usize,
    trusted: Vec<VerifierKey>,
    /// Keys announced by `key_rotated` records, with the record's position:
    /// trusted once a checkpoint of an already trusted key covers them.
    announced: Vec<(u64, VerifierKey)>,
    frontier: Frontier,
    /// First leaf position with a leaf-level finding.
    first_leaf_problem: Option<u64>,
    last_good_size: u64,
    report: Report,
}

impl Verifier {
    /// A verifier for a log with these checkpoints, trusting these keys.
    pub fn new(mut checkpoints: Vec<SignedCheckpoint>, trusted: Vec<VerifierKey>) -> Self {
        checkpoints.sort_by_key(|c| c.checkpoint.size);
        let report = Report {
            checkpoints: checkpoints.len(),
            ..Report::default()
        };
        let mut v = Self {
            checkpoints,
            next_checkpoint: 0,
            trusted,
            announced: Vec::new(),
            frontier: Frontier::new(),
            first_leaf_problem: None,
            last_good_size: 0,
            report,
        };
        v.check_checkpoints_at(0);
        v
    }

    pub(crate) fn find(&mut self, kind: FindingKind, seq: Option<u64>, message: String) {
        if let Some(s) = seq
            && kind != FindingKind::Truncated
            && kind != FindingKind::BadSignature
        {
            self.first_leaf_problem.get_or_insert(s);
        }
        if self.report.findings.len() < MAX_FINDINGS {
            self.report.findings.push(Finding { kind, seq, message });
        }
    }

    /// Feeds the next stored leaf.
    pub fn push(&mut self, row: &LeafRow) {
        let content = inspect(row);
        self.push_inspected(row, content);
    }

    /// Feeds the next stored leaves, hashing and reading their records on
    /// every core.
    pub fn push_all(&mut self, rows: &[LeafRow]) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = rows.len().div_ceil(threads).max(256);
        let contents: Vec<Option<Content>> = if rows.len() <= per {
            rows.iter().map(inspect).collect()
        } else {
            std::thread::scope(|s| {
                let parts: Vec<_> = rows
                    .chunks(per)
                    .map(|c| s.spawn(move || c.iter().map(inspect).collect::<Vec<_>>()))
                    .collect();
                parts
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        if contents.len() != rows.len() {
            // A worker died: fall back to one core rather than skip leaves.
            rows.iter().for_each(|r| self.push(r));
            return;
        }
        for (row, content) in rows.iter().zip(contents) {
            self.push_inspected(row, content);
        }
    }

    fn push_inspected(&mut self, row: &LeafRow, content: Option<Content>) {
        let expected = self.frontier.size();
        if row.seq > expected {
            let message = if row.seq - expected == 1 {
                format!(
                    "leaf {expected} is missing (the next stored leaf is {})",
                    row.seq
                )
            } else {
                format!(
                    "leaves {expected}..{} are missing (the next stored leaf is {})",
                    row.seq - 1,
                    row.seq
                )
            };
            self.find(FindingKind::Deleted, Some(expected), message);
        } else if row.seq < expected {
            self.find(
                FindingKind::Reordered,
                Some(row.seq),
                format!(
                    "leaf {} appears again after leaf {}",
                    row.seq,
                    expected.saturating_sub(1)
                ),
            );
            return;
        }
        // Positions are what the tree is built from, so continue at the
        // stored position after a gap.
        while self.frontier.size() < row.seq {
            self.frontier.push([0; 32]);
            self.check_checkpoints_at(self.frontier.size());
        }
        let seq = row.seq;
        match content {
            None => self.report.pruned += 1,
            Some(c) => {
                if !c.hash_ok {
                    self.find(
                        FindingKind::Modified,
                        Some(seq),
                        format!("leaf {seq}: the record no longer matches its leaf hash"),
                    );
                }
                match c.head {
                    Ok(head) if head.seq != seq => self.find(
                        FindingKind::Reordered,
                        Some(seq),
                        format!("leaf {seq} holds the record appended as leaf {}", head.seq),
                    ),
                    Ok(head) => {
                        if head.kind == RecordKind::KeyRotated
                            && let Some(k) = head
                                .detail
                                .as_ref()
                                .and_then(|d| d.get("new_key"))
                                .and_then(|k| k.as_str())
                                .and_then(|k| VerifierKey::parse(k).ok())
                        {
                            self.announced.push((seq, k));
                        }
                    }
                    Err(e) => self.find(
                        FindingKind::Unreadable,
                        Some(seq),
                        format!("leaf {seq} is not a readable record: {e}"),
                    ),
                }
            }
        }
        self.frontier.push(row.leaf_hash);
        self.report.leaves += 1;
        self.check_checkpoints_at(self.frontier.size());
    }

    /// Checks the checkpoints taken at exactly `size` leaves.
    fn check_checkpoints_at(&mut self, size: u64) {
        while self
            .checkpoints
            .get(self.next_checkpoint)
            .is_some_and(|c| c.checkpoint.size == size)
        {
            let Some(c) = self.checkpoints.get(self.next_checkpoint).cloned() else {
                break;
            };
            self.next_checkpoint += 1;
            let signer = self.trusted.iter().find(|k| c.verify(k)).cloned();
            let Some(_) = signer else {
                let announced = self.announced.iter().any(|(_, k)| c.verify(k));
                self.find(
                    FindingKind::BadSignature,
                    Some(size),
                    format!(
                        "checkpoint at size {size} (key {:08x}): {}",
                        c.key_id,
                        if announced {
                            "signed by a rotated-in key that no trusted checkpoint vouches for"
                        } else {
                            "signature does not verify with any trusted key"
                        }
                    ),
                );
                continue;
            };
            // A valid checkpoint vouches for keys announced before it.
            let (now, later): (Vec<_>, Vec<_>) =
                self.announced.drain(..).partition(|(seq, _)| *seq < size);
            self.announced = later;
            self.trusted.extend(now.into_iter().map(|(_, k)| k));
            self.report.latest_checkpoint_size = Some(size);
            self.report.latest_checkpoint_time = Some(c.checkpoint.timestamp.clone());
            if self.frontier.root() != c.checkpoint.root {
                let explained = self.first_leaf_problem.is_some_and(|s| s < size);
                if !explained {
                    let from = self.last_good_size;
                    self.find(
                        FindingKind::Modified,
                        Some(from),
                        format!(
                            "leaves {from}..{} no longer hash to the root signed at size {size}: \
                             a record and its stored hash were rewritten",
                            size.saturating_sub(1)
                        ),
                    );
                }
            } else if self.first_leaf_problem.is_none() {
                self.last_good_size = size;
            }
        }
    }

    /// Ends the stream and returns the report.
    pub fn finish(mut self) -> Report {
        let size = self.frontier.size();
        if let Some(beyond) = self.checkpoints.get(self.next_checkpoint..)
            && let Some(max) = beyond.iter().map(|c| c.checkpoint.size).max()
        {
            let signed = beyond
                .iter()
                .filter(|c| c.checkpoint.size == max)
                .any(|c| self.trusted.iter().any(|k| c.verify(k)));
            self.find(
                FindingKind::Truncated,
                Some(size),
                format!(
                    "the log ends at {size} leaves but a {} checkpoint covers {max}: \
                         leaves {size}..{} are gone",
                    if signed { "signed" } else { "(badly signed)" },
                    max - 1
                ),
            );
        }
        self.report.root = hex::encode(self.frontier.root());
        self.report
    }
}
