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
        Self {
            registry,
            decisions,
            decide_seconds,
            requests,
            actions,
            rejected,
        }
    }
}

impl Metrics {
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
