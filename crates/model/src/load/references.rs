//! References between entries, checked once every entry is known: unknown
//! ids (with a suggestion), escalation cycles and step cycles.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::*;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::error::ModelProblem;
use crate::pack::{Pack, Step};

impl Cx {
    pub(crate) fn unknown<'a>(
        &mut self,
        kind: &'static str,
        id: &Spanned<String>,
        candidates: impl IntoIterator<Item = &'a String>,
    ) {
        let mut d = Diagnostic::new(&ModelProblem::UnknownReference {
            kind,
            id: id.get_ref().clone(),
        })
        .at(self.loc(id.span()))
        .label(format!("no {kind} has this id"));
        if let Some(s) = did_you_mean(id.get_ref(), candidates.into_iter().map(String::as_str)) {
            d = d.help(format!("did you mean `{s}`?"));
        }
        self.report(d);
    }

    /// References between top-level entries, now that every entry is known.
    pub(super) fn check_references(&mut self, pack: &Pack) {
        for r in std::mem::take(&mut self.refs) {
            let known = match r.kind {
                RefKind::Team => pack.teams.contains_key(r.id.get_ref()),
                RefKind::Person => pack.people.contains_key(r.id.get_ref()),
                RefKind::Owner => pack.is_owner(r.id.get_ref()),
                RefKind::System => pack.systems.contains_key(r.id.get_ref()),
                RefKind::Group => pack.approver_groups.contains_key(r.id.get_ref()),
                RefKind::McpServer => pack.mcp_servers.contains_key(r.id.get_ref()),
                RefKind::Route => {
                    pack.routes.contains_key(r.id.get_ref())
                        || self.unloaded_routes.contains(r.id.get_ref())
                }
                RefKind::Agent => pack.agents.contains_key(r.id.get_ref()),
                RefKind::Workflow => pack.workflows.contains_key(r.id.get_ref()),
                RefKind::Tool => {
                    pack.tools.contains_key(r.id.get_ref())
                        || pack.unloaded_tools.contains(r.id.get_ref())
                }
            };
            if known {
                continue;
            }
            match r.kind {
                RefKind::Team => self.unknown("team", &r.id, pack.teams.keys()),
                RefKind::Person => self.unknown("person", &r.id, pack.people.keys()),
                RefKind::Owner => self.unknown(
                    "owner (person or team)",
                    &r.id,
                    pack.people.keys().chain(pack.teams.keys()),
                ),
                RefKind::System => self.unknown("system", &r.id, pack.systems.keys()),
                RefKind::Group => {
                    self.unknown("approver group", &r.id, pack.approver_groups.keys())
                }
                RefKind::McpServer => self.unknown("MCP server", &r.id, pack.mcp_servers.keys()),
                RefKind::Route => self.unknown("route", &r.id, pack.routes.keys()),
                RefKind::Agent => self.unknown("agent", &r.id, pack.agents.keys()),
                RefKind::Tool => self.unknown("tool", &r.id, pack.tools.keys()),
                RefKind::Workflow => self.unknown("workflow", &r.id, pack.workflows.keys()),
            }
        }
        if let Some(chain) = escalation_cycle(pack) {
            let at = pack.approver_groups.get(&chain[0]).map(|g| g.at.clone());
            let d = Diagnostic::new(&ModelProblem::EscalationCycle { chain })
                .at_opt(at)
                .help("an escalation chain must end at a group that does not escalate");
            self.report(d);
        }
        self.diags
            .sort_by_key(|d| d.location().map_or(0, |l| l.span.start));
    }
}

#[derive(Clone, Copy)]
pub(crate) enum RefKind {
    Team,
    Person,
    Owner,
    System,
    Group,
    McpServer,
    Route,
    Agent,
    Tool,
    Workflow,
}

pub(super) struct Ref {
    pub(super) kind: RefKind,
    pub(super) id: Spanned<String>,
}

fn escalation_cycle(pack: &Pack) -> Option<Vec<String>> {
    for start in pack.approver_groups.keys() {
        let mut path = vec![start.clone()];
        let mut cur = start;
        while let Some(next) = pack
            .approver_groups
            .get(cur)
            .and_then(|g| g.escalation.as_ref())
            .map(|e| &e.to)
        {
            if let Some(pos) = path.iter().position(|p| p == next) {
                let mut cycle = path.split_off(pos);
                cycle.push(next.clone());
                // Report each loop once, from its smallest id.
                let min = cycle.iter().min().cloned();
                return (cycle.first() == min.as_ref()).then_some(cycle);
            }
            path.push(next.clone());
            cur = next;
        }
    }
    None
}

/// A cycle among `after` links, as a path whose first step is repeated at the end.
pub(super) fn find_cycle(steps: &[Step]) -> Option<Vec<String>> {
    let index: BTreeMap<&str, &Step> = steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for s in steps {
        let mut stack: Vec<&str> = Vec::new();
        if let Some(c) = visit(s.id.as_str(), &index, &mut done, &mut stack) {
            return Some(c);
        }
    }
    None
}

fn visit<'a>(
    id: &'a str,
    index: &BTreeMap<&'a str, &'a Step>,
    done: &mut BTreeSet<&'a str>,
    stack: &mut Vec<&'a str>,
) -> Option<Vec<String>> {
    if let Some(pos) = stack.iter().position(|s| *s == id) {
        let mut cycle: Vec<String> = stack[pos..].iter().map(|s| (*s).to_owned()).collect();
        cycle.push(id.to_owned());
        return Some(cycle);
    }
    if done.contains(id) {
        return None;
    }
    stack.push(id);
    if let Some(step) = index.get(id) {
        for dep in &step.after {
            if let Some(c) = visit(dep.as_str(), index, done, stack) {
                return Some(c);
            }
        }
    }
    stack.pop();
    done.insert(id);
    None
}
