//! Policies that see the run and facts, through the real server on the
//! hr-payroll example: step data exposed by a succeeded step
//! (`context.run.steps`), runs joined by a correlation argument (REST and
//! MCP, no run id), and facts fetched from a real HTTP service before the
//! decision (`context.facts`, TTL, timeout → `facts_unavailable`), on
//! SQLite and PostgreSQL, across a restart.

use std::io::{BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{read_request, root};
use crate::postgres::PgDb;
use crate::serve::Server;

/// Workday and the payroll provider on loopback: employee records with
/// salaries (`E9999` answers after 3 s), timesheet validation (`2026-09`
/// has errors), payroll and salary updates. Keeps every request's path and
/// body.
struct Hr {
    url: String,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Hr {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    while let Some((path, _, body)) = read_request(&mut reader) {
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        log.lock().unwrap().push((path.clone(), body.clone()));
                        let answer = match path.as_str() {
                            "/employee" => {
                                let id = body["employee_id"].as_str().unwrap_or_default();
                                if id == "E9999" {
                                    std::thread::sleep(Duration::from_secs(3));
                                }
                                let salary = if id == "E1001" { 8_000_000 } else { 5_000_000 };
                                json!({"employee_id": id, "salary_cents": salary, "currency": "EUR"})
                            }
                            "/timesheets" if body["period"] == "2026-09" => {
                                json!({"status": "errors", "errors": 3})
                            }
                            "/timesheets" => json!({"status": "ok", "errors": 0}),
                            "/payroll" => json!({"batch_id": format!("b_{}", body["period"])}),
                            _ => json!({"updated": true}),
                        };
                        let text = answer.to_string();
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        if conn.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, seen }
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("WORKDAY_EMPLOYEE_URL", "employee"),
            ("WORKDAY_SALARY_URL", "salary"),
            ("WORKDAY_TIMESHEETS_URL", "timesheets"),
            ("PAYROLL_URL", "payroll"),
        ]
        .iter()
        .map(|(k, p)| ((*k).to_owned(), format!("{}/{p}", self.url)))
        .collect()
    }

    fn hits(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    fn serve(&self, data: &std::path::Path, db: &[&str]) -> Server {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start_args(data, &root().join("examples/hr-payroll"), db, &env)
    }
}

fn propose(server: &Server, token: &str, tool: &str, args: Value, run: Option<&str>) -> Value {
    let mut body = json!({"tool": tool, "mode": "enforce", "arguments": args});
    if let Some(r) = run {
        body["run_id"] = json!(r);
    }
    let (status, a) = server.post("/v1/actions", token, &body.to_string());
    assert!(status == 200 || status == 201, "{status} {a}");
    a
}

fn validate(server: &Server, period: &str, run: Option<&str>) -> Value {
    propose(
        server,
        "demo-payroll-bot",
        "timesheets.validate",
        json!({"period": period}),
        run,
    )
}

fn payroll(server: &Server, period: &str, run: Option<&str>) -> Value {
    propose(
        server,
        "demo-payroll-bot",
        "payroll.run",
        json!({"period": period, "pay_group": "monthly-salaried"}),
        run,
    )
}

fn denied_by(a: &Value) -> (String, String) {
    (
        a["code"].as_str().unwrap_or_default().to_owned(),
        a["decision"]["policies"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Payroll needs the validation of its own period, with status `ok`, in
/// the same run; the run keeps its step data across a restart.
fn payroll_follows_validation(db: &[&str]) {
    let hr = Hr::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = hr.serve(&data, db);

    // Bad input starts no run: the 13th month is refused before anything.
    let bad_input = |tool: &str, args: Value| {
        let body = json!({"tool": tool, "mode": "enforce", "arguments": args});
        let (status, e) = server.post("/v1/actions", "demo-payroll-bot", &body.to_string());
        assert_eq!(status, 400, "{e}");
        assert_eq!(e["error"]["code"], "invalid_arguments", "{e}");
    };
    bad_input("timesheets.validate", json!({"period": "2026-13"}));
    let runs_started = || {
        let (_, found) = server.get("/v1/audit?kind=run_started", Some("demo-felix"));
        found["records"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(runs_started(), 0);

    // Correlated by period, no run id: validating November starts a run,
    // payroll for November joins it and passes the rule (it now waits for
    // the payroll sign-off, a person).
    let v = validate(&server, "2026-11", None);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(runs_started(), 1);
    let run = v["run_id"].as_str().unwrap().to_owned();
    assert_eq!(v["step"], "validate_timesheets");
    let p = payroll(&server, "2026-11", None);
    assert_eq!(p["status"], "awaiting_approval", "{p}");
    assert_eq!(p["run_id"], run.as_str(), "{p}");
    // December was never validated: no open run for it.
    let p = payroll(&server, "2026-12", None);
    assert_eq!(p["status"], "denied", "{p}");
    assert_eq!(p["code"], "step_out_of_order", "{p}");
    assert!(
        p["decision"]["gate"]["message"]
            .as_str()
            .unwrap()
            .contains("starts with `timesheets.validate`")
    );

    // An explicit run whose validation found errors: payroll is refused by
    // the policy that reads the step's exposed `result.status`.
    let (status, r) = server.post(
        "/v1/runs",
        "demo-payroll-bot",
        r#"{"workflow":"monthly-payroll","trigger":{"source":"schedule","reference":"close-2026-09"}}"#,
    );
    assert_eq!(status, 201, "{r}");
    let bad = r["run_id"].as_str().unwrap().to_owned();
    let v = validate(&server, "2026-09", Some(&bad));
    assert_eq!(v["status"], "succeeded", "{v}");
    let p = payroll(&server, "2026-09", Some(&bad));
    assert_eq!(
        denied_by(&p),
        (
            "policy_denied".into(),
            "payroll-needs-validated-period".into()
        ),
        "{p}"
    );
    // In November's run, payroll for another period is refused too: the
    // step exposed `period = "2026-11"`.
    let p = payroll(&server, "2026-10", Some(&run));
    assert_eq!(
        denied_by(&p),
        (
            "policy_denied".into(),
            "payroll-needs-validated-period".into()
        ),
        "{p}"
    );
    // The evidence keeps the step data the decision saw.
    let (_, found) = server.get(
        "/v1/audit?kind=action_decided&tool=payroll.run&limit=100",
        Some("demo-felix"),
    );
    let recs = found["records"].as_array().unwrap();
    assert!(
        recs.iter().any(|r| r["run_steps"]["validate_timesheets"]
            == json!({"period": "2026-09", "result": {"status": "errors"}})),
        "{found}"
    );
    assert!(server.stop().success());

    // A new process reads the run's step data from the store.
    let server = hr.serve(&data, db);
    let p = payroll(&server, "2026-11", Some(&run));
    assert_eq!(p["status"], "awaiting_approval", "{p}");
    let p = payroll(&server, "2026-09", Some(&bad));
    assert_eq!(p["code"], "policy_denied", "{p}");
    assert_eq!(hr.hits("/payroll"), 0, "nothing was paid");
    assert!(server.stop().success());
}

#[test]
fn payroll_runs_only_for_the_period_validated_in_its_run() {
    payroll_follows_validation(&[]);
}

#[test]
fn payroll_runs_only_for_the_period_validated_in_its_run_on_postgresql() {
    let Some(db) = PgDb::new() else { return };
    payroll_follows_validation(&["--database-url", db.url.as_str()]);
}

/// Two periods closed at once, without run ids: each call joins the run of
/// its own period, never the other's.
#[test]
fn correlation_keeps_concurrent_runs_apart() {
    let hr = Hr::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = hr.serve(&tmp.path().join("data"), &[]);
    let periods = ["2026-10", "2026-11"];
    // Four validations of each period at once: one run per period.
    let runs: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let server = &server;
                let period = periods[i % 2];
                s.spawn(move || {
                    let v = validate(server, period, None);
                    assert_eq!(v["status"], "succeeded", "{v}");
                    (period.to_owned(), v["run_id"].as_str().unwrap().to_owned())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let run_of = |period: &str| -> Vec<&String> {
        let mut ids: Vec<&String> = runs
            .iter()
            .filter(|(p, _)| p == period)
            .map(|(_, r)| r)
            .collect();
        ids.dedup();
        ids
    };
    let (oct, nov) = (run_of("2026-10"), run_of("2026-11"));
    assert_eq!((oct.len(), nov.len()), (1, 1), "{runs:?}");
    assert_ne!(oct[0], nov[0]);
    // Payroll for each period joins its own run, both at once.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| payroll(&server, "2026-10", None));
        let b = s.spawn(|| payroll(&server, "2026-11", None));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a["run_id"], oct[0].as_str(), "{a}");
    assert_eq!(b["run_id"], nov[0].as_str(), "{b}");
    assert_eq!(a["status"], "awaiting_approval", "{a}");
    assert_eq!(b["status"], "awaiting_approval", "{b}");
    // The runs are the agent's own: another agent's calls never join them.
    let (_, view) = server.get(&format!("/v1/runs/{}", oct[0]), Some("demo-payroll-bot"));
    assert_eq!(view["trigger"]["source"], "correlation", "{view}");
    assert!(server.stop().success());
}

/// An MCP agent (rmcp client, no `_meta` run id) takes part in the workflow:
/// the validation starts its run and payroll joins it.
#[test]
fn mcp_calls_without_a_run_id_take_part_in_the_workflow() {
    let hr = Hr::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = hr.serve(&tmp.path().join("data"), &[]);
    let base = server.base.clone();
    let rt = crate::mcp::rt();
    rt.block_on(async {
        let bot = crate::mcp_peers::agent(&base, "demo-payroll-bot", false).await;
        let (r, t) = crate::mcp_peers::call(
            &bot,
            "payroll_run",
            json!({"period": "2026-11", "pay_group": "monthly-hourly"}),
        )
        .await;
        assert_eq!(r.is_error, Some(true), "{t}");
        assert!(t.contains("step_out_of_order"), "{t}");
        let (r, t) =
            crate::mcp_peers::call(&bot, "timesheets_validate", json!({"period": "2026-11"})).await;
        assert_ne!(r.is_error, Some(true), "{t}");
        assert!(t.contains("\"ok\""), "{t}");
        let (r, t) = crate::mcp_peers::call(
            &bot,
            "payroll_run",
            json!({"period": "2026-11", "pay_group": "monthly-hourly"}),
        )
        .await;
        // Past the validation rule: it waits for the payroll sign-off.
        assert_eq!(r.is_error, Some(true), "{t}");
        assert!(t.contains("payroll-signoff"), "{t}");
        assert!(!t.contains("payroll-needs-validated-period"), "{t}");
    });
    let (_, found) = server.get(
        "/v1/audit?kind=action_decided&tool=payroll.run&limit=10",
        Some("demo-felix"),
    );
    // Newest first.
    let last = found["records"][0].clone();
    assert!(
        last["run"].as_str().is_some_and(|r| r.starts_with("run_")),
        "{last}"
    );
    assert!(server.stop().success());
}

fn raise(server: &Server, employee: &str, cents: u64) -> Value {
    propose(
        server,
        "demo-hr-bot",
        "workday.update_salary",
        json!({"employee_id": employee, "new_salary_cents": cents, "effective_date": "2027-01-01"}),
        None,
    )
}

/// The salary cap reads the salary Workday holds, fetched by Warden before
/// deciding: within 5 % is applied, above 10 % refused, a slow Workday
/// denies with `facts_unavailable`; a fetched salary is reused within its
/// TTL and the evidence keeps it.
#[test]
fn salary_changes_are_decided_on_the_salary_warden_fetches() {
    let hr = Hr::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = hr.serve(&tmp.path().join("data"), &[]);
    // E1001 earns 80,000.00: +4 % is applied.
    let a = raise(&server, "E1001", 8_320_000);
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(hr.hits("/employee"), 1);
    // +10 % exactly needs a lead; one cent more is refused outright.
    let a = raise(&server, "E1001", 8_800_000);
    assert_eq!(a["status"], "awaiting_approval", "{a}");
    let a = raise(&server, "E1001", 8_800_001);
    assert_eq!(
        denied_by(&a),
        ("policy_denied".into(), "raise-at-most-10-percent".into()),
        "{a}"
    );
    // Three decisions, one fetch: the salary is reused within its minute.
    assert_eq!(hr.hits("/employee"), 1);
    // E2002 earns 50,000.00: what is +4 % for E1001 is +66 % for them.
    let a = raise(&server, "E2002", 8_320_000);
    assert_eq!(a["code"], "policy_denied", "{a}");
    assert_eq!(hr.hits("/employee"), 2);
    // Workday takes 3 s for E9999, past the fact's 2 s: fail closed.
    let a = raise(&server, "E9999", 5_000_000);
    assert_eq!(a["status"], "denied", "{a}");
    assert_eq!(a["code"], "facts_unavailable", "{a}");
    let why = a["decision"]["gate"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(why.contains("within 2s"), "{why}");
    // Only the applied raise reached Workday's salary endpoint.
    assert_eq!(hr.hits("/salary"), 1);
    // The evidence keeps the facts each decision used.
    let (_, found) = server.get(
        "/v1/audit?kind=action_decided&tool=workday.update_salary&limit=100",
        Some("demo-felix"),
    );
    // Oldest first.
    let recs: Vec<&Value> = found["records"].as_array().unwrap().iter().rev().collect();
    let facts: Vec<&Value> = recs.iter().map(|r| &r["facts"]).collect();
    assert_eq!(
        facts[0],
        &json!({"current_salary_cents": 8_000_000}),
        "{found}"
    );
    assert_eq!(
        facts[3],
        &json!({"current_salary_cents": 5_000_000}),
        "{found}"
    );
    assert_eq!(facts[4], &Value::Null, "no fact was fetched: {found}");
    assert_eq!(recs[4]["code"], "facts_unavailable", "{found}");
    // Invalid arguments fetch nothing: they are refused first.
    let fetches = hr.hits("/employee");
    let body = json!({"tool": "workday.update_salary", "mode": "enforce", "arguments": {
        "employee_id": "not-an-id", "new_salary_cents": 1, "effective_date": "2027-01-01"}});
    let (status, e) = server.post("/v1/actions", "demo-hr-bot", &body.to_string());
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_arguments")),
        "{e}"
    );
    assert_eq!(hr.hits("/employee"), fetches);
    assert!(server.stop().success());

    // Replay decides each recorded request with the facts it used: the same
    // pack changes nothing; a cap of 15 % loosens the refusal at 10 % + 1
    // cent (it needs a lead now), which only the recorded salary can tell.
    let data = tmp.path().join("data");
    let loosened = |pack: &std::path::Path| {
        let out = crate::common::warden(&[
            "replay",
            "--pack",
            pack.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--json",
        ]);
        let report = out.json();
        let changed: Vec<Value> = report["matrix"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["recorded"] != c["candidate"])
            .cloned()
            .collect();
        (out.code, changed)
    };
    let (code, changed) = loosened(&root().join("examples/hr-payroll"));
    assert_eq!((code, changed.len()), (0, 0), "{changed:?}");
    let candidate = tmp.path().join("candidate");
    crate::common::copy_dir(&root().join("examples/hr-payroll"), &candidate);
    let policies = candidate.join("policies/payroll.cedar");
    let text = std::fs::read_to_string(&policies).unwrap();
    std::fs::write(
        &policies,
        text.replace(
            "new_salary_cents * 10 > context.facts.current_salary_cents * 11",
            "new_salary_cents * 20 > context.facts.current_salary_cents * 23",
        ),
    )
    .unwrap();
    // Its own tests follow the new cap (replay refuses a candidate whose
    // tests fail).
    let cases = candidate.join("tests/payroll.toml");
    let text = std::fs::read_to_string(&cases).unwrap();
    assert!(text.contains("new_salary_cents = 8800001"));
    std::fs::write(
        &cases,
        text.replace("new_salary_cents = 8800001", "new_salary_cents = 9200001"),
    )
    .unwrap();
    let (code, changed) = loosened(&candidate);
    assert_eq!(code, 1, "{changed:?}");
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["recorded"], "deny", "{changed:?}");
    assert_eq!(changed[0]["count"], 1, "{changed:?}");
}

/// Over MCP the salary cap holds the same way: the fact is fetched for the
/// call, a raise within 5 % executes, one above 10 % is refused with the
/// policy in the text.
#[test]
fn the_salary_cap_holds_over_mcp() {
    let hr = Hr::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = hr.serve(&tmp.path().join("data"), &[]);
    let base = server.base.clone();
    crate::mcp::rt().block_on(async {
        let bot = crate::mcp_peers::agent(&base, "demo-hr-bot", false).await;
        let args = |cents: u64| {
            json!({"employee_id": "E1001", "new_salary_cents": cents, "effective_date": "2027-01-01"})
        };
        let (r, t) = crate::mcp_peers::call(&bot, "workday_update_salary", args(8_800_001)).await;
        assert_eq!(r.is_error, Some(true), "{t}");
        assert!(t.contains("raise-at-most-10-percent"), "{t}");
        assert!(t.contains("not executed"), "{t}");
        let (r, t) = crate::mcp_peers::call(&bot, "workday_update_salary", args(8_320_000)).await;
        assert_ne!(r.is_error, Some(true), "{t}");
    });
    assert_eq!(hr.hits("/employee"), 1, "one fetch, reused within its TTL");
    assert_eq!(hr.hits("/salary"), 1);
    assert!(server.stop().success());
}

/// Without Workday configured the fact cannot be fetched: every salary
/// change is refused, nothing is sent.
#[test]
fn an_unconfigured_fact_source_denies() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &tmp.path().join("data"),
        &root().join("examples/hr-payroll"),
    );
    let a = raise(&server, "E1001", 8_000_000);
    assert_eq!(a["code"], "facts_unavailable", "{a}");
    assert!(
        a["decision"]["gate"]["message"]
            .as_str()
            .unwrap()
            .contains("not configured"),
        "{a}"
    );
    assert!(server.stop().success());
}

/// Reference data through a running server: a reimbursement goes only to a
/// bank account in `data/employees.json`, and an edit of that file takes
/// effect on the reload it triggers.
#[test]
fn a_bank_account_added_to_the_data_file_takes_effect_on_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    crate::common::copy_dir(&root().join("examples/hr-payroll"), &pack);
    let server = Server::start_with(&tmp.path().join("data"), &pack);
    let claim = |account: &str| {
        let body = json!({"tool": "expenses.reimburse", "mode": "check", "arguments": {
            "employee_id": "E1001", "claim_id": "EXP-9", "amount_cents": 4200, "account": account}});
        let (status, a) = server.post("/v1/actions", "demo-payroll-bot", &body.to_string());
        assert!(status == 200 || status == 201, "{status} {a}");
        a
    };
    let new_account = "DE02120300000000202051";
    assert_eq!(claim("DE89370400440532013000")["status"], "approved");
    let a = claim(new_account);
    assert_eq!(
        (a["status"].as_str(), a["code"].as_str()),
        (Some("denied"), Some("policy_denied")),
        "{a}"
    );
    let file = pack.join("data/employees.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace(
            "[\"DE89370400440532013000\"]",
            &format!("[\"DE89370400440532013000\", \"{new_account}\"]"),
        ),
    )
    .unwrap();
    // The file watcher reloads the pack (hr-payroll's auditor reads the log).
    let reloaded = (0..400).find_map(|_| {
        let (_, found) = server.get("/v1/audit?kind=pack_reloaded", Some("demo-felix"));
        let r = found["records"].as_array().and_then(|r| r.first().cloned());
        if r.is_none() {
            std::thread::sleep(Duration::from_millis(25));
        }
        r
    });
    let reloaded = reloaded.expect("no pack_reloaded record");
    assert!(reloaded.get("code").is_none(), "{reloaded}");
    assert_eq!(claim(new_account)["status"], "approved");
    // The account is sensitive: the evidence never holds it.
    let (_, found) = server.get(
        "/v1/audit?tool=expenses.reimburse&limit=10",
        Some("demo-felix"),
    );
    assert!(!found.to_string().contains(new_account), "{found}");
    assert!(server.stop().success());
}
