//! `warden replay`, `warden approvals stats` and `warden tune` (issue 17)
//! against a seeded month of refund traffic in a real SQLite file (and
//! PostgreSQL), with expected counts computed here from the raw records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{copy_dir, root, warden};
use crate::postgres::PgDb;

/// Seeds `runs` refund runs (one every 2 minutes) into a data directory.
fn seed(tmp: &Path, runs: u32) -> PathBuf {
    let data = tmp.join("data");
    let out = warden(&[
        "audit",
        "seed",
        "--data",
        data.to_str().unwrap(),
        "--runs",
        &runs.to_string(),
        "--every",
        "2m",
        "--seed",
        "7",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    data
}

/// A copy of the support-refunds pack with `edit` applied to the refund
/// policies and `tests` to its refund test cases.
fn candidate(tmp: &Path, name: &str, edit: &[(&str, &str)], tests: &[(&str, &str)]) -> PathBuf {
    let dir = tmp.join(name);
    copy_dir(&root().join("examples/support-refunds"), &dir);
    for (file, pairs) in [
        ("policies/refunds.cedar", edit),
        ("tests/refunds.toml", tests),
    ] {
        let path = dir.join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in pairs {
            assert!(text.contains(from), "`{from}` not in {file}");
            text = text.replace(from, to);
        }
        std::fs::write(&path, text).unwrap();
    }
    dir
}

/// Every recorded `action_decided` record, oldest first.
fn decided(data: &Path) -> Vec<Value> {
    records(data, "action_decided")
}

fn records(data: &Path, kind: &str) -> Vec<Value> {
    let out = warden(&[
        "audit",
        "query",
        "--data",
        data.to_str().unwrap(),
        "--kind",
        kind,
        "--limit",
        "1000000",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut v = out.json().as_array().cloned().unwrap();
    v.reverse();
    v
}

fn amount(r: &Value) -> i64 {
    r["args"]["amount_cents"].as_i64().unwrap_or(-1)
}

fn outcome(r: &Value) -> (String, Value) {
    let c = &r["checks"][0];
    (
        c["decision"].as_str().unwrap().to_owned(),
        c["approval"].clone(),
    )
}

fn finance_only(r: &Value) -> bool {
    let (d, a) = outcome(r);
    d == "approval_required" && a == serde_json::json!({ "finance": 1 })
}

/// What people decided per action: approved, denied, expired.
fn people(data: &Path) -> HashMap<String, &'static str> {
    let mut m = HashMap::new();
    for r in records(data, "approval_granted") {
        m.insert(r["action"].as_str().unwrap().to_owned(), "approved");
    }
    for r in records(data, "approval_expired") {
        m.insert(r["action"].as_str().unwrap().to_owned(), "expired");
    }
    for r in records(data, "approval_recorded") {
        if r["status"] == "denied" {
            m.insert(r["action"].as_str().unwrap().to_owned(), "denied");
        }
    }
    m
}

fn replay(pack: &Path, data: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "replay",
        "--pack",
        pack.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = warden(&args);
    let v = if out.stdout.trim().is_empty() {
        Value::Null
    } else {
        out.json()
    };
    (out.code, v, out.stderr)
}

fn cell(report: &Value, recorded: &str, candidate: &str) -> u64 {
    report["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["recorded"] == recorded && c["candidate"] == candidate)
        .map_or(0, |c| c["count"].as_u64().unwrap())
}

const RAISE: &[(&str, &str)] = &[("amount_cents > 10000 }", "amount_cents > 25000 }")];
const RAISE_TESTS: &[(&str, &str)] = &[
    ("amount_cents = 10001", "amount_cents = 25001"),
    (
        "\"ord_1011\", customer_id = \"cus_42\", amount_cents = 25000",
        "\"ord_1011\", customer_id = \"cus_42\", amount_cents = 40000",
    ),
];

#[test]
fn the_unchanged_pack_replays_every_record_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seed(tmp.path(), 400);
    let all = decided(&data);
    let (code, r, err) = replay(&root().join("examples/support-refunds"), &data, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["replayed"].as_u64().unwrap(), all.len() as u64);
    assert_eq!(r["unchanged"], r["replayed"]);
    assert_eq!(r["changed"], 0);
    assert_eq!(
        r["indeterminate"], 0,
        "customer_id is redacted but no policy reads it"
    );
    // The matrix is diagonal and its counts are the recorded outcomes'.
    let allowed = all.iter().filter(|r| outcome(r).0 == "allow").count() as u64;
    assert_eq!(cell(&r, "allow", "allow"), allowed);
    let fin = all.iter().filter(|r| finance_only(r)).count() as u64;
    assert!(fin > 20, "the seed has finance approvals: {fin}");
    assert_eq!(cell(&r, "approval(finance)", "approval(finance)"), fin);
    assert_eq!(
        r["summary"][0],
        format!(
            "all {} replayed proposals are decided as they were",
            all.len()
        )
    );
}

#[test]
fn a_loosened_candidate_is_counted_with_what_people_decided_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seed(tmp.path(), 400);
    let all = decided(&data);
    let humans = people(&data);
    let pack = candidate(tmp.path(), "raised", RAISE, RAISE_TESTS);
    // Expected: every finance-only request of at most $250 is now allowed.
    let freed: Vec<&Value> = all
        .iter()
        .filter(|r| finance_only(r) && amount(r) <= 25_000)
        .collect();
    assert!(!freed.is_empty());
    let approved = freed
        .iter()
        .filter(|r| humans.get(r["action"].as_str().unwrap()) == Some(&"approved"))
        .count() as u64;
    let (code, r, err) = replay(&pack, &data, &[]);
    assert_eq!(code, 1, "loosening exits 1: {err}");
    assert_eq!(r["loosened"].as_u64().unwrap(), freed.len() as u64);
    assert_eq!(r["tightened"], 0);
    assert_eq!(cell(&r, "approval(finance)", "allow"), freed.len() as u64);
    let g = &r["changes"][0];
    assert_eq!(g["loosened"], true);
    assert_eq!(g["policies"], serde_json::json!(["refund-agents"]));
    assert_eq!(g["people"]["approved"].as_u64().unwrap(), approved);
    assert_eq!(
        approved,
        freed.len() as u64,
        "the seed's finance approves every refund up to $250"
    );
    assert_eq!(
        r["summary"][0],
        format!(
            "{n} proposals would now be allowed without approval; finance approved all {n}",
            n = freed.len()
        )
    );
    let ex = &g["examples"][0];
    assert!(
        ex["timeline"]
            .as_str()
            .unwrap()
            .starts_with("warden audit timeline run-")
    );
    assert!(
        ex["args"]["customer_id"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    // Accepted on request; the Markdown report is written for a pull request.
    let md = tmp.path().join("replay.md");
    let (code, _, _) = replay(
        &pack,
        &data,
        &["--allow-loosening", "--markdown", md.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains(&format!("**{} decisions loosened**", freed.len())),
        "{text}"
    );
    assert!(text.contains("| `approval(finance)` |"), "{text}");
}

#[test]
fn a_tightened_candidate_exits_0_and_a_loosening_past_denials_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seed(tmp.path(), 400);
    let all = decided(&data);
    let humans = people(&data);
    // Tighter: finance from $50 on.
    let lower = candidate(
        tmp.path(),
        "lower",
        &[("amount_cents > 10000 }", "amount_cents > 5000 }")],
        &[(
            "amount_cents = 10000, reason",
            "amount_cents = 5000, reason",
        )],
    );
    let newly_gated = all
        .iter()
        .filter(|r| outcome(r).0 == "allow" && r["tool"] == "stripe.refund" && amount(r) > 5000)
        .count() as u64;
    assert!(newly_gated > 0);
    let (code, r, err) = replay(&lower, &data, &[]);
    assert_eq!(code, 0, "tightening exits 0: {err}");
    assert_eq!(r["loosened"], 0);
    assert_eq!(r["tightened"].as_u64().unwrap(), newly_gated);
    assert_eq!(cell(&r, "allow", "approval(finance)"), newly_gated);
    // Much looser: up to $600 free, past requests finance denied.
    let loose = candidate(
        tmp.path(),
        "loose",
        &[("amount_cents > 10000 }", "amount_cents > 60000 }")],
        &[
            ("amount_cents = 10001", "amount_cents = 60001"),
            (
                "\"ord_1011\", customer_id = \"cus_42\", amount_cents = 25000",
                "\"ord_1011\", customer_id = \"cus_42\", amount_cents = 70000",
            ),
        ],
    );
    let denied = all
        .iter()
        .filter(|r| finance_only(r) && amount(r) <= 60_000)
        .filter(|r| humans.get(r["action"].as_str().unwrap()) == Some(&"denied"))
        .count() as u64;
    assert!(denied > 0, "the seed has denials between $250 and $600");
    let (code, r, err) = replay(&loose, &data, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        r["changes"][0]["people"]["denied"].as_u64().unwrap(),
        denied
    );
    let sentences: Vec<&str> = r["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        sentences.contains(&format!("{denied} would now be allowed that finance denied").as_str()),
        "{sentences:?}"
    );
}

#[test]
fn a_condition_on_a_redacted_field_is_indeterminate_never_a_guess() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seed(tmp.path(), 200);
    let all = decided(&data);
    let pack = candidate(tmp.path(), "blocked", &[], &[]);
    let policy = "\n@id(\"blocked-customer\")\n@reason(\"refunds to this customer are under investigation\")\nforbid (principal, action == Action::\"stripe.refund\", resource)\nwhen { context.args.customer_id == \"cus_000042\" };\n";
    let file = pack.join("policies/refunds.cedar");
    let text = std::fs::read_to_string(&file).unwrap() + policy;
    std::fs::write(&file, text).unwrap();
    // Refunds the recorded decision did not already deny depend on the
    // customer; everything else replays exactly.
    let refunds = all
        .iter()
        .filter(|r| r["tool"] == "stripe.refund" && outcome(r).0 != "deny")
        .count() as u64;
    assert!(refunds > 0);
    let (code, r, err) = replay(&pack, &data, &[]);
    assert_eq!(code, 0, "indeterminate is not loosening: {err}");
    assert_eq!(r["changed"], 0, "nothing is guessed into a change");
    assert_eq!(r["indeterminate"].as_u64().unwrap(), refunds);
    for g in r["undetermined"].as_array().unwrap() {
        assert_eq!(g["fields"], serde_json::json!(["customer_id"]));
        let possible: Vec<&str> = g["possible"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert!(possible.contains(&"deny"), "{possible:?}");
        assert!(
            possible.contains(&g["recorded"].as_str().unwrap()),
            "{possible:?}"
        );
    }
    assert_eq!(r["unchanged"].as_u64().unwrap() + refunds, all.len() as u64);
}

#[test]
fn unusable_input_exits_2_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seed(tmp.path(), 20);
    let d = data.to_str().unwrap();
    let pack = root().join("examples/support-refunds");
    let p = pack.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = warden(args);
        assert_eq!(out.code, 2, "{args:?}: {}\n{}", out.stdout, out.stderr);
        out.stderr
    };
    let err = run(&["replay", "--pack", "no/such/pack", "--data", d]);
    assert!(err.contains("not a pack directory"), "{err}");
    let broken = candidate(tmp.path(), "broken", &[("forbid (", "forbid ((")], &[]);
    let err = run(&["replay", "--pack", broken.to_str().unwrap(), "--data", d]);
    assert!(err.contains("the candidate pack is invalid"), "{err}");
    // A candidate whose own tests fail is refused before any replay.
    let untested = candidate(tmp.path(), "untested", RAISE, &[]);
    let err = run(&["replay", "--pack", untested.to_str().unwrap(), "--data", d]);
    assert!(err.contains("candidate pack's test cases fail"), "{err}");
    assert!(err.contains("one cent above $100 needs finance"), "{err}");
    let err = run(&[
        "replay",
        "--pack",
        p,
        "--data",
        d,
        "--since",
        "2020-01-01T00:00:00Z",
        "--until",
        "2020-02-01T00:00:00Z",
    ]);
    assert!(
        err.contains("no recorded proposals from 2020-01-01T00:00:00Z"),
        "{err}"
    );
    let err = run(&["replay", "--pack", p, "--data", d, "--since", "30x"]);
    assert!(err.contains("--since"), "{err}");
    let err = run(&[
        "replay", "--pack", p, "--data", d, "--since", "1d", "--until", "2d",
    ]);
    assert!(err.contains("--until must be after --since"), "{err}");
    let empty = tmp.path().join("nothing-here");
    let err = run(&["replay", "--pack", p, "--data", empty.to_str().unwrap()]);
    assert!(err.contains("no audit log in"), "{err}");
    assert!(!empty.exists(), "a replay never creates a data directory");
    let err = run(&["approvals", "stats", "--data", d, "--since", "soon"]);
    assert!(err.contains("--since"), "{err}");
    let out = tmp.path().join("out");
    let err = run(&[
        "tune",
        "--pack",
        p,
        "--data",
        d,
        "--out",
        out.to_str().unwrap(),
        "--since",
        "2020-01-01T00:00:00Z",
        "--until",
        "2020-02-01T00:00:00Z",
    ]);
    assert!(err.contains("nothing to tune from"), "{err}");
}

#[test]
fn tune_suggests_a_verified_threshold_that_passes_no_denied_request() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seed(tmp.path(), 1500);
    let all = decided(&data);
    let humans = people(&data);
    let out_dir = tmp.path().join("suggestions");
    let out = warden(&[
        "tune",
        "--pack",
        "examples/support-refunds",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let s = v["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["suggestion"]["policy"] == "refund-over-100-needs-finance")
        .unwrap_or_else(|| panic!("no suggestion: {v:#}"));
    let to = s["suggestion"]["to"].as_i64().unwrap();
    // Known answer from the raw records: the lowest amount people did not
    // approve bounds the threshold; every finance request up to it was approved.
    let gated: Vec<&Value> = all
        .iter()
        .filter(|r| outcome(r).0 == "approval_required")
        .collect();
    let lowest_not_approved = gated
        .iter()
        .filter(|r| {
            matches!(
                humans.get(r["action"].as_str().unwrap()),
                Some(&"denied") | Some(&"expired")
            )
        })
        .map(|r| amount(r))
        .min()
        .unwrap();
    assert!(
        to > 10_000 && to < lowest_not_approved,
        "{to} vs {lowest_not_approved}"
    );
    assert_eq!(
        s["suggestion"]["lowest_not_approved"].as_i64().unwrap(),
        lowest_not_approved
    );
    assert_eq!(s["denied_would_pass"], 0);
    let saved = gated
        .iter()
        .filter(|r| finance_only(r) && amount(r) <= to)
        .count() as u64;
    assert_eq!(s["suggestion"]["saved"].as_u64().unwrap(), saved);
    // The written copy is a valid pack whose replay is the verification.
    let copy = out_dir.join("refund-over-100-needs-finance");
    let (code, r, err) = replay(&copy, &data, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(r["loosened"].as_u64().unwrap(), saved);
    assert_eq!(r["changes"][0]["people"]["denied"], 0);
    assert_eq!(
        r["changes"][0]["people"]["approved"].as_u64().unwrap(),
        saved
    );
    let test = warden(&["test", copy.to_str().unwrap()]);
    assert_eq!(test.code, 0, "moved test cases pass: {}", test.stdout);
    let dead: Vec<&str> = v["dead"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["policy"].as_str().unwrap())
        .collect();
    assert!(dead.contains(&"no-warehouse-deletes"), "{dead:?}");
    assert!(!dead.contains(&"refund-agents"), "{dead:?}");
}

#[test]
fn approval_stats_match_the_raw_records() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seed(tmp.path(), 600);
    let answers = records(&data, "approval_recorded");
    let requested = records(&data, "approval_requested");
    let when: HashMap<String, i64> = requested
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                micros(r["time"].as_str().unwrap()),
            )
        })
        .collect();
    let out = warden(&[
        "approvals",
        "stats",
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["requests"].as_u64().unwrap(), requested.len() as u64);
    for who in ["carol", "dave", "erin"] {
        let mine: Vec<&Value> = answers
            .iter()
            .filter(|r| r["approvals"][0]["approver"] == who)
            .collect();
        let approved = mine
            .iter()
            .filter(|r| r["approvals"][0]["decision"] == "approve")
            .count();
        let mut took: Vec<i64> = mine
            .iter()
            .map(|r| {
                (micros(r["time"].as_str().unwrap()) - when[r["action"].as_str().unwrap()]) / 1000
            })
            .collect();
        took.sort_unstable();
        let fast = mine
            .iter()
            .filter(|r| r["approvals"][0]["decision"] == "approve")
            .filter(|r| {
                (micros(r["time"].as_str().unwrap()) - when[r["action"].as_str().unwrap()]) / 1000
                    <= 5000
            })
            .count();
        let row = v["approvers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["approver"] == who)
            .unwrap();
        assert_eq!(
            row["decisions"].as_u64().unwrap(),
            mine.len() as u64,
            "{who}"
        );
        assert_eq!(row["approved"].as_u64().unwrap(), approved as u64, "{who}");
        assert_eq!(row["fast"].as_u64().unwrap(), fast as u64, "{who}");
        // Nearest-rank median.
        let median = took[took.len().div_ceil(2) - 1];
        assert_eq!(row["median_ms"].as_i64().unwrap(), median, "{who}");
        assert_eq!(row["fatigue"], who == "dave", "{who}: {row}");
    }
    // Gates: shares add up, and the two finance rows partition the requests.
    let gates = v["gates"].as_array().unwrap();
    let total: u64 = gates.iter().map(|g| g["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, requested.len() as u64);
    let share: f64 = gates
        .iter()
        .map(|g| g["time_share"].as_f64().unwrap())
        .sum();
    assert!((share - 1.0).abs() < 1e-9, "{share}");
    let flags = v["flags"].as_array().unwrap();
    assert!(
        flags
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("dave approved 100.0 %")),
        "{flags:?}"
    );
    // Only the finance group's answers when asked (every answer here is finance's).
    let out = warden(&[
        "approvals",
        "stats",
        "--data",
        data.to_str().unwrap(),
        "--group",
        "support-leads",
        "--json",
    ]);
    assert_eq!(out.json()["requests"], 0);
}

fn micros(t: &str) -> i64 {
    warden_evidence::micros(t).unwrap()
}

#[test]
fn replay_reads_postgresql_as_it_reads_sqlite() {
    let Some(db) = PgDb::new() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let url = db.url.as_str();
    let out = warden(&[
        "audit",
        "seed",
        "--data",
        data.to_str().unwrap(),
        "--database-url",
        url,
        "--runs",
        "300",
        "--every",
        "2m",
        "--seed",
        "7",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sqlite = seed(&tmp.path().join("sqlite"), 300);
    let pack = candidate(tmp.path(), "raised", RAISE, RAISE_TESTS);
    let (code, pg, err) = replay(&pack, &data, &["--database-url", url]);
    assert_eq!(code, 1, "{err}");
    let (_, lite, _) = replay(&pack, &sqlite, &[]);
    assert!(pg["loosened"].as_u64().unwrap() > 0);
    for k in ["replayed", "unchanged", "loosened", "tightened", "matrix"] {
        assert_eq!(pg[k], lite[k], "{k}");
    }
    assert_eq!(pg["changes"][0]["people"], lite["changes"][0]["people"]);
    let (code, same, _) = replay(
        &root().join("examples/support-refunds"),
        &data,
        &["--database-url", url],
    );
    assert_eq!(code, 0);
    assert_eq!(same["changed"], 0);
}

/// The pack's files as `POST /v1/replay` takes them.
fn files(pack: &Path) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for sub in ["", "policies", "tests"] {
        for e in std::fs::read_dir(pack.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let keep = p.is_file()
                && matches!(
                    p.extension().and_then(|x| x.to_str()),
                    Some("toml" | "cedar")
                );
            if keep {
                let name = p.strip_prefix(pack).unwrap().to_str().unwrap().to_owned();
                m.insert(name, Value::String(std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    m
}

#[test]
fn the_api_replays_a_candidate_for_operators_and_auditors_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seed(tmp.path(), 200);
    let all = decided(&data);
    let server = crate::serve::Server::start(&data);
    let raised = candidate(tmp.path(), "raised", RAISE, RAISE_TESTS);
    let body = serde_json::json!({ "files": files(&raised), "since": "30d" }).to_string();
    let freed = all
        .iter()
        .filter(|r| finance_only(r) && amount(r) <= 25_000)
        .count() as u64;
    for who in ["demo-olivia", "demo-erin"] {
        let (status, r) = server.post("/v1/replay", who, &body);
        assert_eq!(status, 200, "{who}: {r}");
        assert_eq!(r["loosened"].as_u64().unwrap(), freed, "{who}");
        assert_eq!(r["candidate"]["pack"], "support-refunds");
    }
    // Without files: the pack in force, which matches its own history.
    let (status, r) = server.post("/v1/replay", "demo-olivia", "{}");
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["changed"], 0);
    assert_eq!(r["replayed"].as_u64().unwrap(), all.len() as u64);
    // Refused: agents and approvers; bad bodies with a code.
    let (status, r) = server.post("/v1/replay", "demo-support-bot", &body);
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = server.post("/v1/replay", "demo-carol", &body);
    assert_eq!(status, 403);
    let bad = |b: Value, code: &str| {
        let (status, r) = server.post("/v1/replay", "demo-olivia", &b.to_string());
        assert_eq!(
            (status, r["error"]["code"].as_str()),
            (400, Some(code)),
            "{b}: {r}"
        );
        r["error"]["message"].as_str().unwrap().to_owned()
    };
    let mut escaping = files(&raised);
    escaping.insert("../outside.cedar".into(), Value::String(String::new()));
    bad(serde_json::json!({ "files": escaping }), "invalid_body");
    let mut broken = files(&raised);
    broken.insert(
        "policies/broken.cedar".into(),
        Value::String("permit (".into()),
    );
    assert!(bad(serde_json::json!({ "files": broken }), "invalid_pack").contains("invalid"));
    let untested = candidate(tmp.path(), "untested", RAISE, &[]);
    let msg = bad(
        serde_json::json!({ "files": files(&untested) }),
        "candidate_tests_failed",
    );
    assert!(msg.contains("one cent above $100 needs finance"), "{msg}");
    bad(serde_json::json!({ "since": "lately" }), "invalid_query");
    let (status, r) = server.post("/v1/replay", "demo-olivia", r#"{"pack":"/etc"}"#);
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{r}"
    );
    // The statistics view, for people.
    let (status, v) = server.get(
        "/v1/views/approvals/stats?since=30d&fast=5s",
        Some("demo-carol"),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["requests"].as_u64().unwrap(),
        records(&data, "approval_requested").len() as u64
    );
    let (status, _) = server.get("/v1/views/approvals/stats", Some("demo-support-bot"));
    assert_eq!(status, 403);
    let (status, v) = server.get("/v1/views/approvals/stats?fast=quick", Some("demo-carol"));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    server.stop();
}
