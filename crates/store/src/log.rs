//! The append-only audit log with group commit and signed checkpoints.
//!
//! One writer task owns the tree. Appends queue on a channel; the writer
//! takes everything queued (up to a batch limit), assigns positions, writes
//! the batch in one transaction and acknowledges each append only after the
//! commit. A failed commit acknowledges every append of the batch with an
//! error and leaves the tree as it was. Checkpoints go through the same
//! queue, so each signs exactly the records acknowledged before it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use warden_evidence::{
    Checkpoint, Frontier, Hash, Record, RecordKind, SignedCheckpoint, SigningKeyPair, now,
};

use crate::Store;
use crate::error::StoreError;
use crate::sql::Sql;
use crate::state::{StateWrite, write_state};

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Sign a checkpoint this often, also when nothing was appended (so a
    /// truncated tail shows); `None` signs only on demand and on close.
    pub checkpoint_interval: Option<Duration>,
    /// Most records committed in one transaction.
    pub max_batch: usize,
    /// Appends that may wait for the writer before `append` waits too.
    pub queue: usize,
    /// Committed records a slow subscriber may fall behind by before it
    /// misses some (see [`AuditLog::subscribe`]).
    pub events: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            checkpoint_interval: Some(Duration::from_secs(60)),
            max_batch: 2048,
            queue: 16_384,
            events: 65_536,
        }
    }
}

/// An acknowledged append: the record is durable at this position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Leaf index.
    pub seq: u64,
    /// Leaf hash.
    pub leaf_hash: Hash,
}

type Ack = oneshot::Sender<Result<Vec<Receipt>, StoreError>>;

/// Records and state rows committed together.
struct Entry {
    records: Vec<Record>,
    writes: Vec<StateWrite>,
}

enum Msg {
    Append(Box<Entry>, Ack),
    Checkpoint(oneshot::Sender<Result<SignedCheckpoint, StoreError>>),
    Rotate(
        Box<SigningKeyPair>,
        oneshot::Sender<Result<SignedCheckpoint, StoreError>>,
    ),
}

/// Handle to the audit log. Cheap to clone; every clone appends to the same
/// writer.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    events: broadcast::Sender<Arc<Record>>,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    store: Store,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Append(..) => "Append",
            Msg::Checkpoint(_) => "Checkpoint",
            Msg::Rotate(..) => "Rotate",
        })
    }
}

impl AuditLog {
    /// Opens the log in `store`, signing with `signer`; rebuilds the tree's
    /// right edge from the stored leaf hashes.
    pub async fn open(
        store: Store,
        signer: SigningKeyPair,
        opts: LogOptions,
    ) -> Result<Self, StoreError> {
        let frontier = load_frontier(&store).await?;
        register_key(&store, &signer).await?;
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let (events, _) = broadcast::channel(opts.events.max(1));
        let writer = Writer {
            events: events.clone(),
            store: store.clone(),
            signer,
            frontier,
            max_batch: opts.max_batch.max(1),
        };
        let mut tasks = vec![tokio::spawn(writer.run(rx))];
        if let Some(every) = opts.checkpoint_interval {
            let tick = tx.clone();
            tasks.push(tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    let (ack, wait) = oneshot::channel();
                    if tick.send(Msg::Checkpoint(ack)).await.is_err() {
                        break;
                    }
                    if let Ok(Err(e)) = wait.await {
                        tracing::warn!(error = %e, "scheduled checkpoint failed");
                    }
                }
            }));
        }
        Ok(Self {
            tx,
            events,
            tasks: Arc::new(std::sync::Mutex::new(tasks)),
            store,
        })
    }

    /// The store the log writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every record committed from now on, in log order, once durable.
    /// A subscriber more than [`LogOptions::events`] records behind misses
    /// the oldest (its receiver reports how many); the log never waits.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Record>> {
        self.events.subscribe()
    }

    /// Appends `record` (its `seq` is assigned here) and returns once it is
    /// durable.
    pub async fn append(&self, record: Record) -> Result<Receipt, StoreError> {
        let receipts = self.commit(vec![record], Vec::new()).await?;
        receipts.into_iter().next().ok_or(StoreError::Closed)
    }

    /// Appends `records` (in order) and writes the state rows `writes` in
    /// the same transaction; returns once both are durable. Either all of
    /// it is committed or none.
    pub async fn commit(
        &self,
        records: Vec<Record>,
        writes: Vec<StateWrite>,
    ) -> Result<Vec<Receipt>, StoreError> {
        let (ack, wait) = oneshot::channel();
        self.tx
            .send(Msg::Append(Box::new(Entry { records, writes }), ack))
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// Signs and stores a checkpoint of everything acknowledged so far.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint, StoreError> {
        let (ack, wait) = oneshot::channel();
        self.tx
            .send(Msg::Checkpoint(ack))
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// Rotates the signing key: appends a `key_rotated` record naming the new
    /// public key, signs a checkpoint over it with the old key (vouching for
    /// the new one), then signs with `next` from then on. Returns the first
    /// checkpoint signed by `next`.
    pub async fn rotate_key(&self, next: SigningKeyPair) -> Result<SignedCheckpoint, StoreError> {
        let (ack, wait) = oneshot::channel();
        self.tx
            .send(Msg::Rotate(Box::new(next), ack))
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// Signs a final checkpoint and stops the writer once every queued
    /// append is done.
    pub async fn close(self) -> Result<SignedCheckpoint, StoreError> {
        let last = self.checkpoint().await;
        let tasks = match self.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => Vec::new(),
        };
        for t in tasks {
            t.abort();
        }
        last
    }
}

async fn load_frontier(store: &Store) -> Result<Frontier, StoreError> {
    let mut frontier = Frontier::new();
    let mut after: i64 = -1;
    loop {
        let mut q = Sql::new("SELECT seq, leaf_hash FROM evidence WHERE seq > ");
        q.int(after).push(" ORDER BY seq LIMIT 50000");
        let rows = q.build(store.backend()).fetch_all(store.pool()).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let hash: Vec<u8> = row.try_get("leaf_hash")?;
            if seq != frontier.size() as i64 {
                return Err(StoreError::Corrupt(format!(
                    "leaf {} is missing (found {seq}); run `warden audit verify`",
                    frontier.size()
                )));
            }
            let hash: Hash = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("leaf {seq}: hash is not 32 bytes")))?;
            frontier.push(hash);
            after = seq;
        }
    }
    Ok(frontier)
}

async fn register_key(store: &Store, signer: &SigningKeyPair) -> Result<(), StoreError> {
    let id = format!("{:08x}", signer.key_id());
    let mut q = Sql::new("SELECT key_id FROM signing_keys WHERE key_id = ");
    q.text(id.clone());
    if q.build(store.backend())
        .fetch_optional(store.pool())
        .await?
        .is_none()
    {
        let mut q = Sql::new("INSERT INTO signing_keys (key_id, verifier, created_us) VALUES (");
        q.text(id)
            .push(", ")
            .text(signer.verifier().to_string())
            .push(", ")
            .int(warden_evidence::micros(&now()).unwrap_or(0))
            .push(")");
        q.build(store.backend()).execute(store.pool()).await?;
    }
    Ok(())
}

struct Writer {
    events: broadcast::Sender<Arc<Record>>,
    store: Store,
    signer: SigningKeyPair,
    frontier: Frontier,
    max_batch: usize,
}

/// A record ready to insert.
struct Prepared {
    seq: u64,
    hash: Hash,
    body: String,
    record: Box<Record>,
}

/// Rows per INSERT statement (13 values each; well under both databases'
/// placeholder limits).
const ROWS_PER_INSERT: usize = 200;

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut queue = Vec::with_capacity(self.max_batch);
        while let Some(first) = rx.recv().await {
            queue.push(first);
            while queue.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(m) => queue.push(m),
                    Err(_) => break,
                }
            }
            let mut appends = Vec::new();
            for msg in queue.drain(..) {
                match msg {
                    Msg::Append(r, ack) => appends.push((r, ack)),
                    Msg::Checkpoint(ack) => {
                        self.commit(std::mem::take(&mut appends)).await;
                        let _ = ack.send(self.sign().await);
                    }
                    Msg::Rotate(next, ack) => {
                        self.commit(std::mem::take(&mut appends)).await;
                        let _ = ack.send(self.rotate(*next).await);
                    }
                }
            }
            self.commit(appends).await;
        }
    }

    /// Writes one batch and acknowledges each entry.
    async fn commit(&mut self, batch: Vec<(Box<Entry>, Ack)>) {
        if batch.is_empty() {
            return;
        }
        let mut prepared = Vec::with_capacity(batch.len());
        let mut writes = Vec::new();
        // Per acknowledged entry: its ack and its records' range in `prepared`.
        let mut acks = Vec::with_capacity(batch.len());
        let mut next = self.frontier.size();
        'entries: for (entry, ack) in batch {
            let Entry { records, writes: w } = *entry;
            let start = prepared.len();
            for mut record in records {
                record.seq = next;
                match record.leaf_bytes().and_then(|b| {
                    String::from_utf8(b)
                        .map_err(|e| warden_evidence::EvidenceError::Canonical(e.to_string()))
                }) {
                    Ok(body) => {
                        let hash = warden_evidence::merkle::leaf_hash(body.as_bytes());
                        prepared.push(Prepared {
                            seq: next,
                            hash,
                            body,
                            record: Box::new(record),
                        });
                        next += 1;
                    }
                    Err(e) => {
                        // Nothing of this entry is written.
                        prepared.truncate(start);
                        next = self.frontier.size() + prepared.len() as u64;
                        let _ = ack.send(Err(e.into()));
                        continue 'entries;
                    }
                }
            }
            writes.extend(w);
            acks.push((ack, start..prepared.len()));
        }
        if acks.is_empty() {
            return;
        }
        match write_batch(&self.store, &mut prepared, writes).await {
            Ok(()) => {
                for p in &prepared {
                    self.frontier.push(p.hash);
                }
                for (ack, range) in acks {
                    let receipts = prepared[range]
                        .iter()
                        .map(|p| Receipt {
                            seq: p.seq,
                            leaf_hash: p.hash,
                        })
                        .collect();
                    let _ = ack.send(Ok(receipts));
                }
                if self.events.receiver_count() > 0 {
                    for p in prepared {
                        let _ = self.events.send(Arc::from(p.record));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, records = prepared.len(), "audit batch not committed");
                let msg = e.to_string();
                for (ack, _) in acks {
                    let _ = ack.send(Err(StoreError::AppendFailed(msg.clone())));
                }
            }
        }
    }

    async fn sign(&mut self) -> Result<SignedCheckpoint, StoreError> {
        let cp = Checkpoint {
            origin: self.signer.name().to_owned(),
            size: self.frontier.size(),
            root: self.frontier.root(),
            timestamp: now(),
        };
        let signed = self.signer.sign(&cp);
        let mut q =
            Sql::new("INSERT INTO checkpoints (size, root, key_id, note, created_us) VALUES (");
        q.int(cp.size as i64)
            .push(", ")
            .bytes(cp.root.to_vec())
            .push(", ")
            .text(format!("{:08x}", signed.key_id))
            .push(", ")
            .text(signed.note.clone())
            .push(", ")
            .int(warden_evidence::micros(&cp.timestamp).unwrap_or(0))
            .push(")");
        q.build(self.store.backend())
            .execute(self.store.pool())
            .await?;
        Ok(signed)
    }

    async fn rotate(&mut self, next: SigningKeyPair) -> Result<SignedCheckpoint, StoreError> {
        let mut r = Record::new(RecordKind::KeyRotated);
        r.message = Some(format!(
            "checkpoint signing key {:08x} replaced by {:08x}",
            self.signer.key_id(),
            next.key_id()
        ));
        r.detail = Some(serde_json::json!({
            "old_key": self.signer.verifier().to_string(),
            "new_key": next.verifier().to_string(),
        }));
        let (ack, wait) = oneshot::channel();
        let entry = Entry {
            records: vec![r],
            writes: Vec::new(),
        };
        self.commit(vec![(Box::new(entry), ack)]).await;
        wait.await.map_err(|_| StoreError::Closed)??;
        self.sign().await?;
        register_key(&self.store, &next).await?;
        self.signer = next;
        self.sign().await
    }
}

/// Writes `batch` in one transaction. The bodies move into the statement
/// (they are not needed afterwards), so the append path copies no record.
async fn write_batch(
    store: &Store,
    batch: &mut [Prepared],
    writes: Vec<StateWrite>,
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    write_state(store.backend(), &mut tx, writes).await?;
    for chunk in batch.chunks_mut(ROWS_PER_INSERT) {
        let mut q = Sql::new(
            "INSERT INTO evidence (seq, leaf_hash, body, time_us, kind, agent, tool, workflow, \
             run_id, action_id, decision, status, code, drill) VALUES ",
        );
        for (i, p) in chunk.iter_mut().enumerate() {
            let r = &p.record;
            q.push(if i == 0 { "(" } else { ", (" });
            q.int(p.seq as i64)
                .push(", ")
                .bytes(p.hash.to_vec())
                .push(", ")
                .text(std::mem::take(&mut p.body))
                .push(", ")
                .int(r.time_micros())
                .push(", ")
                .text(r.kind.as_str())
                .push(", ")
                .opt_text(r.agent.clone())
                .push(", ")
                .opt_text(r.tool.clone())
                .push(", ")
                .opt_text(r.workflow.clone())
                .push(", ")
                .opt_text(r.run.clone())
                .push(", ")
                .opt_text(r.action.clone())
                .push(", ")
                .opt_text(r.decision().map(|d| d.as_str().to_owned()))
                .push(", ")
                .opt_text(r.status.map(|s| s.as_str().to_owned()))
                .push(", ")
                .opt_text(r.code.clone())
                .push(", ")
                .opt_text(r.drill().map(str::to_owned))
                .push(")");
        }
        q.build(store.backend()).execute(&mut *tx).await?;
        let policies: Vec<(u64, &str)> = chunk
            .iter()
            .flat_map(|p| {
                let mut ids: Vec<&str> = p
                    .record
                    .checks
                    .iter()
                    .flat_map(|c| c.policies.iter().map(|x| x.id.as_str()))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids.into_iter().map(move |id| (p.seq, id))
            })
            .collect();
        insert_pairs(
            store.backend(),
            &mut tx,
            "INSERT INTO evidence_policy (seq, policy_id) VALUES ",
            &policies,
        )
        .await?;
        let approvers: Vec<(u64, &str)> = chunk
            .iter()
            .flat_map(|p| {
                let mut who: Vec<&str> = p
                    .record
                    .approvals
                    .iter()
                    .map(|a| a.approver.as_str())
                    .collect();
                who.sort_unstable();
                who.dedup();
                who.into_iter().map(move |a| (p.seq, a))
            })
            .collect();
        insert_pairs(
            store.backend(),
            &mut tx,
            "INSERT INTO evidence_approver (seq, approver) VALUES ",
            &approvers,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn insert_pairs(
    backend: crate::Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    head: &'static str,
    pairs: &[(u64, &str)],
) -> Result<(), StoreError> {
    for chunk in pairs.chunks(ROWS_PER_INSERT * 4) {
        let mut q = Sql::new(head);
        for (i, (seq, v)) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.int(*seq as i64).push(", ").text(*v).push(")");
        }
        q.build(backend).execute(&mut **tx).await?;
    }
    Ok(())
}
