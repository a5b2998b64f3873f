//! Slack approvals: each approval request is shown as a message in its
//! group's channel, and Approve / Deny presses answer it through exactly
//! the rules of `POST /v1/approvals/{id}/decision`.
//!
//! - A request opens a message row in the transaction that creates it
//!   (`StateWrite::SlackOpen`, written by the runtime); every later change
//!   of the request marks the row due in the same transaction. The
//!   [`sender`] posts (`chat.postMessage`) and updates (`chat.update`) due
//!   messages under a lease, retries with backoff, and finds a message
//!   whose post answer was lost (by its metadata) instead of posting twice.
//! - [`interact`] serves `POST /v1/integrations/slack/interactions`: it
//!   checks Slack's v0 signature and timestamp, refuses replays, maps the
//!   Slack user to a person of the pack, answers Slack at once and does the
//!   work after; refusals reach the presser as ephemeral messages. Every
//!   press is evidence.
//!
//! The app's settings come from `[slack]` in the pack in force; its secrets
//! are read again whenever the pack changes. Without them Slack is off and
//! requests wait in the console and the API as before.

mod api;
mod blocks;
mod interact;
mod sender;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use warden_policy::EngineHandle;

pub(crate) use interact::{PATH as INTERACTIONS, interactions};
pub(crate) use sender::start;

/// The Slack app of the pack in force, with its secrets read.
pub(crate) struct SlackApp {
    pub(crate) api: api::SlackApi,
    pub(crate) signing_secret: Vec<u8>,
    pub(crate) console_url: Option<String>,
}

/// The pack version an app was built for, and the app (`None`: Slack is
/// off for that pack).
type Built = (String, Option<Arc<SlackApp>>);

/// The Slack app, rebuilt when the pack in force changes.
#[derive(Clone, Default)]
pub struct SlackState {
    cache: Arc<Mutex<Option<Built>>>,
}

impl std::fmt::Debug for SlackState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackState").finish_non_exhaustive()
    }
}

/// How long a Slack Web API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl SlackState {
    /// The app of the pack in force, or `None` when the pack sets up no
    /// Slack or its secrets cannot be read (the runtime warns once).
    pub(crate) fn app(&self, engine: &EngineHandle) -> Option<Arc<SlackApp>> {
        let current = engine.current();
        let version = current.pack().version.as_str();
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if let Some((v, app)) = cache.as_ref()
            && v == version
        {
            return app.clone();
        }
        let app = build(current.pack());
        *cache = Some((version.to_owned(), app.clone()));
        app
    }
}

fn build(pack: &warden_model::Pack) -> Option<Arc<SlackApp>> {
    let slack = pack.slack.as_ref()?;
    let secrets = slack.secrets(&pack.root).ok()?;
    let http = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(
            |e| tracing::warn!(error = %e, "cannot build an HTTP client: Slack approvals disabled"),
        )
        .ok()?;
    Some(Arc::new(SlackApp {
        api: api::SlackApi {
            http,
            base: secrets.api_url,
            token: secrets.bot_token,
        },
        signing_secret: secrets.signing_secret.into_bytes(),
        console_url: slack.console_url.clone(),
    }))
}
