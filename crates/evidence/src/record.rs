//! The evidence record: one per lifecycle event, hashed into the log as
//! canonical JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warden_model::{ActionStatus, DenyCode, FailureCode, Outcome, Risk, Trigger};
use warden_policy::{Decision, Effect, Request};

use crate::canonical::to_canonical;
use crate::error::EvidenceError;
use crate::merkle::{Hash, leaf_hash};

/// Version of the record format, written into every record.
pub const RECORD_VERSION: u32 = 1;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A workflow run began; carries its trigger.
    RunStarted,
    /// Policy decided a proposed action; carries the checks.
    ActionDecided,
    /// A proposal needs approval: the request was created (groups, quorum,
    /// deadline) and the groups notified.
    ApprovalRequested,
    /// An approver answered.
    ApprovalRecorded,
    /// Every required group reached its quorum.
    ApprovalGranted,
    /// After approval, policy was evaluated again with the pack in force
    /// and the granted approvals; carries the check.
    ActionReevaluated,
    /// An unanswered request went to the next group of its chain.
    ApprovalEscalated,
    /// An unanswered request reached the end of its chain: the action
    /// ended `expired` with `approval_expired`.
    ApprovalExpired,
    /// The action executed (or failed to); carries the outcome.
    ActionExecuted,
    /// A run ended.
    RunFinished,
    /// The checkpoint signing key changed; carries the new public key.
    KeyRotated,
    /// An authenticated request that could not be used: malformed JSON,
    /// an unknown field, an unsupported mode. Carries the code, not the body.
    RequestRejected,
    /// The server loaded a new version of the pack, or refused an invalid
    /// one and kept the old (`code` = `pack_invalid`).
    PackReloaded,
    /// A request was refused before it reached policy: no or unknown
    /// credentials (`unauthenticated`) or a role that does not allow it
    /// (`forbidden`). Never carries the token.
    AccessDenied,
    /// An operator (or a playbook) paused an agent: every proposal is denied
    /// with `agent_paused` until it is resumed.
    AgentPaused,
    /// An operator resumed a paused agent.
    AgentResumed,
    /// On start, an action a crash left `executing` was re-sent or ended
    /// `interrupted`.
    ActionRecovered,
    /// An agent was quarantined: its write actions need approval.
    AgentQuarantined,
    /// A quarantined agent was released.
    AgentReleased,
    /// A tool's circuit was opened: its proposals are refused for a while.
    CircuitOpened,
    /// A tool's circuit was closed early.
    CircuitClosed,
    /// A playbook's detector fired and opened an incident; carries the
    /// first triggering event, the owner and the actions taken.
    IncidentOpened,
    /// An owner acknowledged an incident.
    IncidentAcknowledged,
    /// An incident's response window was missed: it was paged to the next
    /// route (or the chain was exhausted).
    IncidentEscalated,
    /// An incident was resolved.
    IncidentResolved,
    /// A notification of an incident reached its route, or an approval
    /// request was first posted to a Slack channel (`detail.via = "slack"`).
    NotificationDelivered,
    /// A notification of an incident could not be delivered after every
    /// attempt, or an approval request's Slack message could not be posted
    /// or updated (`detail.via = "slack"`).
    NotificationFailed,
    /// The identical request was proposed again while its approval request
    /// was open (or once after it ended): answered with the same action,
    /// no new request; points at the action and the approval.
    ActionReproposed,
    /// A run was cancelled (by its agent or an operator) or timed out; its
    /// pending actions were cancelled with it.
    RunCancelled,
    /// An approval request was cancelled (by the agent that asked, or an
    /// operator); its action ended `cancelled`.
    ApprovalCancelled,
    /// A data-subject erasure dropped the payloads of matching records and
    /// kept their leaf hashes; carries what matched and how many.
    RecordsErased,
    /// A drill began: real traffic marked as a drill (its id in the
    /// trigger) exercises playbooks; carries the drill and its scenario.
    DrillStarted,
    /// A drill ended and undid what it changed; carries the measured
    /// times per playbook and whether it passed.
    DrillFinished,
    /// A post-incident review: what happened, and the pack version that
    /// carries the fix (or why nothing changed).
    IncidentReviewed,
}

impl RecordKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [RecordKind] = &[
        Self::RunStarted,
        Self::ActionDecided,
        Self::ApprovalRequested,
        Self::ApprovalRecorded,
        Self::ApprovalGranted,
        Self::ActionReevaluated,
        Self::ApprovalEscalated,
        Self::ApprovalExpired,
        Self::ActionExecuted,
        Self::RunFinished,
        Self::KeyRotated,
        Self::RequestRejected,
        Self::PackReloaded,
        Self::AccessDenied,
        Self::AgentPaused,
        Self::AgentResumed,
        Self::ActionRecovered,
        Self::AgentQuarantined,
        Self::AgentReleased,
        Self::CircuitOpened,
        Self::CircuitClosed,
        Self::IncidentOpened,
        Self::IncidentAcknowledged,
        Self::IncidentEscalated,
        Self::IncidentResolved,
        Self::NotificationDelivered,
        Self::NotificationFailed,
        Self::ActionReproposed,
        Self::RunCancelled,
        Self::ApprovalCancelled,
        Self::RecordsErased,
        Self::DrillStarted,
        Self::DrillFinished,
        Self::IncidentReviewed,
    ];

    /// The word written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunStarted => "run_started",
            Self::ActionDecided => "action_decided",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalRecorded => "approval_recorded",
            Self::ApprovalGranted => "approval_granted",
            Self::ActionReevaluated => "action_reevaluated",
            Self::ApprovalEscalated => "approval_escalated",
            Self::ApprovalExpired => "approval_expired",
            Self::ActionExecuted => "action_executed",
            Self::RunFinished => "run_finished",
            Self::KeyRotated => "key_rotated",
            Self::AccessDenied => "access_denied",
            Self::PackReloaded => "pack_reloaded",
            Self::RequestRejected => "request_rejected",
            Self::AgentPaused => "agent_paused",
            Self::AgentResumed => "agent_resumed",
            Self::ActionRecovered => "action_recovered",
            Self::AgentQuarantined => "agent_quarantined",
            Self::AgentReleased => "agent_released",
            Self::CircuitOpened => "circuit_opened",
            Self::CircuitClosed => "circuit_closed",
            Self::IncidentOpened => "incident_opened",
            Self::IncidentAcknowledged => "incident_acknowledged",
            Self::IncidentEscalated => "incident_escalated",
            Self::IncidentResolved => "incident_resolved",
            Self::NotificationDelivered => "notification_delivered",
            Self::NotificationFailed => "notification_failed",
            Self::ActionReproposed => "action_reproposed",
            Self::RunCancelled => "run_cancelled",
            Self::ApprovalCancelled => "approval_cancelled",
            Self::RecordsErased => "records_erased",
            Self::DrillStarted => "drill_started",
            Self::DrillFinished => "drill_finished",
            Self::IncidentReviewed => "incident_reviewed",
        }
    }
}

/// One policy evaluation, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Content hash of the pack that decided.
    pub policy_version: String,
    /// The outcome.
    pub decision: Outcome,
    /// The deny code, for `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<DenyCode>,
    /// The determining policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<CheckedPolicy>,
    /// For `approval_required`: group → quorum.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub approval: BTreeMap<String, u32>,
    /// The tool's risk class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    /// Argument or evaluation errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A determining policy of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedPolicy {
    /// Policy id.
    pub id: String,
    /// `permit` or `forbid`.
    pub effect: String,
    /// Its annotations (`@risk`, `@reason`, `@approval`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl From<&Decision> for Check {
    fn from(d: &Decision) -> Self {
        Self {
            policy_version: d.policy_version.to_string(),
            decision: d.outcome,
            code: d.code,
            policies: d
                .policies
                .iter()
                .map(|p| CheckedPolicy {
                    id: p.id.to_string(),
                    effect: match p.effect {
                        Effect::Permit => "permit".into(),
                        Effect::Forbid => "forbid".into(),
                    },
                    annotations: p.annotations.clone(),
                })
                .collect(),
            approval: d
                .approval
                .as_ref()
                .map(|a| a.groups.iter().cloned().collect())
                .unwrap_or_default(),
            risk: d.risk,
            errors: d.errors.clone(),
        }
    }
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalOutcome {
    /// Who answered.
    pub approver: String,
    /// For which group.
    pub group: String,
    /// `approve` or `deny`.
    pub decision: String,
    /// What they wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Milliseconds from the request for approval to this answer.
    pub latency_ms: u64,
    /// The group the approver answered through, when it is not `group`
    /// (an escalation step's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// One evidence record. `seq` is assigned by the log when it is appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Record format version.
    pub v: u32,
    /// Position in the log (leaf index), assigned on append.
    pub seq: u64,
    /// What happened.
    pub kind: RecordKind,
    /// When (RFC 3339, UTC, microseconds).
    pub time: String,
    /// The agent (from its credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The workflow of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The action id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// What started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// The tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The arguments, sensitive fields redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Each counter's value in its window before this request, as the
    /// decision used it (`context.usage` adds the request itself).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub usage: std::collections::BTreeMap<String, i64>,
    /// The run's step data the decision saw (`context.run.steps`), by step.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub run_steps: std::collections::BTreeMap<String, Value>,
    /// The facts Warden fetched for the decision (`context.facts`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub facts: std::collections::BTreeMap<String, Value>,
    /// `sha256:<hex>` of the canonical full arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_sha256: Option<String>,
    /// Every policy evaluation made for this event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Approver answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalOutcome>,
    /// The action's lifecycle status after this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ActionStatus>,
    /// Standardized code when it did not succeed (`policy_denied`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A human-readable account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Anything else specific to the kind (tool output summary, key ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

impl Record {
    /// Adds `extra`'s keys to the record's detail object (nothing when the
    /// record has no detail object or `extra` is not an object).
    pub fn add_detail(&mut self, extra: Value) {
        if let (Some(Value::Object(d)), Value::Object(e)) = (&mut self.detail, extra) {
            d.extend(e);
        }
    }

    /// The drill whose traffic this record is, when it is drill traffic.
    pub fn drill(&self) -> Option<&str> {
        self.trigger.as_ref().and_then(Trigger::drill_id)
    }

    /// A record of `kind` at the current time; fill the rest by field.
    pub fn new(kind: RecordKind) -> Self {
        Self::at(kind, now())
    }

    /// A record of `kind` at `time` (RFC 3339).
    pub fn at(kind: RecordKind, time: String) -> Self {
        Self {
            v: RECORD_VERSION,
            seq: 0,
            kind,
            time,
            agent: None,
            workflow: None,
            run: None,
            action: None,
            trigger: None,
            tool: None,
            args: None,
            usage: Default::default(),
            run_steps: Default::default(),
            facts: Default::default(),
            args_sha256: None,
            checks: Vec::new(),
            approvals: Vec::new(),
            status: None,
            code: None,
            message: None,
            detail: None,
        }
    }

    /// The `action_decided` record of `decision` on `req`: agent, tool,
    /// workflow, run, trigger, the check, and the status and code the
    /// decision leads to. Arguments are added by [`crate::Redactor::apply`].
    pub fn decided(req: &Request<'_>, decision: &Decision) -> Self {
        let mut r = Self::new(RecordKind::ActionDecided);
        r.agent = Some(req.agent.to_owned());
        r.tool = Some(req.tool.to_owned());
        r.workflow = req.context.workflow.clone();
        r.run = req.context.run.clone();
        r.trigger = req.context.trigger.clone();
        r.usage = req.context.usage.clone();
        r.run_steps = req.context.steps.clone();
        r.facts = req.context.facts.clone();
        r.checks.push(Check::from(decision));
        r.message = Some(decision.message());
        let (status, code) = decision_status(decision);
        r.status = Some(status);
        r.code = code.map(|c| c.as_str().to_owned());
        r
    }

    /// The outcome of the last check, if any.
    pub fn decision(&self) -> Option<Outcome> {
        self.checks.last().map(|c| c.decision)
    }

    /// Microseconds since the Unix epoch of `time` (0 if it does not parse).
    pub fn time_micros(&self) -> i64 {
        micros(&self.time).unwrap_or(0)
    }

    /// The canonical bytes that are the log leaf.
    pub fn leaf_bytes(&self) -> Result<Vec<u8>, EvidenceError> {
        to_canonical(self)
    }

    /// The leaf hash of this record.
    pub fn leaf_hash(&self) -> Result<Hash, EvidenceError> {
        Ok(leaf_hash(&self.leaf_bytes()?))
    }
}

/// The lifecycle status a decision leads to, and the code when it is a
/// denial: `allow` → approved, `approval_required` → awaiting_approval,
/// `deny` → denied with the deny code's failure code.
pub fn decision_status(d: &Decision) -> (ActionStatus, Option<FailureCode>) {
    match d.outcome {
        Outcome::Allow => (ActionStatus::Approved, None),
        Outcome::ApprovalRequired => (ActionStatus::AwaitingApproval, None),
        Outcome::Deny => (
            ActionStatus::Denied,
            Some(d.code.map_or(FailureCode::PolicyDenied, FailureCode::from)),
        ),
    }
}

/// The current time, RFC 3339 in UTC with microseconds.
pub fn now() -> String {
    format_time(OffsetDateTime::now_utc())
}

/// A time as written in records.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(t.microsecond() * 1000).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// The RFC 3339 time `us` microseconds after the Unix epoch.
pub fn time_from_micros(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map(format_time)
        .unwrap_or_default()
}

/// Microseconds since the Unix epoch of a time bound as people write it:
/// an RFC 3339 time, or a duration before now (`90m`, `30d`).
pub fn time_or_ago(arg: &str) -> Option<i64> {
    if let Some(t) = micros(arg) {
        return Some(t);
    }
    let ago = humantime::parse_duration(arg).ok()?;
    let now = micros(&now())?;
    Some(now.saturating_sub(i64::try_from(ago.as_micros()).unwrap_or(i64::MAX)))
}

/// Microseconds since the Unix epoch of an RFC 3339 time.
pub fn micros(rfc3339: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_stable_and_sorted() {
        let mut r = Record::at(
            RecordKind::ActionDecided,
            "2026-11-25T10:00:00.000001Z".into(),
        );
        r.seq = 7;
        r.agent = Some("support-bot".into());
        r.tool = Some("stripe.refund".into());
        let text = String::from_utf8(r.leaf_bytes().unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"agent":"support-bot","kind":"action_decided","seq":7,"time":"2026-11-25T10:00:00.000001Z","tool":"stripe.refund","v":1}"#
        );
        let back: Record =
            serde_json::from_str(&text).unwrap_or_else(|_| Record::new(RecordKind::RunFinished));
        assert_eq!(back, r);
        assert_eq!(r.time_micros(), 1_795_600_800_000_001);
    }

    #[test]
    fn now_has_microseconds_and_parses() {
        let t = now();
        assert!(t.ends_with('Z'), "{t}");
        assert!(micros(&t).is_some());
    }
}
