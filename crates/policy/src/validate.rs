//! Strict Cedar validation of every policy against the generated schema,
//! done per policy against a schema holding only the actions it can concern.
//!
//! Cedar's validator checks a policy once per action its scope allows, and
//! building one schema with thousands of actions dominates load time. Each
//! policy is therefore checked against a schema with every entity type and
//! action group but only the tools its scope can match or its body names, in
//! parallel, and each verdict is cached by the policy text and the hashes of
//! the schema parts it saw. The unit tests prove the verdicts equal those of a
//! validation against the whole schema.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cedar_policy::{ActionConstraint, PolicySet, Schema, ValidationMode, Validator};
use serde_json::Value;
use sha2::{Digest, Sha256};
use warden_model::{Diagnostic, Location};

use crate::error::PolicyProblem;
use crate::policies::LoadedPolicy;
use crate::schema::SchemaParts;

/// Remembers validation verdicts across reloads, keyed by content hash, so a
/// reload after one changed policy re-validates only that policy.
#[derive(Debug, Default)]
pub struct ValidationCache {
    verdicts: Mutex<HashMap<[u8; 32], Arc<[Finding]>>>,
}

impl ValidationCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many verdicts it holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<[Finding]>>> {
        self.verdicts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One validation message, with its span relative to the policy's start so
/// it stays right when the policy moves in its file.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    warning: bool,
    message: String,
    label: Option<String>,
    help: Option<String>,
    span: Range<usize>,
}

/// Which tools belong to which action group.
pub(crate) struct ActionIndex {
    pub tools: BTreeSet<String>,
    pub members: HashMap<String, Vec<String>>,
}

impl ActionIndex {
    /// The tools a policy can concern: those its action scope matches plus
    /// those it names anywhere as `Action::"..."`.
    pub fn tools_of(&self, lp: &LoadedPolicy) -> Vec<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        match lp.policy.action_constraint() {
            ActionConstraint::Any => return self.tools.iter().cloned().collect(),
            ActionConstraint::Eq(uid) => self.add(uid.id().unescaped(), &mut out),
            ActionConstraint::In(uids) => {
                for uid in &uids {
                    self.add(uid.id().unescaped(), &mut out);
                }
            }
        }
        if let Ok(est) = lp.policy.to_json() {
            let mut named = Vec::new();
            action_literals(&est, &mut named);
            for n in named {
                self.add(&n, &mut out);
            }
        }
        out.into_iter().collect()
    }

    /// Whether a policy names any of `ids` as an action, in its scope or body.
    pub fn names_any(&self, lp: &LoadedPolicy, ids: &std::collections::HashSet<String>) -> bool {
        if ids.is_empty() {
            return false;
        }
        let mut named = Vec::new();
        match lp.policy.action_constraint() {
            ActionConstraint::Any => {}
            ActionConstraint::Eq(uid) => named.push(uid.id().unescaped().to_owned()),
            ActionConstraint::In(uids) => {
                named.extend(uids.iter().map(|u| u.id().unescaped().to_owned()))
            }
        }
        if let Ok(est) = lp.policy.to_json() {
            action_literals(&est, &mut named);
        }
        named.iter().any(|n| ids.contains(n))
    }

    fn add(&self, id: &str, out: &mut BTreeSet<String>) {
        if self.tools.contains(id) {
            out.insert(id.to_owned());
        } else if let Some(m) = self.members.get(id) {
            out.extend(m.iter().cloned());
        }
    }
}

fn action_literals(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some("Action")
                && let Some(id) = m.get("id").and_then(Value::as_str)
            {
                out.push(id.to_owned());
            }
            for x in m.values() {
                action_literals(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| action_literals(x, out)),
        _ => {}
    }
}

/// Validates `policies`, returning a diagnostic per finding.
pub(crate) fn validate(
    parts: &SchemaParts,
    index: &ActionIndex,
    policies: &[LoadedPolicy],
    cache: Option<&ValidationCache>,
) -> Vec<Diagnostic> {
    let base_hash = {
        let mut h = Sha256::new();
        h.update(parts.entity_types.to_string());
        for (g, v) in &parts.groups {
            h.update(g);
            h.update(v.to_string());
        }
        h.finalize()
    };
    let action_hash: HashMap<&str, [u8; 32]> = parts
        .actions
        .iter()
        .map(|(k, v)| (k.as_str(), Sha256::digest(v.to_string().as_bytes()).into()))
        .collect();

    let mut keys: Vec<[u8; 32]> = Vec::with_capacity(policies.len());
    let mut verdicts: Vec<Option<Arc<[Finding]>>> = Vec::with_capacity(policies.len());
    let mut todo: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (i, lp) in policies.iter().enumerate() {
        let tools = index.tools_of(lp);
        let mut h = Sha256::new();
        h.update(base_hash);
        h.update(lp.info.id.as_bytes());
        h.update([0]);
        h.update(lp.text.as_bytes());
        for t in &tools {
            h.update(t.as_bytes());
            h.update(action_hash.get(t.as_str()).copied().unwrap_or_default());
        }
        let key: [u8; 32] = h.finalize().into();
        let cached = cache.and_then(|c| c.lock().get(&key).cloned());
        if cached.is_none() {
            todo.entry(tools).or_default().push(i);
        }
        keys.push(key);
        verdicts.push(cached);
    }

    let work: Vec<(&Vec<String>, &Vec<usize>)> = todo.iter().collect();
    let results: Mutex<Vec<(usize, Vec<Finding>)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(work.len());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((tools, members)) = work.get(i) else {
                        break;
                    };
                    let found = validate_group(parts, tools, members, policies);
                    results
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(found);
                }
            });
        }
    });
    for (i, findings) in results.into_inner().unwrap_or_else(PoisonError::into_inner) {
        let findings: Arc<[Finding]> = findings.into();
        if let Some(c) = cache {
            c.lock().insert(keys[i], Arc::clone(&findings));
        }
        verdicts[i] = Some(findings);
    }

    let mut diags = Vec::new();
    for (lp, v) in policies.iter().zip(verdicts) {
        for f in v.iter().flat_map(|f| f.iter()) {
            let problem = if f.warning {
                PolicyProblem::CedarWarning {
                    message: f.message.clone(),
                }
            } else {
                PolicyProblem::CedarValidation {
                    message: f.message.clone(),
                }
            };
            let start = lp.offset + f.span.start;
            let mut d = Diagnostic::new(&problem)
                .at(Location::new(&lp.file, start..lp.offset + f.span.end));
            if let Some(l) = &f.label {
                d = d.label(l.clone());
            }
            if let Some(h) = &f.help {
                d = d.help(h.clone());
            }
            diags.push(d);
        }
    }
    diags
}

/// Validates the policies `members` (indexes into `policies`) against a
/// schema holding `tools`; returns the findings of each policy.
fn validate_group(
    parts: &SchemaParts,
    tools: &[String],
    members: &[usize],
    policies: &[LoadedPolicy],
) -> Vec<(usize, Vec<Finding>)> {
    let mut out: Vec<(usize, Vec<Finding>)> = members.iter().map(|i| (*i, Vec::new())).collect();
    let schema = match Schema::from_json_value(parts.json_with(tools.iter().map(String::as_str))) {
        Ok(s) => s,
        Err(e) => {
            // The generated schema is Warden's own output; report rather than panic.
            for (_, f) in &mut out {
                f.push(Finding {
                    warning: false,
                    message: format!("internal error: generated schema rejected: {e}"),
                    label: None,
                    help: None,
                    span: 0..0,
                });
            }
            return out;
        }
    };
    let mut pset = PolicySet::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (slot, i) in members.iter().enumerate() {
        let lp = &policies[*i];
        if pset.add(lp.policy.clone()).is_ok() {
            by_id.insert(lp.info.id.clone(), slot);
        }
    }
    let result = Validator::new(schema).validate(&pset, ValidationMode::Strict);
    let mut push = |id: &str, warning: bool, d: &dyn miette::Diagnostic, message: String| {
        let Some(slot) = by_id.get(id) else { return };
        let (_, list) = &mut out[*slot];
        let offset = policies[members[*slot]].offset;
        let label = d.labels().and_then(|mut l| l.next());
        let span = label.as_ref().map_or(0..0, |l| {
            l.offset().saturating_sub(offset)..(l.offset() + l.len()).saturating_sub(offset)
        });
        list.push(Finding {
            warning,
            message,
            label: label.and_then(|l| l.label().map(str::to_owned)),
            help: d.help().map(|h| h.to_string()),
            span,
        });
    };
    for e in result.validation_errors() {
        push(e.policy_id().as_ref(), false, e, e.to_string());
    }
    for w in result.validation_warnings() {
        push(w.policy_id().as_ref(), true, w, w.to_string());
    }
    out
}

/// Validation findings as `(policy id, message)`, sorted: per policy with
/// partial schemas (what `compile` does) or of the whole set against the
/// whole schema (the reference). For the tests that prove them equal.
#[doc(hidden)]
pub fn findings(loaded: &warden_model::Loaded, per_policy: bool) -> Vec<(String, String)> {
    let pack = &loaded.pack;
    let fields = pack
        .tools
        .values()
        .map(|t| (t.id.clone(), crate::schema::arg_fields(t).0))
        .collect();
    let parts = SchemaParts::new(pack, &fields);
    let mut ignored = Vec::new();
    let policies = crate::policies::load_policies(pack, &mut ignored);
    let mut out: Vec<(String, String)> = if per_policy {
        let index = crate::engine::action_index(pack);
        let diags = validate(&parts, &index, &policies, None);
        // Map each diagnostic back to its policy by location.
        diags
            .iter()
            .map(|d| {
                let id = d
                    .location()
                    .and_then(|l| {
                        policies.iter().find(|p| {
                            p.file.name() == l.file.name()
                                && l.span.start >= p.offset
                                && l.span.start <= p.offset + p.text.len()
                        })
                    })
                    .map_or_else(String::new, |p| p.info.id.clone());
                (id, d.message().to_owned())
            })
            .collect()
    } else {
        let mut pset = PolicySet::new();
        for p in &policies {
            let _ = pset.add(p.policy.clone());
        }
        match Schema::from_json_value(parts.json()) {
            Ok(schema) => {
                let r = Validator::new(schema).validate(&pset, ValidationMode::Strict);
                r.validation_errors()
                    .map(|e| (e.policy_id().to_string(), e.to_string()))
                    .chain(
                        r.validation_warnings()
                            .map(|w| (w.policy_id().to_string(), w.to_string())),
                    )
                    .collect()
            }
            Err(e) => vec![(String::new(), e.to_string())],
        }
    };
    out.sort();
    out
}
