//! Counters: `context.usage.<name>` is the value before the request plus
//! what the request adds, typed in the schema (a typo is a validation error
//! with file:line), and bad `[[counters]]` entries are refused.

use serde_json::json;
use warden_model::{DenyCode, Outcome, RequestContext};
use warden_policy::{Engine, Request};

use crate::common::{MANIFEST, load_or_errors, write};

const COUNTERS: &str = r#"
[[counters]]
name = "paid_per_note_day"
tools = ["pay"]
sum = "amount"
per = ["agent", "args.amount"]
window = "1d"

[[counters]]
name = "pays_per_hour"
tools = ["pay"]
window = "1h"
"#;

const POLICIES: &str = r#"
@id("pay")
permit (principal, action == Action::"pay", resource);

@id("daily-cap")
@reason("at most 1000 a day")
forbid (principal, action == Action::"pay", resource)
when { context.usage.paid_per_note_day > 1000 };

@id("rate")
forbid (principal, action == Action::"pay", resource)
when { context.usage.pays_per_hour > 3 };
"#;

fn load(manifest: &str, policies: &str) -> Result<Engine, Vec<String>> {
    load_or_errors(write(manifest, policies).path())
}

fn pay(e: &Engine, amount: i64, usage: &[(&str, i64)]) -> (Outcome, Option<DenyCode>, Vec<String>) {
    let ctx = RequestContext {
        usage: usage.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        ..Default::default()
    };
    let args = json!({ "amount": amount });
    let d = e.decide(&Request {
        agent: "bot",
        tool: "pay",
        args: &args,
        approvals: &[],
        context: &ctx,
    });
    let ids = d.policies.iter().map(|p| p.id.clone()).collect();
    (d.outcome, d.code, ids)
}

#[test]
fn usage_includes_the_request_being_decided_at_the_boundary() {
    let e = load(&format!("{MANIFEST}{COUNTERS}"), POLICIES).unwrap();
    // No history: the request alone.
    assert_eq!(pay(&e, 1000, &[]).0, Outcome::Allow);
    assert_eq!(pay(&e, 1001, &[]).2, vec!["daily-cap".to_owned()]);
    // 600 before + 400 now = 1000: at the cap, allowed; 401 is over.
    assert_eq!(
        pay(&e, 400, &[("paid_per_note_day", 600)]).0,
        Outcome::Allow
    );
    let (o, code, ids) = pay(&e, 401, &[("paid_per_note_day", 600)]);
    assert_eq!((o, code), (Outcome::Deny, Some(DenyCode::Forbidden)));
    assert_eq!(ids, vec!["daily-cap".to_owned()]);
    // A count: 2 before + this one = 3 passes, 3 before + this = 4 does not.
    assert_eq!(pay(&e, 1, &[("pays_per_hour", 2)]).0, Outcome::Allow);
    assert_eq!(
        pay(&e, 1, &[("pays_per_hour", 3)]).2,
        vec!["rate".to_owned()]
    );
}

#[test]
fn a_typo_in_context_usage_is_a_validation_error_with_file_and_line() {
    let typo = POLICIES.replace("usage.pays_per_hour", "usage.pays_per_hr");
    let errs = load(&format!("{MANIFEST}{COUNTERS}"), &typo).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.contains("pays_per_hr") && e.contains("policies/p.cedar:")),
        "{errs:?}"
    );
    // A tool that no counter counts has no `context.usage` at all.
    let other = r#"
@id("read")
permit (principal, action == Action::"read", resource)
when { context.usage.pays_per_hour < 5 };
"#;
    let errs = load(&format!("{MANIFEST}{COUNTERS}"), other).unwrap_err();
    assert!(errs.iter().any(|e| e.contains("usage")), "{errs:?}");
}

#[test]
fn bad_counters_are_refused_with_where_and_why() {
    let cases = [
        (
            "name = \"pays_per_hour\"",
            "name = \"pays-per-hour\"",
            "not a Cedar identifier",
        ),
        ("window = \"1h\"", "window = \"an hour\"", "invalid window"),
        ("window = \"1h\"", "window = \"500ms\"", "from 1s to 366d"),
        (
            "tools = [\"pay\"]\nwindow = \"1h\"",
            "tools = [\"pya\"]\nwindow = \"1h\"",
            "unknown tool `pya`",
        ),
        (
            "sum = \"amount\"",
            "sum = \"note\"",
            "sums `note`, which is not of type integer",
        ),
        (
            "per = [\"agent\", \"args.amount\"]",
            "per = [\"agent\", \"args.note\"]",
            "`args.note`, which is not required",
        ),
        (
            "per = [\"agent\", \"args.amount\"]",
            "per = [\"agent\", \"customer\"]",
            "cannot key a counter",
        ),
    ];
    for (from, to, want) in cases {
        let manifest = format!("{MANIFEST}{}", COUNTERS.replacen(from, to, 1));
        assert_ne!(manifest, format!("{MANIFEST}{COUNTERS}"), "{from}");
        let errs = load(&manifest, POLICIES).unwrap_err();
        assert!(
            errs.iter().any(|e| e.starts_with("invalid_counter")
                && e.contains(want)
                && e.contains("warden.toml:")),
            "{to}: {errs:?}"
        );
    }
    // Declared twice.
    let twice = format!(
        "{MANIFEST}{COUNTERS}{}",
        &COUNTERS[COUNTERS.find("[[counters]]\nname = \"pays").unwrap()..]
    );
    let errs = load(&twice, POLICIES).unwrap_err();
    assert!(
        errs.iter().any(|e| e.contains("declared twice")),
        "{errs:?}"
    );
}
