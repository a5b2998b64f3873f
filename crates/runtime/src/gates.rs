//! The gates pipeline: every check a request meets before it may execute,
//! in one place. A proposal meets them in [`Runtime::submit`]; an approved
//! action meets them again, the same code, just before it executes
//! (`approval/answer.rs`), so an approval never carries an action past a
//! gate that closed meanwhile.
//!
//! The stages, in order:
//!
//! 1. `policy` — the Cedar decision with the approvals that exist;
//! 2. `step_order` — a legal next step of the run's workflow graph;
//! 3. `controls` — the agent is not paused, the tool's circuit is closed,
//!    the facts the decision needs were fetched (`facts_unavailable`);
//! 4. `quarantine` — a quarantined agent's writes also need its group;
//! 5. `shadow` — in shadow mode, approval gates, missing grants and step
//!    order are recorded as would-be outcomes and do not block. An explicit
//!    `forbid` that is not a gate, an evaluation error, a pause, an open
//!    circuit and a quarantine block in every mode.

use serde_json::{Value, json};
use warden_evidence::decision_status;
use warden_model::{Access, ActionStatus, DenyCode, FailureCode, Outcome, Pack, RequestContext};
use warden_policy::{ApprovalRequirement, Decision, Engine, Request};

use crate::runs::{RunState, next_step};
use crate::runtime::Runtime;

/// One request at one moment, as the gates see it.
pub(crate) struct GateInput<'a> {
    pub(crate) agent: &'a str,
    pub(crate) tool: &'a str,
    pub(crate) args: &'a Value,
    pub(crate) context: &'a RequestContext,
    /// The run it belongs to, locked by the caller until it commits.
    pub(crate) run: Option<&'a RunState>,
    /// Approver groups whose quorum is met for this exact request.
    pub(crate) approvals: &'a [String],
    /// Why a required fact could not be fetched (`facts_unavailable`).
    pub(crate) facts_unavailable: Option<&'a str>,
    /// Why a call without a run id belongs to a correlating workflow's run
    /// that does not exist (a later step with no open run): step order.
    pub(crate) orphan: Option<&'a str>,
}

/// What the gates found.
#[derive(Debug, Clone)]
pub(crate) struct GateVerdict {
    /// The policy's decision (what the evidence's check records).
    pub(crate) decision: Decision,
    /// Whether shadow mode lifted the policy's outcome.
    pub(crate) lifted: bool,
    /// Where the action goes: approved, awaiting approval or denied.
    pub(crate) status: ActionStatus,
    pub(crate) code: Option<FailureCode>,
    pub(crate) message: String,
    /// A runtime gate (step order, pause, circuit) that refused it.
    pub(crate) gate: Option<(FailureCode, String)>,
    /// The group a quarantine added.
    pub(crate) quarantine: Option<String>,
    /// Whether the agent or the run's workflow is in shadow mode.
    pub(crate) shadow: bool,
    /// What enforcement would have answered, when shadow mode (or a policy
    /// on trial) let the request through differently.
    pub(crate) would_be: Option<Value>,
    /// The workflow step the action is.
    pub(crate) step: Option<String>,
}

impl GateVerdict {
    /// The decision in effect: the policy's, with a quarantine group added
    /// to what must approve when a quarantine applies.
    pub(crate) fn effective(&self) -> std::borrow::Cow<'_, Decision> {
        match &self.quarantine {
            Some(g) => std::borrow::Cow::Owned(with_quarantine(&self.decision, self.lifted, g)),
            None => std::borrow::Cow::Borrowed(&self.decision),
        }
    }

    /// The decision as recorded on the action: the one in effect, plus the
    /// runtime gate, shadow and quarantine that changed it.
    pub(crate) fn decision_json(&self) -> Value {
        let mut d = serde_json::to_value(&*self.effective()).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut d {
            if let Some(w) = &self.would_be {
                m.insert("shadow".into(), w.clone());
            }
            if let Some((c, why)) = &self.gate {
                m.insert("gate".into(), json!({ "code": c, "message": why }));
            }
            if let Some(g) = &self.quarantine {
                m.insert("quarantine".into(), json!({ "group": g }));
            }
        }
        d
    }
}

impl Runtime {
    /// Runs every gate for `input` against `engine`'s pack and the controls
    /// in force now.
    pub(crate) fn gates(&self, engine: &Engine, input: &GateInput<'_>) -> GateVerdict {
        let pack = engine.pack();
        let decision = engine.decide(&Request {
            agent: input.agent,
            tool: input.tool,
            args: input.args,
            approvals: input.approvals,
            context: input.context,
        });
        let shadow = in_shadow(pack, input);
        let (step, step_failure) = step_order(pack, input);
        // A missing fact blocks in every mode, as a pause does: the
        // decision could not be made on what the pack requires.
        let control = self.controls_gate(input.agent, input.tool).or_else(|| {
            input
                .facts_unavailable
                .map(|why| (FailureCode::FactsUnavailable, why.to_owned()))
        });
        // Shadow lifts what a rollout trials; everything else stands.
        let mut would_be = None;
        let lifted = shadow && liftable(&decision);
        if lifted {
            let (status, code) = decision_status(&decision);
            would_be = Some(outcome_json(status, code, &decision.message()));
        }
        let mut gate = None;
        match (step_failure, control) {
            (_, Some(c)) => gate = Some(c),
            (Some(s), None) if !shadow => gate = Some(s),
            (Some((code, why)), None) => {
                if would_be.is_none() {
                    would_be = Some(outcome_json(ActionStatus::Denied, Some(code), &why));
                }
            }
            (None, None) => {}
        }
        let effective = if lifted {
            Outcome::Allow
        } else {
            decision.outcome
        };
        let quarantine = self.0.controls.quarantine_of(input.agent).filter(|g| {
            gate.is_none()
                && effective != Outcome::Deny
                && !input.approvals.contains(g)
                && pack
                    .tools
                    .get(input.tool)
                    .is_some_and(|t| t.access == Access::Write)
        });
        let (mut status, mut code) = match effective {
            Outcome::Allow => (ActionStatus::Approved, None),
            _ => decision_status(&decision),
        };
        let mut message = if lifted {
            format!(
                "shadow mode: not blocked; enforcement would answer: {}",
                decision.message()
            )
        } else {
            decision.message()
        };
        if let Some(g) = &quarantine {
            status = ActionStatus::AwaitingApproval;
            code = None;
            let needs = with_quarantine(&decision, lifted, g);
            message = format!(
                "agent `{}` is quarantined: its writes need `{g}` approval. {}",
                input.agent,
                needs.message()
            );
        }
        if let Some((c, why)) = &gate {
            status = ActionStatus::Denied;
            code = Some(*c);
            message = why.clone();
        }
        // A policy on trial that would have answered otherwise is reported
        // the same way as shadow mode's would-be outcome.
        if would_be.is_none()
            && let Some(t) = &decision.trial
        {
            let (s, c) = decision_status(t);
            let mut w = outcome_json(s, c, &t.message());
            w["trial"] = t
                .policies
                .iter()
                .filter(|p| p.is_shadow())
                .map(|p| p.id.as_str())
                .collect();
            would_be = Some(w);
        }
        let step = (gate.is_none()).then_some(step).flatten();
        GateVerdict {
            decision,
            lifted,
            status,
            code,
            message,
            gate,
            quarantine,
            shadow,
            would_be,
            step,
        }
    }

    /// The pause and circuit gates: they hold in every mode.
    fn controls_gate(&self, agent: &str, tool: &str) -> Option<(FailureCode, String)> {
        if let Some(ps) = self.0.controls.paused(agent) {
            return Some((
                FailureCode::AgentPaused,
                format!(
                    "agent `{agent}` is paused{}",
                    ps.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            ));
        }
        let c = self.0.controls.open_circuit(tool)?;
        Some((
            FailureCode::ToolCircuitOpen,
            format!(
                "the circuit of `{tool}` is open until {}{}",
                warden_evidence::time_from_micros(c.open_until_us),
                c.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        ))
    }
}

/// A would-be outcome as recorded: `{status, code, message}`.
fn outcome_json(status: ActionStatus, code: Option<FailureCode>, message: &str) -> Value {
    json!({ "status": status, "code": code, "message": message })
}

/// `d` with quarantine group `g` among the approvals it needs (alone when
/// shadow mode lifted the policy's own requirement).
fn with_quarantine(d: &Decision, lifted: bool, g: &str) -> Decision {
    let mut d = d.clone();
    let mut req = match (lifted, d.approval.take()) {
        (false, Some(r)) => r,
        _ => ApprovalRequirement { groups: Vec::new() },
    };
    if !req.groups.iter().any(|(x, _)| x == g) {
        req.groups.push((g.to_owned(), 1));
    }
    d.outcome = Outcome::ApprovalRequired;
    d.code = None;
    d.approval = Some(req);
    d
}

/// Whether the agent or the run's workflow is in shadow mode.
fn in_shadow(pack: &Pack, input: &GateInput<'_>) -> bool {
    pack.agents.get(input.agent).is_some_and(|a| a.shadow)
        || input
            .run
            .and_then(|r| pack.workflows.get(&r.row.workflow))
            .is_some_and(|w| w.shadow)
}

/// What shadow mode lets through: an approval gate, or no grant. Never an
/// explicit forbid, an evaluation error or an unusable request.
fn liftable(d: &Decision) -> bool {
    match d.outcome {
        Outcome::Allow => false,
        Outcome::ApprovalRequired => true,
        Outcome::Deny => d.code == Some(DenyCode::NoGrant),
    }
}

/// The step-order gate: the workflow step `input.tool` is now, or why none.
fn step_order(
    pack: &Pack,
    input: &GateInput<'_>,
) -> (Option<String>, Option<(FailureCode, String)>) {
    let Some(run) = input.run else {
        return (
            None,
            input
                .orphan
                .map(|why| (FailureCode::StepOutOfOrder, why.to_owned())),
        );
    };
    match pack.workflows.get(&run.row.workflow) {
        Some(wf) => match next_step(wf, input.tool, &run.done) {
            Ok(step) => (Some(step), None),
            Err(why) => {
                // Shadow mode records it under its first matching step.
                let step = wf
                    .steps
                    .iter()
                    .find(|s| s.tool == input.tool)
                    .map(|s| s.id.clone());
                (step, Some((FailureCode::StepOutOfOrder, why)))
            }
        },
        None => (
            None,
            Some((
                FailureCode::StepOutOfOrder,
                format!("workflow `{}` is no longer in the pack", run.row.workflow),
            )),
        ),
    }
}
