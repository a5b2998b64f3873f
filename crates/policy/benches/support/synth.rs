//! Synthetic governance packs for benchmarks and equivalence tests: a pack of
//! any size written as real files, requests against it, and the same rules as
//! data-driven Rego (for the regorus comparison).
//!
//! Shared by `benches/` and `tests/` through `#[path]`.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

/// How big a pack to make.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub agents: usize,
    pub teams: usize,
    pub tools: usize,
    pub permits: usize,
    pub gates: usize,
    pub forbids: usize,
}

impl Size {
    /// The pack of DESIGN.md's measurements: 1,000 agents, 5,000 tools,
    /// 2,000 policies (plus one group-scoped cap).
    pub const LARGE: Size = Size {
        agents: 1000,
        teams: 50,
        tools: 5000,
        permits: 1500,
        gates: 400,
        forbids: 100,
    };

    /// Small enough to validate against the whole schema in a test.
    pub const MEDIUM: Size = Size {
        agents: 100,
        teams: 10,
        tools: 200,
        permits: 150,
        gates: 40,
        forbids: 20,
    };
}

/// A deterministic random source (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One generated request.
#[derive(Debug, Clone)]
pub struct GenRequest {
    pub agent: String,
    pub tool: String,
    pub args: Value,
    pub approvals: Vec<String>,
}

impl GenRequest {
    /// The request as Rego input.
    pub fn rego_input(&self) -> Value {
        json!({"agent": self.agent, "tool": self.tool, "args": self.args, "approvals": self.approvals})
    }
}

struct Permit {
    tools: Vec<usize>,
    team: usize,
    max: u64,
}
struct Gate {
    tool: usize,
    group: usize,
    threshold: u64,
}
struct Forbid {
    agent: usize,
    tools: Vec<usize>,
    region: &'static str,
}

/// A generated pack: its rules, kept to generate requests and Rego data.
pub struct Synth {
    size: Size,
    permits: Vec<Permit>,
    gates: Vec<Gate>,
    forbids: Vec<Forbid>,
}

const REGIONS: [&str; 3] = ["us", "eu", "apac"];
const GROUPS: usize = 10;

fn tool_id(i: usize) -> String {
    format!("s{:03}.op{:02}", i / 20, i % 20)
}
fn agent_id(i: usize) -> String {
    format!("agent-{i:04}")
}
fn team_id(i: usize) -> String {
    format!("team-{i:02}")
}
fn risk_of(i: usize) -> &'static str {
    match i % 20 {
        0..=9 => "low",
        10..=14 => "medium",
        15..=18 => "high",
        _ => "critical",
    }
}
fn access_of(i: usize) -> &'static str {
    if i % 20 < 7 { "read" } else { "write" }
}

impl Synth {
    pub fn new(size: Size, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let permits = (0..size.permits)
            .map(|j| Permit {
                // Every tool gets at least one permit when permits*4 >= tools.
                tools: (0..4).map(|k| (j * 4 + k) % size.tools).collect(),
                team: rng.below(size.teams),
                max: [1_000, 5_000, 20_000][j % 3],
            })
            .collect();
        let risky: Vec<usize> = (0..size.tools).filter(|i| i % 20 >= 15).collect();
        let gates = (0..size.gates)
            .map(|g| Gate {
                tool: risky[(g * 7) % risky.len()],
                group: g % GROUPS,
                threshold: [500, 2_000][g % 2],
            })
            .collect();
        let forbids = (0..size.forbids)
            .map(|_| Forbid {
                agent: rng.below(size.agents),
                tools: vec![rng.below(size.tools), rng.below(size.tools)],
                region: REGIONS[rng.below(3)],
            })
            .collect();
        Self {
            size,
            permits,
            gates,
            forbids,
        }
    }

    /// Total number of policies written.
    pub fn policy_count(&self) -> usize {
        self.permits.len() + self.gates.len() + self.forbids.len() + 1
    }

    /// Writes `warden.toml` and `policies/*.cedar` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("policies"))?;
        std::fs::write(dir.join("warden.toml"), self.manifest())?;
        let (a, b, c) = self.policies();
        std::fs::write(dir.join("policies/permits.cedar"), a)?;
        std::fs::write(dir.join("policies/gates.cedar"), b)?;
        std::fs::write(dir.join("policies/forbids.cedar"), c)?;
        Ok(())
    }

    fn manifest(&self) -> String {
        let s = &self.size;
        let mut m = String::from("[pack]\nname = \"synthetic\"\n\n");
        for t in 0..s.teams {
            let _ = writeln!(m, "[[teams]]\nid = \"{}\"\n", team_id(t));
        }
        let people = (GROUPS * 5).max(s.teams);
        for p in 0..people {
            let _ = writeln!(
                m,
                "[[people]]\nid = \"person-{p:03}\"\nteam = \"{}\"\n",
                team_id(p % s.teams)
            );
        }
        for a in 0..s.agents {
            let _ = writeln!(
                m,
                "[[agents]]\nid = \"{}\"\nteam = \"{}\"\nowner = \"person-{:03}\"\n",
                agent_id(a),
                team_id(a % s.teams),
                a % people
            );
        }
        for sys in 0..s.tools.div_ceil(20) {
            let _ = writeln!(
                m,
                "[[systems]]\nid = \"sys-{sys:03}\"\nowner = \"person-000\"\n"
            );
        }
        for i in 0..s.tools {
            let _ = writeln!(
                m,
                "[[tools]]\nid = \"{}\"\nsystem = \"sys-{:03}\"\naccess = \"{}\"\nrisk = \"{}\"\n\
                 [tools.args]\ntype = \"object\"\nrequired = [\"amount\", \"region\"]\nadditionalProperties = false\n\
                 [tools.args.properties]\namount = {{ type = \"integer\", minimum = 0 }}\n\
                 region = {{ type = \"string\", enum = [\"us\", \"eu\", \"apac\"] }}\n\
                 note = {{ type = \"string\", maxLength = 200 }}\n",
                tool_id(i),
                i / 20,
                access_of(i),
                risk_of(i)
            );
        }
        for g in 0..GROUPS {
            let members: Vec<String> = (0..5)
                .map(|k| format!("\"person-{:03}\"", g * 5 + k))
                .collect();
            let _ = writeln!(
                m,
                "[[approver_groups]]\nid = \"grp-{g}\"\nmembers = [{}]\nquorum = {}\n",
                members.join(", "),
                1 + g % 2
            );
        }
        m
    }

    fn policies(&self) -> (String, String, String) {
        let mut permits = String::new();
        for (j, p) in self.permits.iter().enumerate() {
            let actions: Vec<String> = p
                .tools
                .iter()
                .map(|t| format!("Action::\"{}\"", tool_id(*t)))
                .collect();
            let _ = writeln!(
                permits,
                "@id(\"permit-{j}\")\npermit (principal, action in [{}], resource)\n\
                 when {{ principal in Team::\"{}\" && context.args.amount <= {} }};\n",
                actions.join(", "),
                team_id(p.team),
                p.max
            );
        }
        let mut gates = String::new();
        for (j, g) in self.gates.iter().enumerate() {
            let _ = writeln!(
                gates,
                "@id(\"gate-{j}\")\n@approval(\"grp-{grp}\")\n\
                 forbid (principal, action == Action::\"{}\", resource)\n\
                 when {{ context.args.amount > {} }}\nunless {{ context.approvals.contains(\"grp-{grp}\") }};\n",
                tool_id(g.tool),
                g.threshold,
                grp = g.group
            );
        }
        let mut forbids = String::from(
            "@id(\"critical-cap\")\nforbid (principal, action in Action::\"risk:critical\", resource)\n\
             when { context.args.amount > 100000 };\n\n",
        );
        for (j, f) in self.forbids.iter().enumerate() {
            let actions: Vec<String> = f
                .tools
                .iter()
                .map(|t| format!("Action::\"{}\"", tool_id(*t)))
                .collect();
            let _ = writeln!(
                forbids,
                "@id(\"forbid-{j}\")\nforbid (principal == Agent::\"{}\", action in [{}], resource)\n\
                 when {{ context.args.region == \"{}\" }};\n",
                agent_id(f.agent),
                actions.join(", "),
                f.region
            );
        }
        (permits, gates, forbids)
    }

    /// `n` requests: most from an agent a permit names, so every outcome occurs.
    pub fn requests(&self, n: usize, seed: u64) -> Vec<GenRequest> {
        let mut rng = Rng::new(seed);
        let s = &self.size;
        (0..n)
            .map(|_| {
                let p = &self.permits[rng.below(self.permits.len())];
                let tool = if rng.chance(80) {
                    p.tools[rng.below(p.tools.len())]
                } else {
                    rng.below(s.tools)
                };
                let agent = if rng.chance(70) {
                    // An agent of the permit's team.
                    (p.team + s.teams * rng.below(s.agents / s.teams)) % s.agents
                } else {
                    rng.below(s.agents)
                };
                let amount = [100u64, 800, 1_500, 3_000, 10_000, 30_000, 200_000][rng.below(7)];
                let mut approvals = Vec::new();
                if rng.chance(25) {
                    approvals.push(format!("grp-{}", rng.below(GROUPS)));
                }
                GenRequest {
                    agent: agent_id(agent),
                    tool: tool_id(tool),
                    args: json!({"amount": amount, "region": REGIONS[rng.below(3)]}),
                    approvals,
                }
            })
            .collect()
    }

    /// The same rules as Rego data (used with [`LARGE_REGO`]).
    pub fn rego_data(&self) -> Value {
        let mut agents = serde_json::Map::new();
        for a in 0..self.size.agents {
            agents.insert(agent_id(a), json!(team_id(a % self.size.teams)));
        }
        let mut permits: serde_json::Map<String, Value> = serde_json::Map::new();
        for p in &self.permits {
            for t in &p.tools {
                let e = permits.entry(tool_id(*t)).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(json!({"team": team_id(p.team), "max": p.max}));
                }
            }
        }
        let mut gates: serde_json::Map<String, Value> = serde_json::Map::new();
        for g in &self.gates {
            let e = gates.entry(tool_id(g.tool)).or_insert_with(|| json!([]));
            if let Some(a) = e.as_array_mut() {
                a.push(json!({"group": format!("grp-{}", g.group), "threshold": g.threshold}));
            }
        }
        let mut forbids: serde_json::Map<String, Value> = serde_json::Map::new();
        for f in &self.forbids {
            for t in &f.tools {
                let e = forbids.entry(tool_id(*t)).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(json!({"agent": agent_id(f.agent), "region": f.region}));
                }
            }
        }
        let critical: serde_json::Map<String, Value> = (0..self.size.tools)
            .filter(|i| risk_of(*i) == "critical")
            .map(|i| (tool_id(i), json!(true)))
            .collect();
        json!({"agents": agents, "permits": permits, "gates": gates, "forbids": forbids, "critical": critical})
    }
}

/// The synthetic pack's rules in Rego, driven by [`Synth::rego_data`].
pub const LARGE_REGO: &str = r#"
package warden
import rego.v1

agent_team := data.agents[input.agent]

granted if {
    some p in data.permits[input.tool]
    p.team == agent_team
    input.args.amount <= p.max
}

forbidden if {
    some f in data.forbids[input.tool]
    f.agent == input.agent
    input.args.region == f.region
}

forbidden if {
    data.critical[input.tool]
    input.args.amount > 100000
}

open_gates contains g.group if {
    some g in data.gates[input.tool]
    input.args.amount > g.threshold
    not g.group in input.approvals
}

default decision := "deny"

decision := "allow" if {
    granted
    not forbidden
    count(open_gates) == 0
}

decision := "approval_required" if {
    granted
    not forbidden
    count(open_gates) > 0
}
"#;

/// examples/support-refunds written in Rego.
pub const REFUNDS_REGO: &str = r#"
package warden
import rego.v1

teams := {"support-bot": "support", "billing-bot": "billing", "intern-bot": "support"}
writes := {"crm.update_notes", "stripe.refund", "email.send_customer", "db.delete_rows"}

granted if input.tool == "crm.lookup_customer"

granted if {
    input.tool in {"crm.update_notes", "email.send_customer"}
    teams[input.agent] in {"support", "billing"}
    input.agent != "intern-bot"
}

granted if {
    input.tool == "stripe.refund"
    input.agent in {"support-bot", "billing-bot"}
}

forbidden if {
    input.agent == "intern-bot"
    input.tool in writes
}

forbidden if input.tool == "db.delete_rows"

forbidden if {
    input.tool == "stripe.refund"
    input.args.amount_cents > 500000
}

open_gates contains "finance" if {
    input.tool == "stripe.refund"
    input.args.amount_cents > 10000
    not "finance" in input.approvals
}

default decision := "deny"

decision := "allow" if {
    granted
    not forbidden
    count(open_gates) == 0
}

decision := "approval_required" if {
    granted
    not forbidden
    count(open_gates) > 0
}
"#;

/// `n` requests against examples/support-refunds, every rule exercised.
pub fn refund_requests(n: usize, seed: u64) -> Vec<GenRequest> {
    let mut rng = Rng::new(seed);
    let agents = ["support-bot", "billing-bot", "intern-bot"];
    let amounts = [
        500u64, 5_000, 10_000, 10_001, 25_000, 100_000, 150_000, 500_000, 750_000,
    ];
    (0..n)
        .map(|i| {
            let agent = agents[rng.below(3)].to_owned();
            let (tool, args) = match rng.below(10) {
                0..=1 => ("crm.lookup_customer", json!({"customer_id": format!("cus_{i}")})),
                2 => ("crm.update_notes", json!({"customer_id": format!("cus_{i}"), "note": "called back"})),
                3 => ("email.send_customer", json!({"customer_id": format!("cus_{i}"), "to": "jo@example.org", "template": "refund_issued"})),
                4 => ("db.delete_rows", json!({"table": "orders", "where": "id = 1"})),
                _ => (
                    "stripe.refund",
                    json!({"order_id": format!("ord_{i}"), "customer_id": format!("cus_{i}"),
                           "amount_cents": amounts[rng.below(amounts.len())], "reason": "damaged"}),
                ),
            };
            let approvals = if rng.chance(30) { vec!["finance".to_owned()] } else { Vec::new() };
            GenRequest {
                agent,
                tool: tool.to_owned(),
                args,
                approvals,
            }
        })
        .collect()
}
