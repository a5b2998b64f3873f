//! Arguments and dispatch. Each subcommand lives in `commands/<name>.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::commands;

/// Warden: governance gateway for AI agents.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ErrorFormat {
    /// File, line, column and a caret under the fault.
    #[default]
    Human,
    /// One JSON document on stdout.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a governance pack and report every problem with file and line.
    Validate(ValidateArgs),
    /// Print the Cedar schema Warden generates from a pack.
    Schema(SchemaArgs),
    /// Decide one request: allow, deny or approval_required.
    Decide(DecideArgs),
    /// Run the pack's decision test cases (tests/*.toml).
    Test(TestArgs),
    /// Run the gateway: authenticate callers and serve the /v1 API.
    Serve(crate::commands::serve::ServeArgs),
    /// Mint a bearer token for an agent or person, or hash one for a pack.
    #[command(subcommand)]
    Token(crate::commands::token::TokenCommand),
    /// The tamper-evident audit log: verify, query, timeline, export, prune.
    #[command(subcommand)]
    Audit(crate::commands::audit::AuditCommand),
    /// Approval requests: list, show, approve, deny (against a server).
    #[command(subcommand)]
    Approvals(crate::commands::approvals::ApprovalsCommand),
    /// Incidents opened by playbooks: list, show, ack, resolve, review (against a server).
    #[command(subcommand)]
    Incidents(crate::commands::incidents::IncidentsCommand),
    /// The readiness checklist before scaling: pass / warn / fail per item; exit 1 on a failure.
    Check(crate::commands::check::CheckArgs),
    /// The workflow inventory: workflows by risk, steps, gates, owners, gaps.
    Inventory(crate::commands::inventory::InventoryArgs),
    /// Drills: rehearse playbooks with real traffic marked as a drill.
    #[command(subcommand)]
    Drill(crate::commands::drill::DrillCommand),
    /// Kill switches on agents: pause, resume, quarantine, release.
    #[command(subcommand)]
    Agents(crate::commands::agents::AgentsCommand),
    /// Circuit breakers on tools.
    #[command(subcommand)]
    Tools(crate::commands::agents::ToolsCommand),
    /// Workflow runs: cancel one.
    #[command(subcommand)]
    Runs(crate::commands::runs::RunsCommand),
    /// The operational views: runs, stuck runs, approval bottleneck,
    /// hotspots, active incidents.
    Status(crate::commands::status::StatusArgs),
    /// The MCP gateway's helpers: a stdio bridge, importing upstream tools.
    #[command(subcommand)]
    Mcp(crate::commands::mcp::McpCommand),
    /// Drive a server with concurrent agents; report throughput and latency.
    Bench(crate::commands::bench::BenchArgs),
    /// Decide recorded proposals again with a candidate pack and compare
    /// (exit 1 when a decision loosens).
    Replay(crate::commands::rollout::replay::ReplayArgs),
    /// Suggest pack changes from recorded approvals, verified by replay.
    Tune(crate::commands::rollout::tune::TuneArgs),
}

/// `warden validate`
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The pack directory (holding warden.toml).
    pub pack: PathBuf,
    /// Print diagnostics for people or as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub error_format: ErrorFormat,
    /// Treat warnings (readiness gaps) as errors.
    #[arg(long)]
    pub deny_warnings: bool,
}

/// `warden schema`
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// The pack directory.
    pub pack: PathBuf,
    /// Print Cedar's JSON schema format instead of its human syntax.
    #[arg(long)]
    pub json: bool,
}

/// `warden decide`
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The pack directory.
    pub pack: PathBuf,
    /// The agent making the request.
    #[arg(long)]
    pub agent: String,
    /// The tool requested, e.g. `stripe.refund`.
    #[arg(long)]
    pub tool: String,
    /// The arguments, as a JSON object.
    #[arg(long, default_value = "{}")]
    pub args: String,
    /// Workflow, run and trigger, as JSON: {"workflow": "...", "run": "...",
    /// "trigger": {"source": "...", "reference": "...", "requester": "..."}}.
    #[arg(long)]
    pub context: Option<String>,
    /// Approver groups whose approval exists, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub approvals: Vec<String>,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
    /// Explain: which policies matched, which gate applies, what would pass.
    #[arg(long)]
    pub explain: bool,
    /// Record the decision as evidence in this data directory's audit log.
    #[arg(long, value_name = "DATA_DIR")]
    pub record: Option<PathBuf>,
    /// With --record: use this PostgreSQL database instead of the data
    /// directory's SQLite file.
    #[arg(long, env = "WARDEN_DATABASE_URL", requires = "record")]
    pub database_url: Option<String>,
}

/// `warden test`
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The pack directory.
    pub pack: PathBuf,
    /// Print diagnostics for people or as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub error_format: ErrorFormat,
}

/// Exit codes, as documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: valid pack, decision made, all tests passed.
    Ok = 0,
    /// The pack has errors, or test cases failed.
    Failed = 1,
    /// The command could not run: unreadable pack, unusable request.
    Unusable = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Parses the command line and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // A command whose output is cut short (`warden audit query | head -1`)
    // ends quietly, as `cat` does, instead of panicking on the closed pipe.
    // Not the server: it must outlive any client that goes away.
    if !matches!(cli.command, Command::Serve(_) | Command::Bench(_)) {
        sigpipe::reset();
    }
    let result = match cli.command {
        Command::Validate(a) => commands::validate::run(&a),
        Command::Schema(a) => commands::schema::run(&a),
        Command::Decide(a) => commands::decide::run(&a),
        Command::Test(a) => commands::test::run(&a),
        Command::Audit(a) => commands::audit::run(a),
        Command::Token(a) => commands::token::run(&a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Approvals(a) => commands::approvals::run(a),
        Command::Mcp(a) => commands::mcp::run(a),
        Command::Incidents(a) => commands::incidents::run(a),
        Command::Drill(a) => commands::drill::run(a),
        Command::Inventory(a) => commands::inventory::run(a),
        Command::Check(a) => commands::check::run(a),
        Command::Agents(a) => commands::agents::run(a),
        Command::Tools(a) => commands::agents::run_tools(a),
        Command::Runs(a) => commands::runs::run(a),
        Command::Status(a) => commands::status::run(a),
        Command::Replay(a) => commands::rollout::replay::run(a),
        Command::Tune(a) => commands::rollout::tune::run(a),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::Unusable.into()
        }
    }
}
