//! `[[drills]]`: rehearsals of playbooks with real traffic marked as a
//! drill. A drill names the playbooks it exercises, the scenario, the agent
//! whose credential the traffic uses, and the proposals to send.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::playbook::Playbook;
use crate::error::ModelProblem;
use crate::execute::parse_duration;
use crate::load::Cx;
use crate::load::RefKind;
use crate::mcp::Problem;
use crate::pack::Pack;
use crate::source::Location;

/// `[[drills]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDrill {
    id: Spanned<String>,
    playbooks: Vec<Spanned<String>>,
    scenario: Spanned<String>,
    agent: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    detect_within: Option<Spanned<String>>,
    #[serde(default)]
    stuck_after: Option<Spanned<String>>,
    #[serde(default)]
    steps: Vec<Spanned<RawStep>>,
}

/// `[[drills.steps]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    tool: Spanned<String>,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    repeat: Option<u32>,
    #[serde(default)]
    fault: Option<Spanned<String>>,
    #[serde(default)]
    result: Option<Value>,
}

/// What a drill rehearses; each kind exercises playbooks of matching
/// detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// An agent keeps proposing what policy denies.
    PolicyViolation,
    /// A tool's connector fails or times out (injected for drill traffic
    /// only).
    DependencyFailure,
    /// The same failing request re-sent over and over.
    RetryStorm,
    /// An approval left unanswered (or a run left idle).
    Stuck,
    /// A tool's output carries a secret or a card number.
    SecretInOutput,
}

impl Scenario {
    /// Every scenario, as written in packs.
    pub const KINDS: &'static [&'static str] = &[
        "policy_violation",
        "dependency_failure",
        "retry_storm",
        "stuck",
        "secret_in_output",
    ];

    /// The word written in packs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PolicyViolation => "policy_violation",
            Self::DependencyFailure => "dependency_failure",
            Self::RetryStorm => "retry_storm",
            Self::Stuck => "stuck",
            Self::SecretInOutput => "secret_in_output",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "policy_violation" => Self::PolicyViolation,
            "dependency_failure" => Self::DependencyFailure,
            "retry_storm" => Self::RetryStorm,
            "stuck" => Self::Stuck,
            "secret_in_output" => Self::SecretInOutput,
            _ => return None,
        })
    }

    /// The detectors whose playbooks this scenario can exercise.
    pub fn detectors(self) -> &'static [&'static str] {
        match self {
            Self::PolicyViolation => &["policy_violation"],
            Self::DependencyFailure => &["failure_cascade", "retry_storm"],
            Self::RetryStorm => &["retry_storm"],
            Self::Stuck => &["stuck"],
            Self::SecretInOutput => &["unusual_output"],
        }
    }
}

/// A failure Warden injects in place of the connector call, for drill
/// traffic only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The tool answers with an error (`tool_error`).
    Error,
    /// The tool does not answer in time (`tool_timeout`).
    Timeout,
}

impl Fault {
    /// The word written in packs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Timeout => "timeout",
        }
    }
}

/// One proposal of a drill, sent `repeat` times.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillStep {
    /// The tool.
    pub tool: String,
    /// Its arguments.
    pub args: Value,
    /// How many times it is proposed.
    pub repeat: u32,
    /// The connector call is replaced by this failure.
    pub fault: Option<Fault>,
    /// The connector call is replaced by this result (an output carrying
    /// what the scanner must catch).
    pub result: Option<Value>,
}

/// A rehearsal of one or more playbooks.
#[derive(Debug, Clone)]
pub struct Drill {
    /// Id, e.g. `intern-writes`.
    pub id: String,
    /// The playbooks it exercises: each must open an incident.
    pub playbooks: Vec<String>,
    /// What it rehearses.
    pub scenario: Scenario,
    /// The agent whose credential the traffic uses.
    pub agent: String,
    /// What it is for.
    pub description: Option<String>,
    /// Each playbook's incident must open this soon after the first drill
    /// event (default 60 s).
    pub detect_within: Duration,
    /// `stuck` only: drill approvals and runs count as stuck after this
    /// (the playbook's own thresholds are hours; real traffic keeps them).
    pub stuck_after: Duration,
    /// The proposals, in order.
    pub steps: Vec<DrillStep>,
    /// Where it is declared.
    pub at: Location,
}

/// Upper bound of `repeat`: a drill is a rehearsal, not a load test.
const MAX_REPEAT: u32 = 1000;

impl RawDrill {
    fn resolve(self, at: Location) -> Result<Drill, Vec<Problem>> {
        let mut p = Vec::new();
        let scenario = Scenario::parse(self.scenario.get_ref()).unwrap_or_else(|| {
            p.push((
                format!(
                    "unknown scenario `{}`; expected one of: {}",
                    self.scenario.get_ref(),
                    Scenario::KINDS.join(", ")
                ),
                self.scenario.span(),
            ));
            Scenario::PolicyViolation
        });
        if self.playbooks.is_empty() {
            p.push((
                "a drill names the playbooks it exercises: `playbooks = [\"...\"]`".to_owned(),
                self.id.span(),
            ));
        }
        if self.steps.is_empty() {
            p.push((
                "a drill needs at least one `[[drills.steps]]` (the proposals it sends)".to_owned(),
                self.id.span(),
            ));
        }
        let detect_within =
            parse_duration(self.detect_within.as_ref(), Duration::from_secs(60), &mut p);
        let stuck_after = parse_duration(self.stuck_after.as_ref(), Duration::from_secs(5), &mut p);
        if let Some(s) = &self.stuck_after
            && scenario != Scenario::Stuck
        {
            p.push((
                "`stuck_after` applies to `scenario = \"stuck\"` only".to_owned(),
                s.span(),
            ));
        }
        let mut steps = Vec::new();
        for s in self.steps {
            let span = s.span();
            let s = s.into_inner();
            let repeat = s.repeat.unwrap_or(1);
            if repeat == 0 || repeat > MAX_REPEAT {
                p.push((
                    format!("`repeat` must be between 1 and {MAX_REPEAT}"),
                    span.clone(),
                ));
            }
            let fault = match &s.fault {
                None => None,
                Some(f) => match f.get_ref().as_str() {
                    "error" => Some(Fault::Error),
                    "timeout" => Some(Fault::Timeout),
                    other => {
                        p.push((
                            format!("unknown fault `{other}`; expected `error` or `timeout`"),
                            f.span(),
                        ));
                        None
                    }
                },
            };
            if fault.is_some()
                && !matches!(scenario, Scenario::DependencyFailure | Scenario::RetryStorm)
            {
                p.push((
                    "`fault` is injected in `dependency_failure` and `retry_storm` drills only"
                        .to_owned(),
                    span.clone(),
                ));
            }
            if s.result.is_some() && scenario != Scenario::SecretInOutput {
                p.push((
                    "`result` replaces tool output in `secret_in_output` drills only".to_owned(),
                    span.clone(),
                ));
            }
            if fault.is_some() && s.result.is_some() {
                p.push((
                    "a step has either a `fault` or a `result`, not both".to_owned(),
                    span.clone(),
                ));
            }
            steps.push(DrillStep {
                tool: s.tool.into_inner(),
                args: s.args.unwrap_or_else(|| Value::Object(Default::default())),
                repeat,
                fault,
                result: s.result,
            });
        }
        if scenario == Scenario::SecretInOutput && steps.iter().all(|s| s.result.is_none()) {
            p.push((
                "a `secret_in_output` drill needs a step with `result`: the output that carries the secret".to_owned(),
                self.scenario.span(),
            ));
        }
        if matches!(scenario, Scenario::DependencyFailure | Scenario::RetryStorm)
            && steps.iter().all(|s| s.fault.is_none())
        {
            p.push((
                format!(
                    "a `{}` drill needs a step with `fault = \"error\"` or `\"timeout\"`",
                    scenario.as_str()
                ),
                self.scenario.span(),
            ));
        }
        if !p.is_empty() {
            return Err(p);
        }
        Ok(Drill {
            id: self.id.into_inner(),
            playbooks: self
                .playbooks
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            scenario,
            agent: self.agent.into_inner(),
            description: self.description,
            detect_within,
            stuck_after,
            steps,
            at,
        })
    }
}

impl Cx {
    pub(crate) fn resolve_drills(
        &mut self,
        drills: Vec<(RawDrill, Range<usize>)>,
        pack: &mut Pack,
    ) {
        for (d, span) in drills {
            self.reference(RefKind::Agent, Some(&d.agent));
            for s in &d.steps {
                self.reference(RefKind::Tool, Some(&s.get_ref().tool));
            }
            if !self.check_id("drill", &d.id, &pack.drills, |v| &v.at) {
                continue;
            }
            let pbs: Vec<Spanned<String>> = d.playbooks.clone();
            match d.resolve(self.loc(span.clone())) {
                Ok(drill) => {
                    let mut ok = true;
                    for pb in &pbs {
                        match pack.playbooks.get(pb.get_ref()) {
                            None => {
                                ok = false;
                                self.push(
                                    ModelProblem::Drill {
                                        message: format!(
                                            "unknown playbook `{}`; declared playbooks: {}",
                                            pb.get_ref(),
                                            pack.playbooks
                                                .keys()
                                                .cloned()
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        ),
                                    },
                                    pb.span(),
                                );
                            }
                            Some(p) => {
                                if let Some(why) = cannot_exercise(&drill, p, pack) {
                                    self.push(
                                        ModelProblem::DrillCannotOpen { message: why },
                                        pb.span(),
                                    );
                                }
                            }
                        }
                    }
                    if ok {
                        pack.drills.insert(drill.id.clone(), drill);
                    }
                }
                Err(problems) => {
                    for (message, span) in problems {
                        self.push(ModelProblem::Drill { message }, span);
                    }
                }
            }
        }
    }
}

/// Why `drill` cannot open an incident of `pb`, when it cannot.
fn cannot_exercise(drill: &Drill, pb: &Playbook, pack: &Pack) -> Option<String> {
    let kind = pb.detector.kind();
    if !drill.scenario.detectors().contains(&kind) {
        return Some(format!(
            "a `{}` drill cannot exercise playbook `{}`: its detector is `{kind}` (this scenario exercises {})",
            drill.scenario.as_str(),
            pb.id,
            drill.scenario.detectors().join(" or ")
        ));
    }
    if !pb.agents.is_empty() && !pb.agents.contains(&drill.agent) {
        return Some(format!(
            "playbook `{}` watches agents {} only; the drill's agent `{}` would never open its incident",
            pb.id,
            pb.agents.join(", "),
            drill.agent
        ));
    }
    let reaches = |tool: &str| {
        let system = pack.tools.get(tool).map(|t| t.system.as_str());
        (pb.tools.is_empty() || pb.tools.iter().any(|t| t == tool))
            && (pb.systems.is_empty() || system.is_some_and(|s| pb.systems.iter().any(|x| x == s)))
    };
    if !drill.steps.iter().any(|s| reaches(&s.tool)) {
        return Some(format!(
            "none of the drill's tools is watched by playbook `{}` (its `tools`/`systems` filters)",
            pb.id
        ));
    }
    if !pb.workflows.is_empty() {
        return Some(format!(
            "playbook `{}` watches runs of {} only; drill traffic runs outside workflow runs",
            pb.id,
            pb.workflows.join(", ")
        ));
    }
    None
}
