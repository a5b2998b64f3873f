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
    reload_inner(state, dir, false).await
}

/// Reloads; with `skip_unchanged`, a pack whose content hash did not change
/// (an editor touching a file) is neither swapped nor recorded.
async fn reload_inner(state: &AppState, dir: &std::path::Path, skip_unchanged: bool) -> bool {
    let old = state.engine.current().policy_version().to_owned();
    let mut r = Record::new(RecordKind::PackReloaded);
    let ok = match Engine::load(dir) {
        Ok(compiled) if skip_unchanged && compiled.engine.policy_version() == old => {
            let _ = compiled;
            return true;
        }
        Ok(compiled) => {
            let version = compiled.engine.policy_version().to_owned();
            let principals =
                Principals::from_pack(compiled.engine.pack(), |n| std::env::var(n).ok());
            state.engine.replace(compiled.engine);
            state.principals.store(Arc::new(principals));
            state.runtime.reload_connectors();
            state.oversight.reload();
            state.metrics.reloaded(false);
            if let Ok(mut refused) = state.refused_reload.lock() {
                *refused = None;
            }
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
            // The refused pack's content hash, when its files can be read.
            let refused_version = warden_model::load(dir)
                .ok()
                .map(|l| l.pack.version.to_string());
            r.detail = Some(json!({
                "kept_version": old,
                "refused_version": refused_version,
                "problems": problems,
            }));
            state.metrics.reloaded(true);
            if let Ok(mut refused) = state.refused_reload.lock() {
                *refused = Some(json!({
                    "at": warden_evidence::now(),
                    "refused_version": refused_version,
                    "error": problems.first().cloned().unwrap_or_else(|| summary.clone()),
                    "errors": summary,
                }));
            }
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

/// Reloads `dir` when a file under it changes: changes are gathered for a
/// quiet 300 ms, then the pack is loaded once.
pub fn on_change(state: AppState, dir: PathBuf) {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = match notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev
            && !matches!(ev.kind, notify::EventKind::Access(_))
        {
            let _ = tx.send(());
        }
    }) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the pack; reload with SIGHUP");
            return;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::Recursive) {
        tracing::warn!(error = %e, "cannot watch the pack; reload with SIGHUP");
        return;
    }
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        while rx.recv().await.is_some() {
            loop {
                match tokio::time::timeout(std::time::Duration::from_millis(300), rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            reload_inner(&state, &dir, true).await;
        }
    });
}
