//! Warden's HTTP gateway (axum): bearer-token authentication against the
//! pack, JSON errors, health, and the audit routes. The actions API comes
//! with the runtime layer.
//!
//! Routes today:
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /healthz` | anyone | pack, policy version, log size |
//! | `POST /v1/actions` | agents | decide a proposed action (check mode), durably recorded |
//! | `GET /v1/whoami` | any principal | the authenticated caller |
//! | `GET /v1/audit` | auditor, operator | `warden audit query` |
//! | `GET /v1/audit/verify` | auditor, operator | `warden audit verify` |
//!
//! SIGHUP reloads the pack; an invalid pack is refused and the old one
//! stays in force. Both outcomes are evidence records.

mod actions;
mod auth;
mod error;
mod reload;
mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use warden_policy::{Engine, EngineHandle};
use warden_store::{AuditLog, DataDir, Durability, LogOptions, Store};

pub use auth::{Kind, Principal, Principals};
pub use error::ApiError;
pub use routes::router;

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
}

impl AppState {
    /// Who holds which token, for the pack in force now.
    pub fn principals(&self) -> Arc<Principals> {
        self.principals.load_full()
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
    let state = AppState {
        engine: Arc::new(EngineHandle::new(engine)),
        principals: Arc::new(arc_swap::ArcSwap::from_pointee(principals)),
        store,
        log: log.clone(),
        redactor: data.redactor().clone(),
        trusted,
    };
    reload::on_sighup(state.clone(), config.pack.clone());
    let app = router(state, config.body_limit);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    ready(listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
