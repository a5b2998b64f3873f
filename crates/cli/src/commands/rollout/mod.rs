//! The rollout loop over recorded history: `warden replay`,
//! `warden approvals stats` and `warden tune`.

pub mod replay;
pub mod stats;
pub mod tune;

use anyhow::Context as _;
use warden_oversight::rollout::Window;
use warden_store::{DB_FILE, DataDir, Store};

use super::audit::{Location, parse_time};

/// Which recorded proposals to read.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub loc: Location,
    /// From: RFC 3339 time, or a duration ago (30d, 12h).
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// Until (exclusive): RFC 3339 time, or a duration ago. Default: now.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this agent's proposals.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only this tool's proposals.
    #[arg(long)]
    pub tool: Option<String>,
    /// Only proposals in runs of this workflow.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Count drill traffic too (left out by default: a drill's proposals
    /// are rehearsals, not decisions people made).
    #[arg(long)]
    pub include_drills: bool,
}

impl HistoryArgs {
    /// The window, or an error naming the bad bound.
    pub fn window(&self) -> anyhow::Result<Window> {
        let since = parse_time(&self.since).context("--since")?;
        let until = self
            .until
            .as_deref()
            .map(parse_time)
            .transpose()
            .context("--until")?;
        if let Some(u) = until
            && u <= since
        {
            anyhow::bail!("--until must be after --since");
        }
        Ok(Window {
            since_us: Some(since),
            until_us: until,
            agent: self.agent.clone(),
            tool: self.tool.clone(),
            workflow: self.workflow.clone(),
            drills: self.include_drills,
        })
    }

    /// Opens the recorded history; a data directory without a log is an
    /// error, never a new empty log.
    pub async fn open(&self) -> anyhow::Result<Store> {
        if self.loc.database_url.is_none() && !self.loc.data.join(DB_FILE).is_file() {
            anyhow::bail!(
                "no audit log in `{}` (pass --data DIR of a Warden data directory, or --database-url)",
                self.loc.data.display()
            );
        }
        let data = DataDir::open(&self.loc.data)
            .with_context(|| format!("cannot open data directory `{}`", self.loc.data.display()))?;
        Store::open(&data, self.loc.database_url.as_deref(), self.loc.durability)
            .await
            .context("cannot open the audit log")
    }

    /// "from 2026-11-03T10:00:00Z to now".
    pub fn describe(w: &Window) -> String {
        let (since, until) = w.bounds();
        format!(
            "from {} to {}",
            since.unwrap_or_else(|| "the start".into()),
            until.unwrap_or_else(|| "now".into())
        )
    }
}

/// A runtime for one command that reads the log.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// `12.3 s`, `4 min`, `2.1 h` for milliseconds.
pub fn duration_ms(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}
