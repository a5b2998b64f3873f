//! Decision test cases (`tests/*.toml`) and the request context they share
//! with `warden decide`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, ValueDeserializer};

use crate::diagnostic::Diagnostic;
use crate::error::ModelProblem;
use crate::pack::Pack;
use crate::source::{Location, SourceFile};
use crate::vocab::{DenyCode, Outcome};

/// Who or what started the work an action belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Kind of trigger: `ticket`, `schedule`, `chat`, ...
    pub source: String,
    /// The ticket number, message id, schedule name, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The person who asked, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
}

/// The trigger source of drill traffic. Only Warden's drill runner sets it:
/// the API refuses it from callers, so drill records cannot be forged to
/// hide real traffic from statistics.
pub const DRILL_SOURCE: &str = "drill";

impl Trigger {
    /// The trigger of drill `id`'s traffic.
    pub fn drill(id: &str) -> Self {
        Self {
            source: DRILL_SOURCE.to_owned(),
            reference: Some(id.to_owned()),
            requester: None,
        }
    }

    /// The drill id, when this is drill traffic.
    pub fn drill_id(&self) -> Option<&str> {
        (self.source == DRILL_SOURCE)
            .then_some(self.reference.as_deref())
            .flatten()
    }
}

/// What a request carries besides agent, tool and arguments. Policies see it
/// as `context.workflow`, `context.run` (`{id, steps}`), `context.trigger`,
/// `context.usage` and `context.facts`.
///
/// Written in test cases and `decide --context` as
/// `{ run = { id = "run_1", steps = { validate = { period = "2026-11" } } } }`
/// or `{ run = "run_1" }`; serialized with `steps` beside `run`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRequestContext")]
pub struct RequestContext {
    /// The workflow of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// What started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// Each counter's value in its window *before* this request (a
    /// missing counter is 0). Policies see it with this request added, as
    /// `context.usage.<counter>`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub usage: std::collections::BTreeMap<String, i64>,
    /// What the run's succeeded steps exposed, by step id (each an object
    /// of exposed arguments, with exposed result fields under `result`):
    /// `context.run.steps`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub steps: std::collections::BTreeMap<String, serde_json::Value>,
    /// The facts Warden fetched for this request: `context.facts`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub facts: std::collections::BTreeMap<String, serde_json::Value>,
}

/// [`RequestContext`] as written: `run` is an id or `{ id, steps }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequestContext {
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default)]
    run: Option<RawRun>,
    #[serde(default)]
    trigger: Option<Trigger>,
    #[serde(default)]
    usage: std::collections::BTreeMap<String, i64>,
    #[serde(default)]
    steps: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    facts: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRun {
    Id(String),
    Run(RawRunRecord),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunRecord {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    steps: std::collections::BTreeMap<String, serde_json::Value>,
}

impl TryFrom<RawRequestContext> for RequestContext {
    type Error = String;

    fn try_from(raw: RawRequestContext) -> Result<Self, String> {
        let (run, mut steps) = match raw.run {
            None => (None, Default::default()),
            Some(RawRun::Id(id)) => (Some(id), Default::default()),
            Some(RawRun::Run(r)) => (Some(r.id.unwrap_or_default()), r.steps),
        };
        for (k, v) in raw.steps {
            steps.insert(k, v);
        }
        if let Some((k, _)) = steps.iter().find(|(_, v)| !v.is_object()) {
            return Err(format!(
                "`run.steps.{k}` must be a table of the fields step `{k}` exposed"
            ));
        }
        if !steps.is_empty() && run.is_none() {
            return Err("`steps` belongs to a run: write `run = { steps = { ... } }`".into());
        }
        Ok(Self {
            workflow: raw.workflow,
            run,
            trigger: raw.trigger,
            usage: raw.usage,
            steps,
            facts: raw.facts,
        })
    }
}

/// What a test case expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The outcome.
    pub decision: Outcome,
    /// The deny code, when checked.
    pub code: Option<DenyCode>,
    /// The determining policy ids (any order), when checked.
    pub policies: Option<Vec<String>>,
    /// The approval groups (any order), when checked.
    pub groups: Option<Vec<String>>,
}

/// One decision test case.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// Its name (unique in the pack).
    pub name: String,
    /// The agent making the request.
    pub agent: String,
    /// The tool requested.
    pub tool: String,
    /// The arguments.
    pub args: serde_json::Value,
    /// Approver groups whose approval exists.
    pub approvals: Vec<String>,
    /// Run, workflow and trigger.
    pub context: RequestContext,
    /// What must come out.
    pub expect: Expectation,
    /// Where it is declared.
    pub at: Location,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Spanned<String>,
    agent: Spanned<String>,
    tool: Spanned<String>,
    #[serde(default = "empty_object")]
    args: serde_json::Value,
    #[serde(default)]
    approvals: Vec<Spanned<String>>,
    #[serde(default)]
    context: RequestContext,
    expect: Spanned<String>,
    #[serde(default)]
    code: Option<Spanned<String>>,
    #[serde(default)]
    policies: Option<Vec<String>>,
    #[serde(default)]
    groups: Option<Vec<Spanned<String>>>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// Reads every `[[case]]` of the pack's test files, with a diagnostic for each
/// case that cannot be read.
pub fn load_test_cases(pack: &Pack) -> (Vec<TestCase>, Vec<Diagnostic>) {
    let mut cases = Vec::new();
    let mut diags = Vec::new();
    for file in &pack.test_files {
        read_file(pack, file, &mut cases, &mut diags);
    }
    let mut seen: std::collections::BTreeMap<String, Location> = Default::default();
    for c in &cases {
        if let Some(first) = seen.get(&c.name) {
            diags.push(
                Diagnostic::new(&ModelProblem::DuplicateId {
                    kind: "test case",
                    id: c.name.clone(),
                })
                .at(c.at.clone())
                .help(format!("first declared at {first}")),
            );
        } else {
            seen.insert(c.name.clone(), c.at.clone());
        }
    }
    (cases, diags)
}

fn read_file(
    pack: &Pack,
    file: &Arc<SourceFile>,
    cases: &mut Vec<TestCase>,
    diags: &mut Vec<Diagnostic>,
) {
    let loc = |span| Location::new(file, span);
    let (doc, errors) = DeTable::parse_recoverable(file.text());
    for e in errors {
        diags.push(
            Diagnostic::new(&ModelProblem::Syntax {
                message: e.message().trim_end_matches('\n').to_owned(),
            })
            .at(loc(e.span().unwrap_or(0..0))),
        );
    }
    for (key, value) in doc.get_ref() {
        if key.get_ref() != "case" {
            diags.push(
                Diagnostic::new(&ModelProblem::UnknownSection {
                    key: key.get_ref().to_string(),
                })
                .at(loc(key.span()))
                .help("a test file holds only `[[case]]` tables"),
            );
            continue;
        }
        let Some(items) = value.get_ref().as_array() else {
            diags.push(
                Diagnostic::new(&ModelProblem::SectionType {
                    key: "case".to_owned(),
                    expected: "an array of tables, written `[[case]]`",
                })
                .at(loc(value.span())),
            );
            continue;
        };
        for item in items.iter() {
            match RawCase::deserialize(ValueDeserializer::from(item.clone())) {
                Ok(raw) => {
                    // A case naming what the pack does not declare would
                    // pass for the wrong reason (an unknown agent is
                    // denied): it is an error, like the manifest's.
                    let unknown = unknown_references(pack, &raw, &loc);
                    if !unknown.is_empty() {
                        diags.extend(unknown);
                        continue;
                    }
                    match resolve(raw, &loc) {
                        Ok(c) => cases.push(c),
                        Err(d) => diags.push(*d),
                    }
                }
                Err(e) => diags.push(
                    Diagnostic::new(&ModelProblem::Shape {
                        message: e.message().trim_end_matches('\n').to_owned(),
                    })
                    .at(loc(e.span().unwrap_or(item.span()))),
                ),
            }
        }
    }
}

/// Every agent, tool, workflow and approver group a case names that the
/// pack does not declare.
fn unknown_references(
    pack: &Pack,
    raw: &RawCase,
    loc: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut check = |kind: &'static str, known: bool, id: &Spanned<String>| {
        if !known {
            out.push(
                Diagnostic::new(&ModelProblem::UnknownReference {
                    kind,
                    id: id.get_ref().clone(),
                })
                .at(loc(id.span())),
            );
        }
    };
    // A case may name an unknown agent or tool on purpose, to test that it
    // is denied: it says so by expecting that very code.
    let expects = |code: &str| raw.code.as_ref().is_some_and(|c| c.get_ref() == code);
    check(
        "agent",
        pack.agents.contains_key(raw.agent.get_ref()) || expects("unknown_agent"),
        &raw.agent,
    );
    check(
        "tool",
        pack.tools.contains_key(raw.tool.get_ref()) || expects("unknown_tool"),
        &raw.tool,
    );
    for g in raw.approvals.iter().chain(raw.groups.iter().flatten()) {
        check(
            "approver group",
            pack.approver_groups.contains_key(g.get_ref()),
            g,
        );
    }
    if let Some(w) = &raw.context.workflow
        && !pack.workflows.contains_key(w)
    {
        out.push(
            Diagnostic::new(&ModelProblem::UnknownReference {
                kind: "workflow",
                id: w.clone(),
            })
            .at(loc(raw.name.span())),
        );
    }
    out
}

fn resolve(
    raw: RawCase,
    loc: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Result<TestCase, Box<Diagnostic>> {
    let name = raw.name.get_ref().clone();
    let bad = |span, message: String| {
        Box::new(
            Diagnostic::new(&ModelProblem::BadTestCase {
                case: name.clone(),
                message,
            })
            .at(loc(span)),
        )
    };
    let decision: Outcome = raw
        .expect
        .get_ref()
        .parse()
        .map_err(|e: crate::vocab::UnknownWord| bad(raw.expect.span(), e.to_string()))?;
    let code = match &raw.code {
        Some(c) => Some(
            c.get_ref()
                .parse::<DenyCode>()
                .map_err(|e| bad(c.span(), e.to_string()))?,
        ),
        None => None,
    };
    if decision != Outcome::Deny
        && let Some(c) = &raw.code
    {
        return Err(bad(
            c.span(),
            "`code` is only checked when `expect = \"deny\"`".to_owned(),
        ));
    }
    Ok(TestCase {
        at: loc(raw.name.span()),
        name: raw.name.into_inner(),
        agent: raw.agent.into_inner(),
        tool: raw.tool.into_inner(),
        args: raw.args,
        approvals: raw.approvals.into_iter().map(Spanned::into_inner).collect(),
        context: raw.context,
        expect: Expectation {
            decision,
            code,
            policies: raw.policies,
            groups: raw
                .groups
                .map(|g| g.into_iter().map(Spanned::into_inner).collect()),
        },
    })
}
