//! Reading policy files: ids, locations, annotations and approval gates.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Effect as CedarEffect, Policy, PolicyId, PolicySet};
use serde::Serialize;
use serde_json::Value;
use warden_model::{Diagnostic, Location, Pack, Risk, SourceFile, valid_id};

use crate::error::PolicyProblem;

/// Permit or forbid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Grants.
    Permit,
    /// Takes away (wins over permits).
    Forbid,
}

/// An approval gate: a forbid that approval by `group` lifts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    /// The approver group.
    pub group: String,
    /// Approvals needed from it.
    pub quorum: u32,
}

/// What a decision says about one policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    /// `@id`, or `<file>#<n>` when it has none.
    pub id: String,
    /// Permit or forbid.
    pub effect: Effect,
    /// Every annotation (`@risk`, `@reason`, ...), as written.
    pub annotations: BTreeMap<String, String>,
    /// Set when the policy is an approval gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// `file:line:column`.
    pub location: String,
    /// Position in the pack (file order, then text order): decisions list
    /// their policies in this order.
    #[serde(skip)]
    pub(crate) ordinal: usize,
}

impl PolicyInfo {
    /// `@reason`, when given.
    pub fn reason(&self) -> Option<&str> {
        self.annotations.get("reason").map(String::as_str)
    }

    /// Whether the policy is on trial (`@shadow`): decisions are made
    /// without it, and what it would change is reported beside them.
    pub fn is_shadow(&self) -> bool {
        self.annotations.contains_key("shadow")
    }
}

/// How a policy reads `context.approvals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApprovalsUse {
    /// It does not.
    None,
    /// It is an approval gate whose only use is one `unless` clause that is
    /// exactly `context.approvals.contains("<its group>")`: adding its group
    /// to the approvals makes it false, without evaluating anything new.
    CanonicalGate,
    /// Any other use.
    Other,
}

/// One policy as loaded: the Cedar policy (re-identified) and what Warden
/// knows of it.
#[derive(Debug, Clone)]
pub(crate) struct LoadedPolicy {
    pub policy: Policy,
    pub info: Arc<PolicyInfo>,
    pub file: Arc<SourceFile>,
    /// Byte offset of the policy text in its file.
    pub offset: usize,
    pub text: String,
    pub approvals_use: ApprovalsUse,
}

/// Parses every policy file of `pack`, reporting all syntax and annotation
/// problems. Policies with problems in their annotations are still returned
/// (so schema validation runs on them too), but the diagnostics are errors.
pub(crate) fn load_policies(pack: &Pack, diags: &mut Vec<Diagnostic>) -> Vec<LoadedPolicy> {
    let mut out: Vec<LoadedPolicy> = Vec::new();
    let mut ids: BTreeMap<String, Location> = BTreeMap::new();
    for file in &pack.policy_files {
        let pset = match PolicySet::from_str(file.text()) {
            Ok(p) => p,
            Err(errors) => {
                for e in errors.iter() {
                    diags.push(from_cedar(
                        file,
                        e,
                        PolicyProblem::CedarSyntax {
                            message: e.to_string(),
                        },
                    ));
                }
                continue;
            }
        };
        for t in pset.templates() {
            let at = locate(file, &t.to_string(), 0).map_or_else(
                || Location::new(file, 0..0),
                |o| Location::new(file, o..o + t.to_string().len()),
            );
            diags.push(Diagnostic::new(&PolicyProblem::Template).at(at));
        }
        // Cedar numbers policies `policy0`, `policy1`, ... in file order.
        let mut policies: Vec<&Policy> = pset.policies().collect();
        policies.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        let mut cursor = 0;
        for (n, p) in policies.into_iter().enumerate() {
            let text = p.to_string();
            let offset = locate(file, &text, cursor).unwrap_or(cursor);
            cursor = offset + text.len();
            let head = Location::new(file, offset..offset + first_line_len(&text));
            let id = match p.annotation("id") {
                Some(id) if valid_id(id) => id.to_owned(),
                Some(id) => {
                    diags.push(
                        Diagnostic::new(&PolicyProblem::InvalidPolicyId { id: id.to_owned() })
                            .at(head.clone()),
                    );
                    continue;
                }
                None => {
                    let id = format!("{}#{}", file.name(), n + 1);
                    diags.push(
                        Diagnostic::new(&PolicyProblem::PolicyWithoutId { id: id.clone() })
                            .at(head.clone())
                            .help("add `@id(\"...\")` so tests, decisions and evidence keep naming it"),
                    );
                    id
                }
            };
            if let Some(first) = ids.get(&id) {
                diags.push(
                    Diagnostic::new(&PolicyProblem::DuplicatePolicyId { id: id.clone() })
                        .at(head.clone())
                        .help(format!("first declared at {first}")),
                );
                continue;
            }
            ids.insert(id.clone(), head.clone());
            let gate = gate_of(pack, p, &id, &head, diags);
            let approvals_use = approvals_use(p, gate.as_ref());
            if let Some(risk) = p.annotation("risk")
                && risk.parse::<Risk>().is_err()
            {
                diags.push(
                    Diagnostic::new(&PolicyProblem::InvalidRisk {
                        value: risk.to_owned(),
                    })
                    .at(head.clone()),
                );
            }
            let (line, col) = head.line_col();
            let info = PolicyInfo {
                id: id.clone(),
                effect: match p.effect() {
                    CedarEffect::Permit => Effect::Permit,
                    CedarEffect::Forbid => Effect::Forbid,
                },
                annotations: p
                    .annotations()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                gate,
                location: format!("{}:{line}:{col}", file.name()),
                ordinal: out.len(),
            };
            out.push(LoadedPolicy {
                policy: p.new_id(PolicyId::new(id)),
                info: Arc::new(info),
                file: Arc::clone(file),
                offset,
                text,
                approvals_use,
            });
        }
    }
    out
}

fn first_line_len(text: &str) -> usize {
    // Point at the annotations and effect, not the whole policy.
    text.lines()
        .take_while(|l| l.trim_start().starts_with('@'))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        + text
            .lines()
            .find(|l| !l.trim_start().starts_with('@'))
            .map_or(0, str::len)
}

fn locate(file: &SourceFile, text: &str, from: usize) -> Option<usize> {
    file.text().get(from..)?.find(text).map(|o| o + from)
}

/// Reads `@approval` / `@quorum` and checks the gate's shape.
fn gate_of(
    pack: &Pack,
    p: &Policy,
    id: &str,
    at: &Location,
    diags: &mut Vec<Diagnostic>,
) -> Option<Gate> {
    let quorum = p.annotation("quorum");
    let Some(group) = p.annotation("approval") else {
        if quorum.is_some() {
            diags.push(Diagnostic::new(&PolicyProblem::QuorumWithoutApproval).at(at.clone()));
        }
        return None;
    };
    if p.effect() == CedarEffect::Permit {
        diags.push(
            Diagnostic::new(&PolicyProblem::ApprovalOnPermit)
                .at(at.clone())
                .help("write the condition as a `forbid ... unless { context.approvals.contains(\"group\") }`"),
        );
        return None;
    }
    let Some(g) = pack.approver_groups.get(group) else {
        let mut d = Diagnostic::new(&PolicyProblem::UnknownApprovalGroup {
            group: group.to_owned(),
        })
        .at(at.clone());
        if let Some(s) =
            warden_model::did_you_mean(group, pack.approver_groups.keys().map(String::as_str))
        {
            d = d.help(format!("did you mean `{s}`?"));
        }
        diags.push(d);
        return None;
    };
    if !lifts_with(p, group) {
        diags.push(
            Diagnostic::new(&PolicyProblem::GateShape {
                id: id.to_owned(),
                group: group.to_owned(),
            })
            .at(at.clone())
            .help(format!(
                "an approval gate is written `forbid (...) when {{ <condition> }} unless {{ context.approvals.contains(\"{group}\") }}`"
            )),
        );
        return None;
    }
    let quorum = match quorum {
        None => g.quorum,
        Some(q) => match q.parse::<u32>() {
            Ok(n) if n >= 1 && n as usize <= g.members.len() => n,
            Ok(n) if n >= 1 => {
                diags.push(
                    Diagnostic::new(&PolicyProblem::QuorumTooLarge {
                        group: group.to_owned(),
                        quorum: n,
                        members: g.members.len(),
                    })
                    .at(at.clone()),
                );
                return None;
            }
            _ => {
                diags.push(
                    Diagnostic::new(&PolicyProblem::InvalidQuorum {
                        value: q.to_owned(),
                    })
                    .at(at.clone()),
                );
                return None;
            }
        },
    };
    Some(Gate {
        group: group.to_owned(),
        quorum,
    })
}

/// Whether an `unless` clause of `p` tests `context.approvals.contains("<group>")`.
fn lifts_with(p: &Policy, group: &str) -> bool {
    let Ok(est) = p.to_json() else {
        return false;
    };
    est.get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|conds| {
            conds.iter().any(|c| {
                c.get("kind").and_then(Value::as_str) == Some("unless")
                    && c.get("body").is_some_and(|b| mentions_approval(b, group))
            })
        })
}

/// Classifies how `p` reads `context.approvals` (see [`ApprovalsUse`]).
fn approvals_use(p: &Policy, gate: Option<&Gate>) -> ApprovalsUse {
    let Ok(est) = p.to_json() else {
        return ApprovalsUse::Other;
    };
    let conds = est.get("conditions").and_then(Value::as_array);
    let mentions =
        conds.is_some_and(|c| c.iter().any(|c| c.get("body").is_some_and(reads_approvals)));
    if !mentions {
        return ApprovalsUse::None;
    }
    let Some(gate) = gate else {
        return ApprovalsUse::Other;
    };
    let canonical = serde_json::json!({"contains": {
        "left": {".": {"left": {"Var": "context"}, "attr": "approvals"}},
        "right": {"Value": gate.group},
    }});
    let mut canonical_unless = 0;
    for c in conds.into_iter().flatten() {
        let body = c.get("body");
        match c.get("kind").and_then(Value::as_str) {
            Some("unless") if body == Some(&canonical) => canonical_unless += 1,
            _ if body.is_some_and(reads_approvals) => return ApprovalsUse::Other,
            _ => {}
        }
    }
    if canonical_unless == 1 {
        ApprovalsUse::CanonicalGate
    } else {
        ApprovalsUse::Other
    }
}

/// Whether an expression reads `context.approvals` (or tests `has approvals`).
fn reads_approvals(expr: &Value) -> bool {
    let on_context = |m: &Value| {
        m.get("attr").and_then(Value::as_str) == Some("approvals")
            && m.get("left")
                .and_then(|v| v.get("Var"))
                .and_then(Value::as_str)
                == Some("context")
    };
    match expr {
        Value::Object(m) => {
            m.get(".").is_some_and(on_context)
                || m.get("has").is_some_and(on_context)
                || m.values().any(reads_approvals)
        }
        Value::Array(a) => a.iter().any(reads_approvals),
        _ => false,
    }
}

fn mentions_approval(expr: &Value, group: &str) -> bool {
    if let Some(contains) = expr.get("contains") {
        let left_is_approvals = contains.get("left").is_some_and(|l| {
            l.get(".").is_some_and(|dot| {
                dot.get("attr").and_then(Value::as_str) == Some("approvals")
                    && dot
                        .get("left")
                        .and_then(|v| v.get("Var"))
                        .and_then(Value::as_str)
                        == Some("context")
            })
        });
        let right_is_group = contains
            .get("right")
            .and_then(|r| r.get("Value"))
            .and_then(Value::as_str)
            == Some(group);
        if left_is_approvals && right_is_group {
            return true;
        }
    }
    match expr {
        Value::Object(m) => m.values().any(|v| mentions_approval(v, group)),
        Value::Array(a) => a.iter().any(|v| mentions_approval(v, group)),
        _ => false,
    }
}

/// A diagnostic from a Cedar error, placed at its first label.
pub(crate) fn from_cedar(
    file: &Arc<SourceFile>,
    err: &dyn miette::Diagnostic,
    problem: PolicyProblem,
) -> Diagnostic {
    let label = err.labels().and_then(|mut l| l.next());
    let mut d = Diagnostic::new(&problem);
    if let Some(l) = &label {
        d = d.at(Location::new(file, l.offset()..l.offset() + l.len()));
        if let Some(text) = l.label() {
            d = d.label(text);
        }
    } else {
        d = d.at(Location::new(file, 0..0));
    }
    if let Some(h) = err.help() {
        d = d.help(h.to_string());
    }
    d
}
