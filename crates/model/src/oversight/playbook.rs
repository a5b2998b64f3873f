//! `[[playbooks]]`: a detector with its parameters, the owner, the
//! response window and the actions.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::execute::parse_duration;
use crate::mcp::Problem;
use crate::source::Location;

/// `[[playbooks]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlaybook {
    pub id: Spanned<String>,
    detector: Spanned<String>,
    pub owner: Spanned<String>,
    respond_within: Spanned<String>,
    #[serde(default)]
    severity: Option<Spanned<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    actions: Vec<Spanned<String>>,
    #[serde(default)]
    circuit_for: Option<Spanned<String>>,
    #[serde(default)]
    pub quarantine_group: Option<Spanned<String>>,
    #[serde(default)]
    pub agents: Vec<Spanned<String>>,
    #[serde(default)]
    pub tools: Vec<Spanned<String>>,
    #[serde(default)]
    pub systems: Vec<Spanned<String>>,
    #[serde(default)]
    pub workflows: Vec<Spanned<String>>,
    #[serde(default)]
    policies: Vec<Spanned<String>>,
    #[serde(default)]
    severities: Vec<Spanned<String>>,
    #[serde(default)]
    params: Option<Spanned<RawParams>>,
}

/// The owner a playbook names to page the owner of the workflow the event
/// belongs to (else the agent's owner, else the system's).
pub const WORKFLOW_OWNER: &str = "workflow";

/// `[playbooks.params]`: every detector's parameters; each detector
/// accepts only its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    denials: Option<u32>,
    retries: Option<u32>,
    window: Option<Spanned<String>>,
    run_idle: Option<Spanned<String>>,
    approval_pending: Option<Spanned<String>>,
    error_rate: Option<f64>,
    min_calls: Option<u32>,
    tools_failing: Option<u32>,
    sigma: Option<f64>,
    min_samples: Option<u32>,
    scan: Option<bool>,
}

/// A misbehaviour pattern and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Detector {
    /// `denials` or more denied proposals of one agent within `window`; a
    /// denial by a policy annotated `@severity("critical")` at once.
    PolicyViolation {
        /// Threshold.
        denials: u32,
        /// Sliding window.
        window: Duration,
    },
    /// `retries` or more retries of one run or one tool within `window`:
    /// connector retries, and identical proposals re-sent after a failure
    /// or a denial.
    RetryStorm {
        /// Threshold.
        retries: u32,
        /// Sliding window.
        window: Duration,
    },
    /// A run without progress for `run_idle`; an approval pending longer
    /// than `approval_pending`.
    Stuck {
        /// Longest a running run may go without an event.
        run_idle: Duration,
        /// Longest an approval may stay pending.
        approval_pending: Duration,
    },
    /// A tool's or a system's error rate at or above `error_rate` percent
    /// over at least `min_calls` calls within `window`, or `tools_failing`
    /// distinct tools of one system failing within `window`.
    FailureCascade {
        /// Percent, 0–100.
        error_rate: f64,
        /// Calls needed before a rate counts.
        min_calls: u32,
        /// Distinct failing tools of one system.
        tools_failing: u32,
        /// Sliding window.
        window: Duration,
    },
    /// A result whose size or latency is outside the tool's learned band
    /// (EWMA mean ± `sigma`·σ once `min_samples` were seen), or that
    /// contains secrets or personal data the tool does not declare.
    UnusualOutput {
        /// Width of the band in standard deviations.
        sigma: f64,
        /// Samples before the band is used.
        min_samples: u32,
        /// Whether results are scanned for secrets and personal data.
        scan: bool,
    },
}

impl Detector {
    /// The detector's name, as written in packs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PolicyViolation { .. } => "policy_violation",
            Self::RetryStorm { .. } => "retry_storm",
            Self::Stuck { .. } => "stuck",
            Self::FailureCascade { .. } => "failure_cascade",
            Self::UnusualOutput { .. } => "unusual_output",
        }
    }

    /// Every detector name.
    pub const KINDS: &'static [&'static str] = &[
        "policy_violation",
        "retry_storm",
        "stuck",
        "failure_cascade",
        "unusual_output",
    ];
}

/// What a playbook does when its detector fires, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaybookAction {
    /// Page the owner's first route (later ones on a missed window).
    Notify,
    /// Pause the agent (kill switch) until an operator resumes it.
    Pause,
    /// Every write action of the agent needs approval from `group`.
    Quarantine {
        /// The approver group.
        group: String,
    },
    /// Refuse every proposal of the tool (`tool_circuit_open`) for a while.
    Circuit {
        /// How long the circuit stays open.
        open_for: Duration,
    },
}

impl PlaybookAction {
    /// The word written in packs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::Pause => "pause",
            Self::Quarantine { .. } => "quarantine",
            Self::Circuit { .. } => "circuit",
        }
    }
}

/// How urgent an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IncidentSeverity {
    /// For the record.
    Info,
    /// Look soon.
    Warning,
    /// Look now (the default).
    High,
    /// Everything stops.
    Critical,
}

impl IncidentSeverity {
    /// The word written in packs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses the word.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Self::Info,
            "warning" => Self::Warning,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }
}

/// A detector mapped to an owner, a response window and actions.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// Id, e.g. `refund-denials`.
    pub id: String,
    /// What it detects.
    pub detector: Detector,
    /// Person or team paged.
    pub owner: String,
    /// Acknowledge within this, or the incident escalates to the next route.
    pub respond_within: Duration,
    /// Severity of its incidents.
    pub severity: IncidentSeverity,
    /// What it is for.
    pub description: Option<String>,
    /// In order.
    pub actions: Vec<PlaybookAction>,
    /// Only events of these agents (all when empty).
    pub agents: Vec<String>,
    /// Only events of these tools (all when empty).
    pub tools: Vec<String>,
    /// Only events of tools of these systems (all when empty).
    pub systems: Vec<String>,
    /// Only events in runs of these workflows (all when empty).
    pub workflows: Vec<String>,
    /// `policy_violation` only: denials by one of these policies (all when
    /// empty), with where each is named.
    pub policies: Vec<(String, Location)>,
    /// `policy_violation` only: denials by a policy whose `@severity` is one
    /// of these (all when empty).
    pub severities: Vec<IncidentSeverity>,
    /// Where it is declared.
    pub at: Location,
}

impl Playbook {
    /// Whether its owner is [`WORKFLOW_OWNER`]: resolved per incident.
    pub fn owner_is_workflow(&self) -> bool {
        self.owner == WORKFLOW_OWNER
    }
}

fn threshold(
    v: Option<u32>,
    default: u32,
    name: &str,
    span: &Range<usize>,
    p: &mut Vec<Problem>,
) -> u32 {
    match v {
        Some(0) => {
            p.push((format!("`{name}` must be at least 1"), span.clone()));
            1
        }
        Some(n) => n,
        None => default,
    }
}

fn positive(d: Duration, name: &str, span: &Range<usize>, p: &mut Vec<Problem>) -> Duration {
    if d.is_zero() {
        p.push((
            format!("`{name}` must be a positive duration"),
            span.clone(),
        ));
    }
    d
}

impl RawPlaybook {
    pub(crate) fn resolve(
        self,
        at: Location,
        loc: impl Fn(Range<usize>) -> Location,
    ) -> Result<Playbook, Vec<Problem>> {
        let mut p = Vec::new();
        let (params, pspan) = match self.params {
            Some(s) => {
                let span = s.span();
                (s.into_inner(), span)
            }
            None => (RawParams::default(), self.detector.span()),
        };
        let kind = self.detector.get_ref().as_str();
        let allowed: &[&str] = match kind {
            "policy_violation" => &["denials", "window"],
            "retry_storm" => &["retries", "window"],
            "stuck" => &["run_idle", "approval_pending"],
            "failure_cascade" => &["error_rate", "min_calls", "tools_failing", "window"],
            "unusual_output" => &["sigma", "min_samples", "scan"],
            other => {
                p.push((
                    format!(
                        "unknown detector `{other}`; expected one of: {}",
                        Detector::KINDS.join(", ")
                    ),
                    self.detector.span(),
                ));
                &[]
            }
        };
        let given = [
            ("denials", params.denials.is_some()),
            ("retries", params.retries.is_some()),
            ("window", params.window.is_some()),
            ("run_idle", params.run_idle.is_some()),
            ("approval_pending", params.approval_pending.is_some()),
            ("error_rate", params.error_rate.is_some()),
            ("min_calls", params.min_calls.is_some()),
            ("tools_failing", params.tools_failing.is_some()),
            ("sigma", params.sigma.is_some()),
            ("min_samples", params.min_samples.is_some()),
            ("scan", params.scan.is_some()),
        ];
        if !allowed.is_empty() {
            for (name, _) in given.iter().filter(|(n, g)| *g && !allowed.contains(n)) {
                p.push((
                    format!(
                        "`{name}` is not a parameter of `{kind}`; it takes: {}",
                        allowed.join(", ")
                    ),
                    pspan.clone(),
                ));
            }
        }
        let window = positive(
            parse_duration(params.window.as_ref(), Duration::from_secs(300), &mut p),
            "window",
            &pspan,
            &mut p,
        );
        let detector = match kind {
            "retry_storm" => Detector::RetryStorm {
                retries: threshold(params.retries, 5, "retries", &pspan, &mut p),
                window,
            },
            "stuck" => Detector::Stuck {
                run_idle: positive(
                    parse_duration(params.run_idle.as_ref(), Duration::from_secs(900), &mut p),
                    "run_idle",
                    &pspan,
                    &mut p,
                ),
                approval_pending: positive(
                    parse_duration(
                        params.approval_pending.as_ref(),
                        Duration::from_secs(3600),
                        &mut p,
                    ),
                    "approval_pending",
                    &pspan,
                    &mut p,
                ),
            },
            "failure_cascade" => {
                let rate = params.error_rate.unwrap_or(50.0);
                if !(rate > 0.0 && rate <= 100.0) {
                    p.push((
                        "`error_rate` is a percentage above 0 and at most 100".to_owned(),
                        pspan.clone(),
                    ));
                }
                Detector::FailureCascade {
                    error_rate: rate,
                    min_calls: threshold(params.min_calls, 10, "min_calls", &pspan, &mut p),
                    tools_failing: threshold(
                        params.tools_failing,
                        3,
                        "tools_failing",
                        &pspan,
                        &mut p,
                    ),
                    window,
                }
            }
            "unusual_output" => {
                let sigma = params.sigma.unwrap_or(4.0);
                if !(sigma > 0.0 && sigma.is_finite()) {
                    p.push(("`sigma` must be above 0".to_owned(), pspan.clone()));
                }
                Detector::UnusualOutput {
                    sigma,
                    min_samples: threshold(params.min_samples, 30, "min_samples", &pspan, &mut p),
                    scan: params.scan.unwrap_or(true),
                }
            }
            _ => Detector::PolicyViolation {
                denials: threshold(params.denials, 5, "denials", &pspan, &mut p),
                window,
            },
        };
        let before = p.len();
        let parsed = parse_duration(Some(&self.respond_within), Duration::ZERO, &mut p);
        let respond_within = if p.len() > before {
            parsed
        } else {
            positive(
                parsed,
                "respond_within",
                &self.respond_within.span(),
                &mut p,
            )
        };
        let severity = match &self.severity {
            None => IncidentSeverity::High,
            Some(s) => IncidentSeverity::parse(s.get_ref()).unwrap_or_else(|| {
                p.push((
                    format!(
                        "unknown severity `{}`; expected info, warning, high or critical",
                        s.get_ref()
                    ),
                    s.span(),
                ));
                IncidentSeverity::High
            }),
        };
        let mut actions = Vec::new();
        for a in &self.actions {
            let action = match a.get_ref().as_str() {
                "notify" => PlaybookAction::Notify,
                "pause" => PlaybookAction::Pause,
                "quarantine" => match &self.quarantine_group {
                    Some(g) => PlaybookAction::Quarantine {
                        group: g.get_ref().clone(),
                    },
                    None => {
                        p.push((
                            "`quarantine` needs `quarantine_group`: the approver group whose approval the agent's write actions will need".to_owned(),
                            a.span(),
                        ));
                        continue;
                    }
                },
                "circuit" => PlaybookAction::Circuit {
                    open_for: positive(
                        parse_duration(self.circuit_for.as_ref(), Duration::from_secs(600), &mut p),
                        "circuit_for",
                        &a.span(),
                        &mut p,
                    ),
                },
                other => {
                    p.push((
                        format!(
                            "unknown action `{other}`; expected notify, pause, quarantine or circuit"
                        ),
                        a.span(),
                    ));
                    continue;
                }
            };
            if actions
                .iter()
                .any(|x: &PlaybookAction| x.as_str() == action.as_str())
            {
                p.push((
                    format!("action `{}` is listed twice", action.as_str()),
                    a.span(),
                ));
                continue;
            }
            actions.push(action);
        }
        if self.detector.get_ref() != "policy_violation" {
            for f in self.policies.iter().chain(&self.severities) {
                p.push((
                    "`policies` and `severities` filter denials: only a `policy_violation` playbook takes them".to_owned(),
                    f.span(),
                ));
            }
        }
        let mut severities = Vec::new();
        for s in &self.severities {
            match IncidentSeverity::parse(s.get_ref()) {
                Some(x) if !severities.contains(&x) => severities.push(x),
                Some(_) => {}
                None => p.push((
                    format!(
                        "unknown severity `{}`; expected info, warning, high or critical (a policy's `@severity`)",
                        s.get_ref()
                    ),
                    s.span(),
                )),
            }
        }
        if self.actions.is_empty() {
            p.push((
                "a playbook needs `actions`, e.g. `[\"notify\"]`".to_owned(),
                self.id.span(),
            ));
        }
        if p.is_empty() {
            Ok(Playbook {
                id: self.id.into_inner(),
                detector,
                owner: self.owner.into_inner(),
                respond_within,
                severity,
                description: self.description,
                actions,
                agents: self.agents.into_iter().map(Spanned::into_inner).collect(),
                tools: self.tools.into_iter().map(Spanned::into_inner).collect(),
                systems: self.systems.into_iter().map(Spanned::into_inner).collect(),
                workflows: self
                    .workflows
                    .into_iter()
                    .map(Spanned::into_inner)
                    .collect(),
                policies: self
                    .policies
                    .into_iter()
                    .map(|s| (s.get_ref().clone(), loc(s.span())))
                    .collect(),
                severities,
                at,
            })
        } else {
            Err(p)
        }
    }
}
