//! Facts: values Warden reads through a connector before it decides
//! (`[[tools.facts]]`, `context.facts.<name>`).
//!
//! Facts with the same source tool and arguments share one fetch; fetches
//! of different sources run at once. A fetched result is reused for the
//! fact's `ttl` (in this process: a cache, not a truth; every replica
//! fetches for itself). A fetch that fails, times out or lacks the field
//! leaves the fact out; a required fact missing is the `facts_unavailable`
//! gate (fail closed), an `on_error = "omit"` one is simply absent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;
use warden_model::{Fact, Pack};

use crate::runtime::{Runtime, new_id};

/// Results fetched recently, by source tool and arguments.
#[derive(Debug, Default)]
pub(crate) struct FactCache(Mutex<HashMap<String, (Instant, Value)>>);

/// Cached results kept at most; past it, the oldest half is dropped.
const CACHE_MAX: usize = 10_000;

impl FactCache {
    fn get(&self, key: &str, ttl: std::time::Duration) -> Option<Value> {
        let m = self.0.lock().ok()?;
        let (at, v) = m.get(key)?;
        (at.elapsed() < ttl).then(|| v.clone())
    }

    fn put(&self, key: String, v: Value) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= CACHE_MAX {
                let mut ages: Vec<Instant> = m.values().map(|(at, _)| *at).collect();
                ages.sort();
                let cutoff = ages[ages.len() / 2];
                m.retain(|_, (at, _)| *at > cutoff);
            }
            m.insert(key, (Instant::now(), v));
        }
    }

    /// Forgets everything (a reload may change sources or connectors).
    pub(crate) fn clear(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }
}

/// The facts of one request.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// Each fact fetched, by name.
    pub(crate) facts: BTreeMap<String, Value>,
    /// Why a required fact is missing (the `facts_unavailable` gate).
    pub(crate) unavailable: Option<String>,
}

impl Runtime {
    /// Fetches the facts `tool` declares for a request with `args`.
    pub(crate) async fn fetch_facts(&self, pack: &Pack, tool: &str, args: &Value) -> Fetched {
        let Some(t) = pack.tools.get(tool).filter(|t| !t.facts.is_empty()) else {
            return Fetched::default();
        };
        // One fetch per source and arguments.
        let mut groups: BTreeMap<String, (String, Value, Vec<&Fact>)> = BTreeMap::new();
        let mut problems: Vec<String> = Vec::new();
        for f in &t.facts {
            let Some(fa) = f.fetch_args(args) else {
                problems.push(format!(
                    "fact `{}`: the request lacks an argument its fetch needs",
                    f.name
                ));
                continue;
            };
            let key = format!("{}\u{0}{fa}", f.from);
            groups
                .entry(key)
                .or_insert_with(|| (f.from.clone(), fa, Vec::new()))
                .2
                .push(f);
        }
        let connectors = self.connectors();
        let fetches = groups.into_iter().map(|(key, (from, fa, facts))| {
            let connectors = &connectors;
            async move {
                let ttl = facts.iter().map(|f| f.ttl).min().unwrap_or_default();
                let timeout = facts.iter().map(|f| f.timeout).max().unwrap_or_default();
                let result = match self.0.facts.get(&key, ttl) {
                    Some(v) => Ok(v),
                    None => {
                        let id = new_id("fact").unwrap_or_else(|_| "fact".into());
                        match tokio::time::timeout(timeout, connectors.execute(&from, &id, &fa))
                            .await
                        {
                            Err(_) => Err(format!(
                                "`{from}` did not answer within {}",
                                humantime::format_duration(timeout)
                            )),
                            Ok(o) if o.ok => {
                                let v = o.result.unwrap_or(Value::Null);
                                if !ttl.is_zero() {
                                    self.0.facts.put(key, v.clone());
                                }
                                Ok(v)
                            }
                            Ok(o) => Err(format!(
                                "`{from}` failed: {}",
                                o.error.unwrap_or_else(|| "no result".into())
                            )),
                        }
                    }
                };
                (from, facts, result)
            }
        });
        let mut out = Fetched::default();
        for (from, facts, result) in futures_util::future::join_all(fetches).await {
            for f in facts {
                match &result {
                    Ok(v) => match v.get(&f.field).filter(|x| !x.is_null()) {
                        Some(x) => {
                            out.facts.insert(f.name.clone(), x.clone());
                        }
                        None if f.required => problems.push(format!(
                            "fact `{}`: the result of `{from}` has no `{}`",
                            f.name, f.field
                        )),
                        None => {}
                    },
                    Err(why) if f.required => {
                        problems.push(format!("fact `{}`: {why}", f.name));
                    }
                    Err(_) => {}
                }
            }
        }
        if !problems.is_empty() {
            problems.sort();
            problems.dedup();
            out.unavailable = Some(format!(
                "facts unavailable, not decided (fail closed): {}",
                problems.join("; ")
            ));
        }
        out
    }
}
