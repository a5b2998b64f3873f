//! Counter events: what each counted action added to a counter's window.
//!
//! An event is written in the transaction that allows its action, so the
//! store holds exactly the counted actions; a runtime rebuilds its windows
//! from here after a restart. Events older than the window are deleted in
//! the same transaction as newer ones of that key.

use sqlx::Row;

use crate::sql::Sql;
use crate::{Store, StoreError};

/// One counted action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    /// The counter's name.
    pub counter: String,
    /// The hashed key of its window.
    pub key: String,
    /// The action counted.
    pub action_id: String,
    /// When it was allowed (µs since the epoch).
    pub at_us: i64,
    /// What it added (1 for a count).
    pub amount: i64,
    /// Events of this counter and key at or before this are past every
    /// window and may go.
    pub expired_us: i64,
}

/// Writes `events` in `tx`, dropping expired ones of the same keys.
pub(crate) async fn write(
    backend: crate::Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    events: &[UsageEvent],
) -> Result<(), StoreError> {
    // One delete per window in the batch (many events of a batch often
    // share a key), up to the latest expiry among them.
    let mut expired: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
    for e in events {
        let at = expired.entry((&e.counter, &e.key)).or_insert(e.expired_us);
        *at = (*at).max(e.expired_us);
    }
    for ((counter, key), before) in expired {
        let mut q = Sql::new("DELETE FROM usage_events WHERE counter = ");
        q.text(counter)
            .push(" AND key = ")
            .text(key)
            .push(" AND at_us <= ")
            .int(before);
        q.build(backend).execute(&mut **tx).await?;
    }
    for chunk in events.chunks(100) {
        let mut q =
            Sql::new("INSERT INTO usage_events (counter, key, action_id, at_us, amount) VALUES ");
        for (i, e) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.text(e.counter.clone())
                .push(", ")
                .text(e.key.clone())
                .push(", ")
                .text(e.action_id.clone())
                .push(", ")
                .int(e.at_us)
                .push(", ")
                .int(e.amount)
                .push(")");
        }
        q.push(" ON CONFLICT (counter, key, action_id) DO NOTHING");
        q.build(backend).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// The events of `counter`'s window `key` after `since_us`, oldest
    /// first: `(at_us, amount)`.
    pub async fn usage_events(
        &self,
        counter: &str,
        key: &str,
        since_us: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut q = Sql::new("SELECT at_us, amount FROM usage_events WHERE counter = ");
        q.text(counter)
            .push(" AND key = ")
            .text(key)
            .push(" AND at_us > ")
            .int(since_us)
            .push(" ORDER BY at_us");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("at_us")?, r.try_get("amount")?)))
            .collect()
    }
}
