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
    cli::run()
}
