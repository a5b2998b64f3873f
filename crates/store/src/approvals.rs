//! Approval requests as stored: whole rows written (upserted) in the audit
//! log's transactions, and the reads the runtime needs — one request, the
//! list an approver sees, the timers that are due, the open request for a
//! re-proposed action.

use sqlx::Row;
use sqlx::any::AnyRow;
use warden_model::ApprovalState;

use crate::Store;
use crate::error::StoreError;
use crate::sql::Sql;

/// An approval request as stored. The runtime decides every value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    /// Request id.
    pub id: String,
    /// The action waiting for it.
    pub action_id: String,
    /// The requesting agent.
    pub agent: String,
    /// The tool.
    pub tool: String,
    /// The run, if any.
    pub run_id: Option<String>,
    /// `sha256:<hex>` of the canonical request it is bound to.
    pub request_hash: String,
    /// Where it is.
    pub state: ApprovalState,
    /// JSON: the required groups with quorum and escalation level.
    pub slots: String,
    /// `,group,group,`: every group whose members may answer.
    pub eligible: String,
    /// JSON: each approver's answer.
    pub votes: String,
    /// JSON: what the approver sees besides the arguments.
    pub context: String,
    /// µs since the epoch of the next escalation or expiry, while pending.
    pub due_us: Option<i64>,
    /// Escalation steps taken.
    pub escalations: i64,
    /// A re-proposal of the same request was answered with the final action.
    pub returned: bool,
    /// µs since the epoch.
    pub created_us: i64,
    /// µs since the epoch.
    pub updated_us: i64,
    /// Read only (joined from the action while it is not final): the JSON
    /// arguments of the request.
    pub arguments: Option<String>,
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    /// Only in this state.
    pub state: Option<String>,
    /// Only those this group may answer.
    pub group: Option<String>,
    /// Only those any of these groups may answer (an approver's groups);
    /// `None` for all.
    pub any_group: Option<Vec<String>>,
    /// At most this many.
    pub limit: u32,
    /// Skip this many (pagination).
    pub offset: u32,
    /// In which order.
    pub order: ApprovalOrder,
}

/// The order of an approvals list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApprovalOrder {
    /// Oldest request first (the API's inbox).
    #[default]
    Oldest,
    /// The next escalation or expiry first (meant for pending requests,
    /// which always have one), then the oldest.
    Urgent,
    /// Last changed first (history of decided requests).
    Recent,
}

const COLS: &str = "id, action_id, agent, tool, run_id, request_hash, state, slots, eligible, \
     votes, context, due_us, escalations, returned, created_us, updated_us";
const SELECT: &str = "SELECT p.id, p.action_id, p.agent, p.tool, p.run_id, p.request_hash, \
     p.state, p.slots, p.eligible, p.votes, p.context, p.due_us, p.escalations, p.returned, \
     p.created_us, p.updated_us, a.arguments FROM approvals p \
     LEFT JOIN actions a ON a.id = p.action_id";

/// Rows per upsert statement (16 values each).
const ROWS_PER_UPSERT: usize = 100;

pub(crate) async fn write(
    backend: crate::Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[ApprovalRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_UPSERT) {
        let mut q = Sql::new("INSERT INTO approvals (");
        q.push(COLS).push(") VALUES ");
        for (i, a) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.text(a.id.clone())
                .push(", ")
                .text(a.action_id.clone())
                .push(", ")
                .text(a.agent.clone())
                .push(", ")
                .text(a.tool.clone())
                .push(", ")
                .opt_text(a.run_id.clone())
                .push(", ")
                .text(a.request_hash.clone())
                .push(", ")
                .text(a.state.as_str())
                .push(", ")
                .text(a.slots.clone())
                .push(", ")
                .text(a.eligible.clone())
                .push(", ")
                .text(a.votes.clone())
                .push(", ")
                .text(a.context.clone())
                .push(", ");
            match a.due_us {
                Some(d) => q.int(d),
                None => q.push("NULL"),
            };
            q.push(", ")
                .int(a.escalations)
                .push(", ")
                .int(i64::from(a.returned))
                .push(", ")
                .int(a.created_us)
                .push(", ")
                .int(a.updated_us)
                .push(")");
        }
        q.push(
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state, slots = excluded.slots, \
             eligible = excluded.eligible, votes = excluded.votes, due_us = excluded.due_us, \
             escalations = excluded.escalations, returned = excluded.returned, \
             updated_us = excluded.updated_us",
        );
        q.build(backend).execute(&mut **tx).await?;
        // The group index: replaced with each write of the request.
        let mut d = Sql::new("DELETE FROM approval_groups WHERE approval_id IN (");
        for (i, a) in chunk.iter().enumerate() {
            if i > 0 {
                d.push(", ");
            }
            d.text(a.id.clone());
        }
        d.push(")");
        d.build(backend).execute(&mut **tx).await?;
        let pairs: Vec<(&ApprovalRow, &str)> = chunk
            .iter()
            .flat_map(|a| groups_of(&a.eligible).map(move |g| (a, g)))
            .collect();
        for part in pairs.chunks(ROWS_PER_UPSERT) {
            let mut q = Sql::new(
                "INSERT INTO approval_groups (approval_id, grp, state, created_us) VALUES ",
            );
            for (i, (a, g)) in part.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" });
                q.text(a.id.clone())
                    .push(", ")
                    .text(*g)
                    .push(", ")
                    .text(a.state.as_str())
                    .push(", ")
                    .int(a.created_us)
                    .push(")");
            }
            q.build(backend).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// The groups of an `eligible` value (`,a,b,`).
fn groups_of(eligible: &str) -> impl Iterator<Item = &str> {
    eligible.split(',').filter(|g| !g.is_empty())
}

fn approval_row(row: &AnyRow) -> Result<ApprovalRow, StoreError> {
    Ok(ApprovalRow {
        id: row.try_get("id")?,
        action_id: row.try_get("action_id")?,
        agent: row.try_get("agent")?,
        tool: row.try_get("tool")?,
        run_id: row.try_get("run_id")?,
        request_hash: row.try_get("request_hash")?,
        state: crate::state::word(row, "state")?,
        slots: row.try_get("slots")?,
        eligible: row.try_get("eligible")?,
        votes: row.try_get("votes")?,
        context: row.try_get("context")?,
        due_us: row.try_get("due_us")?,
        escalations: row.try_get("escalations")?,
        returned: row.try_get::<i64, _>("returned")? != 0,
        created_us: row.try_get("created_us")?,
        updated_us: row.try_get("updated_us")?,
        arguments: row.try_get("arguments")?,
    })
}

impl Store {
    /// The approval request `id`.
    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        let mut q = Sql::new(SELECT);
        q.push(" WHERE p.id = ").text(id);
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        row.as_ref().map(approval_row).transpose()
    }

    /// The approval request of action `action_id`.
    pub async fn approval_of_action(
        &self,
        action_id: &str,
    ) -> Result<Option<ApprovalRow>, StoreError> {
        let mut q = Sql::new(SELECT);
        q.push(" WHERE p.action_id = ").text(action_id);
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        row.as_ref().map(approval_row).transpose()
    }

    /// Requests matching `f`, oldest first, and how many match in all.
    pub async fn approvals(
        &self,
        f: &ApprovalFilter,
    ) -> Result<(Vec<ApprovalRow>, i64), StoreError> {
        // The groups a request must be answerable by: `group`, within the
        // approver's groups when both are given.
        let groups: Option<Vec<String>> = match (&f.group, &f.any_group) {
            (None, None) => None,
            (Some(g), None) => Some(vec![g.clone()]),
            (None, Some(any)) => Some(any.clone()),
            (Some(g), Some(any)) => Some(any.iter().filter(|a| *a == g).cloned().collect()),
        };
        if groups.as_ref().is_some_and(Vec::is_empty) {
            return Ok((Vec::new(), 0));
        }
        let in_groups = |q: &mut Sql, groups: &[String]| {
            q.push(" IN (");
            for (i, g) in groups.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.text(g.clone());
            }
            q.push(")");
        };
        let order = match f.order {
            ApprovalOrder::Oldest => " ORDER BY p.created_us, p.id",
            // A pending request always has a deadline (the next escalation
            // or its expiry).
            ApprovalOrder::Urgent => " ORDER BY p.due_us, p.created_us, p.id",
            ApprovalOrder::Recent => " ORDER BY p.updated_us DESC, p.id",
        };
        // The page is chosen over ids alone (an index walk), then its rows
        // are read: sorting whole rows of a large inbox costs far more.
        let mut q = Sql::new(SELECT);
        q.push(" WHERE p.id IN (SELECT p.id FROM approvals p WHERE 1 = 1");
        if let Some(s) = &f.state {
            q.push(" AND p.state = ").text(s.clone());
        }
        if let Some(gs) = &groups {
            q.push(
                " AND EXISTS (SELECT 1 FROM approval_groups g WHERE g.approval_id = p.id AND g.grp",
            );
            in_groups(&mut q, gs);
            q.push(")");
        }
        q.push(order)
            .push(" LIMIT ")
            .int(i64::from(f.limit))
            .push(" OFFSET ")
            .int(i64::from(f.offset))
            .push(")")
            .push(order);
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        let rows = rows
            .iter()
            .map(approval_row)
            .collect::<Result<Vec<_>, _>>()?;
        // The count reads the group index, not the requests.
        let mut c = match &groups {
            None => Sql::new("SELECT COUNT(*) AS n FROM approvals g WHERE 1 = 1"),
            // One row per (request, group): one group needs no DISTINCT.
            Some(gs) if gs.len() == 1 => {
                let mut c = Sql::new("SELECT COUNT(*) AS n FROM approval_groups g WHERE g.grp = ");
                c.text(gs[0].clone());
                c
            }
            Some(gs) => {
                let mut c = Sql::new(
                    "SELECT COUNT(DISTINCT g.approval_id) AS n FROM approval_groups g WHERE g.grp",
                );
                in_groups(&mut c, gs);
                c
            }
        };
        if let Some(s) = &f.state {
            c.push(" AND g.state = ").text(s.clone());
        }
        let total: i64 = c
            .build(self.backend)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok((rows, total))
    }

    /// Pending requests whose timer is due at `now_us`, earliest first.
    pub async fn due_approvals(
        &self,
        now_us: i64,
        limit: u32,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let mut q = Sql::new(SELECT);
        q.push(" WHERE p.state = 'pending' AND p.due_us <= ")
            .int(now_us)
            .push(" ORDER BY p.due_us, p.id LIMIT ")
            .int(i64::from(limit));
        let rows = q.build(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(approval_row).collect()
    }

    /// When the next pending request's timer is due.
    pub async fn next_approval_due(&self) -> Result<Option<i64>, StoreError> {
        let q = Sql::new("SELECT MIN(due_us) AS due FROM approvals WHERE state = 'pending'");
        let row = q.build(self.backend).fetch_one(&self.pool).await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }

    /// The newest request of `agent` bound to `request_hash` that a
    /// re-proposal should be answered with: still pending, or ended and not
    /// yet returned to a re-proposal.
    pub async fn open_approval_for(
        &self,
        agent: &str,
        request_hash: &str,
    ) -> Result<Option<ApprovalRow>, StoreError> {
        let mut q = Sql::new(SELECT);
        q.push(" WHERE p.agent = ")
            .text(agent)
            .push(" AND p.request_hash = ")
            .text(request_hash)
            .push(" AND (p.state = 'pending' OR p.returned = 0)")
            .push(" ORDER BY p.created_us DESC LIMIT 1");
        let row = q.build(self.backend).fetch_optional(&self.pool).await?;
        row.as_ref().map(approval_row).transpose()
    }
}
