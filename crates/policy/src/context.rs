//! Building the Cedar context of a request directly as Cedar values.
//!
//! The arguments were checked against the tool's JSON Schema already, so the
//! context is built from the typed field list: no JSON parsing, no schema
//! lookups, no restricted-expression evaluation. The context of the second
//! pass (approvals lifted) shares everything but `approvals`.

use std::collections::BTreeMap;
use std::sync::Arc;

use cedar_policy_core::ast::{Context, Expr, Unknown, Value};
use serde_json::Value as Json;
use smol_str::SmolStr;
use warden_model::RequestContext;

use crate::schema::{ArgField, ArgType};

/// A counter a tool's actions count, as its context needs it.
#[derive(Debug, Clone)]
pub(crate) struct ToolCounter {
    /// `context.usage.<name>`.
    pub name: SmolStr,
    /// The integer argument summed; `None`: a count.
    pub sum: Option<String>,
}

/// The parts of a context that do not depend on approvals.
#[derive(Debug, Clone)]
pub(crate) struct BaseContext(BTreeMap<SmolStr, Value>);

/// `context.args` as a Cedar record value.
pub(crate) fn args_value(fields: &[ArgField], args: &Json) -> Result<Value, String> {
    let obj = args.as_object().ok_or("arguments must be a JSON object")?;
    record(fields, obj, "")
}

/// `context.args` as a Cedar record expression in which each top-level
/// field named in `unknown` is a Cedar unknown named `args.<field>` (for
/// partial evaluation of recorded arguments whose sensitive fields were
/// redacted).
pub(crate) fn args_residual(
    fields: &[ArgField],
    args: &Json,
    unknown: &[String],
) -> Result<Expr, String> {
    let obj = args.as_object().ok_or("arguments must be a JSON object")?;
    let mut m = BTreeMap::new();
    for f in fields {
        if unknown.contains(&f.name) {
            m.insert(
                f.key.clone(),
                Expr::unknown(Unknown::new_untyped(format!("args.{}", f.name))),
            );
            continue;
        }
        match obj.get(&f.name) {
            None | Some(Json::Null) if !f.required => {}
            None | Some(Json::Null) => return Err(format!("`{}` is required", f.name)),
            Some(v) => {
                m.insert(f.key.clone(), Expr::from(value(&f.ty, v, "", &f.name)?));
            }
        }
    }
    Ok(Expr::record_arc(Arc::new(m)))
}

fn record(
    fields: &[ArgField],
    obj: &serde_json::Map<String, Json>,
    path: &str,
) -> Result<Value, String> {
    record_of(fields, |name| obj.get(name), path)
}

/// A Cedar record of `fields`, each value found by `get`: a missing
/// optional field is left out, a missing required one is an error.
fn record_of<'a>(
    fields: &[ArgField],
    get: impl Fn(&str) -> Option<&'a Json>,
    path: &str,
) -> Result<Value, String> {
    let mut m = BTreeMap::new();
    for f in fields {
        match get(&f.name) {
            None | Some(Json::Null) if !f.required => {}
            None | Some(Json::Null) => return Err(format!("`{path}{}` is required", f.name)),
            Some(v) => {
                m.insert(f.key.clone(), value(&f.ty, v, path, &f.name)?);
            }
        }
    }
    Ok(Value::record_arc(Arc::new(m), None))
}

fn value(ty: &ArgType, v: &Json, path: &str, name: &str) -> Result<Value, String> {
    Ok(match (ty, v) {
        (ArgType::String, Json::String(s)) => Value::from(s.as_str()),
        (ArgType::Bool, Json::Bool(b)) => Value::from(*b),
        (ArgType::Entity(t), Json::String(id)) => Value::from(
            cedar_policy_core::ast::EntityUID::from_components(
                t.clone(),
                cedar_policy_core::ast::Eid::new(id.as_str()),
                None,
            ),
        ),
        (ArgType::Long, Json::Number(n)) => {
            let i = n
                .as_i64()
                .or_else(|| {
                    // JSON Schema counts 5.0 as an integer.
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .ok_or_else(|| format!("`{path}{name}` is outside the 64-bit integer range"))?;
            Value::from(i)
        }
        (ArgType::Decimal, Json::Number(n)) => decimal(n)
            .ok_or_else(|| {
                format!(
                    "`{path}{name}` = {n} cannot be held exactly as a decimal: at most 4 digits after \
                     the point, 15 significant digits, and ±922,337,203,685,477 (it is never rounded)"
                )
            })?,
        (ArgType::Set(el), Json::Array(items)) => Value::set(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| value(el, x, path, &format!("{name}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            None,
        ),
        (ArgType::Record(fields), Json::Object(obj)) => {
            record(fields, obj, &format!("{path}{name}."))?
        }
        _ => return Err(format!("`{path}{name}` does not have the declared type")),
    })
}

/// Cedar's decimal extension and the name of its constructor, made once.
static DECIMAL: std::sync::LazyLock<(
    cedar_policy_core::ast::Extension,
    Option<cedar_policy_core::ast::Name>,
)> = std::sync::LazyLock::new(|| {
    (
        cedar_policy_core::extensions::decimal::extension(),
        "decimal".parse().ok(),
    )
});

/// `n` as a Cedar decimal, exactly, or `None`.
///
/// A JSON number arrives as an integer or as an IEEE double. A double is
/// taken as the shortest decimal that reads back as the same double (what
/// the sender wrote, for every number of at most 15 significant digits);
/// more than 15 significant digits cannot be told apart from a neighbour,
/// more than 4 after the point do not fit Cedar's decimal, and the integer
/// part must fit its 64-bit range: each is refused, never rounded.
pub(crate) fn decimal(n: &serde_json::Number) -> Option<Value> {
    let text = match n.as_i64() {
        Some(i) => format!("{i}.0"),
        None if n.is_u64() => return None,
        None => {
            let f = n.as_f64().filter(|f| f.is_finite())?;
            // Rust prints a double as its shortest round-trip decimal,
            // without an exponent.
            let s = f.to_string();
            let (sign, body) = s.strip_prefix('-').map_or(("", s.as_str()), |b| ("-", b));
            let (int, frac) = body.split_once('.').unwrap_or((body, ""));
            let frac = frac.trim_end_matches('0');
            let significant = format!("{int}{frac}").trim_start_matches('0').len();
            if frac.len() > 4 || significant > 15 {
                return None;
            }
            format!("{sign}{int}.{}", if frac.is_empty() { "0" } else { frac })
        }
    };
    let (extension, name) = &*DECIMAL;
    match extension
        .get_func(name.as_ref()?)?
        .call(&[Value::from(text.as_str())])
    {
        Ok(cedar_policy_core::ast::PartialValue::Value(v)) => Some(v),
        _ => None,
    }
}

impl BaseContext {
    /// Everything but `approvals`.
    pub fn new(args: Value, risk: &str, access: &str, rc: &RequestContext) -> Self {
        let mut m = BTreeMap::new();
        m.insert(SmolStr::new_static("args"), args);
        m.insert(SmolStr::new_static("risk"), Value::from(risk));
        m.insert(SmolStr::new_static("access"), Value::from(access));
        if let Some(w) = &rc.workflow {
            m.insert(SmolStr::new_static("workflow"), Value::from(w.as_str()));
        }
        if let Some(t) = &rc.trigger {
            let mut tr = BTreeMap::new();
            tr.insert(
                SmolStr::new_static("source"),
                Value::from(t.source.as_str()),
            );
            if let Some(r) = &t.reference {
                tr.insert(SmolStr::new_static("reference"), Value::from(r.as_str()));
            }
            if let Some(r) = &t.requester {
                tr.insert(SmolStr::new_static("requester"), Value::from(r.as_str()));
            }
            m.insert(
                SmolStr::new_static("trigger"),
                Value::record_arc(Arc::new(tr), None),
            );
        }
        Self(m)
    }

    /// Adds `context.run` (`{id, steps}`) when the request is in a run:
    /// the data of each step in `steps` (the exposing steps the tool's
    /// schema knows) that the run holds. Data that does not have its
    /// declared type is an error (the caller denies: fail closed).
    pub fn with_run(mut self, steps: &[ArgField], rc: &RequestContext) -> Result<Self, String> {
        let Some(id) = &rc.run else {
            return Ok(self);
        };
        // Every step is optional: only those the run holds are added.
        let steps = record_of(steps, |name| rc.steps.get(name), "run.steps.")?;
        let mut run = BTreeMap::new();
        run.insert(SmolStr::new_static("id"), Value::from(id.as_str()));
        run.insert(SmolStr::new_static("steps"), steps);
        self.0.insert(
            SmolStr::new_static("run"),
            Value::record_arc(Arc::new(run), None),
        );
        Ok(self)
    }

    /// Adds `context.facts` when the tool has facts: the values fetched
    /// (a required one missing, or one of another type, is an error).
    pub fn with_facts(mut self, facts: &[ArgField], rc: &RequestContext) -> Result<Self, String> {
        if facts.is_empty() {
            return Ok(self);
        }
        let v = record_of(facts, |name| rc.facts.get(name), "facts.")?;
        self.0.insert(SmolStr::new_static("facts"), v);
        Ok(self)
    }

    /// Adds `context.usage` when the tool has counters: each counter's
    /// value before the request (`prior`, 0 when absent) plus what this
    /// request adds. Saturates rather than wraps.
    pub fn with_usage(
        mut self,
        counters: &[ToolCounter],
        args: &Json,
        prior: &BTreeMap<String, i64>,
    ) -> Self {
        if counters.is_empty() {
            return self;
        }
        let usage: BTreeMap<SmolStr, Value> = counters
            .iter()
            .map(|c| {
                let before = prior.get(c.name.as_str()).copied().unwrap_or(0);
                let this = match &c.sum {
                    None => 1,
                    Some(f) => args.get(f).and_then(Json::as_i64).unwrap_or(0),
                };
                (c.name.clone(), Value::from(before.saturating_add(this)))
            })
            .collect();
        self.0.insert(
            SmolStr::new_static("usage"),
            Value::record_arc(Arc::new(usage), None),
        );
        self
    }

    /// The whole context, with these approvals (keeps the base for another pass).
    pub fn with_approvals<'a>(&self, approvals: impl IntoIterator<Item = &'a str>) -> Context {
        self.clone().into_context(approvals)
    }

    /// The whole context with `args` replaced by an expression holding
    /// unknowns (see [`args_residual`]), with these approvals.
    pub fn residual<'a>(
        &self,
        args: &Expr,
        approvals: impl IntoIterator<Item = &'a str>,
    ) -> Context {
        let mut m: BTreeMap<SmolStr, Expr> = self
            .0
            .iter()
            .map(|(k, v)| (k.clone(), Expr::from(v.clone())))
            .collect();
        m.insert(SmolStr::new_static("args"), args.clone());
        m.insert(
            SmolStr::new_static("approvals"),
            Expr::from(Value::set(approvals.into_iter().map(Value::from), None)),
        );
        Context::RestrictedResidual(Arc::new(m))
    }

    /// The whole context, with these approvals.
    pub fn into_context<'a>(mut self, approvals: impl IntoIterator<Item = &'a str>) -> Context {
        self.0.insert(
            SmolStr::new_static("approvals"),
            Value::set(approvals.into_iter().map(Value::from), None),
        );
        Context::Value(Arc::new(self.0))
    }
}
