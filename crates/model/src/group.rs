//! Approver-group settings beyond members and quorum: expiry and the
//! webhook told of new and escalated requests.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::execute::ValueSource;

/// How long a request waits at the last group of its chain before it
/// expires, unless the group says otherwise (`expires_after`).
pub const DEFAULT_EXPIRES_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `notify = { url_env = "...", secret_env = "..." }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    url_env: Option<Spanned<String>>,
    /// Accepted only to refuse it with a clear message.
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    secret_file: Option<PathBuf>,
}

/// A webhook Warden POSTs JSON to, signed with HMAC-SHA256 when it has a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where to POST.
    pub url: ValueSource,
    /// The HMAC key (never literal: secrets stay out of the pack).
    pub secret: Option<ValueSource>,
}

pub(crate) fn webhook(raw: RawWebhook) -> Result<Webhook, String> {
    let url = match (raw.url, raw.url_env) {
        (Some(u), None) => {
            let u = u.into_inner();
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("`{u}` is not an http:// or https:// URL"));
            }
            ValueSource::Literal(u)
        }
        (None, Some(e)) => {
            let e = e.into_inner();
            if !crate::load::valid_env_name(&e) {
                return Err(format!("`{e}` is not an environment variable name"));
            }
            ValueSource::Env(e)
        }
        (Some(_), Some(_)) => return Err("give `url` or `url_env`, not both".to_owned()),
        (None, None) => return Err("a webhook needs `url` or `url_env`".to_owned()),
    };
    if raw.secret.is_some() {
        return Err(
            "a webhook secret is never written in the pack: name it with `secret_env` or `secret_file`"
                .to_owned(),
        );
    }
    let secret = match (raw.secret_env, raw.secret_file) {
        (None, None) => None,
        (Some(e), None) if crate::load::valid_env_name(&e) => Some(ValueSource::Env(e)),
        (Some(e), None) => return Err(format!("`{e}` is not an environment variable name")),
        (None, Some(f)) => Some(ValueSource::File(f)),
        (Some(_), Some(_)) => {
            return Err("give `secret_env` or `secret_file`, not both".to_owned());
        }
    };
    Ok(Webhook { url, secret })
}
