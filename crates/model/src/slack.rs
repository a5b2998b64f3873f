//! `[slack]`: the Slack app through which approvers answer requests.
//!
//! The bot token and the signing secret are read from the environment or
//! from files, never written in the pack. Each approver group may name the
//! channel its requests are posted to (an escalation posts to the channel
//! of the group it reaches); each person may name their Slack user id
//! (`[[people]] slack = "U…"`), which is how a button press is matched to
//! an approver.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::execute::ValueSource;
use crate::source::Location;

/// The Slack Web API, unless `api_url` says otherwise.
pub const DEFAULT_SLACK_API: &str = "https://slack.com/api";

/// `[slack]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlack {
    /// Accepted only to refuse it with a clear message.
    #[serde(default)]
    bot_token: Option<Spanned<String>>,
    #[serde(default)]
    bot_token_env: Option<Spanned<String>>,
    #[serde(default)]
    bot_token_file: Option<Spanned<PathBuf>>,
    /// Accepted only to refuse it with a clear message.
    #[serde(default)]
    signing_secret: Option<Spanned<String>>,
    #[serde(default)]
    signing_secret_env: Option<Spanned<String>>,
    #[serde(default)]
    signing_secret_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    api_url: Option<Spanned<String>>,
    #[serde(default)]
    api_url_env: Option<Spanned<String>>,
    #[serde(default)]
    console_url: Option<Spanned<String>>,
    #[serde(default)]
    channels: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// The Slack app of a deployment.
#[derive(Debug, Clone)]
pub struct Slack {
    /// The bot token (`xoxb-…`) used for `chat.postMessage` and friends.
    pub bot_token: ValueSource,
    /// The app's signing secret, which authenticates interactions.
    pub signing_secret: ValueSource,
    /// The Web API's base URL (default [`DEFAULT_SLACK_API`]).
    pub api_url: ValueSource,
    /// Where the console is reached from a browser (`https://warden.example.com`),
    /// for the link in each message.
    pub console_url: Option<String>,
    /// Channel id by approver group.
    pub channels: BTreeMap<String, String>,
    /// Where it is declared.
    pub at: Location,
}

impl Slack {
    /// The channel requests for `group` are posted to.
    pub fn channel(&self, group: &str) -> Option<&str> {
        self.channels.get(group).map(String::as_str)
    }
}

type Problem = (String, Range<usize>);

/// Whether `id` looks like a Slack id starting with one of `first`
/// (`U0123ABCD`): uppercase letters and digits.
pub(crate) fn slack_id(id: &str, first: &[char]) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| first.contains(&c))
        && (3..=24).contains(&id.len())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl RawSlack {
    /// The group ids named under `channels`, for reference checks.
    pub(crate) fn groups(&self) -> impl Iterator<Item = &Spanned<String>> {
        self.channels.keys()
    }

    pub(crate) fn resolve(self, at: Location, whole: Range<usize>) -> Result<Slack, Vec<Problem>> {
        let mut problems: Vec<Problem> = Vec::new();
        for (literal, name) in [
            (&self.bot_token, "bot_token"),
            (&self.signing_secret, "signing_secret"),
        ] {
            if let Some(v) = literal {
                problems.push((
                    format!(
                        "a Slack `{name}` is never written in the pack: name it with `{name}_env` or `{name}_file`"
                    ),
                    v.span(),
                ));
            }
        }
        let bot_token = crate::oversight::secret_source(
            self.bot_token_env,
            self.bot_token_file,
            "bot_token",
            &mut problems,
        );
        let signing_secret = crate::oversight::secret_source(
            self.signing_secret_env,
            self.signing_secret_file,
            "signing_secret",
            &mut problems,
        );
        if bot_token.is_none() && self.bot_token.is_none() {
            problems.push((
                "`[slack]` needs `bot_token_env` or `bot_token_file`".to_owned(),
                whole.clone(),
            ));
        }
        if signing_secret.is_none() && self.signing_secret.is_none() {
            problems.push((
                "`[slack]` needs `signing_secret_env` or `signing_secret_file`".to_owned(),
                whole.clone(),
            ));
        }
        let api_url = if self.api_url.is_none() && self.api_url_env.is_none() {
            Some(ValueSource::Literal(DEFAULT_SLACK_API.to_owned()))
        } else {
            crate::execute::url_source(
                self.api_url,
                self.api_url_env,
                "`[slack]`",
                &whole,
                &mut problems,
            )
        };
        let console_url = self.console_url.map(|u| {
            let s = u.get_ref();
            if !(s.starts_with("http://") || s.starts_with("https://")) {
                problems.push((
                    format!("console_url `{s}` is not an http:// or https:// URL"),
                    u.span(),
                ));
            }
            u.into_inner().trim_end_matches('/').to_owned()
        });
        let mut channels = BTreeMap::new();
        for (group, channel) in self.channels {
            if !slack_id(channel.get_ref(), &['C', 'G']) {
                problems.push((
                    format!(
                        "`{}` is not a Slack channel id: use the id shown at the bottom of the channel's details (C…), not its name",
                        channel.get_ref()
                    ),
                    channel.span(),
                ));
                continue;
            }
            channels.insert(group.into_inner(), channel.into_inner());
        }
        match (bot_token, signing_secret, api_url) {
            (Some(bot_token), Some(signing_secret), Some(api_url)) if problems.is_empty() => {
                Ok(Slack {
                    bot_token,
                    signing_secret,
                    api_url,
                    console_url,
                    channels,
                    at,
                })
            }
            _ => Err(problems),
        }
    }
}

impl crate::load::Cx {
    /// A person's Slack user id: well formed and nobody else's.
    pub(crate) fn person_slack(
        &mut self,
        person: &str,
        id: Spanned<String>,
        seen: &mut BTreeMap<String, String>,
    ) -> Option<String> {
        let problem = if !slack_id(id.get_ref(), &['U', 'W']) {
            format!(
                "`{}` is not a Slack user id: use the member id from the person's Slack profile (U…)",
                id.get_ref()
            )
        } else if let Some(other) = seen.get(id.get_ref()) {
            format!(
                "Slack user `{}` is already person `{other}`'s: a press must match one person",
                id.get_ref()
            )
        } else {
            seen.insert(id.get_ref().clone(), person.to_owned());
            return Some(id.into_inner());
        };
        self.push(crate::ModelProblem::Slack { message: problem }, id.span());
        None
    }

    /// `[slack]`: its settings, the groups it names, and warnings for what
    /// cannot happen in Slack (a group without a channel, a member without
    /// a Slack id).
    pub(crate) fn resolve_slack(
        &mut self,
        raw: Option<(RawSlack, Range<usize>)>,
        pack: &mut crate::Pack,
    ) {
        let Some((raw, span)) = raw else { return };
        for g in raw.groups() {
            self.reference(crate::load::RefKind::Group, Some(g));
        }
        let at = self.loc(span.start..span.start);
        let slack = match raw.resolve(at, span.clone()) {
            Ok(s) => s,
            Err(problems) => {
                for (message, span) in problems {
                    self.push(crate::ModelProblem::Slack { message }, span);
                }
                return;
            }
        };
        let header = span.start..span.start + 1;
        for g in pack.approver_groups.values() {
            if slack.channel(&g.id).is_none() {
                self.push(
                    crate::ModelProblem::SlackIncomplete {
                        message: format!(
                            "approver group `{}` has no Slack channel: its requests are answered in the console and the API only",
                            g.id
                        ),
                    },
                    header.clone(),
                );
                continue;
            }
            let unlinked: Vec<&str> = g
                .members
                .iter()
                .filter(|m| pack.people.get(*m).is_some_and(|p| p.slack.is_none()))
                .map(String::as_str)
                .collect();
            if !unlinked.is_empty() {
                self.push(
                    crate::ModelProblem::SlackIncomplete {
                        message: format!(
                            "{} of approver group `{}` cannot answer in Slack: no `slack` user id in [[people]]",
                            unlinked.join(", "),
                            g.id
                        ),
                    },
                    header.clone(),
                );
            }
        }
        pack.slack = Some(slack);
    }
}

/// The Slack app's secrets and API address, read from where the pack says.
#[derive(Clone)]
pub struct SlackSecrets {
    /// The bot token.
    pub bot_token: String,
    /// The signing secret.
    pub signing_secret: String,
    /// The Web API's base URL, without a trailing `/`.
    pub api_url: String,
}

impl std::fmt::Debug for SlackSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSecrets")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl Slack {
    /// Reads the bot token, the signing secret and the API address
    /// (relative to the pack directory `root`); `Err` says what is missing.
    pub fn secrets(&self, root: &std::path::Path) -> Result<SlackSecrets, String> {
        Ok(SlackSecrets {
            bot_token: self.bot_token.read(root)?,
            signing_secret: self.signing_secret.read(root)?,
            api_url: self.api_url.read(root)?.trim_end_matches('/').to_owned(),
        })
    }
}
