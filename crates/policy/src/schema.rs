//! The Cedar schema Warden generates from a pack, and the typed argument
//! fields used to build each request's context without parsing JSON twice.
//!
//! Entity types: `Team`; `Person in [Team]`; `Agent in [Team]` with `owner`
//! and `team`; `System` with `owner`. One action per tool, a member of the
//! action groups `access:<read|write>`, `risk:<class>` and `system:<id>`.
//! Each action's context is typed from the tool's argument JSON Schema.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use warden_model::{Access, Pack, Risk, Step, Tool};

/// Entity type of agents.
pub const AGENT: &str = "Agent";
/// Entity type of teams.
pub const TEAM: &str = "Team";
/// Entity type of people.
pub const PERSON: &str = "Person";
/// Entity type of systems (the resource of every request).
pub const SYSTEM: &str = "System";

/// The JSON Schema keyword that makes a string argument an entity
/// reference: `{ type = "string", x-warden-entity = "Customer" }`.
pub const ENTITY_KEYWORD: &str = "x-warden-entity";

/// The type of an argument as policies see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ArgType {
    String,
    Long,
    /// A JSON `number`: Cedar's `decimal` (4 digits after the point).
    Decimal,
    Bool,
    /// A string naming an entity of a reference data type
    /// (`"x-warden-entity": "Customer"`): policies read its attributes.
    Entity(cedar_policy_core::ast::EntityType),
    Set(Box<ArgType>),
    Record(Vec<ArgField>),
}

/// One argument property that policies can read as `context.args.<name>`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ArgField {
    pub name: String,
    /// `name` as a Cedar record key, made once.
    pub key: smol_str::SmolStr,
    pub ty: ArgType,
    pub required: bool,
}

/// An argument property left out of the Cedar context, and why.
#[derive(Debug, Clone)]
pub(crate) struct Omitted {
    pub path: String,
    pub reason: &'static str,
}

/// The record type of a tool's arguments, and what could not be typed.
pub(crate) fn arg_fields(tool: &Tool) -> (Vec<ArgField>, Vec<Omitted>) {
    let mut omitted = Vec::new();
    let fields = record_fields(&tool.args, "", &mut omitted);
    (fields, omitted)
}

/// The typed fields of `schema` (an object schema) restricted to `names`,
/// each required as `schema` says unless `optional`.
fn some_fields(schema: &Value, names: &[&str], optional: bool) -> Vec<ArgField> {
    let props: serde_json::Map<String, Value> = names
        .iter()
        .filter_map(|n| {
            let p = schema.get("properties")?.get(*n)?;
            Some(((*n).to_owned(), p.clone()))
        })
        .collect();
    let required: Vec<&Value> = if optional {
        Vec::new()
    } else {
        schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().collect())
            .unwrap_or_default()
    };
    let sub = json!({"type": "object", "properties": props, "required": required});
    record_fields(&sub, "", &mut Vec::new())
}

/// The record a step's exposed data makes (`context.run.steps.<id>`): its
/// exposed arguments, and its exposed result fields under `result`.
pub(crate) fn step_fields(pack: &Pack, step: &Step) -> Vec<ArgField> {
    let Some(tool) = pack.tools.get(&step.tool) else {
        return Vec::new();
    };
    let args: Vec<&str> = step
        .expose
        .iter()
        .filter(|e| !e.starts_with("result."))
        .map(String::as_str)
        .collect();
    let results: Vec<&str> = step
        .expose
        .iter()
        .filter_map(|e| e.strip_prefix("result."))
        .collect();
    let mut fields = some_fields(&tool.args, &args, false);
    if let (false, Some(schema)) = (results.is_empty(), &tool.result) {
        fields.push(ArgField {
            name: "result".into(),
            key: smol_str::SmolStr::new_static("result"),
            ty: ArgType::Record(some_fields(schema, &results, false)),
            required: true,
        });
    }
    fields
}

/// The steps whose data a tool's requests can see: the exposing steps of
/// every workflow the tool is a step of, once per id, each optional (a
/// step's data exists once it succeeded).
pub(crate) fn run_steps(pack: &Pack, tool: &str) -> Vec<ArgField> {
    let mut out: Vec<ArgField> = Vec::new();
    for wf in pack.workflows.values() {
        if !wf.steps.iter().any(|s| s.tool == tool) {
            continue;
        }
        for s in wf.steps.iter().filter(|s| !s.expose.is_empty()) {
            if out.iter().any(|f| f.name == s.id) {
                continue;
            }
            out.push(ArgField {
                name: s.id.clone(),
                key: smol_str::SmolStr::new(&s.id),
                ty: ArgType::Record(step_fields(pack, s)),
                required: false,
            });
        }
    }
    out
}

/// `context.facts` of a tool: each fact typed from its source's result
/// schema, required unless the fact is `on_error = "omit"`.
pub(crate) fn fact_fields(pack: &Pack, tool: &Tool) -> Vec<ArgField> {
    tool.facts
        .iter()
        .filter_map(|f| {
            let schema = pack.tools.get(&f.from)?.result.as_ref()?;
            let mut field = some_fields(schema, &[f.field.as_str()], true).pop()?;
            field.name = f.name.clone();
            field.key = smol_str::SmolStr::new(&f.name);
            field.required = f.required;
            Some(field)
        })
        .collect()
}

/// The record type of a reference data type's attributes (`attributes`, an
/// object schema), and what could not be typed.
pub(crate) fn attr_fields(attributes: &Value) -> (Vec<ArgField>, Vec<Omitted>) {
    let mut omitted = Vec::new();
    let fields = record_fields(attributes, "", &mut omitted);
    (fields, omitted)
}

fn record_fields(schema: &Value, prefix: &str, omitted: &mut Vec<Omitted>) -> Vec<ArgField> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .filter_map(|(name, prop)| {
            let path = format!("{prefix}{name}");
            match arg_type(prop, &path, omitted) {
                Ok(ty) => Some(ArgField {
                    key: smol_str::SmolStr::new(name),
                    name: name.clone(),
                    ty,
                    required: required.contains(&name.as_str()),
                }),
                Err(reason) => {
                    omitted.push(Omitted { path, reason });
                    None
                }
            }
        })
        .collect()
}

fn arg_type(prop: &Value, path: &str, omitted: &mut Vec<Omitted>) -> Result<ArgType, &'static str> {
    let ty = match prop.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err("a list of types has no Cedar equivalent"),
        None => {
            // An enum of strings without `type` is still a string.
            let all_strings = prop
                .get("enum")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty() && e.iter().all(Value::is_string));
            if all_strings {
                "string"
            } else {
                return Err("it has no single `type`");
            }
        }
    };
    if let Some(entity) = prop.get(ENTITY_KEYWORD) {
        return match (ty, entity.as_str()) {
            ("string", Some(t)) => t
                .parse::<cedar_policy_core::ast::Name>()
                .map(|n| ArgType::Entity(n.into()))
                .map_err(|_| "`x-warden-entity` is not an entity type name"),
            _ => Err("`x-warden-entity` needs `type = \"string\"` and an entity type name"),
        };
    }
    Ok(match ty {
        "string" => ArgType::String,
        "integer" => ArgType::Long,
        "boolean" => ArgType::Bool,
        "array" => {
            let items = prop.get("items").ok_or("an array needs `items`")?;
            ArgType::Set(Box::new(arg_type(items, path, omitted)?))
        }
        "object" => ArgType::Record(record_fields(prop, &format!("{path}."), omitted)),
        "number" => ArgType::Decimal,
        _ => return Err("its type has no Cedar equivalent"),
    })
}

fn cedar_type(ty: &ArgType) -> Value {
    match ty {
        ArgType::String => json!({"type": "String"}),
        ArgType::Long => json!({"type": "Long"}),
        ArgType::Decimal => json!({"type": "Extension", "name": "decimal"}),
        ArgType::Bool => json!({"type": "Boolean"}),
        ArgType::Entity(t) => json!({"type": "Entity", "name": t.to_string()}),
        ArgType::Set(el) => json!({"type": "Set", "element": cedar_type(el)}),
        ArgType::Record(fields) => record_type(fields),
    }
}

fn record_type(fields: &[ArgField]) -> Value {
    let attrs: serde_json::Map<String, Value> = fields
        .iter()
        .map(|f| {
            let mut t = cedar_type(&f.ty);
            if !f.required
                && let Some(o) = t.as_object_mut()
            {
                o.insert("required".into(), Value::Bool(false));
            }
            (f.name.clone(), t)
        })
        .collect();
    json!({"type": "Record", "attributes": attrs})
}

/// The action group for an access kind.
pub fn access_group(access: Access) -> String {
    format!("access:{access}")
}

/// The action group for a risk class.
pub fn risk_group(risk: Risk) -> String {
    format!("risk:{risk}")
}

/// The action group for a system.
pub fn system_group(system: &str) -> String {
    format!("system:{system}")
}

/// The groups a tool's action belongs to (its system's group only when the
/// system exists: an unknown system is reported by the loader).
pub(crate) fn groups_of(pack: &Pack, tool: &Tool) -> Vec<String> {
    let mut groups = vec![access_group(tool.access), risk_group(tool.risk)];
    if pack.systems.contains_key(&tool.system) {
        groups.push(system_group(&tool.system));
    }
    groups
}

/// The parts of the generated schema, kept apart so a schema holding only
/// some actions can be assembled cheaply (per-policy validation).
pub(crate) struct SchemaParts {
    pub entity_types: Value,
    /// Group actions (no `appliesTo`), always included.
    pub groups: BTreeMap<String, Value>,
    /// One entry per tool: its action's JSON.
    pub actions: BTreeMap<String, Value>,
}

impl SchemaParts {
    pub fn new(pack: &Pack, fields: &BTreeMap<String, Vec<ArgField>>) -> Self {
        let mut entity_types = json!({
            TEAM: {},
            PERSON: {"memberOfTypes": [TEAM]},
            AGENT: {
                "memberOfTypes": [TEAM],
                "shape": {"type": "Record", "attributes": {
                    "owner": {"type": "String"},
                    "team": {"type": "Entity", "name": TEAM},
                }},
            },
            SYSTEM: {
                "shape": {"type": "Record", "attributes": {
                    "owner": {"type": "String"},
                }},
            },
        });
        // Reference data: one entity type per `[[reference_data]]`.
        if let Some(types) = entity_types.as_object_mut() {
            for d in pack.reference_data.values() {
                let (fields, _) = attr_fields(&d.attributes);
                types.insert(d.type_name.clone(), json!({"shape": record_type(&fields)}));
            }
        }
        let mut groups = BTreeMap::new();
        for a in Access::ALL {
            groups.insert(access_group(*a), json!({}));
        }
        for r in Risk::ALL {
            groups.insert(risk_group(*r), json!({}));
        }
        for s in pack.systems.keys() {
            groups.insert(system_group(s), json!({}));
        }
        let actions = pack
            .tools
            .values()
            .map(|tool| {
                let args = fields
                    .get(&tool.id)
                    .map_or_else(|| record_type(&[]), |f| record_type(f));
                let member_of: Vec<Value> = groups_of(pack, tool)
                    .iter()
                    .map(|g| json!({"id": g}))
                    .collect();
                let mut context = json!({"type": "Record", "attributes": {
                    "args": args,
                    "approvals": {"type": "Set", "element": {"type": "String"}},
                    "risk": {"type": "String"},
                    "access": {"type": "String"},
                    "workflow": {"type": "String", "required": false},
                    "run": {"type": "Record", "required": false, "attributes": {
                        "id": {"type": "String"},
                        "steps": record_type(&run_steps(pack, &tool.id)),
                    }},
                    "trigger": {"type": "Record", "required": false, "attributes": {
                        "source": {"type": "String"},
                        "reference": {"type": "String", "required": false},
                        "requester": {"type": "String", "required": false},
                    }},
                }});
                // `context.usage`: the counters this tool's actions count,
                // always present for it (a typo is a validation error).
                let usage: serde_json::Map<String, Value> = pack
                    .counters
                    .iter()
                    .filter(|c| c.counts(&tool.id))
                    .map(|c| (c.name.clone(), json!({"type": "Long"})))
                    .collect();
                if !usage.is_empty() {
                    context["attributes"]["usage"] = json!({"type": "Record", "attributes": usage});
                }
                // `context.facts`: what Warden fetches before deciding.
                if !tool.facts.is_empty() {
                    context["attributes"]["facts"] = record_type(&fact_fields(pack, tool));
                }
                let action = json!({
                    "memberOf": member_of,
                    "appliesTo": {
                        "principalTypes": [AGENT],
                        "resourceTypes": [SYSTEM],
                        "context": context,
                    },
                });
                (tool.id.clone(), action)
            })
            .collect();
        Self {
            entity_types,
            groups,
            actions,
        }
    }

    /// The schema JSON holding every group and the named tool actions
    /// (unknown names are skipped: the validator reports them).
    pub fn json_with<'a>(&self, tools: impl IntoIterator<Item = &'a str>) -> Value {
        let mut actions: serde_json::Map<String, Value> = self
            .groups
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for t in tools {
            if let Some(a) = self.actions.get(t) {
                actions.insert(t.to_owned(), a.clone());
            }
        }
        json!({"": {"entityTypes": self.entity_types, "actions": actions}})
    }

    /// The full schema JSON.
    pub fn json(&self) -> Value {
        self.json_with(self.actions.keys().map(String::as_str))
    }
}
