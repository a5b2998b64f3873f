//! Oversight sections of the pack: on-call routes, rotations and playbooks.
//!
//! A playbook maps a detector (a misbehaviour pattern with its parameters)
//! to an owner, a response window and ordered actions. The owner's routes
//! are where its incidents are paged: the first route first, the next one
//! each time the response window is missed.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::execute::{ValueSource, parse_duration, url_source};
use crate::mcp::Problem;
use crate::source::Location;

mod checks;
mod drill;
mod playbook;

pub(crate) use drill::RawDrill;
pub use drill::{Drill, DrillStep, Fault, Scenario};
pub(crate) use playbook::RawPlaybook;
pub use playbook::{Detector, IncidentSeverity, Playbook, PlaybookAction, WORKFLOW_OWNER};

/// The PagerDuty Events API v2 endpoint, used when a `pagerduty` route
/// gives no `url`.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// `[[routes]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub id: Spanned<String>,
    pub kind: Spanned<String>,
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    url_env: Option<Spanned<String>>,
    #[serde(default)]
    secret_env: Option<Spanned<String>>,
    #[serde(default)]
    secret_file: Option<Spanned<std::path::PathBuf>>,
    #[serde(default)]
    routing_key_env: Option<Spanned<String>>,
    #[serde(default)]
    routing_key_file: Option<Spanned<std::path::PathBuf>>,
    #[serde(default)]
    description: Option<String>,
}

/// How a route delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// JSON POSTed to a URL, signed with HMAC-SHA256 when it has a secret.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// PagerDuty Events API v2 with a routing key.
    PagerDuty,
}

impl RouteKind {
    /// The word written in packs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::PagerDuty => "pagerduty",
        }
    }
}

/// Where an owner is paged.
#[derive(Debug, Clone)]
pub struct Route {
    /// Id, e.g. `ops-pager`.
    pub id: String,
    /// How it delivers.
    pub kind: RouteKind,
    /// Where to POST.
    pub url: ValueSource,
    /// The webhook's HMAC key.
    pub secret: Option<ValueSource>,
    /// The PagerDuty routing (integration) key.
    pub routing_key: Option<ValueSource>,
    /// What it is.
    pub description: Option<String>,
    /// Where it is declared.
    pub at: Location,
}

pub(crate) fn secret_source(
    env: Option<Spanned<String>>,
    file: Option<Spanned<std::path::PathBuf>>,
    what: &str,
    problems: &mut Vec<Problem>,
) -> Option<ValueSource> {
    match (env, file) {
        (None, None) => None,
        (Some(e), None) if crate::load::valid_env_name(e.get_ref()) => {
            Some(ValueSource::Env(e.into_inner()))
        }
        (Some(e), None) => {
            problems.push((
                format!("`{}` is not an environment variable name", e.get_ref()),
                e.span(),
            ));
            None
        }
        (None, Some(f)) => Some(ValueSource::File(f.into_inner())),
        (Some(e), Some(_)) => {
            problems.push((
                format!("give `{what}_env` or `{what}_file`, not both"),
                e.span(),
            ));
            None
        }
    }
}

impl RawRoute {
    pub(crate) fn resolve(self, at: Location) -> Result<Route, Vec<Problem>> {
        let mut problems = Vec::new();
        let span = self.id.span();
        let kind = match self.kind.get_ref().as_str() {
            "webhook" => RouteKind::Webhook,
            "slack" => RouteKind::Slack,
            "pagerduty" => RouteKind::PagerDuty,
            other => {
                problems.push((
                    format!("unknown route kind `{other}`; expected webhook, slack or pagerduty"),
                    self.kind.span(),
                ));
                RouteKind::Webhook
            }
        };
        let url = if kind == RouteKind::PagerDuty && self.url.is_none() && self.url_env.is_none() {
            Some(ValueSource::Literal(PAGERDUTY_EVENTS_URL.to_owned()))
        } else {
            url_source(self.url, self.url_env, "a route", &span, &mut problems)
        };
        let secret = secret_source(self.secret_env, self.secret_file, "secret", &mut problems);
        let routing_key = secret_source(
            self.routing_key_env,
            self.routing_key_file,
            "routing_key",
            &mut problems,
        );
        match kind {
            RouteKind::PagerDuty if routing_key.is_none() => problems.push((
                "a pagerduty route needs `routing_key_env` or `routing_key_file`".to_owned(),
                span.clone(),
            )),
            RouteKind::Webhook | RouteKind::Slack if routing_key.is_some() => problems.push((
                "`routing_key_*` applies to pagerduty routes only".to_owned(),
                span.clone(),
            )),
            _ => {}
        }
        if kind != RouteKind::Webhook && secret.is_some() {
            problems.push((
                "`secret_*` signs webhook routes only (Slack and PagerDuty authenticate by URL and routing key)".to_owned(),
                span.clone(),
            ));
        }
        match (url, problems.is_empty()) {
            (Some(url), true) => Ok(Route {
                id: self.id.into_inner(),
                kind,
                url,
                secret,
                routing_key,
                description: self.description,
                at,
            }),
            _ => Err(problems),
        }
    }
}

/// `rotation = { people = [...], every = "7d", start = "..." }` on a team.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRotation {
    pub people: Vec<Spanned<String>>,
    every: Spanned<String>,
    start: Spanned<String>,
}

/// Who of a team is on call when: `people` take turns of `every`, the
/// first one's turn beginning at `start`.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// In turn order.
    pub people: Vec<String>,
    /// Length of a turn.
    pub every: Duration,
    /// Seconds since the Unix epoch when the first turn began.
    pub start_unix: i64,
}

impl Rotation {
    /// Who is on call at `unix` seconds (the first person before `start`).
    pub fn on_call(&self, unix: i64) -> Option<&str> {
        let turn = self.every.as_secs().max(1) as i64;
        let n = self.people.len() as i64;
        if n == 0 {
            return None;
        }
        let idx = (unix - self.start_unix).max(0) / turn % n;
        self.people.get(idx as usize).map(String::as_str)
    }
}

impl RawRotation {
    pub(crate) fn resolve(self, problems: &mut Vec<Problem>) -> Option<Rotation> {
        if self.people.is_empty() {
            problems.push((
                "a rotation needs at least one person".to_owned(),
                self.every.span(),
            ));
        }
        let every = parse_duration(Some(&self.every), Duration::ZERO, problems);
        if every.is_zero() {
            problems.push((
                "`every` must be a positive duration, e.g. `7d`".to_owned(),
                self.every.span(),
            ));
        }
        let start = match humantime::parse_rfc3339_weak(self.start.get_ref()) {
            Ok(t) => t
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            Err(_) => {
                problems.push((
                    format!(
                        "invalid time `{}`; write e.g. `2026-11-30T09:00:00Z`",
                        self.start.get_ref()
                    ),
                    self.start.span(),
                ));
                0
            }
        };
        Some(Rotation {
            people: self.people.into_iter().map(Spanned::into_inner).collect(),
            every,
            start_unix: start,
        })
    }
}

/// Kinds of data a tool may declare its results contain
/// (`output_may_contain`), so the `unusual_output` scan does not flag them.
pub const OUTPUT_DATA_KINDS: &[&str] = crate::redaction::SCANNED_KINDS;

use crate::diagnostic::Diagnostic;
use crate::error::ModelProblem;
use crate::load::{Cx, RefKind};
use crate::pack::Pack;

impl Pack {
    /// Who an incident of `pb` belongs to: its owner, or for `owner =
    /// "workflow"` the owner of the event's workflow, else the agent's
    /// owner, else the system's owner.
    pub fn incident_owner(
        &self,
        pb: &Playbook,
        workflow: Option<&str>,
        agent: Option<&str>,
        system: Option<&str>,
    ) -> String {
        if !pb.owner_is_workflow() {
            return pb.owner.clone();
        }
        workflow
            .and_then(|w| self.workflows.get(w))
            .and_then(|w| w.owner.clone())
            .or_else(|| {
                agent
                    .and_then(|a| self.agents.get(a))
                    .map(|a| a.owner.clone())
            })
            .or_else(|| {
                system
                    .and_then(|s| self.systems.get(s))
                    .map(|s| s.owner.clone())
            })
            .unwrap_or_else(|| pb.owner.clone())
    }
}

impl Cx {
    pub(crate) fn rotation(&mut self, r: Spanned<RawRotation>) -> Option<Rotation> {
        let raw = r.into_inner();
        for p in &raw.people {
            self.reference(RefKind::Person, Some(p));
        }
        let mut problems = Vec::new();
        let rotation = raw.resolve(&mut problems);
        let ok = problems.is_empty();
        for (message, span) in problems {
            self.push(ModelProblem::Route { message }, span);
        }
        rotation.filter(|_| ok)
    }

    pub(crate) fn resolve_oversight(
        &mut self,
        routes: Vec<(RawRoute, Range<usize>)>,
        playbooks: Vec<(RawPlaybook, Range<usize>)>,
        pack: &mut Pack,
    ) {
        for (r, span) in routes {
            if self.check_id("route", &r.id, &pack.routes, |v| &v.at) {
                let id = r.id.get_ref().clone();
                match r.resolve(self.loc(span)) {
                    Ok(route) => {
                        pack.routes.insert(route.id.clone(), route);
                    }
                    Err(problems) => {
                        self.unloaded_routes.insert(id);
                        for (message, span) in problems {
                            self.push(ModelProblem::Route { message }, span);
                        }
                    }
                }
            }
        }
        for (p, span) in playbooks {
            if p.owner.get_ref() != playbook::WORKFLOW_OWNER {
                self.reference(RefKind::Owner, Some(&p.owner));
            }
            for w in &p.workflows {
                self.reference(RefKind::Workflow, Some(w));
            }
            self.reference(RefKind::Group, p.quarantine_group.as_ref());
            for a in &p.agents {
                self.reference(RefKind::Agent, Some(a));
            }
            for t in &p.tools {
                self.reference(RefKind::Tool, Some(t));
            }
            for s in &p.systems {
                self.reference(RefKind::System, Some(s));
            }
            if self.check_id("playbook", &p.id, &pack.playbooks, |v| &v.at) {
                let file = std::sync::Arc::clone(&self.file);
                match p.resolve(self.loc(span), |s| Location::new(&file, s)) {
                    Ok(pb) => {
                        pack.playbooks.insert(pb.id.clone(), pb);
                    }
                    Err(problems) => {
                        for (message, span) in problems {
                            self.push(ModelProblem::Playbook { message }, span);
                        }
                    }
                }
            }
        }
    }

    /// Warns of playbooks whose owner has no route (after references are
    /// checked, so an unknown owner is reported once).
    pub(crate) fn check_paging(&mut self, pack: &Pack) {
        for pb in pack.playbooks.values() {
            if !pb.actions.contains(&PlaybookAction::Notify) {
                continue;
            }
            // `owner = "workflow"` pages each covered workflow's owner.
            let owners: Vec<String> = if pb.owner_is_workflow() {
                pack.workflows
                    .values()
                    .filter(|w| pb.workflows.is_empty() || pb.workflows.contains(&w.id))
                    .filter_map(|w| w.owner.clone())
                    .collect()
            } else {
                vec![pb.owner.clone()]
            };
            for owner in owners {
                if pack.is_owner(&owner)
                    && !pack
                        .paging(&owner, 0)
                        .routes
                        .iter()
                        .any(|r| pack.routes.contains_key(r) || self.unloaded_routes.contains(r))
                {
                    let d = Diagnostic::new(&ModelProblem::NoRoute {
                        playbook: pb.id.clone(),
                        owner,
                    })
                    .at(pb.at.clone())
                    .help("give the owner `routes = [\"...\"]` naming a `[[routes]]` entry");
                    self.report(d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::Rotation;
    use std::time::Duration;

    #[test]
    fn a_rotation_takes_turns_from_its_start() {
        let r = Rotation {
            people: vec!["priya".into(), "marco".into(), "lee".into()],
            every: Duration::from_secs(7 * 86_400),
            start_unix: 1_000_000,
        };
        let week = 7 * 86_400;
        assert_eq!(r.on_call(0), Some("priya"), "before the start: the first");
        assert_eq!(r.on_call(1_000_000), Some("priya"));
        assert_eq!(r.on_call(1_000_000 + week - 1), Some("priya"));
        assert_eq!(r.on_call(1_000_000 + week), Some("marco"));
        assert_eq!(r.on_call(1_000_000 + 2 * week), Some("lee"));
        assert_eq!(
            r.on_call(1_000_000 + 3 * week),
            Some("priya"),
            "wraps around"
        );
        let empty = Rotation {
            people: Vec::new(),
            ..r
        };
        assert_eq!(empty.on_call(0), None);
    }

    #[test]
    fn paging_goes_person_then_team_then_team_owner() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/it-ops");
        let pack = crate::load(dir).unwrap().pack;
        let p = pack.paging("olivia", 0);
        assert_eq!(p.person.as_deref(), Some("olivia"));
        assert_eq!(p.routes, ["olivia-webhook", "sre-slack", "sre-pagerduty"]);
        // A team pages its person on call by rotation (a week each from
        // Monday 2026-11-30 09:00 UTC), then its routes.
        let monday = 1_796_029_200;
        let on = |t: i64| pack.paging("sre", t).person;
        assert_eq!(on(monday + 3600).as_deref(), Some("priya"));
        assert_eq!(on(monday + 7 * 86_400 + 3600).as_deref(), Some("marco"));
        assert_eq!(on(monday + 14 * 86_400 + 3600).as_deref(), Some("lee"));
        assert_eq!(
            pack.paging("sre", monday).routes,
            ["sre-slack", "sre-pagerduty"]
        );
        // Unknown owners page nobody.
        assert_eq!(pack.paging("nobody", 0).routes, Vec::<String>::new());
    }
}
