//! Realistic evidence for demos, tests and benchmarks: runs of the
//! `refund-request` workflow of `examples/support-refunds`, decided by the
//! real policy engine, with approvals, retries and failures. The records
//! are those the runtime writes (`approval_requested`, `approval_recorded`,
//! `approval_granted`, `action_reevaluated`, `approval_escalated`,
//! `approval_expired`), and the finance approvers answer in plausible
//! patterns: every refund up to $250 approved, about one in eight above it
//! denied, a second approver for refunds above $1,000 sometimes never
//! coming (the request expires), and one approver (dave) approving within
//! seconds.
//!
//! Deterministic: the same seed gives the same records.

use serde_json::{Value, json};
use warden_model::{ActionStatus, FailureCode, Outcome, RequestContext, Trigger};
use warden_policy::{Engine, Request};

use crate::error::EvidenceError;
use crate::record::{
    ApprovalOutcome, Check, Record, RecordKind, decision_status, time_from_micros,
};
use crate::redact::Redactor;

/// Generates refund runs against an engine loaded from the support-refunds
/// example pack.
#[derive(Debug)]
pub struct RunGenerator<'a> {
    engine: &'a Engine,
    redactor: &'a Redactor,
    state: u64,
    /// Time of the next run's first record (µs since the epoch).
    pub clock_us: i64,
    /// Time between the starts of two runs.
    pub spacing_us: i64,
}

const AGENTS: &[&str] = &["support-bot", "support-bot", "billing-bot", "intern-bot"];
const FINANCE: &[&str] = &["carol", "dave", "erin"];

impl<'a> RunGenerator<'a> {
    /// A generator starting at `start_us`, one run every `spacing_us`.
    pub fn new(
        engine: &'a Engine,
        redactor: &'a Redactor,
        seed: u64,
        start_us: i64,
        spacing_us: i64,
    ) -> Self {
        Self {
            engine,
            redactor,
            state: seed ^ 0x9e37_79b9_7f4a_7c15,
            clock_us: start_us,
            spacing_us,
        }
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Whether finance approves a refund of `amount` cents: everything up to
    /// $250, most of the rest; larger refunds are denied more often.
    fn approves(&mut self, amount: i64) -> bool {
        if amount <= 25_000 {
            true
        } else if amount <= 100_000 {
            self.below(100) >= 12
        } else {
            self.below(100) >= 15
        }
    }

    /// Who answers: dave approves most requests he sees within seconds
    /// (the rubber-stamping pattern `approvals stats` flags) and never
    /// denies; carol and erin read the order first.
    fn approver(&mut self, who: &mut Vec<&'static str>, yes: bool) -> &'static str {
        let pick = if yes {
            match self.below(100) {
                0..=44 => "carol",
                45..=79 => "dave",
                _ => "erin",
            }
        } else if self.below(100) < 60 {
            "carol"
        } else {
            "erin"
        };
        let pick = if who.contains(&pick) {
            pick
        } else {
            who.iter()
                .copied()
                .find(|p| yes || *p != "dave")
                .unwrap_or(pick)
        };
        who.retain(|p| *p != pick);
        pick
    }

    /// Time an approver takes to answer, in µs.
    fn latency_us(&mut self, approver: &str) -> i64 {
        let ms = match approver {
            "dave" => 1_500 + self.below(3_000),
            "carol" => 120_000 + self.below(1_080_000),
            _ => 300_000 + self.below(1_500_000),
        };
        ms as i64 * 1000
    }

    /// The records of run number `n`, in order.
    pub fn run(&mut self, n: u64) -> Result<Vec<Record>, EvidenceError> {
        let start = self.clock_us;
        self.clock_us += self.spacing_us;
        let mut t = start;
        let run = format!("run-{n:07}");
        let agent = AGENTS[self.below(AGENTS.len() as u64) as usize].to_owned();
        let trigger = Trigger {
            source: "ticket".into(),
            reference: Some(format!("ZD-{}", 10_000 + n)),
            requester: Some(format!("customer-{}", self.below(5000))),
        };
        let ctx = RequestContext {
            workflow: Some("refund-request".into()),
            run: Some(run.clone()),
            trigger: Some(trigger.clone()),
            ..Default::default()
        };
        let mut out = Vec::new();
        let base = |kind: RecordKind, t: i64| {
            let mut r = Record::at(kind, time_from_micros(t));
            r.agent = Some(agent.clone());
            r.workflow = Some("refund-request".into());
            r.run = Some(run.clone());
            r
        };
        let mut started = base(RecordKind::RunStarted, t);
        started.trigger = Some(trigger);
        started.message = Some("refund request from a support ticket".into());
        out.push(started);

        let customer = format!("cus_{:06}", self.below(1_000_000));
        let order = format!("ord_{:08}", self.below(100_000_000));
        // Step 1: look the customer up.
        t += 20_000 + self.below(30_000) as i64;
        let lookup = json!({ "customer_id": customer });
        let ok = self.action(
            &mut out,
            &base,
            &ctx,
            &mut t,
            n,
            1,
            "crm.lookup_customer",
            lookup,
            &[],
        )?;
        if !ok {
            out.push(self.finish(
                &base,
                t,
                ActionStatus::Failed,
                Some(FailureCode::PolicyDenied),
            ));
            return Ok(out);
        }
        // Step 2: the refund; amounts span every policy band.
        let amount = match self.below(100) {
            0..=59 => 100 + self.below(9_900),
            60..=84 => 10_001 + self.below(89_999),
            85..=94 => 100_001 + self.below(399_999),
            _ => 500_001 + self.below(500_000),
        };
        // One request in fifty has a reason the tool's schema does not allow.
        let reason = match self.below(50) {
            0 => "late",
            _ => [
                "damaged",
                "missing",
                "duplicate_charge",
                "goodwill",
                "other",
            ][self.below(5) as usize],
        };
        let refund = json!({
            "order_id": order,
            "customer_id": customer,
            "amount_cents": amount,
            "reason": reason,
        });
        t += 50_000 + self.below(200_000) as i64;
        let ok = self.action(
            &mut out,
            &base,
            &ctx,
            &mut t,
            n,
            2,
            "stripe.refund",
            refund,
            &[],
        )?;
        if !ok {
            let code = out.last().and_then(|r| r.code.clone());
            let mut fin = self.finish(&base, t, ActionStatus::Failed, None);
            fin.code = code;
            out.push(fin);
            return Ok(out);
        }
        // Step 3: tell the customer.
        t += 30_000 + self.below(100_000) as i64;
        let mail = json!({
            "customer_id": customer,
            "to": format!("{customer}@example.com"),
            "template": "refund_issued",
        });
        let ok = self.action(
            &mut out,
            &base,
            &ctx,
            &mut t,
            n,
            3,
            "email.send_customer",
            mail,
            &[],
        )?;
        let status = if ok {
            ActionStatus::Succeeded
        } else {
            ActionStatus::Failed
        };
        t += 5_000;
        let mut fin = self.finish(&base, t, status, None);
        fin.code = out.last().and_then(|r| r.code.clone());
        out.push(fin);
        Ok(out)
    }

    fn finish(
        &self,
        base: &dyn Fn(RecordKind, i64) -> Record,
        t: i64,
        status: ActionStatus,
        code: Option<FailureCode>,
    ) -> Record {
        let mut r = base(RecordKind::RunFinished, t);
        r.status = Some(status);
        r.message = Some(if status == ActionStatus::Succeeded {
            "every step of `refund-request` succeeded".to_owned()
        } else {
            format!("run ended {status}")
        });
        r.code = code.map(|c| c.as_str().to_owned());
        r
    }

    /// Decides, approves when needed, executes; pushes the records and
    /// returns whether the action succeeded.
    #[allow(clippy::too_many_arguments)]
    fn action(
        &mut self,
        out: &mut Vec<Record>,
        base: &dyn Fn(RecordKind, i64) -> Record,
        ctx: &RequestContext,
        t: &mut i64,
        run: u64,
        step: u32,
        tool: &str,
        args: Value,
        approvals: &[String],
    ) -> Result<bool, EvidenceError> {
        let agent = out
            .first()
            .and_then(|r| r.agent.clone())
            .unwrap_or_default();
        let sensitive = self
            .engine
            .pack()
            .tools
            .get(tool)
            .map(|t| t.sensitive.clone())
            .unwrap_or_default();
        let action = format!("act-{run:07}-{step}");
        let decide = |approvals: &[String]| {
            self.engine.decide(&Request {
                agent: &agent,
                tool,
                args: &args,
                approvals,
                context: ctx,
            })
        };
        let stamp = |kind: RecordKind, t: i64| {
            let mut r = base(kind, t);
            r.action = Some(action.clone());
            r.tool = Some(tool.to_owned());
            r
        };
        let redactor = self.redactor;
        let push = |out: &mut Vec<Record>, mut r: Record| -> Result<(), EvidenceError> {
            redactor.apply(&mut r, &args, &sensitive)?;
            out.push(r);
            Ok(())
        };
        let first = decide(approvals);
        let mut decided = stamp(RecordKind::ActionDecided, *t);
        decided.checks.push(Check::from(&first));
        decided.message = Some(first.message());
        let (status, code) = decision_status(&first);
        decided.status = Some(status);
        decided.code = code.map(|c| c.as_str().to_owned());
        push(out, decided)?;
        match first.outcome {
            Outcome::Deny => return Ok(false),
            Outcome::Allow => {}
            Outcome::ApprovalRequired => {
                let amount = args
                    .get("amount_cents")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let groups = first.approval.clone().map(|a| a.groups).unwrap_or_default();
                let approval_id = format!("apr-{run:07}-{step}");
                let with_id = |mut r: Record| {
                    r.detail = Some(json!({ "approval_id": approval_id }));
                    r
                };
                *t += 1_000;
                let requested = *t;
                let mut req = with_id(stamp(RecordKind::ApprovalRequested, *t));
                req.trigger = ctx.trigger.clone();
                req.message = Some(format!(
                    "approval requested from {}",
                    groups
                        .iter()
                        .map(|(g, q)| format!("{q} of `{g}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
                if let Some(d) = req.detail.as_mut() {
                    d["requires"] = json!(
                        groups
                            .iter()
                            .map(|(g, q)| json!({ "group": g, "quorum": q }))
                            .collect::<Vec<_>>()
                    );
                }
                push(out, req)?;
                let mut votes: Vec<ApprovalOutcome> = Vec::new();
                let mut granted: Vec<String> = Vec::new();
                for (group, quorum) in groups {
                    let mut who: Vec<&str> = FINANCE.to_vec();
                    for i in 0..quorum {
                        // A second approver sometimes never comes: the request
                        // escalates after 30 minutes and expires after 4 hours.
                        if i > 0 && self.below(100) < 6 {
                            let mut esc = with_id(stamp(
                                RecordKind::ApprovalEscalated,
                                requested + 1_800_000_000,
                            ));
                            esc.status = Some(ActionStatus::Escalated);
                            if let Some(d) = esc.detail.as_mut() {
                                d["group"] = json!(group);
                                d["to"] = json!("support-leads");
                                d["step"] = json!(1);
                            }
                            push(out, esc)?;
                            *t = requested + 14_400_000_000;
                            let mut exp = with_id(stamp(RecordKind::ApprovalExpired, *t));
                            exp.status = Some(ActionStatus::Expired);
                            exp.code = Some(FailureCode::ApprovalExpired.as_str().to_owned());
                            exp.message = Some(format!("approval expired unanswered by `{group}`"));
                            push(out, exp)?;
                            return Ok(false);
                        }
                        let yes = self.approves(amount);
                        let approver = self.approver(&mut who, yes);
                        *t += self.latency_us(approver);
                        let latency_ms = u64::try_from((*t - requested) / 1000).unwrap_or(0);
                        let mut rec = with_id(stamp(RecordKind::ApprovalRecorded, *t));
                        let vote = ApprovalOutcome {
                            approver: approver.to_owned(),
                            group: group.clone(),
                            decision: if yes { "approve" } else { "deny" }.into(),
                            comment: Some(
                                if yes {
                                    "verified the order"
                                } else {
                                    "refund policy not met"
                                }
                                .into(),
                            ),
                            latency_ms,
                            via: None,
                        };
                        rec.approvals.push(vote.clone());
                        votes.push(vote);
                        if !yes {
                            rec.status = Some(ActionStatus::Denied);
                            rec.code = Some(FailureCode::ApprovalDenied.as_str().to_owned());
                            rec.message = Some(format!(
                                "{approver} denied for `{group}`: \"refund policy not met\""
                            ));
                            push(out, rec)?;
                            return Ok(false);
                        }
                        rec.status = Some(ActionStatus::AwaitingApproval);
                        rec.message = Some(format!(
                            "{approver} approved for `{group}`: \"verified the order\""
                        ));
                        push(out, rec)?;
                    }
                    granted.push(group);
                }
                let mut done = with_id(stamp(RecordKind::ApprovalGranted, *t));
                done.approvals = votes;
                done.message = Some("quorum met".into());
                push(out, done)?;
                // Approved: policy is evaluated again before execution.
                *t += 2_000;
                let again = decide(&granted);
                let mut re = stamp(RecordKind::ActionReevaluated, *t);
                re.checks.push(Check::from(&again));
                re.message = Some(again.message());
                if again.outcome != Outcome::Allow {
                    re.status = Some(ActionStatus::Denied);
                    re.code = Some(FailureCode::PolicyDenied.as_str().to_owned());
                    push(out, re)?;
                    return Ok(false);
                }
                re.status = Some(ActionStatus::Approved);
                push(out, re)?;
            }
        }
        // Execute: most succeed, a few time out or fail.
        let took = 40_000 + self.below(400_000) as i64;
        *t += took;
        let mut done = stamp(RecordKind::ActionExecuted, *t);
        let roll = self.below(100);
        let (status, code) = match roll {
            0..=1 => (ActionStatus::Failed, Some(FailureCode::ToolTimeout)),
            2..=4 => (ActionStatus::Failed, Some(FailureCode::ToolError)),
            _ => (ActionStatus::Succeeded, None),
        };
        done.status = Some(status);
        done.code = code.map(|c| c.as_str().to_owned());
        done.detail = Some(json!({ "duration_ms": took / 1000 }));
        push(out, done)?;
        Ok(status == ActionStatus::Succeeded)
    }
}
