//! Compiling a loaded pack: schemas, policies, validation, slices.

use super::*;

/// Compiles a loaded pack: checks argument schemas, parses and validates every
/// policy, and slices the policy set by tool. Returns every error found, with
/// the loader's, or the engine and its warnings.
pub fn compile(loaded: Loaded, cache: Option<&ValidationCache>) -> Result<Compiled, Diagnostics> {
    let Loaded {
        pack,
        mut diagnostics,
    } = loaded;
    let mut fields: BTreeMap<String, Vec<ArgField>> = BTreeMap::new();
    let mut validators: BTreeMap<String, jsonschema::Validator> = BTreeMap::new();
    // Tools already reported broken: policies naming them are not validated,
    // so one fault is reported once, not again in every policy.
    let mut broken: HashSet<String> = pack.unloaded_tools.iter().cloned().collect();
    for tool in pack.tools.values() {
        let (f, omitted) = schema::arg_fields(tool);
        match jsonschema::options()
            .should_validate_formats(true)
            .build(&tool.args)
        {
            Ok(v) => {
                validators.insert(tool.id.clone(), v);
                for o in omitted {
                    diagnostics.push(
                        Diagnostic::new(&PolicyProblem::ArgNotInContext {
                            tool: tool.id.clone(),
                            path: o.path,
                            reason: o.reason,
                        })
                        .at(tool.args_at.clone()),
                    );
                }
            }
            Err(e) => {
                broken.insert(tool.id.clone());
                diagnostics.push(
                    Diagnostic::new(&PolicyProblem::InvalidArgsSchema {
                        tool: tool.id.clone(),
                        message: e.to_string(),
                    })
                    .at(tool.args_at.clone()),
                );
            }
        }
        fields.insert(tool.id.clone(), f);
    }
    let parts = SchemaParts::new(&pack, &fields);
    let reference = reference_entities(&pack, &parts, &mut diagnostics);
    let policies = load_policies(&pack, &mut diagnostics);
    let index = action_index(&pack);
    let checkable: Vec<LoadedPolicy> = policies
        .iter()
        .filter(|lp| !index.names_any(lp, &broken))
        .cloned()
        .collect();
    diagnostics.extend(validate(&parts, &index, &checkable, cache));
    // Playbooks that filter denials by policy id name real policies.
    for pb in pack.playbooks.values() {
        for (id, at) in &pb.policies {
            if !policies.iter().any(|lp| &lp.info.id == id) {
                let ids = policies.iter().map(|lp| lp.info.id.as_str());
                let mut d = Diagnostic::new(&PolicyProblem::UnknownPlaybookPolicy {
                    playbook: pb.id.clone(),
                    policy: id.clone(),
                })
                .at(at.clone());
                if let Some(s) = warden_model::did_you_mean(id, ids) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                diagnostics.push(d);
            }
        }
    }
    // Readiness gaps are judged on a pack that loads: next to errors they
    // would mostly be echoes of them (a rejected gate leaves its tool ungated).
    if !diagnostics.iter().any(Diagnostic::is_error) {
        readiness(&pack, &policies, &mut diagnostics);
    }
    diagnostics.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.location()
                .map(|l| (l.file.name().to_owned(), l.span.start))
        };
        key(a).cmp(&key(b))
    });
    let warnings = Diagnostics::from_all(diagnostics)?;
    let engine =
        build(pack, &parts, fields, validators, &policies, reference).map_err(|message| {
            Diagnostics::one(Diagnostic::new(&PolicyProblem::CedarValidation {
                message: format!("internal error while building the engine: {message}"),
            }))
        })?;
    Ok(Compiled { engine, warnings })
}

pub(crate) fn action_index(pack: &Pack) -> ActionIndex {
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    for tool in pack.tools.values() {
        for g in schema::groups_of(pack, tool) {
            members.entry(g).or_default().push(tool.id.clone());
        }
    }
    ActionIndex {
        tools: pack.tools.keys().cloned().collect(),
        members,
    }
}

/// The tools a policy's action scope can match; `None` for an unconstrained scope.
fn scope_tools(lp: &LoadedPolicy, index: &ActionIndex) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut add = |id: &str| {
        if index.tools.contains(id) {
            out.push(id.to_owned());
        } else if let Some(m) = index.members.get(id) {
            out.extend(m.iter().cloned());
        }
    };
    match lp.policy.action_constraint() {
        ActionConstraint::Any => return None,
        ActionConstraint::Eq(uid) => add(uid.id().unescaped()),
        ActionConstraint::In(uids) => uids.iter().for_each(|u| add(u.id().unescaped())),
    }
    Some(out)
}

/// Tools a policy names by id in its action scope (not through a group).
fn named_tools(lp: &LoadedPolicy) -> Vec<String> {
    match lp.policy.action_constraint() {
        ActionConstraint::Any => Vec::new(),
        ActionConstraint::Eq(uid) => vec![uid.id().unescaped().to_owned()],
        ActionConstraint::In(uids) => uids.iter().map(|u| u.id().unescaped().to_owned()).collect(),
    }
}

fn readiness(pack: &Pack, policies: &[LoadedPolicy], diags: &mut Vec<Diagnostic>) {
    let index = action_index(pack);
    let named: HashSet<String> = policies.iter().flat_map(named_tools).collect();
    let mut gated: HashSet<String> = HashSet::new();
    for lp in policies {
        let blanket_forbid = lp.info.effect == crate::Effect::Forbid
            && !lp.policy.has_non_scope_constraint()
            && matches!(
                lp.policy.principal_constraint(),
                cedar_policy::PrincipalConstraint::Any
            );
        if lp.info.gate.is_some() || blanket_forbid {
            match scope_tools(lp, &index) {
                Some(t) => gated.extend(t),
                None => gated.extend(index.tools.iter().cloned()),
            }
        }
    }
    for tool in pack.tools.values() {
        if tool.access == Access::Write && !named.contains(&tool.id) {
            diags.push(
                Diagnostic::new(&PolicyProblem::WriteToolNotNamed {
                    tool: tool.id.clone(),
                })
                .at(tool.at.clone())
                .help("name it in a policy's scope (`action == Action::\"...\"`) so who may change this system is explicit"),
            );
        }
        if tool.risk >= Risk::High && !gated.contains(&tool.id) {
            diags.push(
                Diagnostic::new(&PolicyProblem::RiskyToolUngated {
                    tool: tool.id.clone(),
                    risk: tool.risk,
                })
                .at(tool.at.clone())
                .help("add an approval gate (`@approval(\"group\") forbid ... unless { context.approvals.contains(\"group\") }`) or forbid it outright"),
            );
        }
    }
}

fn uid(ty: &str, id: &str) -> Result<EntityUid, String> {
    let ty = cedar_policy::EntityTypeName::from_str(ty).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(
        ty,
        cedar_policy::EntityId::new(id),
    ))
}

/// The entities of every `[[reference_data]]` type, their attributes
/// checked against their types (each mismatch is a diagnostic at the entry).
fn reference_entities(
    pack: &Pack,
    parts: &SchemaParts,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Entity> {
    if pack.reference_data.is_empty() {
        return Vec::new();
    }
    let schema = match cedar_policy::Schema::from_json_value(parts.json()) {
        Ok(s) => s,
        // The policies' validation reports what is wrong with the schema.
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for d in pack.reference_data.values() {
        let (fields, omitted) = schema::attr_fields(&d.attributes);
        let problem = |message: String| {
            Diagnostic::new(&PolicyProblem::InvalidReferenceData {
                type_name: d.type_name.clone(),
                message,
            })
            .at(d.at.clone())
        };
        for o in omitted {
            diagnostics.push(problem(format!(
                "attribute `{}` cannot be typed for policies: {}",
                o.path, o.reason
            )));
        }
        let json: Vec<serde_json::Value> = d
            .entities
            .iter()
            .map(|(id, attrs)| {
                let attrs: serde_json::Map<String, serde_json::Value> = attrs
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| fields.iter().any(|f| &f.name == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                serde_json::json!({
                    "uid": {"type": d.type_name, "id": id},
                    "attrs": attrs,
                    "parents": [],
                })
            })
            .collect();
        match Entities::from_json_value(serde_json::Value::Array(json), Some(&schema)) {
            Ok(es) => out.extend(
                es.iter()
                    .filter(|e| e.uid().type_name().to_string() == d.type_name)
                    .cloned(),
            ),
            Err(e) => {
                // Cedar's top message is generic; the cause names the
                // entity and the attribute.
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = format!("{why}: {s}");
                    source = s.source();
                }
                diagnostics.push(problem(format!("`{}`: {why}", d.file)));
            }
        }
    }
    out
}

fn build(
    pack: Pack,
    parts: &SchemaParts,
    fields: BTreeMap<String, Vec<ArgField>>,
    mut validators: BTreeMap<String, jsonschema::Validator>,
    policies: &[LoadedPolicy],
    reference: Vec<Entity>,
) -> Result<Engine, String> {
    let mut entities: Vec<Entity> = reference;
    for t in pack.teams.keys() {
        entities.push(Entity::new_no_attrs(uid(TEAM, t)?, HashSet::new()));
    }
    for p in pack.people.values() {
        let parents = p
            .team
            .iter()
            .map(|t| uid(TEAM, t))
            .collect::<Result<_, _>>()?;
        entities.push(Entity::new_no_attrs(uid(PERSON, &p.id)?, parents));
    }
    let mut agents = HashMap::new();
    for a in pack.agents.values() {
        let u = uid(AGENT, &a.id)?;
        let team = uid(TEAM, &a.team)?;
        let attrs = HashMap::from([
            (
                "owner".to_owned(),
                RestrictedExpression::new_string(a.owner.clone()),
            ),
            (
                "team".to_owned(),
                RestrictedExpression::new_entity_uid(team.clone()),
            ),
        ]);
        entities
            .push(Entity::new(u.clone(), attrs, HashSet::from([team])).map_err(|e| e.to_string())?);
        agents.insert(a.id.clone(), Arc::new(ast::EntityUID::from(u)));
    }
    for s in pack.systems.values() {
        let attrs = HashMap::from([(
            "owner".to_owned(),
            RestrictedExpression::new_string(s.owner.clone()),
        )]);
        entities.push(
            Entity::new(uid(SYSTEM, &s.id)?, attrs, HashSet::new()).map_err(|e| e.to_string())?,
        );
    }
    for g in parts.groups.keys() {
        entities.push(Entity::new_no_attrs(uid("Action", g)?, HashSet::new()));
    }
    for tool in pack.tools.values() {
        let parents = schema::groups_of(&pack, tool)
            .iter()
            .map(|g| uid("Action", g))
            .collect::<Result<_, _>>()?;
        entities.push(Entity::new_no_attrs(uid("Action", &tool.id)?, parents));
    }
    let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;

    let index = action_index(&pack);
    let mut per_tool: HashMap<&str, Vec<&LoadedPolicy>> = HashMap::new();
    let mut everywhere: Vec<&LoadedPolicy> = Vec::new();
    for lp in policies {
        match scope_tools(lp, &index) {
            None => everywhere.push(lp),
            Some(tools) => {
                for t in tools {
                    if let Some(tool) = pack.tools.get_key_value(&t) {
                        per_tool.entry(tool.0.as_str()).or_default().push(lp);
                    }
                }
            }
        }
    }
    let mut tools = HashMap::new();
    for tool in pack.tools.values() {
        let mut members: Vec<&LoadedPolicy> = per_tool
            .get(tool.id.as_str())
            .into_iter()
            .flatten()
            .chain(everywhere.iter())
            .copied()
            .collect();
        members.sort_by_key(|lp| lp.info.ordinal);
        members.dedup_by_key(|lp| lp.info.ordinal);
        let to_slice = |lps: &[&LoadedPolicy]| {
            lps.iter()
                .map(|lp| {
                    SlicePolicy::new(Arc::clone(&lp.info), lp.policy.clone(), lp.approvals_use)
                })
                .collect::<Vec<_>>()
        };
        let enforced: Vec<&LoadedPolicy> = members
            .iter()
            .copied()
            .filter(|lp| !lp.info.is_shadow())
            .collect();
        let trial = (enforced.len() < members.len()).then(|| {
            let slice = to_slice(&members);
            Trial {
                second_pass_follows: eval::second_pass_follows(&slice),
                slice,
            }
        });
        let slice = to_slice(&enforced);
        let tool_fields = fields.get(&tool.id).cloned().unwrap_or_default();
        let unread = unread_fields(&tool_fields, &enforced);
        let Some(validator) = validators.remove(&tool.id) else {
            return Err(format!("tool `{}` has no compiled schema", tool.id));
        };
        tools.insert(
            tool.id.clone(),
            ToolEntry {
                action: Arc::new(uid("Action", &tool.id)?.into()),
                resource: Arc::new(uid(SYSTEM, &tool.system)?.into()),
                validator,
                fields: tool_fields,
                unread,
                second_pass_follows: eval::second_pass_follows(&slice),
                slice,
                trial,
                risk: tool.risk,
                access: tool.access,
                sensitive: tool.sensitive.clone(),
                counters: pack
                    .counters
                    .iter()
                    .filter(|c| c.counts(&tool.id))
                    .map(|c| context::ToolCounter {
                        name: smol_str::SmolStr::new(&c.name),
                        sum: c.sum.clone(),
                    })
                    .collect(),
                run_steps: crate::schema::run_steps(&pack, &tool.id),
                facts: crate::schema::fact_fields(&pack, tool),
            },
        );
    }
    let ordered: Vec<Arc<PolicyInfo>> = policies.iter().map(|p| Arc::clone(&p.info)).collect();
    // Policies on trial never decide: the unsliced set leaves them out too.
    let mut all = PolicySet::new();
    for lp in policies.iter().filter(|lp| !lp.info.is_shadow()) {
        all.add(lp.policy.clone()).map_err(|e| e.to_string())?;
    }
    Ok(Engine(Arc::new(Inner {
        version: pack.version.shared(),
        pack: Arc::new(pack),
        agents,
        tools,
        entities,
        ordered,
        all,
        schema_json: parts.json(),
    })))
}

/// The argument fields none of `policies` can read: the field name
/// appears nowhere in their text, and no policy uses `context.args` as a
/// whole. Conservative: a name in a comment or string counts as read.
fn unread_fields(fields: &[ArgField], policies: &[&LoadedPolicy]) -> Vec<String> {
    let texts: Vec<&str> = policies.iter().map(|lp| lp.text.as_str()).collect();
    let whole = texts.iter().any(|t| {
        t.match_indices("args").any(|(i, _)| {
            !t[i + 4..].trim_start().starts_with('.') && !t[i + 4..].trim_start().starts_with('[')
        })
    });
    if whole {
        return Vec::new();
    }
    fields
        .iter()
        .filter(|f| !texts.iter().any(|t| t.contains(f.name.as_str())))
        .map(|f| f.name.clone())
        .collect()
}
