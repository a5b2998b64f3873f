//! Warden's oversight layer: who is paged, within what window, when agents
//! misbehave, and how fast misbehaviour is detected and answered.
//!
//! [`Oversight::start`] subscribes to the audit log's stream of committed
//! records and runs three tasks:
//!
//! - the **detector loop** feeds each record to every playbook's detector
//!   ([`detect`]); a trigger opens an incident, or groups into the open
//!   incident with the same playbook and dedup key, and runs the
//!   playbook's actions (pause, quarantine, circuit, notify);
//! - the **timer** escalates incidents whose response window was missed to
//!   the owner's next route, and looks for stuck runs and approvals;
//! - the **outbox** delivers queued notifications (signed webhook, Slack,
//!   PagerDuty Events v2) with retries and backoff. Notifications are rows
//!   committed with the incident change that caused them, so they survive
//!   restarts; a delivered step is never sent again.
//!
//! Every change is an evidence record committed with its state rows.

pub mod detect;
mod engine;
mod error;
mod incidents;
mod outbox;
mod review;
pub mod rollout;
mod routes;
mod stats;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use warden_control::Controls;
use warden_model::IncidentState;
use warden_policy::EngineHandle;
use warden_store::{AuditLog, Store};

pub use error::OversightError;
pub use incidents::{IncidentView, NotificationView};
pub use review::{Review, same_version};
pub use routes::{Router, payload_for};
pub use stats::Stats;
pub use views::{ApprovalsView, GroupAges, Hotspot, HotspotsView, RunsView, StuckRun};

/// Tuning of the oversight tasks.
#[derive(Debug, Clone)]
pub struct OversightConfig {
    /// How often the timer escalates and looks for stuck runs and
    /// approvals, and the outbox looks for due notifications.
    pub tick: Duration,
    /// Delivery attempts of a notification before it is given up.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Timeout of one delivery attempt.
    pub send_timeout: Duration,
}

impl Default for OversightConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            max_attempts: 10,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// An incident the detector loop may group triggers into, or the timer
/// may escalate.
#[derive(Debug, Clone)]
pub(crate) struct Active {
    pub(crate) id: String,
    pub(crate) state: IncidentState,
    pub(crate) due_us: Option<i64>,
    /// Triggers grouped in memory since the row was last written.
    pub(crate) unsaved: i64,
    pub(crate) last_trigger_us: i64,
    pub(crate) saved_us: i64,
}

/// The oversight layer over the audit log's stream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Oversight(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    /// The pack in force.
    pub(crate) engine: Arc<EngineHandle>,
    /// Where incidents, notifications and their records are committed.
    pub(crate) log: AuditLog,
    /// The switches playbooks throw.
    pub(crate) controls: Controls,
    pub(crate) config: OversightConfig,
    pub(crate) router: RwLock<Arc<Router>>,
    /// Open and acknowledged incidents by (playbook, dedup key).
    pub(crate) active: Mutex<HashMap<(String, String), Active>>,
    /// Every incident change happens under this lock.
    pub(crate) ops: tokio::sync::Mutex<()>,
    /// Wakes the outbox (a notification was queued).
    pub(crate) outbox_wake: tokio::sync::Notify,
    pub(crate) stats: Stats,
    pub(crate) http: Option<reqwest::Client>,
    /// Drills running in this process: id → the age at which their
    /// approvals count as stuck.
    pub(crate) drills: Mutex<HashMap<String, Duration>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oversight").finish_non_exhaustive()
    }
}

impl Oversight {
    /// Loads the active incidents and starts the detector loop, the timer
    /// and the outbox. Routes whose URL or key cannot be read are disabled
    /// with a warning.
    pub async fn start(
        engine: Arc<EngineHandle>,
        log: AuditLog,
        controls: Controls,
        config: OversightConfig,
    ) -> Result<Self, OversightError> {
        let router = Router::build(engine.current().pack());
        let mut active = HashMap::new();
        for r in log.store().active_incidents().await? {
            active.insert(
                (r.playbook.clone(), r.dedup_key.clone()),
                Active {
                    id: r.id.clone(),
                    state: r.state,
                    due_us: r.due_us,
                    unsaved: 0,
                    last_trigger_us: r.last_trigger_us,
                    saved_us: r.updated_us,
                },
            );
        }
        let http = reqwest::Client::builder()
            .timeout(config.send_timeout)
            .build()
            .map_err(|e| tracing::warn!(error = %e, "cannot build an HTTP client: notifications will not be delivered"))
            .ok();
        let events = log.subscribe();
        let o = Self(Arc::new(Inner {
            engine,
            log,
            controls,
            config,
            router: RwLock::new(Arc::new(router)),
            active: Mutex::new(active),
            ops: tokio::sync::Mutex::new(()),
            outbox_wake: tokio::sync::Notify::new(),
            stats: Stats::default(),
            http,
            drills: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        }));
        let tasks = vec![
            tokio::spawn(engine::detector_loop(o.clone(), events)),
            tokio::spawn(engine::timer_loop(o.clone())),
            tokio::spawn(outbox::outbox_loop(o.clone())),
        ];
        if let Ok(mut t) = o.0.tasks.lock() {
            *t = tasks;
        }
        Ok(o)
    }

    /// The store.
    pub(crate) fn store(&self) -> &Store {
        self.0.log.store()
    }

    /// Counters for the metrics endpoint.
    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    /// Rebuilds the routes from the pack in force (after a reload); the
    /// detectors follow the pack version by themselves.
    pub fn reload(&self) {
        let r = Router::build(self.0.engine.current().pack());
        if let Ok(mut w) = self.0.router.write() {
            *w = Arc::new(r);
        }
    }

    pub(crate) fn router(&self) -> Arc<Router> {
        match self.0.router.read() {
            Ok(r) => Arc::clone(&r),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// A drill began in this process: its approvals count as stuck after
    /// `stuck_after` (its scenario's threshold, not the playbook's).
    pub fn drill_begins(&self, id: &str, stuck_after: Duration) {
        if let Ok(mut d) = self.0.drills.lock() {
            d.insert(id.to_owned(), stuck_after);
        }
    }

    /// A drill ended.
    pub fn drill_ends(&self, id: &str) {
        if let Ok(mut d) = self.0.drills.lock() {
            d.remove(id);
        }
    }

    pub(crate) fn drill_thresholds(&self) -> HashMap<String, Duration> {
        self.0.drills.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Stops the tasks (pending notifications stay queued in the store).
    pub fn stop(&self) {
        if let Ok(mut t) = self.0.tasks.lock() {
            for h in t.drain(..) {
                h.abort();
            }
        }
    }
}

/// A new random id with `prefix`.
pub(crate) fn new_id(prefix: &str) -> Result<String, OversightError> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| OversightError::Random(e.to_string()))?;
    Ok(format!("{prefix}_{}", hex::encode(b)))
}

/// µs since the epoch, now.
pub(crate) fn now_us() -> i64 {
    warden_evidence::micros(&warden_evidence::now()).unwrap_or(0)
}

/// `d` in µs.
pub(crate) fn us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
