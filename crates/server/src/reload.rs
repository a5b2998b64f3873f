//! Pack reload on SIGHUP: a valid pack replaces the engine and the token
//! table atomically; an invalid one is refused, the old stays in force, and
//! either outcome is recorded as evidence.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use warden_evidence::{Record, RecordKind};
use warden_policy::{Engine, EngineError};

use crate::AppState;
use crate::auth::Principals;

/// Reloads the pack from `dir` now. Returns whether the new pack is in force.
pub async fn reload(state: &AppState, dir: &std::path::Path) -> bool {
    let old = state.engine.current().policy_version().to_owned();
    let mut r = Record::new(RecordKind::PackReloaded);
    let ok = match Engine::load(dir) {
        Ok(compiled) => {
            let version = compiled.engine.policy_version().to_owned();
            let principals =
                Principals::from_pack(compiled.engine.pack(), |n| std::env::var(n).ok());
            state.engine.replace(compiled.engine);
            state.principals.store(Arc::new(principals));
            r.message = Some(format!("pack reloaded: {old} -> {version}"));
            r.detail = Some(json!({ "old_version": old, "new_version": version }));
            tracing::info!(%version, "pack reloaded");
            true
        }
        Err(e) => {
            let (summary, problems): (String, Vec<String>) = match &e {
                EngineError::Invalid(d) => (
                    format!("{} errors", d.error_count()),
                    d.all()
                        .iter()
                        .filter(|x| x.is_error())
                        .take(20)
                        .map(|x| x.to_string())
                        .collect(),
                ),
                other => (other.to_string(), Vec::new()),
            };
            r.code = Some("pack_invalid".into());
            r.message = Some(format!(
                "pack reload refused ({summary}); {old} stays in force"
            ));
            r.detail = Some(json!({ "kept_version": old, "problems": problems }));
            tracing::error!(error = %e, "pack reload refused; the previous pack stays in force");
            false
        }
    };
    if let Err(e) = state.log.append(r).await {
        tracing::error!(error = %e, "cannot record the pack reload");
    }
    ok
}

/// Reloads `dir` on every SIGHUP.
pub fn on_sighup(state: AppState, dir: PathBuf) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; pack reload is off");
            return;
        };
        while hup.recv().await.is_some() {
            reload(&state, &dir).await;
        }
    });
    #[cfg(not(unix))]
    let _ = (state, dir);
}
