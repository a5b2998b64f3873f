//! One file per subcommand: parse, call a library, print, return an [`Exit`].

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod bench;
pub mod check;
pub mod decide;
pub mod drill;
pub mod incidents;
pub mod inventory;
pub mod mcp;
pub mod remote;
pub mod rollout;
pub mod runs;
pub mod schema;
pub mod serve;
pub mod status;
pub mod test;
pub mod token;
pub mod validate;

use std::path::Path;

use warden_model::Diagnostic;
use warden_policy::{Compiled, Engine};

use crate::cli::{ErrorFormat, Exit};
use crate::render;

/// Loads and compiles a pack. On errors, prints them and returns the exit
/// code to end with; a pack that cannot be read at all is an `Err`.
pub fn compile(pack: &Path, format: ErrorFormat) -> anyhow::Result<Result<Compiled, Exit>> {
    let loaded = warden_model::load(pack)?;
    match warden_policy::compile(loaded, None) {
        Ok(c) => Ok(Ok(c)),
        Err(diags) => {
            match format {
                ErrorFormat::Human => {
                    render::print_all(diags.all());
                    eprintln!(
                        "error: pack `{}` has {}",
                        pack.display(),
                        render::count(diags.error_count(), "error")
                    );
                }
                ErrorFormat::Json => print_json_report(false, diags.all()),
            }
            Ok(Err(Exit::Failed))
        }
    }
}

/// Loads a pack that must be valid for the command to run (decide, schema):
/// warnings are not shown, errors end the command.
pub fn engine(pack: &Path) -> anyhow::Result<Result<Engine, Exit>> {
    Ok(compile(pack, ErrorFormat::Human)?.map(|c| c.engine))
}

/// `{"valid": .., "errors": n, "warnings": n, "diagnostics": [..]}` on stdout.
pub fn print_json_report(valid: bool, diags: &[Diagnostic]) {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let report = serde_json::json!({
        "valid": valid,
        "errors": errors,
        "warnings": diags.len() - errors,
        "diagnostics": render::json(diags),
    });
    println!("{report:#}");
}
