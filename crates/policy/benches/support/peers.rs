//! Setup shared by the benchmarks: Warden requests and the regorus peers
//! (interpreter and compiled VM) loaded with the same rules and requests.

use regorus::rvm::vm::RegoVM;
use warden_model::RequestContext;
use warden_policy::Request;

use crate::synth::GenRequest;

/// The rule every Rego rule set exposes.
pub const RULE: &str = "data.warden.decision";

/// Warden requests borrowing from the generated ones.
pub fn requests<'a>(reqs: &'a [GenRequest], ctx: &'a RequestContext) -> Vec<Request<'a>> {
    reqs.iter()
        .map(|r| Request {
            agent: &r.agent,
            tool: &r.tool,
            args: &r.args,
            approvals: &r.approvals,
            context: ctx,
        })
        .collect()
}

/// The regorus interpreter and compiled VM over `rego` (and its data), and
/// the requests as prepared regorus inputs.
pub fn regorus(
    rego: &str,
    data: Option<&serde_json::Value>,
    reqs: &[GenRequest],
) -> (regorus::Engine, RegoVM, Vec<regorus::Value>) {
    let inputs = reqs
        .iter()
        .map(|r| regorus::Value::from_json_str(&r.rego_input().to_string()).unwrap())
        .collect();
    let data = data.map(|d| regorus::Value::from_json_str(&d.to_string()).unwrap());
    let mut interp = regorus::Engine::new();
    interp
        .add_policy("warden.rego".into(), rego.into())
        .unwrap();
    if let Some(d) = &data {
        interp.add_data(d.clone()).unwrap();
    }
    let rule: std::sync::Arc<str> = RULE.into();
    let policy = interp.compile_with_entrypoint(&rule).unwrap();
    let program =
        regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[RULE])
            .unwrap();
    let mut vm = RegoVM::new();
    vm.load_program(program);
    if let Some(d) = data {
        vm.set_data(d).unwrap();
    }
    (interp, vm, inputs)
}
