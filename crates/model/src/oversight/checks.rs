//! Checks across playbooks, once the whole pack is known: a quarantine group
//! must be able to approve for the agents it would hold, and two playbooks
//! of one detector should not fire on the same events with different
//! actions (two incidents; a pause beside a quarantine).

use std::collections::BTreeSet;

use super::{Playbook, PlaybookAction};
use crate::diagnostic::Diagnostic;
use crate::error::ModelProblem;
use crate::load::Cx;
use crate::pack::Pack;

impl Cx {
    pub(crate) fn check_playbooks(&mut self, pack: &Pack) {
        let mut pbs: Vec<&Playbook> = pack.playbooks.values().collect();
        pbs.sort_by_key(|p| p.at.span.start);
        for pb in &pbs {
            self.check_quarantine(pack, pb);
        }
        for (i, a) in pbs.iter().enumerate() {
            for b in &pbs[i + 1..] {
                if a.detector.kind() != b.detector.kind() || same_actions(a, b) {
                    continue;
                }
                if let Some(scope) = overlap(pack, a, b) {
                    let d = Diagnostic::new(&ModelProblem::PlaybooksOverlap {
                        first: a.id.clone(),
                        second: b.id.clone(),
                        detector: a.detector.kind(),
                        scope,
                        first_actions: actions(a),
                        second_actions: actions(b),
                    })
                    .at(b.at.clone())
                    .help("narrow one with `agents`, `tools`, `systems`, `workflows`, `policies` or `severities`, or give both the same actions");
                    self.report(d);
                }
            }
        }
    }

    fn check_quarantine(&mut self, pack: &Pack, pb: &Playbook) {
        let Some(group) = pb.actions.iter().find_map(|a| match a {
            PlaybookAction::Quarantine { group } => pack.approver_groups.get(group),
            _ => None,
        }) else {
            return;
        };
        let covered: Vec<&String> = if pb.agents.is_empty() {
            pack.agents.keys().collect()
        } else {
            pb.agents.iter().collect()
        };
        for agent_id in covered {
            let Some(agent) = pack.agents.get(agent_id) else {
                continue;
            };
            let excluded = if group.separation_of_duties {
                pack.agent_principals(agent_id)
            } else {
                Vec::new()
            };
            let eligible = group
                .members
                .iter()
                .filter(|m| !excluded.contains(m))
                .count();
            if eligible < group.quorum as usize {
                let d = Diagnostic::new(&ModelProblem::QuarantineCannotApprove {
                    playbook: pb.id.clone(),
                    group: group.id.clone(),
                    agent: agent_id.clone(),
                    eligible,
                    quorum: group.quorum,
                })
                .at(pb.at.clone())
                .help("name a group with people who may approve this agent's writes, or limit the playbook with `agents`");
                self.report(d);
                continue;
            }
            let team_owner = pack.teams.get(&agent.team).and_then(|t| t.owner.as_ref());
            let related = group.members.iter().any(|m| {
                Some(m) == team_owner
                    || pack.people.get(m).and_then(|p| p.team.as_ref()) == Some(&agent.team)
            });
            if !related {
                let d = Diagnostic::new(&ModelProblem::QuarantineOtherTeam {
                    playbook: pb.id.clone(),
                    group: group.id.clone(),
                    agent: agent_id.clone(),
                    team: agent.team.clone(),
                })
                .at(pb.at.clone())
                .help("people who know the agent's work should approve its quarantined writes: limit the playbook with `agents`, or use that team's group");
                self.report(d);
            }
        }
    }
}

fn same_actions(a: &Playbook, b: &Playbook) -> bool {
    a.actions.len() == b.actions.len() && a.actions.iter().all(|x| b.actions.contains(x))
}

fn actions(p: &Playbook) -> String {
    p.actions
        .iter()
        .map(|a| match a {
            PlaybookAction::Quarantine { group } => format!("quarantine to `{group}`"),
            other => other.as_str().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tools a playbook's `tools` and `systems` filters let through (`None`:
/// every tool).
fn tool_scope(pack: &Pack, p: &Playbook) -> Option<BTreeSet<String>> {
    if p.tools.is_empty() && p.systems.is_empty() {
        return None;
    }
    Some(
        pack.tools
            .values()
            .filter(|t| p.tools.is_empty() || p.tools.contains(&t.id))
            .filter(|t| p.systems.is_empty() || p.systems.contains(&t.system))
            .map(|t| t.id.clone())
            .collect(),
    )
}

/// Where two playbooks' filters meet, for people; `None` when they cannot
/// see the same event.
fn overlap(pack: &Pack, a: &Playbook, b: &Playbook) -> Option<String> {
    let mut scope = Vec::new();
    let mut dim = |name: &str, x: Option<BTreeSet<String>>, y: Option<BTreeSet<String>>| -> bool {
        let both: Option<Vec<String>> = match (x, y) {
            (None, None) => None,
            (Some(s), None) | (None, Some(s)) => Some(s.into_iter().collect()),
            (Some(s), Some(t)) => Some(s.intersection(&t).cloned().collect()),
        };
        match both {
            None => true,
            Some(v) if v.is_empty() => false,
            Some(v) => {
                scope.push(format!("{name} {}", v.join(", ")));
                true
            }
        }
    };
    let set = |v: &[String]| (!v.is_empty()).then(|| v.iter().cloned().collect::<BTreeSet<_>>());
    let sev = |p: &Playbook| {
        (!p.severities.is_empty())
            .then(|| p.severities.iter().map(|s| s.as_str().to_owned()).collect())
    };
    let pol = |p: &Playbook| {
        (!p.policies.is_empty()).then(|| p.policies.iter().map(|(id, _)| id.clone()).collect())
    };
    let meet = dim("agent", set(&a.agents), set(&b.agents))
        && dim("tool", tool_scope(pack, a), tool_scope(pack, b))
        && dim("workflow", set(&a.workflows), set(&b.workflows))
        && dim("policy", pol(a), pol(b))
        && dim("severity", sev(a), sev(b));
    meet.then(|| {
        if scope.is_empty() {
            "every event".to_owned()
        } else {
            scope.join("; ")
        }
    })
}
