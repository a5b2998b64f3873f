//! Prometheus metrics at `/metrics`: decisions by outcome and code, request
//! latency by route, actions by state, refused requests by code.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use warden_runtime::{ActionView, Runtime};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: String,
    code: String,
    shadow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpenedLabels {
    playbook: String,
    severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FireLabels {
    playbook: String,
    detector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    route: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Oversight figures read from the store at scrape time.
#[derive(Debug, Default)]
pub struct OversightSnapshot {
    /// Incidents per state.
    pub incidents: Vec<(String, i64)>,
    /// Pending approvals per group.
    pub approvals: Vec<warden_oversight::GroupAges>,
}

/// Oversight metric families.
#[derive(Debug)]
struct OversightMetrics {
    incidents: Family<StateLabels, Gauge>,
    opened: Family<OpenedLabels, Counter>,
    fires: Family<FireLabels, Counter>,
    notifications: Family<DeliveryLabels, Counter>,
    events: Counter,
    missed: Counter,
    detect_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    ttd: Histogram,
    tta: Histogram,
    approvals_pending: Family<GroupLabels, Gauge>,
    approval_age_p95: Family<GroupLabels, FloatGauge>,
    approval_oldest: Family<GroupLabels, FloatGauge>,
}

/// Brings a counter up to `total`.
fn catch_up(c: &Counter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    decide_seconds: Histogram,
    requests: Family<RouteLabels, Histogram, fn() -> Histogram>,
    actions: Family<StateLabels, Gauge>,
    rejected: Family<CodeLabels, Counter>,
    oversight: OversightMetrics,
    /// 1 while the last pack reload was refused (the old pack serves).
    reload_refused: Gauge,
    reloads_refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("warden");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Proposals decided, by outcome, code and shadow mode",
            decisions.clone(),
        );
        let decide_seconds = latency_histogram();
        registry.register(
            "proposal_seconds",
            "Time to answer a proposal, durable evidence included (enforce mode: execution included)",
            decide_seconds.clone(),
        );
        let requests = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_seconds",
            "HTTP request latency by route and status",
            requests.clone(),
        );
        let actions = Family::<StateLabels, Gauge>::default();
        registry.register("actions", "Actions by lifecycle state", actions.clone());
        let rejected = Family::<CodeLabels, Counter>::default();
        registry.register(
            "rejected_requests",
            "Requests refused before a decision, by code",
            rejected.clone(),
        );
        let reload_refused = Gauge::default();
        registry.register(
            "pack_reload_refused",
            "1 while the last pack reload was refused and the previous pack serves",
            reload_refused.clone(),
        );
        let reloads_refused = Counter::default();
        registry.register(
            "pack_reloads_refused",
            "Pack reloads refused because the new pack is invalid",
            reloads_refused.clone(),
        );
        let oversight = OversightMetrics {
            incidents: Family::default(),
            opened: Family::default(),
            fires: Family::default(),
            notifications: Family::default(),
            events: Counter::default(),
            missed: Counter::default(),
            detect_seconds: Counter::default(),
            // 1 ms to ~35 min; 1 s to ~36 h.
            ttd: Histogram::new(exponential_buckets(0.001, 2.0, 22)),
            tta: Histogram::new(exponential_buckets(1.0, 2.0, 18)),
            approvals_pending: Family::default(),
            approval_age_p95: Family::default(),
            approval_oldest: Family::default(),
        };
        let o = &oversight;
        registry.register("incidents", "Incidents by state", o.incidents.clone());
        registry.register(
            "incidents_opened",
            "Incidents opened, by playbook and severity",
            o.opened.clone(),
        );
        registry.register(
            "detector_fires",
            "Detector fires (opening or grouping into an incident), by playbook and detector",
            o.fires.clone(),
        );
        registry.register(
            "notifications",
            "Incident notification attempts, by route and result: delivered, retry, failed",
            o.notifications.clone(),
        );
        registry.register(
            "oversight_events",
            "Records fed to the detectors",
            o.events.clone(),
        );
        registry.register(
            "oversight_events_missed",
            "Records the detectors fell too far behind to see",
            o.missed.clone(),
        );
        registry.register(
            "oversight_detect_seconds",
            "Time spent in the detectors",
            o.detect_seconds.clone(),
        );
        registry.register(
            "incident_time_to_detect_seconds",
            "First triggering event to incident",
            o.ttd.clone(),
        );
        registry.register(
            "incident_time_to_acknowledge_seconds",
            "Incident to acknowledgement",
            o.tta.clone(),
        );
        registry.register(
            "approvals_pending",
            "Pending approval requests by group",
            o.approvals_pending.clone(),
        );
        registry.register(
            "approval_age_p95_seconds",
            "95th percentile age of pending approval requests by group",
            o.approval_age_p95.clone(),
        );
        registry.register(
            "approval_oldest_age_seconds",
            "Age of the oldest pending approval request by group",
            o.approval_oldest.clone(),
        );
        Self {
            registry,
            decisions,
            decide_seconds,
            requests,
            actions,
            rejected,
            oversight,
            reload_refused,
            reloads_refused,
        }
    }
}

impl Metrics {
    /// Records the outcome of a pack reload.
    pub fn reloaded(&self, refused: bool) {
        self.reload_refused.set(i64::from(refused));
        if refused {
            self.reloads_refused.inc();
        }
    }

    /// Counts a decided proposal.
    pub fn decided(&self, view: &ActionView, took: Duration) {
        // The effective outcome (after runtime gates and shadow mode).
        let outcome = Runtime::outcome_of(view).as_str().to_owned();
        let code = view.code.clone().unwrap_or_default();
        self.decisions
            .get_or_create(&DecisionLabels {
                outcome,
                code,
                shadow: view.shadow.to_string(),
            })
            .inc();
        self.decide_seconds.observe(took.as_secs_f64());
    }

    /// Counts a refused request.
    pub fn rejected(&self, code: &str) {
        self.rejected
            .get_or_create(&CodeLabels { code: code.into() })
            .inc();
    }

    /// Observes one HTTP request.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RouteLabels {
                method: method.into(),
                route: route.into(),
                status: status.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The text exposition, with the action gauges read from `runtime`.
    /// Takes in oversight's counters and the store figures in `snap`.
    pub fn oversight(&self, stats: &warden_oversight::Stats, snap: &OversightSnapshot) {
        use std::sync::atomic::Ordering::Relaxed;
        let o = &self.oversight;
        for (playbook, severity, n) in stats.opened_incidents() {
            catch_up(
                &o.opened.get_or_create(&OpenedLabels { playbook, severity }),
                n,
            );
        }
        for (playbook, detector, n) in stats.fires() {
            catch_up(
                &o.fires.get_or_create(&FireLabels { playbook, detector }),
                n,
            );
        }
        for (route, result, n) in stats.notifications() {
            catch_up(
                &o.notifications
                    .get_or_create(&DeliveryLabels { route, result }),
                n,
            );
        }
        catch_up(&o.events, stats.events.load(Relaxed));
        catch_up(&o.missed, stats.events_missed.load(Relaxed));
        let secs = stats.detect_ns.load(Relaxed) as f64 / 1e9;
        let before = o.detect_seconds.get();
        if secs > before {
            o.detect_seconds.inc_by(secs - before);
        }
        for s in stats.take_ttd() {
            o.ttd.observe(s);
        }
        for s in stats.take_tta() {
            o.tta.observe(s);
        }
        o.incidents.clear();
        for (state, n) in &snap.incidents {
            o.incidents
                .get_or_create(&StateLabels {
                    state: state.clone(),
                })
                .set(*n);
        }
        o.approvals_pending.clear();
        o.approval_age_p95.clear();
        o.approval_oldest.clear();
        for g in &snap.approvals {
            let l = GroupLabels {
                group: g.group.clone(),
            };
            o.approvals_pending.get_or_create(&l).set(g.pending);
            o.approval_age_p95.get_or_create(&l).set(g.age_p95_s);
            o.approval_oldest.get_or_create(&l).set(g.oldest_age_s);
        }
    }

    pub fn render(&self, runtime: &Runtime) -> String {
        for (state, n) in runtime.action_counts() {
            self.actions
                .get_or_create(&StateLabels {
                    state: state.into(),
                })
                .set(n);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
