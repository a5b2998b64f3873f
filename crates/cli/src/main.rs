//! `warden`: the governance gateway's command-line tool.

mod cli;
mod commands;
mod render;

fn main() -> std::process::ExitCode {
    cli::run()
}
