//! Operational views: runs by state and stuck runs, the approval
//! bottleneck, tools by failures and retries.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;
use warden_evidence::time_from_micros;

use crate::error::OversightError;
use crate::{Oversight, now_us, us};

/// Runs by state, stuck runs, and what the kill switch holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunsView {
    /// Runs per state.
    pub by_state: std::collections::BTreeMap<String, i64>,
    /// A running run is stuck after this long without progress.
    pub idle_after_s: u64,
    /// Stuck runs, longest idle first.
    pub stuck: Vec<StuckRun>,
    /// Paused agents.
    pub paused_agents: Vec<String>,
    /// Quarantined agents and the group their writes need.
    pub quarantined_agents: std::collections::BTreeMap<String, String>,
    /// Tools whose circuit is open, and until when.
    pub open_circuits: std::collections::BTreeMap<String, String>,
    /// Incidents per state.
    pub incidents: std::collections::BTreeMap<String, i64>,
}

/// A run without progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StuckRun {
    /// The run.
    pub run: String,
    /// Its workflow.
    pub workflow: String,
    /// Its agent.
    pub agent: String,
    /// Last progress.
    pub updated: String,
    /// Seconds since.
    pub idle_s: i64,
}

/// The approval bottleneck.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalsView {
    /// Pending requests (a request counts once per group that may answer).
    pub pending: i64,
    /// Per group, the group with the oldest request first.
    pub groups: Vec<GroupAges>,
}

/// One group's pending requests.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupAges {
    /// The group.
    pub group: String,
    /// Requests pending.
    pub pending: i64,
    /// Median age, seconds.
    pub age_p50_s: f64,
    /// 95th percentile age, seconds.
    pub age_p95_s: f64,
    /// The oldest request.
    pub oldest: String,
    /// Its age, seconds.
    pub oldest_age_s: f64,
}

/// Tools by failures and retries.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HotspotsView {
    /// Actions proposed since then count.
    pub since: String,
    /// Worst first.
    pub tools: Vec<Hotspot>,
}

/// One tool.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Hotspot {
    /// The tool.
    pub tool: String,
    /// Its system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Actions proposed.
    pub actions: i64,
    /// Ended failed.
    pub failed: i64,
    /// Denied.
    pub denied: i64,
    /// Retries: connector re-sends plus repeated identical proposals.
    pub retries: i64,
    /// failed / executed-or-failed, percent.
    pub failure_rate: f64,
}

impl Oversight {
    /// Runs by state; running runs idle longer than `idle` are stuck.
    pub async fn runs_view(&self, idle: Duration) -> Result<RunsView, OversightError> {
        let now = now_us();
        let store = self.store();
        let counts = store.run_counts(now - us(idle)).await?;
        let rt = &self.0.controls;
        Ok(RunsView {
            by_state: counts.by_state.into_iter().collect(),
            idle_after_s: idle.as_secs(),
            stuck: counts
                .stuck
                .into_iter()
                .map(|r| StuckRun {
                    idle_s: (now - r.updated_us) / 1_000_000,
                    updated: time_from_micros(r.updated_us),
                    run: r.id,
                    workflow: r.workflow,
                    agent: r.agent,
                })
                .collect(),
            paused_agents: rt.paused_agents().into_iter().map(|a| a.agent).collect(),
            quarantined_agents: rt.quarantined_agents().into_iter().collect(),
            open_circuits: rt
                .open_circuits()
                .into_iter()
                .map(|c| (c.tool, time_from_micros(c.open_until_us)))
                .collect(),
            incidents: store.incident_counts().await?.into_iter().collect(),
        })
    }

    /// Pending approvals per group with their ages.
    pub async fn approvals_view(&self) -> Result<ApprovalsView, OversightError> {
        let groups = self.store().approval_ages(now_us()).await?;
        Ok(ApprovalsView {
            pending: groups.iter().map(|g| g.pending).sum(),
            groups: groups
                .into_iter()
                .map(|g| GroupAges {
                    group: g.group,
                    pending: g.pending,
                    age_p50_s: g.p50_s,
                    age_p95_s: g.p95_s,
                    oldest: g.oldest_id,
                    oldest_age_s: g.oldest_s,
                })
                .collect(),
        })
    }

    /// Tools by failures and retries among actions of the last `window`.
    pub async fn hotspots_view(
        &self,
        window: Duration,
        limit: u32,
    ) -> Result<HotspotsView, OversightError> {
        let since = now_us() - us(window);
        let rows = self.store().hotspots(since, limit).await?;
        let engine = self.0.engine.current();
        let pack = engine.pack();
        Ok(HotspotsView {
            since: time_from_micros(since),
            tools: rows
                .into_iter()
                .map(|h| {
                    let ran = h.actions - h.denied;
                    Hotspot {
                        system: pack.tools.get(&h.tool).map(|t| t.system.clone()),
                        failure_rate: if ran > 0 {
                            h.failed as f64 * 100.0 / ran as f64
                        } else {
                            0.0
                        },
                        tool: h.tool,
                        actions: h.actions,
                        failed: h.failed,
                        denied: h.denied,
                        retries: h.retries,
                    }
                })
                .collect(),
        })
    }
}
