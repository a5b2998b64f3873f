//! Approvals: requests created when a proposal is `approval_required`,
//! answered by people of the required groups ([`Runtime::answer`]),
//! escalated and expired by durable timers ([`Runtime::run_timers`]).
//!
//! A request is bound to the SHA-256 of the canonical request (agent, tool,
//! arguments, run) and to one action: it is single use. Its state lives in
//! the `approvals` table and changes only in the same transaction as the
//! evidence record that describes the change. Every change happens under
//! one lock (people answer at human speed; the lock makes each decision and
//! each timer step atomic with respect to the others).

mod answer;
mod timer;
mod view;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warden_evidence::{Record, RecordKind};
use warden_model::{ApprovalState, DEFAULT_EXPIRES_AFTER, Pack, RequestContext};
use warden_policy::Decision;
use warden_store::{ApprovalFilter, ApprovalRow, StateWrite};

pub use view::{ApprovalView, DecisionBody, Requirement, Verdict, Vote};

use crate::error::RuntimeError;
use crate::runtime::{Runtime, new_id};
use crate::types::{ActionView, Submitted};

/// One required group of a request: its quorum and the groups that may
/// answer for it (the group, then each escalation step's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Slot {
    pub(crate) group: String,
    pub(crate) quorum: u32,
    pub(crate) chain: Vec<String>,
    /// µs since the epoch when the slot reached its current chain step.
    pub(crate) since_us: i64,
}

impl Slot {
    /// Approvals counted toward this slot.
    pub(crate) fn approvals(&self, votes: &[Vote]) -> u32 {
        let n = votes
            .iter()
            .filter(|v| v.decision == Verdict::Approve && v.group == self.group)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Whether its quorum is met.
    pub(crate) fn met(&self, votes: &[Vote]) -> bool {
        self.approvals(votes) >= self.quorum
    }

    /// How long the current chain step lasts and where it leads: the next
    /// group (escalation) or `None` (expiry).
    pub(crate) fn step(&self, pack: &Pack) -> (Duration, Option<String>) {
        let Some(g) = self.chain.last().and_then(|g| pack.approver_groups.get(g)) else {
            return (DEFAULT_EXPIRES_AFTER, None);
        };
        match &g.escalation {
            Some(e) if !self.chain.contains(&e.to) => (e.after, Some(e.to.clone())),
            _ => (g.expires_after, None),
        }
    }

    /// When the current chain step ends.
    pub(crate) fn due_us(&self, pack: &Pack) -> i64 {
        let (after, _) = self.step(pack);
        self.since_us
            .saturating_add(i64::try_from(after.as_micros()).unwrap_or(i64::MAX))
    }
}

/// The earliest timer of the slots still waiting.
pub(crate) fn next_due(pack: &Pack, slots: &[Slot], votes: &[Vote]) -> Option<i64> {
    slots
        .iter()
        .filter(|s| !s.met(votes))
        .map(|s| s.due_us(pack))
        .min()
}

/// `,a,b,`: every group of every slot's chain.
pub(crate) fn eligible(slots: &[Slot]) -> String {
    let mut groups: Vec<&str> = slots
        .iter()
        .flat_map(|s| s.chain.iter().map(String::as_str))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    format!(",{},", groups.join(","))
}

pub(crate) fn parse_slots(row: &ApprovalRow) -> Vec<Slot> {
    serde_json::from_str(&row.slots).unwrap_or_default()
}

pub(crate) fn parse_votes(row: &ApprovalRow) -> Vec<Vote> {
    serde_json::from_str(&row.votes).unwrap_or_default()
}

/// A record about request `row`, with its agent, tool, run, workflow and
/// action.
pub fn record_for(kind: RecordKind, row: &ApprovalRow) -> Record {
    let mut r = Record::new(kind);
    r.agent = Some(row.agent.clone());
    r.tool = Some(row.tool.clone());
    r.run = row.run_id.clone();
    r.workflow = serde_json::from_str::<Value>(&row.context)
        .ok()
        .and_then(|c| c.get("workflow").and_then(Value::as_str).map(str::to_owned));
    r.action = Some(row.action_id.clone());
    r.detail = Some(json!({ "approval_id": row.id }));
    r
}

/// Ends `action` in `status` with `code` (its arguments are dropped).
pub(crate) fn end_action(
    action: &mut warden_store::ActionRow,
    status: warden_model::ActionStatus,
    code: warden_model::FailureCode,
    now: i64,
) {
    action.state = status;
    action.code = Some(code.as_str().into());
    action.arguments = None;
    action.updated_us = now;
}

/// What a new request is made from.
pub(crate) struct NewRequest<'a> {
    pub(crate) action_id: &'a str,
    pub(crate) agent: &'a str,
    pub(crate) tool: &'a str,
    pub(crate) request_hash: &'a str,
    pub(crate) context: &'a RequestContext,
    pub(crate) decision: &'a Decision,
    /// The arguments as recorded (sensitive fields redacted).
    pub(crate) recorded_args: Option<Value>,
    pub(crate) reason: Option<String>,
    pub(crate) now_us: i64,
}

impl Runtime {
    /// The request for an `approval_required` proposal, and its
    /// `approval_requested` record (committed with the action by the caller).
    pub(crate) fn new_request(
        &self,
        pack: &Pack,
        n: NewRequest<'_>,
    ) -> Result<(ApprovalRow, Record), RuntimeError> {
        let id = new_id("apr")?;
        let slots: Vec<Slot> = n
            .decision
            .approval
            .iter()
            .flat_map(|a| a.groups.iter())
            .map(|(g, q)| Slot {
                group: g.clone(),
                quorum: *q,
                chain: vec![g.clone()],
                since_us: n.now_us,
            })
            .collect();
        let due = next_due(pack, &slots, &[]);
        let context = json!({
            "workflow": n.context.workflow,
            "trigger": n.context.trigger,
            "risk": n.decision.risk,
            "policies": n.decision.policies,
            "message": n.decision.message(),
            "policy_version": &*n.decision.policy_version,
            "reason": n.reason,
            "args": n.recorded_args,
        });
        let row = ApprovalRow {
            id,
            action_id: n.action_id.to_owned(),
            agent: n.agent.to_owned(),
            tool: n.tool.to_owned(),
            run_id: n.context.run.clone(),
            request_hash: n.request_hash.to_owned(),
            state: ApprovalState::Pending,
            slots: serde_json::to_string(&slots).unwrap_or_default(),
            eligible: eligible(&slots),
            votes: "[]".into(),
            context: context.to_string(),
            due_us: due,
            escalations: 0,
            returned: false,
            created_us: n.now_us,
            updated_us: n.now_us,
            arguments: None,
        };
        let mut r = record_for(RecordKind::ApprovalRequested, &row);
        r.trigger = n.context.trigger.clone();
        let who: Vec<String> = slots
            .iter()
            .map(|s| format!("{} of `{}`", s.quorum, s.group))
            .collect();
        r.message = Some(format!(
            "approval requested from {}{}",
            who.join(" and "),
            due.map(|d| format!(", next step at {}", warden_evidence::time_from_micros(d)))
                .unwrap_or_default()
        ));
        r.add_detail(json!({
                "request_sha256": n.request_hash,
                "requires": slots.iter().map(|s| json!({"group": s.group, "quorum": s.quorum})).collect::<Vec<_>>(),
                "due": due.map(warden_evidence::time_from_micros),
                "notified": slots.iter().filter(|s| self.notifier().has(&s.group)).map(|s| s.group.clone()).collect::<Vec<_>>(),
            }),
        );
        Ok((row, r))
    }

    /// The Slack messages to open, in the commit that opens request
    /// `approval_id` or escalates it to `groups`: one per channel.
    pub(crate) fn slack_opens<'a>(
        &self,
        approval_id: &str,
        groups: impl IntoIterator<Item = &'a str>,
        now_us: i64,
    ) -> Vec<StateWrite> {
        let notifier = self.notifier();
        let mut channels: Vec<&str> = groups
            .into_iter()
            .filter_map(|g| notifier.slack_channel(g))
            .collect();
        channels.sort_unstable();
        channels.dedup();
        channels
            .into_iter()
            .map(|c| {
                StateWrite::SlackOpen(warden_store::SlackOpen {
                    approval_id: approval_id.to_owned(),
                    channel: c.to_owned(),
                    now_us,
                })
            })
            .collect()
    }

    /// Tells each group of a new request through its webhook.
    pub(crate) fn notify_new(&self, row: &ApprovalRow) {
        let view = ApprovalView::recorded(row);
        for s in parse_slots(row) {
            self.notify_group(&s.group, "approval_requested", &view);
        }
    }

    pub(crate) fn notify_group(&self, group: &str, event: &'static str, view: &ApprovalView) {
        let notifier = self.notifier();
        if !notifier.has(group) {
            return;
        }
        let pack = self.0.engine.current();
        let members = pack
            .pack()
            .approver_groups
            .get(group)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        notifier.send(
            group,
            event,
            json!({
                "event": event,
                "group": group,
                "members": members,
                "approval": view,
                "decide": format!("POST /v1/approvals/{}/decision", view.approval_id),
            }),
        );
    }

    /// The action a re-proposal of the identical request answers with: the
    /// one whose request is pending, or that ended and was not yet returned
    /// to a re-proposal (it is returned once; the next identical proposal
    /// is a new request). Every such attempt is recorded
    /// (`action_reproposed`), pointing at the action and its request, so an
    /// auditor counts every attempt the agent made.
    pub(crate) async fn reproposed(
        &self,
        agent: &str,
        request_hash: &str,
        args: &Value,
        mode: &str,
    ) -> Result<Option<Submitted>, RuntimeError> {
        let Some(mut ap) = self.store().open_approval_for(agent, request_hash).await? else {
            return Ok(None);
        };
        let Some(action) = self.store().action(&ap.action_id).await? else {
            return Ok(None);
        };
        let view = ActionView::from_row(&action);
        let mut r = record_for(RecordKind::ActionReproposed, &ap);
        r.args_sha256 = Some(warden_evidence::args_hash(args)?);
        r.status = Some(view.status);
        r.code = action.code.clone();
        r.message = Some(format!(
            "proposed again while approval {} is {}: answered with action {} ({})",
            ap.id, ap.state, action.id, view.status
        ));
        r.add_detail(
            json!({ "request_sha256": request_hash, "approval_state": ap.state, "mode": mode }),
        );
        let mut writes = Vec::new();
        if ap.state != ApprovalState::Pending && view.is_final() {
            // An ended request changes no more, so this write needs no lock
            // (and must not take the approvals lock: the caller holds its
            // run's lock, which answers take after the approvals lock).
            ap.returned = true;
            writes.push(StateWrite::Approval(ap));
        }
        let receipts = self.0.log.commit(vec![r], writes).await?;
        Ok(Some(Submitted {
            action: view,
            replayed: true,
            evidence_seq: receipts.first().map(|r| r.seq),
        }))
    }

    /// The request `id` as `viewer` may see it: `None` sees all, else only
    /// requests one of `groups` may answer.
    pub async fn approval(
        &self,
        id: &str,
        groups: Option<&[String]>,
    ) -> Result<ApprovalView, RuntimeError> {
        match self.store().approval(id).await? {
            Some(row) if visible(&row, groups) => Ok(ApprovalView::from_row(&row)),
            _ => Err(RuntimeError::UnknownApproval(id.to_owned())),
        }
    }

    /// Requests matching `filter`, oldest first, and how many match in all.
    pub async fn approvals(
        &self,
        filter: &ApprovalFilter,
    ) -> Result<(Vec<ApprovalView>, i64), RuntimeError> {
        let (rows, total) = self.store().approvals(filter).await?;
        Ok((rows.iter().map(ApprovalView::from_row).collect(), total))
    }
}

fn visible(row: &ApprovalRow, groups: Option<&[String]>) -> bool {
    groups.is_none_or(|gs| gs.iter().any(|g| row.eligible.contains(&format!(",{g},"))))
}
