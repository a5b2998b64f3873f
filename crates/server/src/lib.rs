//! Warden's HTTP gateway (axum): bearer-token authentication against the
//! pack, the `/v1` API, metrics and health. Handlers authenticate, call one
//! `runtime` method and map its result; see [`router`] for every route and
//! `/v1/openapi.json` for the generated API description.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /healthz` | anyone | pack, policy version, log size |
//! | `GET /metrics` | anyone | Prometheus metrics |
//! | `GET /v1/openapi.json` | anyone | the API description |
//! | `POST /v1/runs`, `GET /v1/runs/{id}` | agents (own runs); operators, auditors | workflow runs |
//! | `POST /v1/actions` | agents | propose an action (enforce or check mode) |
//! | `GET /v1/actions/{id}?wait=` | agents (own); operators, auditors | an action, long-polled |
//! | `POST /v1/actions/{id}/outcome` | the proposing agent | report a check-mode execution |
//! | `POST /v1/agents/{id}/pause\|resume` | operators | the kill switch |
//! | `GET /v1/whoami` | any principal | the authenticated caller |
//! | `GET /v1/audit`, `GET /v1/audit/verify` | auditors, operators | evidence |
//! | `/console/…` | people (session cookie) | the console: see the `console` module |
//!
//! The pack is reloaded on SIGHUP and when its files change; an invalid pack
//! is refused and the old one stays in force. Both outcomes are evidence.

mod actions;
mod approvals;
mod audit;
mod auth;
mod console;
mod drills;
mod error;
mod mcp;
mod mcp_params;
mod metrics;
mod openapi;
mod oversight;
mod reload;
mod rollout;
mod routes;
mod runs;
mod slack;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use warden_policy::{Engine, EngineHandle};
use warden_runtime::{Runtime, RuntimeConfig};
use warden_store::{AuditLog, DataDir, Durability, LogOptions, Store};

pub use auth::{Kind, Principal, Principals};
pub use error::ApiError;
pub use metrics::Metrics;
pub use openapi::ApiDoc;
pub use routes::router;
pub use slack::SlackState;

/// What `warden serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The governance pack directory.
    pub pack: PathBuf,
    /// The data directory.
    pub data: PathBuf,
    /// PostgreSQL instead of the data directory's SQLite file.
    pub database_url: Option<String>,
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// SQLite durability.
    pub durability: Durability,
    /// How often to sign a checkpoint, also when idle.
    pub checkpoint_every: Duration,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// Proposals per second each agent may make (`None`: unlimited).
    pub rate_limit: Option<u32>,
    /// How long an `enforce` proposal waits for its execution before the
    /// answer is `202` with the action still executing.
    pub sync_wait: Duration,
    /// Reload the pack when its files change (besides SIGHUP).
    pub watch_pack: bool,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The pack could not be loaded.
    #[error("cannot load the pack: {0}")]
    Pack(#[from] warden_policy::EngineError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] warden_store::StoreError),
    /// The runtime could not start (loading state, recovering actions).
    #[error(transparent)]
    Runtime(#[from] warden_runtime::RuntimeError),
    /// The controls could not be loaded.
    #[error(transparent)]
    Control(#[from] warden_control::ControlError),
    #[error(transparent)]
    Oversight(#[from] warden_oversight::OversightError),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Shared by every request.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The current policy engine (hot-swappable).
    pub engine: Arc<EngineHandle>,
    /// Who holds which token (swapped with the pack on reload).
    pub principals: Arc<arc_swap::ArcSwap<Principals>>,
    /// The database.
    pub store: Store,
    /// The audit log writer.
    pub log: AuditLog,
    /// Redacts sensitive arguments in evidence.
    pub redactor: warden_evidence::Redactor,
    /// Keys `GET /v1/audit/verify` trusts.
    pub trusted: Vec<warden_evidence::VerifierKey>,
    /// The action lifecycle.
    pub runtime: Runtime,
    /// Detectors, incidents, routes and views.
    pub oversight: warden_oversight::Oversight,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Per-agent proposal rate limit.
    pub limiter: Option<Arc<governor::DefaultKeyedRateLimiter<String>>>,
    /// The last refused pack reload, while no later one succeeded.
    pub refused_reload: Arc<std::sync::Mutex<Option<serde_json::Value>>>,
    /// The Slack app of the pack in force (approvals in Slack).
    pub slack: SlackState,
}

impl AppState {
    /// Who holds which token, for the pack in force now.
    pub fn principals(&self) -> Arc<Principals> {
        self.principals.load_full()
    }

    /// 429 `rate_limited` when `p` is over its proposal rate.
    pub(crate) fn rate_limit(&self, p: &Principal) -> Result<(), ApiError> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        match l.check_key(&p.id) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.metrics.rejected("rate_limited");
                Err(ApiError {
                    status: axum::http::StatusCode::TOO_MANY_REQUESTS,
                    code: "rate_limited",
                    message: format!("agent `{}` is over its proposal rate; retry shortly", p.id),
                })
            }
        }
    }
}

/// Loads the pack, opens the store, binds, calls `ready` with the bound
/// address, and serves until SIGINT or SIGTERM; then drains in-flight
/// requests and signs a final checkpoint.
pub async fn serve(config: ServeConfig, ready: impl FnOnce(SocketAddr)) -> Result<(), ServerError> {
    let engine: Engine = Engine::load(&config.pack)?.engine;
    let principals = Principals::from_pack(engine.pack(), |name| std::env::var(name).ok());
    let data = DataDir::open(&config.data)?;
    let store = Store::open(&data, config.database_url.as_deref(), config.durability).await?;
    let log = AuditLog::open(
        store.clone(),
        data.signer().clone(),
        LogOptions {
            checkpoint_interval: Some(config.checkpoint_every),
            ..LogOptions::default()
        },
    )
    .await?;
    let mut trusted = store.signing_keys().await?;
    trusted.push(data.signer().verifier());
    let engine = Arc::new(EngineHandle::new(engine));
    let controls = warden_control::Controls::load(Arc::clone(&engine), log.clone()).await?;
    let runtime = Runtime::new(
        Arc::clone(&engine),
        log.clone(),
        controls.clone(),
        data.redactor().clone(),
        RuntimeConfig {
            sync_wait: config.sync_wait,
        },
    )
    .await?;
    let (resent, interrupted) = runtime.recover().await?;
    if resent + interrupted > 0 {
        tracing::warn!(
            resent,
            interrupted,
            "recovered actions left executing by the previous process"
        );
    }
    // Approval deadlines: steps missed while the server was down fire now.
    let timers = runtime.start_timers();
    // Detectors, escalation and the notification outbox; notifications
    // queued before a restart are delivered now.
    let oversight = warden_oversight::Oversight::start(
        Arc::clone(&engine),
        log.clone(),
        controls,
        warden_oversight::OversightConfig::default(),
    )
    .await?;
    let limiter = config
        .rate_limit
        .and_then(std::num::NonZeroU32::new)
        .map(|n| Arc::new(governor::RateLimiter::keyed(governor::Quota::per_second(n))));
    let state = AppState {
        engine,
        principals: Arc::new(arc_swap::ArcSwap::from_pointee(principals)),
        store,
        log: log.clone(),
        redactor: data.redactor().clone(),
        trusted,
        runtime,
        oversight: oversight.clone(),
        metrics: Arc::new(Metrics::default()),
        limiter,
        refused_reload: Arc::default(),
        slack: SlackState::default(),
    };
    // Drills a previous process left running are undone first.
    drills::recover(&state).await;
    reload::on_sighup(state.clone(), config.pack.clone());
    if config.watch_pack {
        reload::on_change(state.clone(), config.pack.clone());
    }
    // Slack messages of approval requests: those a previous process left
    // behind are sent now.
    let slack = slack::start(state.clone());
    let app = router(state, config.body_limit);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    ready(listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    timers.abort();
    slack.abort();
    oversight.stop();
    log.close().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
