//! Per-policy validation against partial schemas gives the verdicts of a
//! validation of the whole set against the whole schema, and the cache
//! re-validates only what changed.

use warden_model::Diagnostic;
use warden_policy::{ValidationCache, compile, validation_findings};

use crate::common::{MANIFEST, examples, write};
use crate::synth::{Size, Synth};

const BROKEN: &str = r#"
@id("typo-arg")
permit (principal, action == Action::"pay", resource) when { context.args.amout > 1 };

@id("wrong-type")
permit (principal, action == Action::"pay", resource) when { context.args.amount == "x" };

@id("optional-without-has")
permit (principal, action == Action::"pay", resource) when { context.args.note == "x" };

@id("unknown-action-in-body")
permit (principal, action, resource) when { action == Action::"nope" };

@id("unknown-entity-type")
permit (principal == User::"x", action, resource);

@id("body-names-another-tool")
permit (principal, action == Action::"pay", resource) when { action == Action::"read" };

@id("group-scope-ok")
forbid (principal, action in Action::"access:write", resource) when { context.args.amount > 5 };

@id("group-scope-bad")
forbid (principal, action in Action::"access:read", resource) when { context.args.amount > 5 };

@id("fine")
permit (principal is Agent, action in [Action::"pay", Action::"read"], resource)
when { principal.owner == "ann" && context.risk == "high" };
"#;

fn assert_same(loaded: &warden_model::Loaded) {
    let per = validation_findings(loaded, true);
    let full = validation_findings(loaded, false);
    assert_eq!(per, full);
}

#[test]
fn equal_verdicts_on_examples() {
    for pack in ["support-refunds", "it-ops"] {
        let loaded = warden_model::load(examples().join(pack)).unwrap();
        assert_same(&loaded);
    }
}

#[test]
fn equal_verdicts_on_broken_policies() {
    let dir = write(MANIFEST, BROKEN);
    let loaded = warden_model::load(dir.path()).unwrap();
    let per = validation_findings(&loaded, true);
    assert_eq!(per, validation_findings(&loaded, false));
    let broken: std::collections::BTreeSet<&str> = per.iter().map(|(id, _)| id.as_str()).collect();
    // Every broken policy is caught, and no correct one (a body that tests
    // for another tool can never be true: Cedar flags it as impossible).
    assert_eq!(
        broken.into_iter().collect::<Vec<_>>(),
        [
            "body-names-another-tool",
            "group-scope-bad",
            "optional-without-has",
            "typo-arg",
            "unknown-action-in-body",
            "unknown-entity-type",
            "wrong-type"
        ]
    );
}

#[test]
fn equal_verdicts_on_a_synthetic_pack() {
    let dir = tempfile::tempdir().unwrap();
    Synth::new(Size::MEDIUM, 8).write(dir.path()).unwrap();
    // Add a few broken policies among the generated ones.
    let extra = "@id(\"bad-1\")\npermit (principal, action == Action::\"s001.op03\", resource) when { context.args.amont > 1 };\n\
                 @id(\"bad-2\")\nforbid (principal, action in Action::\"risk:high\", resource) when { context.args.region == 5 };\n";
    std::fs::write(dir.path().join("policies/extra.cedar"), extra).unwrap();
    let loaded = warden_model::load(dir.path()).unwrap();
    let per = validation_findings(&loaded, true);
    assert!(per.iter().any(|(id, _)| id == "bad-1") && per.iter().any(|(id, _)| id == "bad-2"));
    assert_eq!(per, validation_findings(&loaded, false));
}

fn rendered(diags: &[Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d.location().map(ToString::to_string).unwrap_or_default(),
                d.code(),
                d.message()
            )
        })
        .collect()
}

#[test]
fn cache_revalidates_only_the_changed_policy_and_keeps_locations_right() {
    let dir = write(MANIFEST, BROKEN);
    let cache = ValidationCache::new();
    let first =
        compile(warden_model::load(dir.path()).unwrap(), Some(&cache)).expect_err("broken pack");
    let filled = cache.len();
    assert_eq!(filled, 9, "one verdict per policy");

    // Change one policy and move every policy down two lines.
    let changed = format!(
        "// moved\n\n{}",
        BROKEN.replace("amount == \"x\"", "amount == 7")
    );
    std::fs::write(dir.path().join("policies/p.cedar"), &changed).unwrap();
    let cached =
        compile(warden_model::load(dir.path()).unwrap(), Some(&cache)).expect_err("still broken");
    assert_eq!(
        cache.len(),
        filled + 1,
        "only the changed policy was validated again"
    );
    let cold = compile(warden_model::load(dir.path()).unwrap(), None).expect_err("still broken");
    assert_eq!(rendered(cached.all()), rendered(cold.all()));
    assert_eq!(
        cold.error_count(),
        first.error_count() - 1,
        "the fixed policy no longer errors"
    );
    // Locations moved with the text.
    let typo = cold
        .all()
        .iter()
        .find(|d| d.message().contains("amout"))
        .unwrap();
    assert_eq!(typo.location().unwrap().line_col().0, 5);
}
