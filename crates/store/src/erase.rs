//! Data-subject erasure: the payloads of the records that hold a value are
//! dropped, their leaf hashes kept (the log still verifies), in the same
//! commit as the `records_erased` record that says so.

use serde_json::Value;
use warden_evidence::{ErasureQuery, Record, RecordKind};

use crate::error::StoreError;
use crate::log::{AuditLog, Receipt};
use crate::sql::Sql;
use crate::state::StateWrite;

/// Leaves read per page while searching.
const PAGE: u32 = 5_000;
/// Rows per `UPDATE ... IN (...)` statement.
const CHUNK: usize = 500;

/// What an erasure touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The erased records' positions in the log.
    pub seqs: Vec<u64>,
    /// Actions whose stored result and arguments were dropped too (and
    /// the context of their approval requests, once decided).
    pub actions: Vec<String>,
    /// Runs whose matching records carried their trigger: the stored
    /// trigger of those that ended is dropped (a running run keeps it,
    /// separation of duties needs its requester).
    pub runs: Vec<String>,
}

/// The `records_erased` record's receipt and what was erased.
#[derive(Debug, Clone)]
pub struct ErasureReport {
    /// The erasure record.
    pub receipt: Receipt,
    /// What it erased.
    pub erased: Erasure,
}

impl AuditLog {
    /// Erases every record `query` matches, as of now: drops their payloads
    /// and the stored result and arguments of their finished actions, and
    /// appends `record` (a `records_erased` record the caller describes;
    /// the count and positions are added here) in the same commit.
    pub async fn erase(
        &self,
        query: &ErasureQuery,
        mut record: Record,
    ) -> Result<ErasureReport, StoreError> {
        let mut seqs = Vec::new();
        let mut actions: Vec<String> = Vec::new();
        let mut runs: Vec<String> = Vec::new();
        let mut after = -1i64;
        loop {
            let page = self.store().leaves(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq as i64;
            for leaf in &page {
                let Some(body) = &leaf.body else { continue };
                let Ok(v) = serde_json::from_slice::<Value>(body) else {
                    continue;
                };
                if v["kind"] == RecordKind::RecordsErased.as_str() || !query.matches(&v) {
                    continue;
                }
                seqs.push(leaf.seq);
                if let Some(a) = v["action"].as_str()
                    && !actions.iter().any(|x| x == a)
                {
                    actions.push(a.to_owned());
                }
                if let Some(r) = v["run"].as_str()
                    && !v["trigger"].is_null()
                    && !runs.iter().any(|x| x == r)
                {
                    runs.push(r.to_owned());
                }
            }
        }
        record.kind = RecordKind::RecordsErased;
        // The caller's detail is kept when it is an object (indexing any
        // other JSON value would panic).
        let mut detail = match record.detail.take() {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        detail.insert("field".into(), Value::String(query.field().to_owned()));
        detail.insert("records".into(), serde_json::json!(seqs.len()));
        detail.insert("seqs".into(), serde_json::json!(seqs));
        detail.insert("actions".into(), serde_json::json!(actions.len()));
        detail.insert("runs".into(), serde_json::json!(runs.len()));
        record.detail = Some(Value::Object(detail));
        let erased = Erasure {
            seqs,
            actions,
            runs,
        };
        let receipts = self
            .commit(vec![record], vec![StateWrite::Erase(erased.clone())])
            .await?;
        let receipt = receipts.into_iter().next().ok_or(StoreError::Closed)?;
        Ok(ErasureReport { receipt, erased })
    }
}

/// Applies an erasure inside a commit's transaction.
pub(crate) async fn write_erasure(
    backend: crate::Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    e: &Erasure,
) -> Result<(), StoreError> {
    let seqs: Vec<Bound> = e.seqs.iter().map(|s| Bound::Int(*s as i64)).collect();
    let actions: Vec<Bound> = e.actions.iter().map(|a| Bound::Text(a)).collect();
    let runs: Vec<Bound> = e.runs.iter().map(|r| Bound::Text(r)).collect();
    let updates: [(&'static str, &[Bound]); 5] = [
        ("UPDATE evidence SET body = NULL WHERE seq IN (", &seqs),
        (
            "UPDATE actions SET result = NULL, arguments = NULL \
             WHERE state IN ('denied', 'succeeded', 'failed', 'expired', 'cancelled') AND id IN (",
            &actions,
        ),
        (
            "UPDATE approvals SET context = '{}' WHERE state <> 'pending' AND action_id IN (",
            &actions,
        ),
        (
            "UPDATE runs SET trigger_ctx = NULL WHERE state <> 'running' AND id IN (",
            &runs,
        ),
        (
            "UPDATE approvals SET context = '{}' WHERE state <> 'pending' AND run_id IN (",
            &runs,
        ),
    ];
    for (head, ids) in updates {
        for chunk in ids.chunks(CHUNK) {
            let mut q = Sql::new(head);
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                match id {
                    Bound::Int(n) => q.int(*n),
                    Bound::Text(t) => q.text(*t),
                };
            }
            q.push(")");
            q.build(backend).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// One id of an `IN (...)` list.
enum Bound<'a> {
    Int(i64),
    Text(&'a str),
}
