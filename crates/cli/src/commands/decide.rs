//! `warden decide PACK --agent A --tool T --args JSON`

use anyhow::Context as _;
use warden_evidence::Record;
use warden_model::{Outcome, RequestContext};
use warden_policy::{Decision, Effect, Explanation, PolicyInfo, Request};

use crate::cli::{DecideArgs, Exit};

pub fn run(args: &DecideArgs) -> anyhow::Result<Exit> {
    let call_args: serde_json::Value = serde_json::from_str(&args.args)
        .with_context(|| format!("`--args` is not valid JSON: `{}`", args.args))?;
    let context: RequestContext = match &args.context {
        Some(c) => serde_json::from_str(c).with_context(|| {
            "`--context` must be a JSON object with keys `workflow`, `run` (an id or `{id, steps}`), `trigger`, `usage`, `facts`"
                .to_owned()
        })?,
        None => RequestContext::default(),
    };
    let engine = match super::engine(&args.pack)? {
        Ok(e) => e,
        Err(exit) => return Ok(exit),
    };
    let approvals: Vec<String> = args
        .approvals
        .iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    let req = Request {
        agent: &args.agent,
        tool: &args.tool,
        args: &call_args,
        approvals: &approvals,
        context: &context,
    };
    engine.check_request(&req)?;
    if args.explain {
        let ex = engine.explain(&req);
        if args.json {
            println!("{:#}", explanation_json(&ex));
        } else {
            print_decision(&ex.decision);
            print_explanation(&ex);
        }
        if let Some(dir) = &args.record {
            record(args, &engine, &req, &ex.decision, dir)?;
        }
    } else {
        let d = engine.decide(&req);
        if args.json {
            println!("{:#}", serde_json::to_value(&d)?);
        } else {
            print_decision(&d);
        }
        if let Some(dir) = &args.record {
            record(args, &engine, &req, &d, dir)?;
        }
    }
    Ok(Exit::Ok)
}

/// `--record DIR`: the decision as an `action_decided` evidence record.
fn record(
    args: &DecideArgs,
    engine: &warden_policy::Engine,
    req: &Request<'_>,
    d: &Decision,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let receipt = super::audit::append_one(dir, args.database_url.clone(), |data| {
        let mut r = Record::decided(req, d);
        data.redactor()
            .apply_for_pack(&mut r, engine.pack(), req.args)?;
        Ok(r)
    })?;
    eprintln!(
        "recorded as leaf {} in `{}`",
        receipt.seq,
        args.database_url.as_deref().map_or_else(
            || dir.display().to_string(),
            |_| "the PostgreSQL database".into()
        )
    );
    Ok(())
}

fn print_decision(d: &Decision) {
    let code = d.code.map(|c| format!(" ({c})")).unwrap_or_default();
    println!("decision  {}{code}", d.outcome);
    println!("reason    {}", d.message());
    if let Some(r) = d.risk {
        println!("risk      {r}");
    }
    if let Some(a) = &d.approval {
        let groups: Vec<String> = a
            .groups
            .iter()
            .map(|(g, q)| format!("{g} (quorum {q})"))
            .collect();
        println!("approval  {}", groups.join(", "));
    }
    for (i, p) in d.policies.iter().enumerate() {
        let head = if i == 0 { "policies" } else { "" };
        println!("{head:<9} {}", policy_line(p));
    }
    for e in &d.errors {
        println!("error     {e}");
    }
    println!("version   {}", d.policy_version);
}

fn policy_line(p: &PolicyInfo) -> String {
    let effect = match p.effect {
        Effect::Permit => "permit",
        Effect::Forbid => "forbid",
    };
    let gate = p
        .gate
        .as_ref()
        .map(|g| format!(" [gate: {} x{}]", g.group, g.quorum))
        .unwrap_or_default();
    format!("{} {effect}{gate}  {}", p.id, p.location)
}

fn print_explanation(ex: &Explanation) {
    println!();
    println!("policies that can apply to this tool:");
    if ex.considered.is_empty() {
        println!("  (none: every request for this tool is denied by default)");
    }
    for p in &ex.considered {
        let mark = if ex.decision.policies.iter().any(|d| d.id == p.id) {
            "determining"
        } else if ex.granting_permits.iter().any(|g| g.id == p.id) {
            "grants"
        } else {
            "-"
        };
        println!("  {mark:<12} {}", policy_line(p));
        if let Some(r) = p.reason() {
            println!("  {:<12}   {r}", "");
        }
    }
    if !ex.usage.is_empty() {
        println!();
        println!("counters (context.usage = before + this request):");
        for u in &ex.usage {
            println!(
                "  {:<28} {} = {} + {}",
                u.counter, u.value, u.before, u.request
            );
        }
    }
    if !ex.run_steps.is_empty() {
        println!();
        println!("run data (context.run.steps):");
        for (step, data) in &ex.run_steps {
            println!("  {step:<28} {data}");
        }
    }
    if !ex.facts.is_empty() {
        println!();
        println!("facts (context.facts):");
        for (name, value) in &ex.facts {
            println!("  {name:<28} {value}");
        }
    }
    if ex.decision.outcome != Outcome::Allow {
        println!();
        println!("to pass:");
        for s in &ex.next_steps {
            println!("  - {s}");
        }
    }
}

fn explanation_json(ex: &Explanation) -> serde_json::Value {
    let mut v = serde_json::to_value(&ex.decision).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "considered".into(),
            serde_json::to_value(&ex.considered).unwrap_or_default(),
        );
        m.insert(
            "granting_permits".into(),
            serde_json::Value::Array(
                ex.granting_permits
                    .iter()
                    .map(|p| serde_json::Value::String(p.id.clone()))
                    .collect(),
            ),
        );
        m.insert(
            "next_steps".into(),
            serde_json::to_value(&ex.next_steps).unwrap_or_default(),
        );
        m.insert(
            "usage".into(),
            serde_json::to_value(&ex.usage).unwrap_or_default(),
        );
        m.insert(
            "run_steps".into(),
            serde_json::to_value(&ex.run_steps).unwrap_or_default(),
        );
        m.insert(
            "facts".into(),
            serde_json::to_value(&ex.facts).unwrap_or_default(),
        );
    }
    v
}
