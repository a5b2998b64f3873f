//! `warden`: the governance gateway's command-line tool.

// The gateway allocates small buffers on every request from many threads;
// glibc's allocator spent ~30% of the server's CPU under load (perf, see
// docs/PERFORMANCE.md), mimalloc a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod commands;
mod render;

fn main() -> std::process::ExitCode {
    // TLS (https connectors, `warden bench --server https://…`) runs on
    // rustls with the ring provider; one install per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Warnings (a route or webhook disabled at start, a delivery given up)
    // and errors go to stderr; `WARDEN_LOG=info` (any tracing filter) shows more.
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    cli::run()
}
