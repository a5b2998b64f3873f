//! Building the Cedar context of a request directly from typed values.
//!
//! The arguments were checked against the tool's JSON Schema already, so the
//! context is built from the typed field list (no JSON parsing, no schema
//! lookups): `Context::from_pairs` over `RestrictedExpression`s.

use cedar_policy::{Context, RestrictedExpression};
use serde_json::Value;
use warden_model::RequestContext;

use crate::schema::{ArgField, ArgType};

/// `context.args` as a Cedar record.
pub(crate) fn args_record(fields: &[ArgField], args: &Value) -> Result<RestrictedExpression, String> {
    let obj = args.as_object().ok_or("arguments must be a JSON object")?;
    record(fields, obj, "")
}

fn record(
    fields: &[ArgField],
    obj: &serde_json::Map<String, Value>,
    path: &str,
) -> Result<RestrictedExpression, String> {
    let mut pairs = Vec::with_capacity(fields.len());
    for f in fields {
        match obj.get(&f.name) {
            None | Some(Value::Null) if !f.required => {}
            None | Some(Value::Null) => return Err(format!("`{path}{}` is required", f.name)),
            Some(v) => pairs.push((f.name.clone(), value(&f.ty, v, &format!("{path}{}", f.name))?)),
        }
    }
    RestrictedExpression::new_record(pairs).map_err(|e| e.to_string())
}

fn value(ty: &ArgType, v: &Value, path: &str) -> Result<RestrictedExpression, String> {
    Ok(match (ty, v) {
        (ArgType::String, Value::String(s)) => RestrictedExpression::new_string(s.clone()),
        (ArgType::Bool, Value::Bool(b)) => RestrictedExpression::new_bool(*b),
        (ArgType::Long, Value::Number(n)) => {
            let i = n
                .as_i64()
                .or_else(|| {
                    // JSON Schema counts 5.0 as an integer.
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .ok_or_else(|| format!("`{path}` is outside the 64-bit integer range"))?;
            RestrictedExpression::new_long(i)
        }
        (ArgType::Set(el), Value::Array(items)) => RestrictedExpression::new_set(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| value(el, x, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        (ArgType::Record(fields), Value::Object(obj)) => record(fields, obj, &format!("{path}."))?,
        _ => return Err(format!("`{path}` does not have the declared type")),
    })
}

/// The whole context of one evaluation.
pub(crate) fn build(
    args: RestrictedExpression,
    approvals: impl IntoIterator<Item = String>,
    risk: &str,
    access: &str,
    rc: &RequestContext,
) -> Result<Context, String> {
    let mut pairs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(7);
    pairs.push(("args".into(), args));
    pairs.push((
        "approvals".into(),
        RestrictedExpression::new_set(approvals.into_iter().map(RestrictedExpression::new_string)),
    ));
    pairs.push(("risk".into(), RestrictedExpression::new_string(risk.to_owned())));
    pairs.push(("access".into(), RestrictedExpression::new_string(access.to_owned())));
    if let Some(w) = &rc.workflow {
        pairs.push(("workflow".into(), RestrictedExpression::new_string(w.clone())));
    }
    if let Some(r) = &rc.run {
        pairs.push(("run".into(), RestrictedExpression::new_string(r.clone())));
    }
    if let Some(t) = &rc.trigger {
        let mut tr = vec![("source".to_owned(), RestrictedExpression::new_string(t.source.clone()))];
        if let Some(r) = &t.reference {
            tr.push(("reference".into(), RestrictedExpression::new_string(r.clone())));
        }
        if let Some(r) = &t.requester {
            tr.push(("requester".into(), RestrictedExpression::new_string(r.clone())));
        }
        pairs.push((
            "trigger".into(),
            RestrictedExpression::new_record(tr).map_err(|e| e.to_string())?,
        ));
    }
    Context::from_pairs(pairs).map_err(|e| e.to_string())
}
