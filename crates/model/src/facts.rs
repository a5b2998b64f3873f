//! `[[tools.facts]]`: values Warden reads through a connector before it
//! decides, which policies see as `context.facts.<name>`.
//!
//! ```toml
//! [[tools.facts]]
//! name = "current_salary_cents"         # context.facts.current_salary_cents
//! from = "workday.get_employee"         # a read tool Warden can execute
//! args = { employee_id = "args.employee_id" }  # its arguments, from this request's
//! field = "salary_cents"                # a field of its declared `result`
//! timeout = "2s"                        # per fetch (default 2s)
//! ttl = "1m"                            # how long a fetched result is reused (default 1m; "0s": never)
//! on_error = "deny"                     # "deny" (default): facts_unavailable; "omit": decide without it
//! ```
//!
//! Facts with the same `from` and arguments share one fetch. Step data
//! (`[[workflows.steps]] expose = [...]`) is declared here too: both read a
//! tool's declared `[tools.result]` schema.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::ModelProblem;
use crate::source::Location;
use crate::vocab::Access;

/// The default time a fetch may take.
pub const DEFAULT_FACT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default time a fetched result is reused.
pub const DEFAULT_FACT_TTL: Duration = Duration::from_secs(60);
/// The longest a fetch may be given.
const MAX_FACT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a fetched result may be reused.
const MAX_FACT_TTL: Duration = Duration::from_secs(86_400);

/// JSON Schema types a fact or an exposed field may have.
pub(crate) const SCALAR_TYPES: &[&str] = &["string", "integer", "number", "boolean"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFact {
    name: Spanned<String>,
    from: Spanned<String>,
    args: Spanned<BTreeMap<String, Spanned<String>>>,
    field: Spanned<String>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    ttl: Option<Spanned<String>>,
    #[serde(default)]
    on_error: Option<Spanned<String>>,
}

/// A value fetched before deciding.
#[derive(Debug, Clone)]
pub struct Fact {
    /// `context.facts.<name>`.
    pub name: String,
    /// The read tool Warden executes to fetch it.
    pub from: String,
    /// Its arguments: each `from` argument and the argument of this
    /// request it is taken from.
    pub args: BTreeMap<String, String>,
    /// The top-level field of `from`'s result.
    pub field: String,
    /// How long a fetch may take.
    pub timeout: Duration,
    /// How long a fetched result is reused (zero: never).
    pub ttl: Duration,
    /// Whether a failed fetch denies (`facts_unavailable`); otherwise the
    /// fact is left out and policies test `context.facts has <name>`.
    pub required: bool,
    /// Where it is declared.
    pub at: Location,
}

impl Fact {
    /// The arguments of the fetch for a request with `args` (`None` when
    /// one is missing: the request's own schema check reports it).
    pub fn fetch_args(&self, args: &serde_json::Value) -> Option<serde_json::Value> {
        let mut m = serde_json::Map::new();
        for (to, from) in &self.args {
            m.insert(to.clone(), args.get(from)?.clone());
        }
        Some(serde_json::Value::Object(m))
    }
}

/// The JSON Schema type of top-level property `field` of `schema`, and
/// whether it is required; `None` when there is no such property.
pub(crate) fn property(schema: &serde_json::Value, field: &str) -> Option<(Option<String>, bool)> {
    let prop = schema.get("properties")?.get(field)?;
    let ty = prop
        .get("type")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let required = schema
        .get("required")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(field)));
    Some((ty, required))
}

fn duration(
    v: Option<&Spanned<String>>,
    default: Duration,
    max: Duration,
    what: &str,
) -> Result<Duration, (String, std::ops::Range<usize>)> {
    let Some(v) = v else {
        return Ok(default);
    };
    match humantime::parse_duration(v.get_ref()) {
        Ok(d) if d <= max => Ok(d),
        _ => Err((
            format!(
                "invalid {what} `{}`: write a duration up to {} such as `500ms` or `2s`",
                v.get_ref(),
                humantime::format_duration(max)
            ),
            v.span(),
        )),
    }
}

impl crate::load::Cx {
    /// `[[tools.facts]]` of every tool, once all tools are known.
    pub(crate) fn resolve_facts(
        &mut self,
        raw: Vec<(String, Vec<RawFact>)>,
        pack: &mut crate::Pack,
    ) {
        for (tool_id, facts) in raw {
            let mut resolved: Vec<Fact> = Vec::new();
            for f in facts {
                if let Some(fact) = self.resolve_fact(&tool_id, f, pack, &resolved) {
                    resolved.push(fact);
                }
            }
            if let Some(t) = pack.tools.get_mut(&tool_id) {
                t.facts = resolved;
            }
        }
    }

    fn resolve_fact(
        &mut self,
        tool_id: &str,
        f: RawFact,
        pack: &crate::Pack,
        earlier: &[Fact],
    ) -> Option<Fact> {
        let problem = |message: String| ModelProblem::Facts { message };
        let name = f.name.get_ref().clone();
        if !crate::counter::is_identifier(&name) {
            let message = format!(
                "fact name `{name}` is not a Cedar identifier: a letter or `_`, then letters, digits or `_`"
            );
            self.push(problem(message), f.name.span());
            return None;
        }
        if earlier.iter().any(|e| e.name == name) {
            let message = format!("fact `{name}` of tool `{tool_id}` is declared twice");
            self.push(problem(message), f.name.span());
            return None;
        }
        let this = pack.tools.get(tool_id)?;
        let Some(from) = pack.tools.get(f.from.get_ref()) else {
            if !self.unloaded_tools.contains(f.from.get_ref()) {
                self.unknown("tool", &f.from, pack.tools.keys());
            }
            return None;
        };
        let mut ok = true;
        if from.access != Access::Read || from.execute.is_none() {
            let message = format!(
                "fact `{name}` is read from `{}`, which is not a read tool Warden can execute (it needs `access = \"read\"` and `[tools.execute]`)",
                from.id
            );
            self.push(problem(message), f.from.span());
            ok = false;
        }
        let mut args = BTreeMap::new();
        for (to, source) in f.args.get_ref() {
            let field = source.get_ref().strip_prefix("args.").unwrap_or_default();
            let to_ty = property(&from.args, to);
            let from_ty = property(&this.args, field);
            let why = match (&to_ty, &from_ty) {
                (None, _) => Some(format!("`{}` has no argument `{to}`", from.id)),
                (_, None) if field.is_empty() => Some(format!(
                    "`{}` must name an argument of `{tool_id}` as `args.<field>`",
                    source.get_ref()
                )),
                (_, None) => Some(format!("`{tool_id}` has no argument `{field}`")),
                (_, Some((_, false))) => Some(format!(
                    "`{field}` is not a required argument of `{tool_id}`"
                )),
                (Some((a, _)), Some((b, _))) if a != b => Some(format!(
                    "`{field}` of `{tool_id}` and `{to}` of `{}` have different types",
                    from.id
                )),
                _ => None,
            };
            match why {
                Some(why) => {
                    self.push(problem(format!("fact `{name}`: {why}")), source.span());
                    ok = false;
                }
                None => {
                    args.insert(to.clone(), field.to_owned());
                }
            }
        }
        let required_args: Vec<String> = from
            .args
            .get("required")
            .and_then(serde_json::Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for r in required_args {
            if !args.contains_key(&r) && ok {
                let message = format!(
                    "fact `{name}`: `{}` needs argument `{r}`; give it in `args` (e.g. `{r} = \"args.{r}\"`)",
                    from.id
                );
                self.push(problem(message), f.args.span());
                ok = false;
            }
        }
        let field = f.field.get_ref().clone();
        match from.result.as_ref().and_then(|r| property(r, &field)) {
            Some((Some(ty), _)) if SCALAR_TYPES.contains(&ty.as_str()) => {}
            Some(_) => {
                let message = format!(
                    "fact `{name}`: result field `{field}` of `{}` must have a `type` of {}",
                    from.id,
                    SCALAR_TYPES.join(", ")
                );
                self.push(problem(message), f.field.span());
                ok = false;
            }
            None => {
                let message = format!(
                    "fact `{name}`: `{}` declares no result field `{field}`; declare it under `[tools.result.properties]` of `{}`",
                    from.id, from.id
                );
                self.push(problem(message), f.field.span());
                ok = false;
            }
        }
        let timeout = duration(
            f.timeout.as_ref(),
            DEFAULT_FACT_TIMEOUT,
            MAX_FACT_TIMEOUT,
            "timeout",
        );
        let ttl = duration(f.ttl.as_ref(), DEFAULT_FACT_TTL, MAX_FACT_TTL, "ttl");
        let required = match f.on_error.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("deny") => true,
            Some("omit") => false,
            Some(other) => {
                let message = format!("on_error `{other}`: write `deny` (the default) or `omit`");
                if let Some(s) = &f.on_error {
                    self.push(problem(message), s.span());
                }
                ok = false;
                true
            }
        };
        let (timeout, ttl) = match (timeout, ttl) {
            (Ok(t), Ok(l)) if !t.is_zero() => (t, l),
            (t, l) => {
                for (message, span) in [t.err(), l.err()].into_iter().flatten() {
                    self.push(problem(message), span);
                }
                if let Some(t) = &f.timeout
                    && humantime::parse_duration(t.get_ref()).is_ok_and(|d| d.is_zero())
                {
                    self.push(
                        problem("a fact's timeout must be above zero".into()),
                        t.span(),
                    );
                }
                return None;
            }
        };
        if !ok {
            return None;
        }
        Some(Fact {
            at: self.loc(f.name.span()),
            name,
            from: from.id.clone(),
            args,
            field,
            timeout,
            ttl,
            required,
        })
    }

    /// `expose = [...]` of a step of `tool`: argument names and
    /// `result.<field>`s, each a declared scalar that is not sensitive.
    pub(crate) fn resolve_expose(
        &mut self,
        step: &str,
        tool: Option<&crate::Tool>,
        expose: &[Spanned<String>],
    ) -> Vec<String> {
        let Some(tool) = tool else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for e in expose {
            let problem = |message: String| ModelProblem::Expose { message };
            let name = e.get_ref();
            let (schema, field, what) = match name.strip_prefix("result.") {
                Some(f) => (tool.result.as_ref(), f, "result field"),
                None => (Some(&tool.args), name.as_str(), "argument"),
            };
            let why = if out.contains(name) {
                Some(format!("`{name}` is listed twice"))
            } else if name == "result" {
                Some("expose result fields one by one, as `result.<field>`".to_owned())
            } else {
                match schema.and_then(|s| property(s, field)) {
                    None => Some(format!(
                        "`{}` has no {what} `{field}`{}",
                        tool.id,
                        if what == "result field" {
                            " (declare it under `[tools.result.properties]`)"
                        } else {
                            ""
                        }
                    )),
                    Some((ty, _))
                        if !ty
                            .as_deref()
                            .is_some_and(|t| SCALAR_TYPES.contains(&t)) =>
                    {
                        Some(format!(
                            "{what} `{field}` of `{}` must have a `type` of {}",
                            tool.id,
                            SCALAR_TYPES.join(", ")
                        ))
                    }
                    Some(_)
                        if tool.sensitive.iter().any(|s| s == field)
                            || (what == "result field"
                                && tool
                                    .sensitive_result
                                    .iter()
                                    .any(|p| p.is_empty() || *p == format!("/{field}"))) =>
                    {
                        Some(format!(
                            "{what} `{field}` of `{}` is sensitive: runs keep exposed values in the store",
                            tool.id
                        ))
                    }
                    Some(_) if what == "argument" && field == "result" => Some(
                        "an argument named `result` cannot be exposed (the name holds result fields)"
                            .to_owned(),
                    ),
                    Some(_) => None,
                }
            };
            match why {
                Some(why) => {
                    self.push(problem(format!("step `{step}`: {why}")), e.span());
                }
                None => out.push(name.clone()),
            }
        }
        out
    }
}
