//! Reference data: entities with attributes from `data/*.json`, typed in the
//! schema, read by policies through a literal entity or an argument that
//! names one (`x-warden-entity`), and part of the pack's version.

use serde_json::json;
use warden_model::{DenyCode, Outcome};
use warden_policy::Engine;

use crate::common::{MANIFEST, decide};

const TOOL: &str = r#"
[[tools]]
id = "transfer"
system = "ledger"
access = "write"
risk = "high"
[tools.args]
type = "object"
required = ["customer", "recipient"]
additionalProperties = false
[tools.args.properties]
customer = { type = "string", x-warden-entity = "Customer" }
recipient = { type = "string" }

[[reference_data]]
type = "Customer"
file = "data/customers.json"
description = "Each customer's known payees"
[reference_data.attributes]
type = "object"
required = ["payees"]
properties.payees = { type = "array", items = { type = "string" } }
properties.tier = { type = "string" }
"#;

const POLICIES: &str = r#"
@id("known-payees-only")
permit (principal, action == Action::"transfer", resource)
when { context.args.customer.payees.contains(context.args.recipient) };

@id("c1-vip")
permit (principal, action == Action::"pay", resource)
when { Customer::"c_1" has tier && Customer::"c_1".tier == "gold" };
"#;

const DATA: &str = r#"{
  "c_1": {"payees": ["acct_a", "acct_b"], "tier": "gold"},
  "c_2": {"payees": ["acct_c"]}
}"#;

fn write(data: &str, policies: &str) -> tempfile::TempDir {
    let dir = crate::common::write(&format!("{MANIFEST}{TOOL}"), policies);
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/customers.json"), data).unwrap();
    dir
}

fn load(dir: &tempfile::TempDir) -> Engine {
    match Engine::load(dir.path()) {
        Ok(c) => c.engine,
        Err(e) => panic!("{e}"),
    }
}

fn transfer(e: &Engine, customer: &str, recipient: &str) -> (Outcome, Option<DenyCode>) {
    let d = decide(
        e,
        "bot",
        "transfer",
        json!({"customer": customer, "recipient": recipient}),
        &[],
    );
    (d.outcome, d.code)
}

/// The codes and messages of a pack that does not load.
fn errors(dir: &tempfile::TempDir) -> Vec<String> {
    match crate::common::load_or_errors(dir.path()) {
        Err(errors) => errors,
        Ok(_) => panic!("the pack loaded"),
    }
}

#[test]
fn a_payee_list_allows_and_refuses_as_written() {
    let dir = write(DATA, POLICIES);
    let e = load(&dir);
    assert_eq!(transfer(&e, "c_1", "acct_b"), (Outcome::Allow, None));
    assert_eq!(transfer(&e, "c_2", "acct_c"), (Outcome::Allow, None));
    // Another customer's payee, or an unknown one: outside the grant.
    assert_eq!(
        transfer(&e, "c_2", "acct_a"),
        (Outcome::Deny, Some(DenyCode::NoGrant))
    );
    // A customer the data does not hold: no attributes to read, fail closed.
    assert_eq!(transfer(&e, "c_9", "acct_a").0, Outcome::Deny);
    // A literal entity in a policy.
    let d = decide(&e, "bot", "pay", json!({"amount": 5}), &[]);
    assert_eq!(d.outcome, Outcome::Allow);
}

#[test]
fn a_change_to_the_data_takes_effect_on_reload_and_changes_the_version() {
    let dir = write(DATA, POLICIES);
    let before = load(&dir);
    assert_eq!(transfer(&before, "c_2", "acct_z").0, Outcome::Deny);
    std::fs::write(
        dir.path().join("data/customers.json"),
        DATA.replace(r#"["acct_c"]"#, r#"["acct_c", "acct_z"]"#),
    )
    .unwrap();
    let after = load(&dir);
    assert_eq!(transfer(&after, "c_2", "acct_z"), (Outcome::Allow, None));
    assert_ne!(before.policy_version(), after.policy_version());
}

#[test]
fn bad_reference_data_is_refused_with_where_and_why() {
    // An attribute of the wrong type.
    let dir = write(&DATA.replace(r#"["acct_c"]"#, r#""acct_c""#), POLICIES);
    let errs = errors(&dir);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("invalid_reference_data") && e.contains("c_2")),
        "{errs:?}"
    );
    // A required attribute missing.
    let dir = write(r#"{"c_3": {"tier": "silver"}}"#, POLICIES);
    let errs = errors(&dir);
    assert!(
        errs.iter().any(|e| e.starts_with("invalid_reference_data")),
        "{errs:?}"
    );
    // Not JSON: the file, line and column.
    let dir = write("{\n  \"c_1\": {\"payees\": [}\n}", POLICIES);
    let errs = errors(&dir);
    assert!(
        errs.iter()
            .any(|e| e.contains("not valid JSON") && e.contains("data/customers.json:2:")),
        "{errs:?}"
    );
    // A file that is not there, a reserved type name.
    let dir = write(DATA, POLICIES);
    let manifest = dir.path().join("warden.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("data/customers.json", "data/clients.json"),
    )
    .unwrap();
    let errs = errors(&dir);
    assert!(
        errs.iter()
            .any(|e| e.contains("no file `data/clients.json`")),
        "{errs:?}"
    );
    std::fs::write(
        &manifest,
        text.replace("type = \"Customer\"", "type = \"Agent\""),
    )
    .unwrap();
    let errs = errors(&dir);
    assert!(
        errs.iter()
            .any(|e| e.contains("entity type of Warden's own")),
        "{errs:?}"
    );
    // A policy reading an attribute the type does not declare.
    let dir = write(
        DATA,
        "@id(\"x\")\npermit (principal, action == Action::\"transfer\", resource)\nwhen { context.args.customer.payee == \"a\" };",
    );
    let errs = errors(&dir);
    assert!(
        errs.iter().any(|e| e.starts_with("cedar_validation")),
        "{errs:?}"
    );
}
