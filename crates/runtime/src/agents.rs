//! The kill switch: pausing and resuming agents.

use serde_json::json;
use warden_evidence::{Record, RecordKind};
use warden_store::{AgentStateRow, StateWrite};

use crate::error::RuntimeError;
use crate::runtime::{Runtime, now_us};

impl Runtime {
    /// Pauses (`paused = true`) or resumes `agent`, by `by` for `reason`.
    /// While paused, every proposal of the agent is denied `agent_paused`.
    pub async fn set_paused(
        &self,
        agent: &str,
        paused: bool,
        by: &str,
        reason: Option<String>,
    ) -> Result<AgentStateRow, RuntimeError> {
        if !self.0.engine.current().pack().agents.contains_key(agent) {
            return Err(RuntimeError::UnknownAgent(agent.to_owned()));
        }
        let row = AgentStateRow {
            agent: agent.to_owned(),
            paused,
            reason: reason.clone(),
            changed_by: Some(by.to_owned()),
            updated_us: now_us(),
        };
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

    /// The paused agents.
    pub fn paused_agents(&self) -> Vec<AgentStateRow> {
        self.0
            .paused
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}
