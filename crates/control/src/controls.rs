//! The switches and their in-memory copy.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::json;
use warden_evidence::{Record, RecordKind, micros, now};
use warden_policy::EngineHandle;
use warden_store::{AgentStateRow, AuditLog, CircuitRow, StateWrite};

use crate::error::ControlError;

/// Pause, quarantine and circuits. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Controls(Arc<Inner>);

struct Inner {
    engine: Arc<EngineHandle>,
    log: AuditLog,
    /// Paused agents.
    paused: RwLock<HashMap<String, AgentStateRow>>,
    /// Quarantined agents → the approver group their writes need.
    quarantined: RwLock<HashMap<String, String>>,
    /// Tool circuits (open until a time).
    circuits: RwLock<HashMap<String, CircuitRow>>,
}

impl std::fmt::Debug for Controls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controls").finish_non_exhaustive()
    }
}

fn now_us() -> i64 {
    micros(&now()).unwrap_or(0)
}

impl Controls {
    /// The controls stored in `log`'s store, for the pack `engine` serves.
    pub async fn load(engine: Arc<EngineHandle>, log: AuditLog) -> Result<Self, ControlError> {
        let store = log.store().clone();
        let states = store.agent_states().await?;
        let quarantined = states
            .iter()
            .filter_map(|a| a.quarantine.clone().map(|g| (a.agent.clone(), g)))
            .collect();
        let paused = states
            .into_iter()
            .filter(|a| a.paused)
            .map(|a| (a.agent.clone(), a))
            .collect();
        let circuits = store
            .circuits()
            .await?
            .into_iter()
            .map(|c| (c.tool.clone(), c))
            .collect();
        Ok(Self(Arc::new(Inner {
            engine,
            log,
            paused: RwLock::new(paused),
            quarantined: RwLock::new(quarantined),
            circuits: RwLock::new(circuits),
        })))
    }

    fn agent_row(&self, agent: &str) -> Result<AgentStateRow, ControlError> {
        if !self.0.engine.current().pack().agents.contains_key(agent) {
            return Err(ControlError::UnknownAgent(agent.to_owned()));
        }
        let paused = self.paused(agent);
        Ok(AgentStateRow {
            agent: agent.to_owned(),
            paused: paused.is_some(),
            quarantine: self.quarantine_of(agent),
            reason: paused.and_then(|p| p.reason),
            changed_by: None,
            updated_us: now_us(),
        })
    }

    /// Pauses (`paused = true`) or resumes `agent`, by `by` for `reason`.
    /// While paused, every proposal of the agent is denied `agent_paused`,
    /// and no approved action of it executes.
    pub async fn set_paused(
        &self,
        agent: &str,
        paused: bool,
        by: &str,
        reason: Option<String>,
    ) -> Result<AgentStateRow, ControlError> {
        let mut row = self.agent_row(agent)?;
        row.paused = paused;
        row.reason = reason.clone();
        row.changed_by = Some(by.to_owned());
        let mut r = Record::new(if paused {
            RecordKind::AgentPaused
        } else {
            RecordKind::AgentResumed
        });
        r.agent = Some(agent.to_owned());
        r.message = Some(match (&reason, paused) {
            (Some(why), true) => format!("paused by `{by}`: {why}"),
            (None, true) => format!("paused by `{by}`"),
            (Some(why), false) => format!("resumed by `{by}`: {why}"),
            (None, false) => format!("resumed by `{by}`"),
        });
        r.detail = Some(json!({ "by": by, "reason": reason }));
        self.0
            .log
            .commit(vec![r], vec![StateWrite::Agent(row.clone())])
            .await?;
        if let Ok(mut m) = self.0.paused.write() {
            if paused {
                m.insert(agent.to_owned(), row.clone());
            } else {
                m.remove(agent);
            }
        }
        Ok(row)
    }

    /// Quarantines `agent` (every write action it proposes needs the
    /// approval of `group`, besides what policy asks) or, with `None`,
    /// releases it.
    pub async fn set_quarantine(
        &self,
        agent: &str,
        group: Option<String>,
        by: &str,
        reason: Option<String>,
    ) -> Result<AgentStateRow, ControlError> {
        if let Some(g) = &group
            && !self
                .0
                .engine
                .current()
                .pack()
                .approver_groups
                .contains_key(g)
        {
            return Err(ControlError::UnknownGroup(g.clone()));
        }
        let mut row = self.agent_row(agent)?;
        row.quarantine = group.clone();
        row.changed_by = Some(by.to_owned());
        let mut r = Record::new(if group.is_some() {
            RecordKind::AgentQuarantined
        } else {
            RecordKind::AgentReleased
        });
        r.agent = Some(agent.to_owned());
        r.message = Some(match &group {
            Some(g) => format!(
                "quarantined by `{by}`: its write actions need `{g}` approval{}",
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            None => format!("released from quarantine by `{by}`"),
        });
        r.detail = Some(json!({ "by": by, "reason": reason, "group": group }));
        self.0
            .log
            .commit(vec![r], vec![StateWrite::Agent(row.clone())])
            .await?;
        if let Ok(mut m) = self.0.quarantined.write() {
            match group {
                Some(g) => m.insert(agent.to_owned(), g),
                None => m.remove(agent),
            };
        }
        Ok(row)
    }

    /// Opens `tool`'s circuit for `open_for` (every proposal of it is
    /// denied `tool_circuit_open` until then, and no approved action of it
    /// executes), or closes it (`None`).
    pub async fn set_circuit(
        &self,
        tool: &str,
        open_for: Option<Duration>,
        by: &str,
        reason: Option<String>,
    ) -> Result<CircuitRow, ControlError> {
        if !self.0.engine.current().pack().tools.contains_key(tool) {
            return Err(ControlError::UnknownTool(tool.to_owned()));
        }
        let now = now_us();
        let until = open_for.map_or(now, |d| {
            now.saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        });
        let row = CircuitRow {
            tool: tool.to_owned(),
            open_until_us: until,
            reason: reason.clone(),
            opened_by: Some(by.to_owned()),
            updated_us: now,
        };
        let mut r = Record::new(if open_for.is_some() {
            RecordKind::CircuitOpened
        } else {
            RecordKind::CircuitClosed
        });
        r.tool = Some(tool.to_owned());
        r.message = Some(match open_for {
            Some(d) => format!(
                "circuit of `{tool}` opened by `{by}` for {}s{}",
                d.as_secs(),
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            None => format!("circuit of `{tool}` closed by `{by}`"),
        });
        r.detail = Some(json!({
            "by": by,
            "reason": reason,
            "open_until": open_for.map(|_| warden_evidence::time_from_micros(until)),
        }));
        self.0
            .log
            .commit(vec![r], vec![StateWrite::Circuit(row.clone())])
            .await?;
        if let Ok(mut m) = self.0.circuits.write() {
            m.insert(tool.to_owned(), row.clone());
        }
        Ok(row)
    }

    /// `agent`'s pause, when it is paused.
    pub fn paused(&self, agent: &str) -> Option<AgentStateRow> {
        self.0
            .paused
            .read()
            .ok()
            .and_then(|m| m.get(agent).cloned())
    }

    /// The circuit of `tool` when it is open now.
    pub fn open_circuit(&self, tool: &str) -> Option<CircuitRow> {
        let now = now_us();
        self.0
            .circuits
            .read()
            .ok()
            .and_then(|m| m.get(tool).filter(|c| c.open_until_us > now).cloned())
    }

    /// The group a quarantined `agent`'s writes need.
    pub fn quarantine_of(&self, agent: &str) -> Option<String> {
        self.0
            .quarantined
            .read()
            .ok()
            .and_then(|m| m.get(agent).cloned())
    }

    /// The open circuits.
    pub fn open_circuits(&self) -> Vec<CircuitRow> {
        let now = now_us();
        self.0
            .circuits
            .read()
            .map(|m| {
                m.values()
                    .filter(|c| c.open_until_us > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The paused agents.
    pub fn paused_agents(&self) -> Vec<AgentStateRow> {
        self.0
            .paused
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Quarantined agents and the group their writes need.
    pub fn quarantined_agents(&self) -> Vec<(String, String)> {
        self.0
            .quarantined
            .read()
            .map(|m| m.iter().map(|(a, g)| (a.clone(), g.clone())).collect())
            .unwrap_or_default()
    }
}
