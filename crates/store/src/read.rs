//! Reading the audit log back: queries, run timelines, verification,
//! export and pruning.

use std::io::Write;

use sqlx::Row;
use sqlx::any::AnyRow;
use warden_evidence::{
    ExportWriter, Hash, LeafRow, Record, Report, SignedCheckpoint, Tree, Verifier, VerifierKey,
};

use crate::Store;
use crate::error::StoreError;
use crate::sql::Sql;

/// Query filters; every field set must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Agent id.
    pub agent: Option<String>,
    /// Tool id.
    pub tool: Option<String>,
    /// Workflow id.
    pub workflow: Option<String>,
    /// Run id.
    pub run: Option<String>,
    /// Record kind (`action_decided`, ...).
    pub kind: Option<String>,
    /// Decision outcome (`allow`, `deny`, `approval_required`).
    pub decision: Option<String>,
    /// Action status (`succeeded`, `denied`, ...).
    pub status: Option<String>,
    /// Standardized code (`policy_denied`, `tool_error`, ...).
    pub code: Option<String>,
    /// A determining policy id.
    pub policy: Option<String>,
    /// An approver.
    pub approver: Option<String>,
    /// From this time on (µs since the epoch, inclusive).
    pub since_us: Option<i64>,
    /// Before this time (µs since the epoch, exclusive).
    pub until_us: Option<i64>,
    /// Text anywhere in the record (case-insensitive).
    pub text: Option<String>,
    /// Action id.
    pub action: Option<String>,
    /// Newest first by record time (then position) instead of by
    /// position: the indexes on (agent | tool | workflow, time) then stop
    /// after `limit` rows, where ordering by position sorts every match.
    pub by_time: bool,
    /// Only records before this (time µs, position): paging back with
    /// `by_time`.
    pub before: Option<(i64, u64)>,
    /// Most records returned (newest first).
    pub limit: u32,
}

/// A record as stored.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Leaf index.
    pub seq: u64,
    /// Record time, µs since the epoch.
    pub time_us: i64,
    /// Record kind.
    pub kind: String,
    /// The record; `None` once its payload was pruned.
    pub record: Option<Record>,
}

const RECORD_COLUMNS: &str = "SELECT seq, time_us, kind, body FROM evidence";

fn stored(row: &AnyRow) -> Result<StoredRecord, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let body: Option<String> = row.try_get("body")?;
    let record = body
        .map(|b| serde_json::from_str::<Record>(&b))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("leaf {seq}: {e}")))?;
    Ok(StoredRecord {
        seq: seq as u64,
        time_us: row.try_get("time_us")?,
        kind: row.try_get("kind")?,
        record,
    })
}

impl Store {
    /// Records matching `filter`, newest first.
    pub async fn query(&self, f: &Filter) -> Result<Vec<StoredRecord>, StoreError> {
        let mut q = Sql::new(RECORD_COLUMNS);
        q.push(" WHERE 1 = 1");
        let columns: [(&'static str, &Option<String>); 9] = [
            (" AND action_id = ", &f.action),
            (" AND agent = ", &f.agent),
            (" AND tool = ", &f.tool),
            (" AND workflow = ", &f.workflow),
            (" AND run_id = ", &f.run),
            (" AND kind = ", &f.kind),
            (" AND decision = ", &f.decision),
            (" AND status = ", &f.status),
            (" AND code = ", &f.code),
        ];
        for (clause, value) in columns {
            if let Some(v) = value {
                q.push(clause).text(v.clone());
            }
        }
        if let Some(p) = &f.policy {
            q.push(" AND seq IN (SELECT seq FROM evidence_policy WHERE policy_id = ")
                .text(p.clone())
                .push(")");
        }
        if let Some(a) = &f.approver {
            q.push(" AND seq IN (SELECT seq FROM evidence_approver WHERE approver = ")
                .text(a.clone())
                .push(")");
        }
        if let Some(t) = f.since_us {
            q.push(" AND time_us >= ").int(t);
        }
        if let Some(t) = f.until_us {
            q.push(" AND time_us < ").int(t);
        }
        if let Some((t, seq)) = f.before {
            q.push(" AND (time_us < ")
                .int(t)
                .push(" OR (time_us = ")
                .int(t)
                .push(" AND seq < ")
                .int(i64::try_from(seq).unwrap_or(i64::MAX))
                .push("))");
        }
        if let Some(text) = &f.text {
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            q.push(" AND lower(body) LIKE ")
                .text(format!("%{escaped}%"))
                .push(" ESCAPE '\\'");
        }
        q.push(if f.by_time {
            " ORDER BY time_us DESC, seq DESC LIMIT "
        } else {
            " ORDER BY seq DESC LIMIT "
        })
        .int(i64::from(f.limit.max(1)));
        let rows = q.build(self.backend()).fetch_all(self.pool()).await?;
        rows.iter().map(stored).collect()
    }

    /// Every record of a run, in log order.
    pub async fn run_records(&self, run: &str) -> Result<Vec<StoredRecord>, StoreError> {
        let mut q = Sql::new(RECORD_COLUMNS);
        q.push(" WHERE run_id = ").text(run).push(" ORDER BY seq");
        let rows = q.build(self.backend()).fetch_all(self.pool()).await?;
        rows.iter().map(stored).collect()
    }

    /// Number of leaves stored.
    pub async fn leaf_count(&self) -> Result<u64, StoreError> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM evidence")
            .build(self.backend())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")? as u64)
    }

    /// Leaves after position `after` (exclusive; -1 for the start), at most
    /// `limit`, in position order.
    pub async fn leaves(&self, after: i64, limit: u32) -> Result<Vec<LeafRow>, StoreError> {
        let mut q = Sql::new("SELECT seq, leaf_hash, body FROM evidence WHERE seq > ");
        q.int(after)
            .push(" ORDER BY seq LIMIT ")
            .int(i64::from(limit));
        let rows = q.build(self.backend()).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let hash: Vec<u8> = row.try_get("leaf_hash")?;
                let body: Option<String> = row.try_get("body")?;
                Ok(LeafRow {
                    seq: seq as u64,
                    // A hash of the wrong length is itself a modification;
                    // the verifier sees a hash that matches nothing.
                    leaf_hash: hash.try_into().unwrap_or([0xff; 32]),
                    body: body.map(String::into_bytes),
                })
            })
            .collect()
    }

    /// Every stored checkpoint, parsed, oldest first. A checkpoint that does
    /// not parse is an error naming it.
    pub async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let rows = Sql::new("SELECT id, note FROM checkpoints ORDER BY id")
            .build(self.backend())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get("id")?;
                let note: String = row.try_get("note")?;
                SignedCheckpoint::parse(&note)
                    .map_err(|e| StoreError::Corrupt(format!("checkpoint {id}: {e}")))
            })
            .collect()
    }

    /// Public keys that have signed checkpoints, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<VerifierKey>, StoreError> {
        let rows = Sql::new("SELECT verifier FROM signing_keys ORDER BY created_us, key_id")
            .build(self.backend())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get("verifier")?;
                VerifierKey::parse(&text).map_err(StoreError::from)
            })
            .collect()
    }

    /// Verifies the whole log against its checkpoints, trusting `trusted`
    /// keys. `progress` is called with the number of leaves read so far.
    pub async fn verify(
        &self,
        trusted: Vec<VerifierKey>,
        mut progress: impl FnMut(u64),
    ) -> Result<Report, StoreError> {
        const PAGE: u32 = 20_000;
        let mut v = Verifier::new(self.checkpoints().await?, trusted);
        let mut read = 0u64;
        // Read the next page while this one is hashed and checked.
        let fetch = |after: i64| {
            let store = self.clone();
            tokio::spawn(async move { store.leaves(after, PAGE).await })
        };
        let mut pending = Some(fetch(-1));
        while let Some(next) = pending.take() {
            let page = next
                .await
                .map_err(|e| StoreError::Corrupt(format!("reading leaves: {e}")))??;
            let Some(last) = page.last() else { break };
            if page.len() == PAGE as usize {
                pending = Some(fetch(last.seq as i64));
            }
            v.push_all(&page);
            read += page.len() as u64;
            progress(read);
        }
        Ok(v.finish())
    }

    /// Every leaf hash, in order (for proofs and exports).
    pub async fn tree(&self) -> Result<Tree, StoreError> {
        let mut hashes: Vec<Hash> = Vec::new();
        let mut after = -1i64;
        loop {
            let mut q = Sql::new("SELECT seq, leaf_hash FROM evidence WHERE seq > ");
            q.int(after).push(" ORDER BY seq LIMIT 50000");
            let rows = q.build(self.backend()).fetch_all(self.pool()).await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("seq")?;
            for row in &rows {
                let h: Vec<u8> = row.try_get("leaf_hash")?;
                hashes.push(
                    h.try_into()
                        .map_err(|_| StoreError::Corrupt("a leaf hash is not 32 bytes".into()))?,
                );
            }
        }
        Ok(Tree::new(hashes))
    }

    /// Writes the whole log as a JSONL export (see
    /// `warden_evidence::export`). A checkpoint over every leaf must exist
    /// (sign one first). Returns the number of leaves written.
    pub async fn export<W: Write>(&self, out: W, exported_at: String) -> Result<u64, StoreError> {
        let tree = self.tree().await?;
        let size = tree.size();
        let keys = self
            .signing_keys()
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        let checkpoints = self.checkpoints().await?;
        let mut w = ExportWriter::start(out, tree, &checkpoints, keys, exported_at)?;
        let mut after = -1i64;
        loop {
            let page = self.leaves(after, 20_000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq as i64;
            for row in &page {
                w.leaf(row.seq, row.body.as_deref())?;
            }
        }
        w.finish()?;
        Ok(size)
    }

    /// Drops the payload of records older than `before_us` (µs since the
    /// epoch), keeping their leaf hashes, so the tree and proofs still
    /// verify. Returns how many records were pruned.
    pub async fn prune(&self, before_us: i64) -> Result<u64, StoreError> {
        let mut q =
            Sql::new("UPDATE evidence SET body = NULL WHERE body IS NOT NULL AND time_us < ");
        q.int(before_us);
        let done = q.build(self.backend()).execute(self.pool()).await?;
        Ok(done.rows_affected())
    }
}

/// Which records a streaming scan of the log reads ([`Store::scan`]).
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Record kinds (`action_decided`, ...); every kind when empty.
    pub kinds: Vec<String>,
    /// From this time on (µs since the epoch, inclusive).
    pub since_us: Option<i64>,
    /// Rows per page (5,000 when 0).
    pub page: u32,
    /// Kinds whose body is read; `None`: every kind's. Other rows come
    /// with `body: None` (cheaper: only their indexed columns are read).
    pub bodies: Option<Vec<String>>,
    /// Only `action_decided` rows with this decision (`approval_required`).
    pub decision: Option<String>,
    /// Also drill traffic (records whose trigger is a drill's); left out by
    /// default, so drills never skew statistics, replay or tuning.
    pub drills: bool,
}

/// One row of a scan: the indexed columns, and the body unparsed so that a
/// reader parses only the records it needs.
#[derive(Debug, Clone)]
pub struct ScanRow {
    /// Leaf index.
    pub seq: u64,
    /// Record time, µs since the epoch.
    pub time_us: i64,
    /// Record kind.
    pub kind: String,
    /// Agent, tool and workflow columns.
    pub agent: Option<String>,
    /// Tool id.
    pub tool: Option<String>,
    /// Workflow id.
    pub workflow: Option<String>,
    /// Action id.
    pub action: Option<String>,
    /// Action status after the event.
    pub status: Option<String>,
    /// Decision outcome (`allow`, `deny`, `approval_required`).
    pub decision: Option<String>,
    /// The canonical JSON body; `None` once its payload was pruned.
    pub body: Option<String>,
}

/// The kinds the `evidence_rollout` index holds (migration 0005), in its
/// exact order: a scan of only these kinds repeats the condition so that
/// the index serves it.
const ROLLOUT_KINDS: &str = "kind IN ('action_decided', 'approval_requested', 'approval_recorded', 'approval_granted', 'approval_escalated', 'approval_expired', 'approval_cancelled')";
const ROLLOUT: &[&str] = &[
    "action_decided",
    "approval_requested",
    "approval_recorded",
    "approval_granted",
    "approval_escalated",
    "approval_expired",
    "approval_cancelled",
];

impl Store {
    /// Streams the records `scan` selects, in log order, one page at a
    /// time to `each` (the next page is read while `each` works on this
    /// one). Memory holds two pages, whatever the log's size.
    pub async fn scan<E>(
        &self,
        scan: &Scan,
        mut each: impl FnMut(Vec<ScanRow>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<StoreError>,
    {
        let page = if scan.page == 0 { 5_000 } else { scan.page };
        let fetch = |after: i64| {
            let store = self.clone();
            let scan = scan.clone();
            tokio::spawn(async move { store.scan_page(&scan, after, page).await })
        };
        // Records at or after `since` all sit at or after the first such
        // position (found through the time index): start there.
        let start = match scan.since_us {
            Some(t) => {
                let mut q = Sql::new("SELECT MIN(seq) AS s FROM evidence WHERE time_us >= ");
                q.int(t);
                let row = q
                    .build(self.backend())
                    .fetch_one(self.pool())
                    .await
                    .map_err(StoreError::from)?;
                match row
                    .try_get::<Option<i64>, _>("s")
                    .map_err(StoreError::from)?
                {
                    Some(s) => s - 1,
                    None => return Ok(()),
                }
            }
            None => -1,
        };
        let mut pending = Some(fetch(start));
        while let Some(next) = pending.take() {
            let rows = next
                .await
                .map_err(|e| StoreError::Corrupt(format!("reading the log: {e}")))??;
            if rows.len() == page as usize
                && let Some(last) = rows.last()
            {
                pending = Some(fetch(last.seq as i64));
            }
            each(rows)?;
        }
        Ok(())
    }

    async fn scan_page(
        &self,
        scan: &Scan,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ScanRow>, StoreError> {
        let mut q = Sql::new(
            "SELECT seq, time_us, kind, agent, tool, workflow, action_id, status, decision, ",
        );
        match &scan.bodies {
            None => {
                q.push("body");
            }
            Some(kinds) if kinds.is_empty() => {
                q.push("NULL AS body");
            }
            Some(kinds) => {
                q.push("CASE WHEN kind IN (");
                for (i, k) in kinds.iter().enumerate() {
                    if i > 0 {
                        q.push(", ");
                    }
                    q.text(k.clone());
                }
                q.push(") THEN body END AS body");
            }
        }
        q.push(" FROM evidence WHERE seq > ").int(after);
        if let Some(d) = &scan.decision {
            q.push(" AND (kind <> 'action_decided' OR decision = ")
                .text(d.clone())
                .push(")");
        }
        if let Some(t) = scan.since_us {
            q.push(" AND time_us >= ").int(t);
        }
        if !scan.drills {
            q.push(" AND drill IS NULL");
        }
        if !scan.kinds.is_empty() && scan.kinds.iter().all(|k| ROLLOUT.contains(&k.as_str())) {
            q.push(" AND ").push(ROLLOUT_KINDS);
        }
        if !scan.kinds.is_empty() {
            q.push(" AND kind IN (");
            for (i, k) in scan.kinds.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.text(k.clone());
            }
            q.push(")");
        }
        q.push(" ORDER BY seq LIMIT ").int(i64::from(limit));
        let rows = q.build(self.backend()).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                Ok(ScanRow {
                    seq: seq as u64,
                    time_us: row.try_get("time_us")?,
                    kind: row.try_get("kind")?,
                    agent: row.try_get("agent")?,
                    tool: row.try_get("tool")?,
                    workflow: row.try_get("workflow")?,
                    action: row.try_get("action_id")?,
                    status: row.try_get("status")?,
                    decision: row.try_get("decision")?,
                    body: row.try_get("body")?,
                })
            })
            .collect()
    }
}

/// What `warden check` reads about the log itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogHealth {
    /// Every index name in the database.
    pub indexes: Vec<String>,
    /// Time (µs) of the newest record whose payload was pruned or erased.
    pub newest_pruned_us: Option<i64>,
    /// Actions in a final state with no record in a final status.
    pub actions_without_final: u64,
}

impl Store {
    /// The facts behind the readiness check's audit item.
    pub async fn log_health(&self) -> Result<LogHealth, StoreError> {
        let q = Sql::new(match self.backend() {
            crate::Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'index'",
            crate::Backend::Postgres => {
                "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()"
            }
        });
        let indexes = q
            .build(self.backend())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("name"))
            .collect::<Result<Vec<_>, _>>()?;
        let q = Sql::new("SELECT MAX(time_us) AS t FROM evidence WHERE body IS NULL");
        let newest_pruned_us: Option<i64> = q
            .build(self.backend())
            .fetch_one(self.pool())
            .await?
            .try_get("t")?;
        let q = Sql::new(
            "SELECT COUNT(*) AS n FROM actions \
             WHERE state IN ('denied', 'succeeded', 'failed', 'expired', 'cancelled') \
             AND id NOT IN (SELECT action_id FROM evidence WHERE action_id IS NOT NULL \
             AND status IN ('denied', 'succeeded', 'failed', 'expired', 'cancelled'))",
        );
        let n: i64 = q
            .build(self.backend())
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        Ok(LogHealth {
            indexes,
            newest_pruned_us,
            actions_without_final: u64::try_from(n).unwrap_or(0),
        })
    }
}
