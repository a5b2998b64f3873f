//! `warden serve`

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use warden_server::{ServeConfig, serve};

use super::audit::Location;
use crate::cli::Exit;

/// `warden serve`
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The governance pack directory.
    #[arg(long, env = "WARDEN_PACK", value_name = "DIR")]
    pub pack: PathBuf,
    #[command(flatten)]
    pub loc: Location,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, env = "WARDEN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Sign a checkpoint of the audit log this often, also when idle.
    #[arg(long, default_value = "1m")]
    pub checkpoint_every: humantime::Duration,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub body_limit: usize,
    /// Proposals per second each agent may make; 0 for no limit.
    #[arg(long, env = "WARDEN_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// How long an enforce-mode proposal waits for its execution before it
    /// is answered 202 (poll GET /v1/actions/{id}?wait=30s).
    #[arg(long, default_value = "10s")]
    pub sync_wait: humantime::Duration,
    /// Do not reload the pack when its files change (SIGHUP still reloads).
    #[arg(long)]
    pub no_watch: bool,
}

pub fn run(a: ServeArgs) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = ServeConfig {
        pack: a.pack.clone(),
        data: a.loc.data.clone(),
        database_url: a.loc.database_url.clone(),
        listen: a.listen,
        durability: a.loc.durability,
        checkpoint_every: a.checkpoint_every.into(),
        body_limit: a.body_limit,
        rate_limit: (a.rate_limit > 0).then_some(a.rate_limit),
        sync_wait: a.sync_wait.into(),
        watch_pack: !a.no_watch,
    };
    let pack = a.pack.display().to_string();
    rt.block_on(serve(config, |addr| {
        // One write, and a closed stdout is no reason to stop serving: a
        // reader may stop after the first line.
        let msg = format!(
            "warden listening on http://{addr} (pack `{pack}`)\nconsole: http://{addr}/console (sign in with your token)\n"
        );
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(msg.as_bytes());
        let _ = out.flush();
    }))
    .with_context(|| format!("warden serve --pack {pack}"))?;
    eprintln!("warden stopped; final checkpoint signed");
    Ok(Exit::Ok)
}
