//! Slack messages that show approval requests, and the interactions already
//! acted on.
//!
//! A message row is opened in the transaction that creates (or escalates)
//! its request, and every later write of the request bumps its `wanted`
//! revision in the same transaction. A sender claims a due row with a
//! lease, posts or updates the message, and commits the revision it showed;
//! so a message catches up after every change, on any replica, also after
//! a crash. A claim made while the message is not yet posted counts in
//! `post_tries`: a second claim knows an earlier post may have reached
//! Slack and looks for it before posting again.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::Sql;
use crate::{Store, StoreError};

/// One request's message in one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackMessageRow {
    /// The approval request shown.
    pub approval_id: String,
    /// The channel id.
    pub channel: String,
    /// Slack's id of the message (`ts`), once posted.
    pub ts: Option<String>,
    /// The revision of the request the message should show.
    pub wanted: i64,
    /// The revision it shows (0: not posted yet).
    pub shown: i64,
    /// Claims made while not yet posted (more than one: an earlier post
    /// may have reached Slack).
    pub post_tries: i64,
    /// Failed calls since the last success.
    pub attempts: i64,
    /// Not before (µs since the epoch).
    pub next_us: i64,
    /// Held by a sender until (µs since the epoch).
    pub lease_us: Option<i64>,
    /// Slack's (or the network's) last error.
    pub last_error: Option<String>,
    /// Gave up on this revision (a later change tries again).
    pub failed: bool,
    /// µs since the epoch.
    pub created_us: i64,
    /// µs since the epoch.
    pub updated_us: i64,
}

/// A message to open for a request (or to bring up to date, when the
/// request already has one in that channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackOpen {
    /// The approval request.
    pub approval_id: String,
    /// The channel id.
    pub channel: String,
    /// µs since the epoch.
    pub now_us: i64,
}

const COLS: &str = "approval_id, channel, ts, wanted, shown, post_tries, attempts, next_us, \
     lease_us, last_error, failed, created_us, updated_us";

fn row(r: &AnyRow) -> Result<SlackMessageRow, StoreError> {
    Ok(SlackMessageRow {
        approval_id: r.try_get("approval_id")?,
        channel: r.try_get("channel")?,
        ts: r.try_get("ts")?,
        wanted: r.try_get("wanted")?,
        shown: r.try_get("shown")?,
        post_tries: r.try_get("post_tries")?,
        attempts: r.try_get("attempts")?,
        next_us: r.try_get("next_us")?,
        lease_us: r.try_get("lease_us")?,
        last_error: r.try_get("last_error")?,
        failed: r.try_get::<i64, _>("failed")? != 0,
        created_us: r.try_get("created_us")?,
        updated_us: r.try_get("updated_us")?,
    })
}

/// In the transaction that writes requests `ids`: their messages are due
/// again.
pub(crate) async fn bump(
    backend: crate::Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ids: &[&str],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(100) {
        let mut q = Sql::new(
            "UPDATE slack_messages SET wanted = wanted + 1, failed = 0, attempts = 0 \
             WHERE approval_id IN (",
        );
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.text(*id);
        }
        q.push(")");
        q.build(backend).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Opens messages (or brings existing ones up to date).
pub(crate) async fn open(
    backend: crate::Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    opens: &[SlackOpen],
) -> Result<(), StoreError> {
    for o in opens {
        let mut q = Sql::new("INSERT INTO slack_messages (");
        q.push(COLS)
            .push(") VALUES (")
            .text(o.approval_id.clone())
            .push(", ")
            .text(o.channel.clone())
            .push(", NULL, 1, 0, 0, 0, ")
            .int(o.now_us)
            .push(", NULL, NULL, 0, ")
            .int(o.now_us)
            .push(", ")
            .int(o.now_us)
            .push(
                ") ON CONFLICT (approval_id, channel) DO UPDATE SET \
                 wanted = slack_messages.wanted + 1, failed = 0, attempts = 0",
            );
        q.build(backend).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A sender's outcome: what the message shows now, or why it failed. The
/// lease ends. A change committed meanwhile (a higher `wanted` than the
/// sender read) keeps the row due and clears a give-up.
pub(crate) async fn sent(
    backend: crate::Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[SlackMessageRow],
) -> Result<(), StoreError> {
    for r in rows {
        let mut q = Sql::new("UPDATE slack_messages SET ts = ");
        q.opt_text(r.ts.clone())
            .push(", shown = ")
            .int(r.shown)
            .push(", attempts = CASE WHEN wanted > ")
            .int(r.wanted)
            .push(" THEN 0 ELSE ")
            .int(r.attempts)
            .push(" END, failed = CASE WHEN wanted > ")
            .int(r.wanted)
            .push(" THEN 0 ELSE ")
            .int(i64::from(r.failed))
            .push(" END, next_us = ")
            .int(r.next_us)
            .push(", lease_us = NULL, last_error = ")
            .opt_text(r.last_error.clone())
            .push(", updated_us = ")
            .int(r.updated_us)
            .push(" WHERE approval_id = ")
            .text(r.approval_id.clone())
            .push(" AND channel = ")
            .text(r.channel.clone());
        q.build(backend).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Messages behind their request and due, first due first.
    pub async fn due_slack_messages(
        &self,
        now_us: i64,
        limit: u32,
    ) -> Result<Vec<SlackMessageRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(COLS)
            .push(" FROM slack_messages WHERE wanted > shown AND failed = 0 AND next_us <= ")
            .int(now_us)
            .push(" AND (lease_us IS NULL OR lease_us < ")
            .int(now_us)
            .push(") ORDER BY next_us, approval_id, channel LIMIT ")
            .int(i64::from(limit.max(1)));
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// The messages of request `approval_id`, by channel.
    pub async fn slack_messages(
        &self,
        approval_id: &str,
    ) -> Result<Vec<SlackMessageRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(COLS)
            .push(" FROM slack_messages WHERE approval_id = ")
            .text(approval_id)
            .push(" ORDER BY channel");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// Takes message `m` for sending until `lease_until_us`; false when
    /// another sender holds it or it is up to date. A claim of a message
    /// not yet posted counts in `post_tries` before anything is sent.
    pub async fn claim_slack_message(
        &self,
        m: &SlackMessageRow,
        now_us: i64,
        lease_until_us: i64,
    ) -> Result<bool, StoreError> {
        let mut q = Sql::new("UPDATE slack_messages SET lease_us = ");
        q.int(lease_until_us)
            .push(", post_tries = post_tries + CASE WHEN ts IS NULL THEN 1 ELSE 0 END")
            .push(" WHERE approval_id = ")
            .text(m.approval_id.clone())
            .push(" AND channel = ")
            .text(m.channel.clone())
            .push(" AND wanted > shown AND (lease_us IS NULL OR lease_us < ")
            .int(now_us)
            .push(")");
        let done = q.build(self.backend).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes interaction `id` (a hash of its signed timestamp and body) as
    /// seen; false when it was seen before (a replay). Entries older than
    /// `keep_us` are dropped: the signature's time window refuses them.
    pub async fn first_sight(
        &self,
        id: &str,
        now_us: i64,
        keep_us: i64,
    ) -> Result<bool, StoreError> {
        let mut q = Sql::new("DELETE FROM slack_interactions WHERE seen_us < ");
        q.int(now_us.saturating_sub(keep_us));
        q.build(self.backend).execute(&self.pool).await?;
        let mut q = Sql::new("INSERT INTO slack_interactions (id, seen_us) VALUES (");
        q.text(id)
            .push(", ")
            .int(now_us)
            .push(") ON CONFLICT (id) DO NOTHING");
        let done = q.build(self.backend).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }
}
