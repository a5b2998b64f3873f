//! Answering a request: the rules (member of a required group, separation
//! of duties, one answer per person, single use, not after the deadline),
//! the quorum, and the re-evaluation of policy before anything executes.

use serde_json::{Value, json};
use warden_evidence::{ApprovalOutcome, Record, RecordKind};
use warden_model::{ActionStatus, ApprovalState, FailureCode, RequestContext};
use warden_policy::{Engine, Request};
use warden_store::{ActionRow, ApprovalRow, StateWrite};

use super::{
    ApprovalView, DecisionBody, Slot, Verdict, Vote, eligible, end_action, next_due, parse_slots,
    parse_votes, record_for,
};
use crate::error::RuntimeError;
use crate::gates::GateInput;
use crate::runtime::{Runtime, now_us};
use crate::types::{ActionView, Mode};

/// What follows a change of a request, once it is committed.
pub(crate) enum After {
    /// Nothing more now.
    Wait,
    /// Execute the action through its connector (enforce mode).
    Execute(Value),
    /// Tell waiters: approved for the agent to execute (check mode).
    Approved,
    /// Tell waiters: the action is final.
    Final,
}

impl Runtime {
    /// Records `person`'s answer to request `id`. On the last approval the
    /// quorum needs, policy is evaluated again with the pack in force and
    /// the action executes once (enforce) or is approved for the agent
    /// (check); a deny ends the request.
    pub async fn answer(
        &self,
        person: &str,
        id: &str,
        body: DecisionBody,
    ) -> Result<ApprovalView, RuntimeError> {
        self.answer_from(person, id, body, None).await
    }

    /// [`Runtime::answer`], noting where the answer came from (`origin`,
    /// e.g. the Slack user and channel) in its record's detail.
    pub async fn answer_from(
        &self,
        person: &str,
        id: &str,
        body: DecisionBody,
        origin: Option<serde_json::Value>,
    ) -> Result<ApprovalView, RuntimeError> {
        let _one_at_a_time = self.0.approvals_lock.lock().await;
        let engine = self.0.engine.current();
        let pack = engine.pack();
        let mut row = self
            .store()
            .approval(id)
            .await?
            .ok_or_else(|| RuntimeError::UnknownApproval(id.to_owned()))?;
        let now = now_us();
        // A timer that is due fires first: an answer after the deadline
        // meets the state the deadline made.
        if row.state == ApprovalState::Pending && row.due_us.is_some_and(|d| d <= now) {
            row = self.fire(row, now).await?;
        }
        if row.state != ApprovalState::Pending {
            return Err(RuntimeError::ApprovalClosed {
                id: row.id,
                state: row.state,
            });
        }
        let mut slots = parse_slots(&row);
        let mut votes = parse_votes(&row);
        let Seat {
            slot,
            via,
            conflict,
        } = seat(pack, &row, &slots, &votes, person)?;
        let conflicted = conflict.is_some();
        let mut action = self
            .store()
            .action(&row.action_id)
            .await?
            .ok_or_else(|| RuntimeError::UnknownAction(row.action_id.clone()))?;
        let from = Some(action.state);
        let latency_ms = u64::try_from(now.saturating_sub(row.created_us) / 1000).unwrap_or(0);
        let vote = Vote {
            approver: person.to_owned(),
            group: slots[slot].group.clone(),
            via: via.clone(),
            decision: body.decision,
            comment: body.comment.clone(),
            at: warden_evidence::time_from_micros(now),
            latency_ms,
            separation_of_duties_relaxed: conflicted,
        };
        votes.push(vote.clone());
        let mut rec = record_for(RecordKind::ApprovalRecorded, &row);
        rec.approvals.push(outcome_of(&vote));
        if let Some(origin) = origin {
            rec.add_detail(json!({ "origin": origin }));
        }
        if conflicted {
            rec.add_detail(json!({ "separation_of_duties": format!(
                    "relaxed by group `{via}`: {}",
                    conflict.as_deref().unwrap_or_default()
                ) }));
        }
        row.votes = serde_json::to_string(&votes).unwrap_or_default();
        row.updated_us = now;
        let mut records = Vec::new();
        let mut counted = None;
        let after = match body.decision {
            Verdict::Deny => {
                row.state = ApprovalState::Denied;
                row.due_us = None;
                end_action(
                    &mut action,
                    ActionStatus::Denied,
                    FailureCode::ApprovalDenied,
                    now,
                );
                rec.status = Some(ActionStatus::Denied);
                rec.code = Some(FailureCode::ApprovalDenied.as_str().into());
                rec.message = Some(format!(
                    "{person} denied for `{}`{}",
                    vote.group,
                    comment_suffix(&vote.comment)
                ));
                records.push(rec);
                After::Final
            }
            Verdict::Approve if slots.iter().all(|s| s.met(&votes)) => {
                rec.message = Some(format!(
                    "{person} approved for `{}`{}",
                    vote.group,
                    comment_suffix(&vote.comment)
                ));
                rec.status = from;
                records.push(rec);
                let mut granted = record_for(RecordKind::ApprovalGranted, &row);
                granted.approvals = votes.iter().map(outcome_of).collect();
                granted.message = Some(format!(
                    "quorum met: {}",
                    slots
                        .iter()
                        .map(|s| format!("{} of `{}`", s.quorum, s.group))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
                records.push(granted);
                self.reevaluate(
                    &engine,
                    &mut row,
                    &mut slots,
                    &votes,
                    &mut action,
                    &mut records,
                    now,
                    &mut counted,
                )
                .await?
            }
            Verdict::Approve => {
                let s = &slots[slot];
                rec.message = Some(format!(
                    "{person} approved for `{}` ({} of {}){}",
                    s.group,
                    s.approvals(&votes),
                    s.quorum,
                    comment_suffix(&vote.comment)
                ));
                rec.status = from;
                records.push(rec);
                row.due_us = next_due(pack, &slots, &votes);
                After::Wait
            }
        };
        let (extra, reservation) = match counted {
            Some((w, r)) => (w, Some(r)),
            None => (Vec::new(), None),
        };
        let view = self
            .commit_change(row, action, from, records, after, extra)
            .await?;
        if let Some(r) = reservation {
            r.keep();
        }
        Ok(view)
    }

    /// Evaluates policy again for an approved request, with the pack in
    /// force and the groups whose quorum is met, and moves the action on.
    #[allow(clippy::too_many_arguments)]
    async fn reevaluate(
        &self,
        engine: &Engine,
        row: &mut ApprovalRow,
        slots: &mut Vec<Slot>,
        votes: &[Vote],
        action: &mut ActionRow,
        records: &mut Vec<Record>,
        now: i64,
        counted: &mut Option<(Vec<StateWrite>, crate::usage::Reservation)>,
    ) -> Result<After, RuntimeError> {
        let pack = engine.pack();
        let args: Value = action
            .arguments
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or(Value::Null);
        // Facts as they are now (or as cached within their TTL).
        let fetched = self.fetch_facts(pack, &action.tool, &args).await;
        // The run stays locked while its step order is checked again.
        let run = match &action.run_id {
            Some(run) => Some(self.run_state(run).await?),
            None => None,
        };
        let run_guard = match &run {
            Some(r) => Some(r.lock().await),
            None => None,
        };
        let mut context = RequestContext {
            workflow: run_guard.as_deref().map(|g| g.row.workflow.clone()),
            run: action.run_id.clone(),
            trigger: run_guard.as_deref().and_then(|g| g.trigger.clone()),
            usage: Default::default(),
            steps: run_guard
                .as_deref()
                .map(|g| g.data.clone())
                .unwrap_or_default(),
            facts: fetched.facts,
        };
        // Counters as they are now: the approval may have waited while
        // other actions used up the window.
        let hold = self
            .hold_usage(pack, &action.agent, &action.tool, &args, &context, now)
            .await?;
        context.usage = hold.prior();
        // Every group whose quorum is met counts as approved — the quorum
        // of the pack in force when it asks for more than the request did.
        let wanted = engine
            .decide(&Request {
                agent: &action.agent,
                tool: &action.tool,
                args: &args,
                approvals: &[],
                context: &context,
            })
            .approval
            .map(|a| a.groups)
            .unwrap_or_default();
        let met: Vec<String> = slots
            .iter()
            .filter(|s| s.met(votes))
            .filter(|s| {
                wanted
                    .iter()
                    .find(|(g, _)| *g == s.group)
                    .is_none_or(|(_, q)| s.approvals(votes) >= *q)
            })
            .map(|s| s.group.clone())
            .collect();
        // The same gates as a proposal, the same code: an approval never
        // carries an action past a gate that closed meanwhile.
        let verdict = self.gates(
            engine,
            &GateInput {
                agent: &action.agent,
                tool: &action.tool,
                args: &args,
                context: &context,
                run: run_guard.as_deref(),
                approvals: &met,
                facts_unavailable: fetched.unavailable.as_deref(),
                orphan: None,
            },
        );
        drop(run_guard);
        let base = Request {
            agent: &action.agent,
            tool: &action.tool,
            args: &args,
            approvals: &met,
            context: &context,
        };
        let decision = verdict.effective().into_owned();
        let mut rec = Record::decided(&base, &verdict.decision);
        rec.kind = RecordKind::ActionReevaluated;
        rec.action = Some(action.id.clone());
        self.0.redactor.apply_for_pack(&mut rec, pack, &args)?;
        rec.detail = Some(json!({
            "approval_id": row.id,
            "shadow": verdict.shadow,
            "would_be": verdict.would_be,
            "gate": verdict.gate.as_ref().map(|(c, m)| json!({ "code": c, "message": m })),
        }));
        let mut decision_json: Value =
            serde_json::from_str(&action.decision).unwrap_or_else(|_| json!({}));
        decision_json["reevaluated"] = serde_json::to_value(&decision).unwrap_or(Value::Null);
        if let Some((c, m)) = &verdict.gate {
            decision_json["reevaluated_gate"] = json!({ "code": c, "message": m });
        }
        action.decision = decision_json.to_string();
        action.updated_us = now;
        if verdict.status == ActionStatus::Approved {
            *counted = Some(hold.reserve(&action.id, now, true));
        } else {
            drop(hold);
        }
        let after = match verdict.status {
            ActionStatus::Approved => {
                row.state = ApprovalState::Approved;
                row.due_us = None;
                let enforce = action.mode == Mode::Enforce.as_str();
                let next = if enforce {
                    ActionStatus::Executing
                } else {
                    ActionStatus::Approved
                };
                action.state = next;
                action.code = None;
                rec.status = Some(next);
                rec.message = Some(format!(
                    "{}; {}",
                    verdict.message,
                    if enforce {
                        "executing once"
                    } else {
                        "approved for the agent to execute (check mode)"
                    }
                ));
                if enforce {
                    After::Execute(args)
                } else {
                    After::Approved
                }
            }
            ActionStatus::Denied => {
                row.state = ApprovalState::Approved;
                row.due_us = None;
                let code = verdict.code.unwrap_or(FailureCode::PolicyDenied);
                end_action(action, ActionStatus::Denied, code, now);
                rec.status = Some(ActionStatus::Denied);
                rec.code = Some(code.as_str().into());
                // A runtime gate closed while the request waited, or the
                // pack in force denies it.
                rec.message = Some(if verdict.gate.is_some() {
                    format!("approved, but not executed: {}", verdict.message)
                } else {
                    format!(
                        "approved, but the pack in force denies it: {}",
                        verdict.message
                    )
                });
                After::Final
            }
            _ => {
                // The pack in force (or a quarantine) asks for more: the request stays open
                // with the new requirement; answers given still count.
                let req = decision
                    .approval
                    .clone()
                    .map(|a| a.groups)
                    .unwrap_or_default();
                let mut next: Vec<Slot> = Vec::new();
                for (g, q) in req {
                    match slots.iter().find(|s| s.group == g) {
                        Some(s) => next.push(Slot {
                            quorum: q,
                            ..s.clone()
                        }),
                        None => next.push(Slot {
                            group: g.clone(),
                            quorum: q,
                            chain: vec![g],
                            since_us: now,
                        }),
                    }
                }
                // Approvals already met keep counting: the next evaluation
                // must see them, or it would ask for them again.
                for s in slots.iter() {
                    if s.met(votes) && !next.iter().any(|n| n.group == s.group) {
                        next.push(s.clone());
                    }
                }
                *slots = next;
                row.slots = serde_json::to_string(&*slots).unwrap_or_default();
                row.eligible = eligible(slots);
                row.due_us = next_due(pack, slots, votes);
                rec.status = Some(action.state);
                rec.message = Some(format!(
                    "the pack in force needs more approvals: {}",
                    verdict.message
                ));
                After::Wait
            }
        };
        records.push(rec);
        Ok(after)
    }

    /// Commits a changed request and its action with their records (and
    /// `extra` writes, such as Slack messages to open), then does what
    /// follows: execute, or tell waiters.
    pub(crate) async fn commit_change(
        &self,
        row: ApprovalRow,
        action: ActionRow,
        from: Option<ActionStatus>,
        records: Vec<Record>,
        after: After,
        extra: Vec<StateWrite>,
    ) -> Result<ApprovalView, RuntimeError> {
        let to = Some(action.state);
        if let After::Execute(_) = &after {
            self.watch(&action.id);
        }
        let mut writes = vec![
            StateWrite::Action(action.clone()),
            StateWrite::Approval(row.clone()),
        ];
        writes.extend(extra);
        self.0.log.commit(records, writes).await?;
        if let Some(to) = to
            && Some(to) != from
        {
            self.count(from, to);
        }
        match after {
            After::Wait => {}
            After::Execute(args) => self.spawn_execution(action.clone(), args),
            After::Approved | After::Final => self.publish(ActionView::from_row(&action)),
        }
        Ok(ApprovalView::from_row(&row))
    }
}

/// Why separation of duties keeps `person` from approving request `row`,
/// or `None`: they own or operate the agent, or requested its run. The
/// run's requester is matched to a person by id, e-mail or alias,
/// case-insensitively; a requester that matches nobody but looks like
/// `person` counts as them (refuse rather than guess).
fn conflict_of(pack: &warden_model::Pack, row: &ApprovalRow, person: &str) -> Option<String> {
    let agent = pack.agents.get(&row.agent);
    if agent.is_some_and(|a| a.owner == person) {
        return Some(format!("{person} owns agent `{}`", row.agent));
    }
    if agent.is_some_and(|a| a.operators.iter().any(|o| o == person)) {
        return Some(format!("{person} operates agent `{}`", row.agent));
    }
    if pack
        .agent_principals(&row.agent)
        .iter()
        .any(|p| p == person)
    {
        return Some(format!(
            "{person} owns the team that owns agent `{}`",
            row.agent
        ));
    }
    let ctx: Value = serde_json::from_str(&row.context).unwrap_or(Value::Null);
    let requester = ctx.pointer("/trigger/requester").and_then(Value::as_str)?;
    match pack.person_named(requester) {
        Some(p) if p.id == person => Some(format!(
            "{person} requested the run (trigger requester `{requester}`)"
        )),
        Some(_) => None,
        None => pack
            .people
            .get(person)
            .filter(|p| warden_model::Pack::looks_like(requester, p))
            .map(|_| {
                format!(
                    "the run's requester `{requester}` matches no person of the pack but looks like {person}"
                )
            }),
    }
}

fn outcome_of(v: &Vote) -> ApprovalOutcome {
    ApprovalOutcome {
        approver: v.approver.clone(),
        group: v.group.clone(),
        decision: match v.decision {
            Verdict::Approve => "approve".into(),
            Verdict::Deny => "deny".into(),
        },
        comment: v.comment.clone(),
        latency_ms: v.latency_ms,
        via: (v.via != v.group).then(|| v.via.clone()),
    }
}

fn comment_suffix(c: &Option<String>) -> String {
    c.as_deref()
        .map(|c| format!(": \"{c}\""))
        .unwrap_or_default()
}

/// Where a person's answer would count: the slot, the group answered
/// through, and the separation-of-duties rule it relaxes, if any.
struct Seat {
    slot: usize,
    via: String,
    conflict: Option<String>,
}

/// The rules of who may answer a pending request: one answer per person, a
/// member of a group that may answer, and separation of duties unless the
/// group relaxes it.
fn seat(
    pack: &warden_model::Pack,
    row: &ApprovalRow,
    slots: &[Slot],
    votes: &[Vote],
    person: &str,
) -> Result<Seat, RuntimeError> {
    if votes.iter().any(|v| v.approver == person) {
        return Err(RuntimeError::AlreadyAnswered {
            id: row.id.clone(),
            person: person.to_owned(),
        });
    }
    let conflict = conflict_of(pack, row, person);
    let conflicted = conflict.is_some();
    // (slot, group answered through, allowed despite separation of duties)
    let mut candidates: Vec<(usize, String, bool)> = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        for g in &s.chain {
            let Some(group) = pack.approver_groups.get(g) else {
                continue;
            };
            if group.members.iter().any(|m| m == person) {
                candidates.push((i, g.clone(), !conflicted || !group.separation_of_duties));
            }
        }
    }
    if candidates.is_empty() {
        let groups = row.eligible.trim_matches(',').replace(',', ", ");
        return Err(RuntimeError::NotAnApprover {
            person: person.to_owned(),
            groups,
        });
    }
    let allowed: Vec<&(usize, String, bool)> = candidates.iter().filter(|c| c.2).collect();
    let Some(&&(slot, ref via, _)) = allowed
        .iter()
        .find(|(i, _, _)| !slots[*i].met(votes))
        .or(allowed.first())
    else {
        return Err(RuntimeError::SeparationOfDuties {
            person: person.to_owned(),
            agent: row.agent.clone(),
            rule: conflict.unwrap_or_default(),
        });
    };
    Ok(Seat {
        slot,
        via: via.clone(),
        conflict,
    })
}

impl Runtime {
    /// Whether `person` may answer request `row` now, by the same rules
    /// [`Runtime::answer`] applies; the error says why not. For views that
    /// offer the answer (the console, chat messages) before it is given.
    pub fn may_answer(&self, person: &str, row: &ApprovalRow) -> Result<(), RuntimeError> {
        if row.state != ApprovalState::Pending {
            return Err(RuntimeError::ApprovalClosed {
                id: row.id.clone(),
                state: row.state,
            });
        }
        let engine = self.0.engine.current();
        seat(
            engine.pack(),
            row,
            &parse_slots(row),
            &parse_votes(row),
            person,
        )
        .map(|_| ())
    }
}
