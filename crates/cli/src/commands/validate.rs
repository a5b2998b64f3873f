//! `warden validate PACK`

use warden_model::load_test_cases;

use crate::cli::{ErrorFormat, Exit, ValidateArgs};
use crate::render;

pub fn run(args: &ValidateArgs) -> anyhow::Result<Exit> {
    let compiled = match super::compile(&args.pack, args.error_format)? {
        Ok(c) => c,
        Err(exit) => return Ok(exit),
    };
    let pack = compiled.engine.pack();
    // Test files are part of the pack: a broken one is an error here too.
    let (cases, mut diags) = load_test_cases(pack);
    diags.extend(compiled.warnings.iter().cloned());
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    match args.error_format {
        ErrorFormat::Json => super::print_json_report(!failed, &diags),
        ErrorFormat::Human => {
            render::print_all(&diags);
            if failed {
                eprintln!(
                    "error: pack `{}` has {} and {}",
                    args.pack.display(),
                    render::count(errors, "error"),
                    render::count(warnings, "warning")
                );
            } else {
                println!(
                    "pack `{}` is valid: {}, {}, {}, {}, {}, {}, {}, {} ({}); version {}",
                    pack.name,
                    render::count(pack.agents.len(), "agent"),
                    render::count(pack.tools.len(), "tool"),
                    render::count(compiled.engine.policies().len(), "policy"),
                    render::count(pack.workflows.len(), "workflow"),
                    render::count(pack.approver_groups.len(), "approver group"),
                    render::count(pack.playbooks.len(), "playbook"),
                    render::count(pack.drills.len(), "drill"),
                    render::count(cases.len(), "test case"),
                    render::count(warnings, "warning"),
                    pack.version.short()
                );
            }
        }
    }
    Ok(if failed { Exit::Failed } else { Exit::Ok })
}
