//! The six readiness items, each from the pack and (where it needs them)
//! the facts read from the audit log or the server.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use warden_model::{Access, Outcome, Pack, RequestContext, Risk};
use warden_oversight::Router;
use warden_policy::{Engine, Replayed, Request};

/// pass / warn / fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// One checklist item's verdict.
#[derive(Debug, Serialize)]
pub struct Item {
    pub id: &'static str,
    pub title: &'static str,
    pub status: Status,
    /// What was found, one line each.
    pub facts: Vec<String>,
    /// How to fix it, when it is not a pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The regulations and frameworks buyers ask about that it serves.
    pub regulations: &'static [&'static str],
}

/// What the log (or the server) says, when one was given.
#[derive(Debug, Default)]
pub struct Facts {
    /// Where the facts come from, for the report.
    pub source: Option<String>,
    /// `warden audit verify`'s report.
    pub verify: Option<Value>,
    /// Query indexes missing (`None`: not checked).
    pub missing_indexes: Option<Vec<String>>,
    /// µs of the newest record whose payload was pruned, when any
    /// (`None`: not checked).
    pub newest_pruned_us: Option<Option<i64>>,
    /// Actions in a final state without a record of that state.
    pub actions_without_final: Option<u64>,
    /// Resolved incidents as the API shows them.
    pub resolved: Option<Vec<Value>>,
    /// Drill runs as the API shows them, newest first.
    pub drills: Option<Vec<Value>>,
}

fn item(
    id: &'static str,
    title: &'static str,
    regulations: &'static [&'static str],
    facts: Vec<String>,
    fails: &[String],
    warns: &[String],
    fix: &str,
) -> Item {
    let status = if !fails.is_empty() {
        Status::Fail
    } else if !warns.is_empty() {
        Status::Warn
    } else {
        Status::Pass
    };
    let mut all = facts;
    all.extend(fails.iter().map(|f| format!("FAIL: {f}")));
    all.extend(warns.iter().map(|w| format!("warn: {w}")));
    Item {
        id,
        title,
        status,
        facts: all,
        fix: (status != Status::Pass).then(|| fix.to_owned()),
        regulations,
    }
}

/// 1. Every workflow has a named owner who resolves to a person or team
///    with an on-call route.
pub fn named_owner(pack: &Pack, router: &Router) -> Item {
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    for w in pack.workflows.values() {
        match &w.owner {
            None => fails.push(format!("workflow `{}` has no owner", w.id)),
            Some(o) if !pack.is_owner(o) => fails.push(format!(
                "workflow `{}`: owner `{o}` is neither a person nor a team",
                w.id
            )),
            Some(o) => {
                let routes = pack.paging(o, 0).routes;
                if routes.is_empty() {
                    fails.push(format!(
                        "workflow `{}`: owner `{o}` has no on-call route",
                        w.id
                    ));
                } else if router.usable(&routes).is_empty() {
                    warns.push(format!(
                        "workflow `{}`: every route of owner `{o}` ({}) is disabled in this environment",
                        w.id,
                        routes.join(", ")
                    ));
                }
            }
        }
    }
    item(
        "named_owner",
        "Every production workflow has a named owner",
        &[
            "EU AI Act Art. 26(2) (oversight by competent, named people)",
            "ISO/IEC 42001 A.3.2 (roles and responsibilities)",
            "NIST AI RMF GOVERN 2.1",
        ],
        vec![format!("{} workflow(s)", pack.workflows.len())],
        &fails,
        &warns,
        "give each [[workflows]] entry `owner = \"<person or team>\"`, and the owner `routes = [\"...\"]`",
    )
}

/// 2. Every write tool is named by a policy's scope and covered by a test.
pub fn write_policy(engine: &Engine, tests: &[warden_model::TestCase]) -> Item {
    let pack = engine.pack();
    let mut fails = Vec::new();
    let writes: Vec<&str> = pack
        .tools
        .values()
        .filter(|t| t.access == Access::Write)
        .map(|t| t.id.as_str())
        .collect();
    for t in &writes {
        if engine.policies_naming(t).is_empty() {
            fails.push(format!(
                "write tool `{t}` is named by no policy's scope (only blanket policies apply)"
            ));
        }
        if !tests.iter().any(|c| c.tool == *t) {
            fails.push(format!("write tool `{t}` is covered by no pack test"));
        }
    }
    item(
        "write_policy",
        "Every write action has an explicit policy check",
        &[
            "EU AI Act Art. 9 (risk management)",
            "ISO/IEC 42001 A.6.2.5 (deployment)",
            "NIST AI RMF MANAGE 1.3",
        ],
        vec![format!(
            "{} write tool(s): {}",
            writes.len(),
            writes.join(", ")
        )],
        &fails,
        &[],
        "name the tool in a policy (`action == Action::\"<tool>\"`) and add a test case for it under tests/",
    )
}

/// Placeholder arguments with every schema property present (their values
/// count as unknown).
fn unknown_args(schema: &Value) -> (Value, Vec<String>) {
    let props: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let args = Value::Object(
        props
            .iter()
            .map(|k| (k.clone(), Value::String("[unknown]".into())))
            .collect(),
    );
    (args, props)
}

/// 3. No agent gets `allow` on a high or critical tool without an
///    approval gate, whatever the arguments: partial evaluation with the
///    arguments unknown and no approvals.
pub fn high_impact(engine: &Engine) -> Item {
    let pack = engine.pack();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut checked = 0;
    let ctx = RequestContext::default();
    for tool in pack
        .tools
        .values()
        .filter(|t| matches!(t.risk, Risk::High | Risk::Critical))
    {
        let (args, unknown) = unknown_args(&tool.args);
        for agent in pack.agents.keys() {
            checked += 1;
            let req = Request {
                agent,
                tool: &tool.id,
                args: &args,
                approvals: &[],
                context: &ctx,
            };
            let allows: Vec<warden_policy::Decision> = match engine.decide_recorded(&req, &unknown)
            {
                Replayed::Decided(d) => vec![d],
                Replayed::Indeterminate { possible, .. } => possible,
            }
            .into_iter()
            .filter(|d| d.outcome == Outcome::Allow)
            .collect();
            let Some(allow) = allows.first() else {
                continue;
            };
            let permits: Vec<&str> = allow.policies.iter().map(|p| p.id.as_str()).collect();
            let exceptions: Vec<String> = allow
                .policies
                .iter()
                .filter_map(|p| {
                    p.annotations
                        .get("exception")
                        .map(|e| format!("`{}`: {e}", p.id))
                })
                .collect();
            let line = format!(
                "`{agent}` can get `allow` on {} tool `{}` without approval, through {}",
                tool.risk.as_str(),
                tool.id,
                permits
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !exceptions.is_empty() && exceptions.len() == allow.policies.len() {
                warns.push(format!(
                    "{line} — documented exception {}",
                    exceptions.join("; ")
                ));
            } else {
                fails.push(line);
            }
        }
    }
    item(
        "high_impact_approval",
        "High-impact actions require human approval",
        &[
            "EU AI Act Art. 14 (human oversight)",
            "ISO/IEC 42001 A.9.2 (responsible use)",
            "NIST AI RMF MAP 3.5",
        ],
        vec![format!(
            "{checked} agent × high/critical tool pair(s) analysed with the arguments unknown (Cedar partial evaluation, no sampling)"
        )],
        &fails,
        &warns,
        "gate the tool with a `@approval(\"group\")` forbid for these agents, narrow the permit, or document an accepted exception with `@exception(\"why\")` on the permit",
    )
}

/// The indexes the audit queries use.
pub const QUERY_INDEXES: &[&str] = &[
    "evidence_agent_time",
    "evidence_tool_time",
    "evidence_workflow_time",
    "evidence_run",
    "evidence_time",
    "evidence_rollout",
];

/// A checkpoint older than this (while the server runs it signs every
/// minute, also when idle) is not recent.
const CHECKPOINT_STALE: Duration = Duration::from_secs(3600);

/// 4. The log verifies, its newest checkpoint is recent, every decided
///    action has its final record, the query indexes exist, and retention
///    keeps the period the pack declares.
pub fn audit(pack: &Pack, f: &Facts, now_us: i64) -> Item {
    let mut facts = Vec::new();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let retention_days = pack.retention.as_secs() / 86_400;
    facts.push(format!(
        "retention required: {retention_days} days (`[pack] retention`)"
    ));
    match &f.verify {
        None => warns
            .push("no audit log given (--data, --database-url or --server): not checked".into()),
        Some(r) => {
            let ok = r["ok"] == Value::Bool(true);
            let rep = &r["report"];
            facts.push(format!(
                "{} record(s), {} checkpoint(s), {} pruned",
                rep["leaves"], rep["checkpoints"], rep["pruned"]
            ));
            if !ok {
                fails.push(format!(
                    "the log does not verify: {}",
                    rep["findings"]
                        .get(0)
                        .map_or_else(|| "see `warden audit verify`".to_owned(), Value::to_string)
                ));
            }
            match rep["latest_checkpoint_time"]
                .as_str()
                .and_then(warden_evidence::micros)
            {
                None => warns.push("no signed checkpoint yet".into()),
                Some(t) => {
                    let age = Duration::from_micros(u64::try_from(now_us - t).unwrap_or(0));
                    facts.push(format!("newest checkpoint {}s old", age.as_secs()));
                    if age > CHECKPOINT_STALE {
                        warns.push(format!(
                            "the newest checkpoint is {}s old: is the server running? (it signs every minute, also when idle)",
                            age.as_secs()
                        ));
                    }
                }
            }
        }
    }
    match &f.actions_without_final {
        Some(0) => facts.push("every final action has its final record".into()),
        Some(n) => fails.push(format!(
            "{n} action(s) ended without a record of their final state"
        )),
        None => {}
    }
    match &f.missing_indexes {
        Some(m) if m.is_empty() => {
            facts.push(format!("query indexes present: {}", QUERY_INDEXES.len()))
        }
        Some(m) => fails.push(format!("query indexes missing: {}", m.join(", "))),
        None => {}
    }
    if let Some(newest) = &f.newest_pruned_us {
        let keep_from = now_us - i64::try_from(pack.retention.as_micros()).unwrap_or(i64::MAX);
        match newest {
            Some(t) if *t >= keep_from => fails.push(format!(
                "payloads of records from {} were pruned, inside the {retention_days}-day retention period (data-subject erasures also count here)",
                warden_evidence::time_from_micros(*t)
            )),
            _ => facts.push(format!("no payload pruned within the last {retention_days} days")),
        }
    }
    item(
        "audit",
        "Audit records are complete and searchable",
        &[
            "EU AI Act Art. 12 (record-keeping)",
            "EU AI Act Art. 19, 26(6) (logs kept at least six months)",
            "ISO/IEC 42001 A.6.2.8 (event logs)",
            "NIST AI RMF MEASURE 2.8",
        ],
        facts,
        &fails,
        &warns,
        "run `warden audit verify` and keep `warden serve` signing checkpoints; prune only with `--older-than` beyond the retention period",
    )
}

/// A drill report's pages, by route: the time of the newest delivered one.
fn drilled_routes(drills: &[Value]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for d in drills {
        for p in d["report"]["playbooks"].as_array().into_iter().flatten() {
            if let (Some(route), Some(_)) = (p["page_route"].as_str(), p["page_ms"].as_i64()) {
                m.entry(route.to_owned())
                    .or_insert_with(|| d["started"].as_str().unwrap_or("").to_owned());
            }
        }
    }
    m
}

/// 5. Every playbook's chain reaches a person or rotation through a route
///    that is configured, and a drill delivered a page on it in 30 days.
pub fn alerting(pack: &Pack, router: &Router, f: &Facts, now_us: i64) -> Item {
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let recent = f.drills.as_ref().map(|d| {
        let month = now_us - 30 * 86_400 * 1_000_000;
        drilled_routes(
            &d.iter()
                .filter(|r| {
                    r["started"]
                        .as_str()
                        .and_then(warden_evidence::micros)
                        .is_some_and(|t| t >= month)
                })
                .cloned()
                .collect::<Vec<_>>(),
        )
    });
    for pb in pack.playbooks.values() {
        if !pb.actions.contains(&warden_model::PlaybookAction::Notify) {
            warns.push(format!(
                "playbook `{}` pages nobody (no `notify` action)",
                pb.id
            ));
            continue;
        }
        let owners: Vec<String> = if pb.owner_is_workflow() {
            pack.workflows
                .values()
                .filter_map(|w| w.owner.clone())
                .collect()
        } else {
            vec![pb.owner.clone()]
        };
        for owner in owners {
            let paging = pack.paging(&owner, now_us / 1_000_000);
            let usable = router.usable(&paging.routes);
            if paging.person.is_none() {
                fails.push(format!(
                    "playbook `{}`: owner `{owner}` resolves to no person or rotation",
                    pb.id
                ));
            }
            if usable.is_empty() {
                let why: Vec<String> = paging
                    .routes
                    .iter()
                    .map(|r| match router.disabled(r) {
                        Some(d) => format!("`{r}` disabled: {d}"),
                        None => format!("`{r}`"),
                    })
                    .collect();
                fails.push(format!(
                    "playbook `{}`: no configured route reaches `{owner}`{}",
                    pb.id,
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", why.join("; "))
                    }
                ));
                continue;
            }
            match &recent {
                None => warns.push(format!(
                    "playbook `{}`: drills not checked (no --server or log given)",
                    pb.id
                )),
                Some(routes) => {
                    if !usable.iter().any(|r| routes.contains_key(r)) {
                        fails.push(format!(
                            "playbook `{}`: no drill delivered a page on {} in the last 30 days (`warden drill run`)",
                            pb.id,
                            usable.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(" or ")
                        ));
                    }
                }
            }
        }
    }
    item(
        "alerting",
        "Alerting routes to on-call owners, not generic inboxes",
        &[
            "EU AI Act Art. 26(5) (monitor, inform, suspend)",
            "ISO/IEC 42001 A.6.2.6 (operation and monitoring)",
            "NIST AI RMF MANAGE 4.1",
        ],
        vec![format!(
            "{} playbook(s); routes as configured in this environment",
            pack.playbooks.len()
        )],
        &fails,
        &warns,
        "give each owner a route whose variables are set, then run `warden drill run` for each playbook (docs/drills.md)",
    )
}

/// 6. Every resolved high or critical incident has a review; where the
///    review says policy changed, the pack version after it differs.
pub fn reviews(f: &Facts) -> Item {
    let mut facts = Vec::new();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    match &f.resolved {
        None => warns
            .push("no audit log given (--data, --database-url or --server): not checked".into()),
        Some(list) => {
            let serious: Vec<&Value> = list
                .iter()
                .filter(|i| i["drill"].is_null())
                .filter(|i| matches!(i["severity"].as_str(), Some("high" | "critical")))
                .collect();
            facts.push(format!(
                "{} resolved high or critical incident(s), drills excluded",
                serious.len()
            ));
            for i in serious {
                let id = i["id"].as_str().unwrap_or("?");
                let r = &i["review"];
                if r.is_null() {
                    fails.push(format!(
                        "incident {id} ({}) has no post-incident review",
                        i["playbook"].as_str().unwrap_or("?")
                    ));
                    continue;
                }
                if let Some(v) = r["pack_change"].as_str() {
                    let before = i["detail"]["pack_version"].as_str();
                    if before.is_some_and(|b| warden_oversight::same_version(b, v)) {
                        fails.push(format!(
                            "incident {id}: the review names pack version {v} as the fix, but that version was in force when the incident opened"
                        ));
                    }
                }
            }
        }
    }
    item(
        "reviews",
        "Post-incident reviews update policy logic and runbooks",
        &[
            "ISO/IEC 42001 10.2 (nonconformity and corrective action)",
            "NIST AI RMF MANAGE 4.3",
            "EU AI Act Art. 73 (serious incidents)",
        ],
        facts,
        &fails,
        &warns,
        "`warden incidents review ID --summary ... --pack-change VERSION` (or `--no-change REASON`) for each",
    )
}
