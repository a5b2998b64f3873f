//! What the console needs besides the evidence and the lifecycle state:
//! sessions of signed-in people, and the runs list.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::Sql;
use crate::state::{RUN_COLS, run_row};
use crate::{RunRow, Store, StoreError};

/// A console session as stored. The cookie value is never stored, only its
/// hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Hex SHA-256 of the cookie value.
    pub id_hash: String,
    /// The person signed in.
    pub person: String,
    /// The token every state change must carry.
    pub csrf: String,
    /// µs since the epoch.
    pub created_us: i64,
    /// µs since the epoch; the session is refused from then on.
    pub expires_us: i64,
    /// When the person signed out (µs since the epoch).
    pub ended_us: Option<i64>,
}

/// Which runs to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only of this workflow.
    pub workflow: Option<String>,
    /// Only started by this agent.
    pub agent: Option<String>,
    /// Only in this state (`running`, `completed`, `cancelled`, `timed_out`).
    pub state: Option<String>,
    /// Only started at or after (µs since the epoch).
    pub since_us: Option<i64>,
    /// Only started before (µs since the epoch).
    pub until_us: Option<i64>,
    /// At most this many.
    pub limit: u32,
    /// Skip this many (pagination).
    pub offset: u32,
}

const SESSION_COLS: &str = "id_hash, person, csrf, created_us, expires_us, ended_us";

fn session_row(r: &AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id_hash: r.try_get("id_hash")?,
        person: r.try_get("person")?,
        csrf: r.try_get("csrf")?,
        created_us: r.try_get("created_us")?,
        expires_us: r.try_get("expires_us")?,
        ended_us: r.try_get("ended_us")?,
    })
}

impl Store {
    /// Stores a new session, and forgets sessions that ended or expired
    /// more than a day before `s` was created.
    pub async fn create_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut q = Sql::new("INSERT INTO console_sessions (");
        q.push(SESSION_COLS)
            .push(") VALUES (")
            .text(s.id_hash.clone())
            .push(", ")
            .text(s.person.clone())
            .push(", ")
            .text(s.csrf.clone())
            .push(", ")
            .int(s.created_us)
            .push(", ")
            .int(s.expires_us)
            .push(", ")
            .opt_int(s.ended_us)
            .push(")");
        q.build(self.backend).execute(&mut *tx).await?;
        let day = 86_400_000_000;
        let mut old = Sql::new("DELETE FROM console_sessions WHERE expires_us < ");
        old.int(s.created_us - day)
            .push(" OR ended_us < ")
            .int(s.created_us - day);
        old.build(self.backend).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session whose cookie hashes to `id_hash`, ended or not.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let mut q = Sql::new("SELECT ");
        q.push(SESSION_COLS)
            .push(" FROM console_sessions WHERE id_hash = ")
            .text(id_hash);
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        row.as_ref().map(session_row).transpose()
    }

    /// Ends the session (sign-out); `false` when it had ended already or
    /// does not exist.
    pub async fn end_session(&self, id_hash: &str, now_us: i64) -> Result<bool, StoreError> {
        let mut q = Sql::new("UPDATE console_sessions SET ended_us = ");
        q.int(now_us)
            .push(" WHERE id_hash = ")
            .text(id_hash)
            .push(" AND ended_us IS NULL");
        let done = q.build(self.backend).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Runs matching `f`, newest first, and how many match in all.
    pub async fn runs(&self, f: &RunFilter) -> Result<(Vec<RunRow>, i64), StoreError> {
        let filtered = |q: &mut Sql| {
            q.push(" WHERE 1 = 1");
            if let Some(w) = &f.workflow {
                q.push(" AND workflow = ").text(w.clone());
            }
            if let Some(a) = &f.agent {
                q.push(" AND agent = ").text(a.clone());
            }
            if let Some(s) = &f.state {
                q.push(" AND state = ").text(s.clone());
            }
            if let Some(t) = f.since_us {
                q.push(" AND created_us >= ").int(t);
            }
            if let Some(t) = f.until_us {
                q.push(" AND created_us < ").int(t);
            }
        };
        let mut q = Sql::new("SELECT ");
        q.push(RUN_COLS).push(" FROM runs");
        filtered(&mut q);
        q.push(" ORDER BY created_us DESC, id LIMIT ")
            .int(i64::from(f.limit.clamp(1, 10_000)))
            .push(" OFFSET ")
            .int(i64::from(f.offset));
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        let runs = rows.iter().map(run_row).collect::<Result<Vec<_>, _>>()?;
        let mut c = Sql::new("SELECT COUNT(*) AS n FROM runs");
        filtered(&mut c);
        let n: i64 = c
            .build(self.backend)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok((runs, n))
    }

    /// Decisions per time bucket since `since_us`: (bucket start in µs,
    /// decision, count), oldest first. Drill traffic is left out.
    pub async fn decisions_over_time(
        &self,
        since_us: i64,
        bucket_us: i64,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let bucket = bucket_us.max(1);
        let mut q = Sql::new("SELECT (time_us / ");
        q.int(bucket)
            .push(") AS b, decision, COUNT(*) AS n FROM evidence WHERE kind = 'action_decided' AND drill IS NULL AND decision IS NOT NULL AND time_us >= ")
            .int(since_us)
            .push(" GROUP BY b, decision ORDER BY b, decision");
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let b: i64 = r.try_get("b")?;
                Ok((b * bucket, r.try_get("decision")?, r.try_get("n")?))
            })
            .collect()
    }

    /// The position of the newest record (`-1` for an empty log): a cheap
    /// way for every replica to notice that the log grew.
    pub async fn newest_seq(&self) -> Result<i64, StoreError> {
        let row = Sql::new("SELECT MAX(seq) AS n FROM evidence")
            .build(self.backend)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("n")?.unwrap_or(-1))
    }
}
