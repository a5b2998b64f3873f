//! `[[counters]]`: counts and sums over sliding windows that policies read
//! as `context.usage.<name>`, including the request being decided.
//!
//! ```toml
//! [[counters]]
//! name = "refunds_per_customer_day"   # context.usage.refunds_per_customer_day
//! tools = ["stripe.refund"]           # the tools whose actions count
//! sum = "amount_cents"                # an integer argument; a count without it
//! per = ["args.customer_id"]          # agent, tool, system, workflow, args.<field>
//! window = "1d"                       # sliding
//! approved = true                     # actions allowed after approval count too
//! ```
//!
//! An action counts once, when it is allowed (at its proposal, or when its
//! approval is granted and the gates pass again, unless `approved = false`).
//! Denied and pending actions never count. The runtime keeps the windows;
//! this module declares them and computes an action's key and amount.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::error::ModelProblem;
use crate::source::Location;

/// The longest window a counter may have.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCounter {
    name: Spanned<String>,
    tools: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    sum: Option<Spanned<String>>,
    #[serde(default)]
    per: Vec<Spanned<String>>,
    window: Spanned<String>,
    #[serde(default = "yes")]
    approved: bool,
    #[serde(default)]
    description: Option<String>,
}

fn yes() -> bool {
    true
}

/// What a counter's key is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Per {
    /// The requesting agent.
    Agent,
    /// The tool.
    Tool,
    /// The tool's system.
    System,
    /// The run's workflow (empty outside a run).
    Workflow,
    /// The value of a required top-level argument.
    Arg(String),
}

impl Per {
    /// As written in the pack.
    pub fn label(&self) -> String {
        match self {
            Self::Agent => "agent".into(),
            Self::Tool => "tool".into(),
            Self::System => "system".into(),
            Self::Workflow => "workflow".into(),
            Self::Arg(f) => format!("args.{f}"),
        }
    }
}

/// A count or a sum over a sliding window.
#[derive(Debug, Clone)]
pub struct Counter {
    /// Its name: `context.usage.<name>`.
    pub name: String,
    /// The tools whose actions count.
    pub tools: Vec<String>,
    /// The integer argument summed; `None`: a count.
    pub sum: Option<String>,
    /// What the key is made of (empty: one window for all).
    pub per: Vec<Per>,
    /// How far back it looks.
    pub window: Duration,
    /// Whether actions allowed after approval count.
    pub approved: bool,
    /// What it limits.
    pub description: Option<String>,
    /// Where it is declared.
    pub at: Location,
}

/// What a request is, for computing its counters' keys.
#[derive(Debug, Clone, Copy)]
pub struct CountedRequest<'a> {
    /// The agent.
    pub agent: &'a str,
    /// The tool.
    pub tool: &'a str,
    /// The tool's system.
    pub system: &'a str,
    /// The run's workflow, when in a run.
    pub workflow: Option<&'a str>,
    /// The arguments.
    pub args: &'a serde_json::Value,
}

impl Counter {
    /// Whether actions of `tool` count.
    pub fn counts(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| t == tool)
    }

    /// The window's key for `req`: its `per` values, each as JSON (so no
    /// value can be confused with another), joined by `\u{1f}`.
    pub fn key(&self, req: &CountedRequest<'_>) -> String {
        let part = |p: &Per| -> String {
            let v = match p {
                Per::Agent => serde_json::Value::from(req.agent),
                Per::Tool => serde_json::Value::from(req.tool),
                Per::System => serde_json::Value::from(req.system),
                Per::Workflow => serde_json::Value::from(req.workflow.unwrap_or_default()),
                Per::Arg(f) => req.args.get(f).cloned().unwrap_or(serde_json::Value::Null),
            };
            v.to_string()
        };
        self.per.iter().map(part).collect::<Vec<_>>().join("\u{1f}")
    }

    /// What `args` adds: 1 for a count, the summed argument for a sum (0
    /// when it is missing or not an integer: arguments are checked against
    /// the tool's schema before any counter is read).
    pub fn amount(&self, args: &serde_json::Value) -> i64 {
        match &self.sum {
            None => 1,
            Some(f) => args.get(f).and_then(serde_json::Value::as_i64).unwrap_or(0),
        }
    }
}

/// Whether `name` is a Cedar identifier usable as a record attribute
/// without quotes.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `schema` (a tool's argument schema) has `field` as a required
/// top-level property of one of `types`.
fn required_of_type(schema: &serde_json::Value, field: &str, types: &[&str]) -> Result<(), String> {
    let Some((ty, required)) = crate::facts::property(schema, field) else {
        return Err("is not one of its arguments".into());
    };
    if !ty.is_some_and(|t| types.contains(&t.as_str())) {
        return Err(format!("is not of type {}", types.join(" or ")));
    }
    if !required {
        return Err("is not required".into());
    }
    Ok(())
}

impl crate::load::Cx {
    /// `[[counters]]`: each entry checked against the tools it counts.
    pub(crate) fn resolve_counters(&mut self, raw: Vec<RawCounter>, pack: &mut crate::Pack) {
        for c in raw {
            let problem = |message: String| ModelProblem::Counter { message };
            let name = c.name.get_ref().clone();
            if !is_identifier(&name) {
                self.push(
                    problem(format!(
                        "counter name `{name}` is not a Cedar identifier: a letter or `_`, then letters, digits or `_`"
                    )),
                    c.name.span(),
                );
                continue;
            }
            if let Some(first) = pack.counters.iter().find(|x| x.name == name) {
                let message = format!("counter `{name}` is declared twice (first at {})", first.at);
                self.push(problem(message), c.name.span());
                continue;
            }
            let mut ok = true;
            let window = match humantime::parse_duration(c.window.get_ref()) {
                Ok(w) if w >= Duration::from_secs(1) && w <= MAX_WINDOW => w,
                Ok(_) => {
                    let message = "a counter's window is from 1s to 366d".to_owned();
                    self.push(problem(message), c.window.span());
                    ok = false;
                    Duration::ZERO
                }
                Err(_) => {
                    let message = format!(
                        "invalid window `{}`; write e.g. `10m`, `1h` or `1d`",
                        c.window.get_ref()
                    );
                    self.push(problem(message), c.window.span());
                    ok = false;
                    Duration::ZERO
                }
            };
            if c.tools.get_ref().is_empty() {
                let message = format!("counter `{name}` counts no tools: list them in `tools`");
                self.push(problem(message), c.tools.span());
                ok = false;
            }
            let mut per = Vec::new();
            for p in &c.per {
                let parsed = match p.get_ref().as_str() {
                    "agent" => Some(Per::Agent),
                    "tool" => Some(Per::Tool),
                    "system" => Some(Per::System),
                    "workflow" => Some(Per::Workflow),
                    other => other
                        .strip_prefix("args.")
                        .filter(|f| !f.is_empty())
                        .map(|f| Per::Arg(f.to_owned())),
                };
                match parsed {
                    Some(x) if per.contains(&x) => {
                        let message = format!("`{}` is listed twice in `per`", p.get_ref());
                        self.push(problem(message), p.span());
                        ok = false;
                    }
                    Some(x) => per.push(x),
                    None => {
                        let message = format!(
                            "`{}` cannot key a counter: use `agent`, `tool`, `system`, `workflow` or `args.<field>`",
                            p.get_ref()
                        );
                        self.push(problem(message), p.span());
                        ok = false;
                    }
                }
            }
            for t in c.tools.get_ref() {
                let Some(tool) = pack.tools.get(t.get_ref()) else {
                    if !pack.unloaded_tools.contains(t.get_ref()) {
                        let d = Diagnostic::new(&ModelProblem::Counter {
                            message: format!(
                                "counter `{name}` counts unknown tool `{}`",
                                t.get_ref()
                            ),
                        })
                        .at(self.loc(t.span()));
                        let d = match crate::diagnostic::did_you_mean(
                            t.get_ref(),
                            pack.tools.keys().map(String::as_str),
                        ) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d,
                        };
                        self.report(d);
                    }
                    ok = false;
                    continue;
                };
                if let Some(f) = &c.sum
                    && let Err(why) = required_of_type(&tool.args, f.get_ref(), &["integer"])
                {
                    let message = format!(
                        "counter `{name}` sums `{}`, which {why} in tool `{}` (a sum needs a required integer argument of every tool counted)",
                        f.get_ref(),
                        tool.id
                    );
                    self.push(problem(message), f.span());
                    ok = false;
                }
                for p in &c.per {
                    if let Some(f) = p.get_ref().strip_prefix("args.")
                        && let Err(why) =
                            required_of_type(&tool.args, f, &["string", "integer", "boolean"])
                    {
                        let message = format!(
                            "counter `{name}` is kept per `{}`, which {why} in tool `{}` (a key needs a required string, integer or boolean argument of every tool counted)",
                            p.get_ref(),
                            tool.id
                        );
                        self.push(problem(message), p.span());
                        ok = false;
                    }
                }
            }
            if !ok {
                continue;
            }
            pack.counters.push(Counter {
                name,
                tools: c
                    .tools
                    .get_ref()
                    .iter()
                    .map(|t| t.get_ref().clone())
                    .collect(),
                sum: c.sum.map(Spanned::into_inner),
                per,
                window,
                approved: c.approved,
                description: c.description,
                at: self.loc(c.name.span()),
            });
        }
    }
}
