//! `warden inventory`: the week-1 deliverable from the pack — workflows by
//! business impact, each step with its tool, access and risk class, which
//! steps are gated and by whom, owners and their routes, and the gaps.

use std::path::PathBuf;

use serde::Serialize;
use warden_model::{Access, Pack, Risk};
use warden_policy::Engine;

use crate::cli::Exit;
use crate::render::Table;

/// `warden inventory`
#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// The governance pack directory.
    #[arg(long, default_value = ".")]
    pub pack: PathBuf,
    /// Print Markdown (a document to share).
    #[arg(long, conflicts_with_all = ["csv", "json"])]
    pub markdown: bool,
    /// Print CSV, one row per step (a spreadsheet).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One step of a workflow, or a tool outside every workflow.
#[derive(Debug, Serialize)]
struct StepRow {
    workflow: Option<String>,
    step: Option<String>,
    tool: String,
    system: String,
    access: &'static str,
    risk: &'static str,
    #[serde(skip)]
    rank: u8,
    /// `finance` (policy `refund-over-100-needs-finance`), `finance:2`, ...
    gated_by: Vec<String>,
    gaps: Vec<String>,
}

#[derive(Debug, Serialize)]
struct WorkflowRow {
    id: String,
    owner: Option<String>,
    on_call_routes: Vec<String>,
    business_impact: Option<String>,
    /// The highest risk class of its steps.
    risk: &'static str,
    #[serde(skip)]
    rank: u8,
    steps: Vec<StepRow>,
    gaps: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Inventory {
    pack: String,
    version: String,
    workflows: Vec<WorkflowRow>,
    tools_outside_workflows: Vec<StepRow>,
    gaps: usize,
}

fn risk_rank(r: Risk) -> u8 {
    match r {
        Risk::Low => 0,
        Risk::Medium => 1,
        Risk::High => 2,
        Risk::Critical => 3,
    }
}

/// The approval gates that can apply to `tool`: `group[:quorum] (policy)`.
fn gates(engine: &Engine, tool: &str) -> Vec<String> {
    engine
        .policies_for_tool(tool)
        .iter()
        .filter_map(|p| {
            p.gate.as_ref().map(|g| {
                let q = if g.quorum > 1 {
                    format!(":{}", g.quorum)
                } else {
                    String::new()
                };
                format!("{}{q} ({})", g.group, p.id)
            })
        })
        .collect()
}

fn step_row(
    engine: &Engine,
    pack: &Pack,
    workflow: Option<&str>,
    step: Option<&str>,
    tool: &str,
    risk: Risk,
) -> StepRow {
    let t = pack.tools.get(tool);
    let access = t.map_or(Access::Write, |t| t.access);
    let reachable = pack.agents.keys().any(|a| engine.could_permit(a, tool));
    let mut gated_by = gates(engine, tool);
    let mut gaps = Vec::new();
    if !reachable {
        // Nothing to gate: no agent can ever get it.
        gated_by = vec!["denied to every agent".to_owned()];
    } else if risk_rank(risk) >= 1 && gated_by.is_empty() {
        gaps.push(format!(
            "{} {} step without an approval gate",
            risk.as_str(),
            access.as_str()
        ));
    }
    StepRow {
        workflow: workflow.map(str::to_owned),
        step: step.map(str::to_owned),
        tool: tool.to_owned(),
        system: t.map(|t| t.system.clone()).unwrap_or_default(),
        access: access.as_str(),
        risk: risk.as_str(),
        rank: risk_rank(risk),
        gated_by,
        gaps,
    }
}

fn build(engine: &Engine) -> Inventory {
    let pack = engine.pack();
    let mut workflows: Vec<WorkflowRow> = pack
        .workflows
        .values()
        .map(|w| {
            let steps: Vec<StepRow> = w
                .steps
                .iter()
                .map(|s| step_row(engine, pack, Some(&w.id), Some(&s.id), &s.tool, s.risk))
                .collect();
            let risk = w
                .steps
                .iter()
                .map(|s| s.risk)
                .max_by_key(|r| risk_rank(*r))
                .unwrap_or(Risk::Low);
            let routes = w
                .owner
                .as_deref()
                .map(|o| pack.paging(o, 0).routes)
                .unwrap_or_default();
            let mut gaps = Vec::new();
            match &w.owner {
                None => gaps.push("no owner: nobody is accountable for it".to_owned()),
                Some(o) if routes.is_empty() => {
                    gaps.push(format!("owner `{o}` has no on-call route"))
                }
                Some(_) => {}
            }
            if w.business_impact.is_none() {
                gaps.push("no business_impact: it cannot be prioritised".to_owned());
            }
            WorkflowRow {
                id: w.id.clone(),
                owner: w.owner.clone(),
                on_call_routes: routes,
                business_impact: w.business_impact.clone(),
                risk: risk.as_str(),
                rank: risk_rank(risk),
                steps,
                gaps,
            }
        })
        .collect();
    // Highest risk first.
    workflows.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.id.cmp(&b.id)));
    let in_workflow: std::collections::BTreeSet<&str> = pack
        .workflows
        .values()
        .flat_map(|w| w.steps.iter().map(|s| s.tool.as_str()))
        .collect();
    let mut outside: Vec<StepRow> = pack
        .tools
        .values()
        .filter(|t| !in_workflow.contains(t.id.as_str()))
        .map(|t| step_row(engine, pack, None, None, &t.id, t.risk))
        .collect();
    outside.sort_by_key(|s| std::cmp::Reverse(s.rank));
    let gaps = workflows
        .iter()
        .map(|w| w.gaps.len() + w.steps.iter().map(|s| s.gaps.len()).sum::<usize>())
        .sum::<usize>()
        + outside.iter().map(|s| s.gaps.len()).sum::<usize>();
    Inventory {
        pack: pack.name.clone(),
        version: pack.version.as_str().to_owned(),
        workflows,
        tools_outside_workflows: outside,
        gaps,
    }
}

fn dash(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Runs `warden inventory`.
pub fn run(args: InventoryArgs) -> anyhow::Result<Exit> {
    let engine = match super::engine(&args.pack)? {
        Ok(e) => e,
        Err(_) => return Ok(Exit::Unusable),
    };
    let inv = build(&engine);
    let all_steps = || {
        inv.workflows
            .iter()
            .flat_map(|w| w.steps.iter().map(move |s| (Some(w), s)))
            .chain(inv.tools_outside_workflows.iter().map(|s| (None, s)))
    };
    if args.json {
        println!("{:#}", serde_json::to_value(&inv)?);
    } else if args.csv {
        println!("workflow,owner,business_impact,step,tool,system,access,risk,gated_by,gaps");
        for (w, s) in all_steps() {
            let f = [
                s.workflow.clone().unwrap_or_default(),
                w.and_then(|w| w.owner.clone()).unwrap_or_default(),
                w.and_then(|w| w.business_impact.clone())
                    .unwrap_or_default(),
                s.step.clone().unwrap_or_default(),
                s.tool.clone(),
                s.system.clone(),
                s.access.to_owned(),
                s.risk.to_owned(),
                s.gated_by.join("; "),
                s.gaps.join("; "),
            ];
            println!(
                "{}",
                f.iter().map(|x| csv_field(x)).collect::<Vec<_>>().join(",")
            );
        }
    } else if args.markdown {
        println!("# Workflow inventory — `{}`\n", inv.pack);
        println!(
            "Pack version `{}`. Workflows by risk (highest step risk first).\n",
            inv.version
        );
        for w in &inv.workflows {
            println!("## `{}` — {} risk\n", w.id, w.risk);
            println!(
                "- Owner: {}",
                w.owner
                    .as_deref()
                    .map_or("**none**".to_owned(), |o| format!("`{o}`"))
            );
            println!("- On-call routes: {}", dash(&w.on_call_routes));
            println!(
                "- Business impact: {}\n",
                w.business_impact.as_deref().unwrap_or("**not stated**")
            );
            println!(
                "| step | tool | system | access | risk | approval | gaps |\n|---|---|---|---|---|---|---|"
            );
            for s in &w.steps {
                println!(
                    "| {} | `{}` | {} | {} | {} | {} | {} |",
                    s.step.as_deref().unwrap_or("-"),
                    s.tool,
                    s.system,
                    s.access,
                    s.risk,
                    dash(&s.gated_by),
                    dash(&s.gaps)
                );
            }
            for g in &w.gaps {
                println!("\n**Gap:** {g}");
            }
            println!();
        }
        if !inv.tools_outside_workflows.is_empty() {
            println!("## Tools outside workflows\n");
            println!(
                "| tool | system | access | risk | approval | gaps |\n|---|---|---|---|---|---|"
            );
            for s in &inv.tools_outside_workflows {
                println!(
                    "| `{}` | {} | {} | {} | {} | {} |",
                    s.tool,
                    s.system,
                    s.access,
                    s.risk,
                    dash(&s.gated_by),
                    dash(&s.gaps)
                );
            }
            println!();
        }
        println!("{} gap(s).", inv.gaps);
    } else {
        for w in &inv.workflows {
            println!(
                "workflow {} ({} risk) — owner {}, routes {}",
                w.id,
                w.risk,
                w.owner.as_deref().unwrap_or("NONE"),
                dash(&w.on_call_routes)
            );
            if let Some(b) = &w.business_impact {
                println!("  impact: {b}");
            }
            let mut t = Table::new(&["STEP", "TOOL", "ACCESS", "RISK", "APPROVAL", "GAPS"]);
            for s in &w.steps {
                t.row(vec![
                    s.step.clone().unwrap_or_default(),
                    s.tool.clone(),
                    s.access.to_owned(),
                    s.risk.to_owned(),
                    dash(&s.gated_by),
                    dash(&s.gaps),
                ]);
            }
            t.print("  ");
            for g in &w.gaps {
                println!("  gap: {g}");
            }
        }
        if !inv.tools_outside_workflows.is_empty() {
            println!("tools outside workflows");
            let mut t = Table::new(&["TOOL", "ACCESS", "RISK", "APPROVAL", "GAPS"]);
            for s in &inv.tools_outside_workflows {
                t.row(vec![
                    s.tool.clone(),
                    s.access.to_owned(),
                    s.risk.to_owned(),
                    dash(&s.gated_by),
                    dash(&s.gaps),
                ]);
            }
            t.print("  ");
        }
        println!("{} gap(s)", inv.gaps);
    }
    Ok(Exit::Ok)
}
