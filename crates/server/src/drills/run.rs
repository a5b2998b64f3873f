//! One drill run: send the scenario's traffic as the drill's agent, wait
//! for each playbook's incident, its page, its acknowledgement and its
//! resolution, check the playbook's actions took effect, undo what the
//! drill changed, and record the report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use warden_evidence::{Record, RecordKind};
use warden_model::{DeliveryState, Drill, IncidentState, Pack, PlaybookAction};
use warden_runtime::{Canceller, DrillTag, Mode, Proposal};
use warden_store::{ApprovalFilter, DrillRow, IncidentRow, StateWrite};

use crate::AppState;

/// How often the runner looks at the store while it waits.
const POLL: Duration = Duration::from_millis(100);

fn now_us() -> i64 {
    warden_evidence::micros(&warden_evidence::now()).unwrap_or(0)
}

fn ms(from_us: i64, to_us: i64) -> i64 {
    (to_us - from_us).max(0) / 1000
}

/// Who started a drill and how it is answered.
pub(crate) struct Start {
    pub(crate) id: String,
    pub(crate) drill: Drill,
    pub(crate) by: String,
    pub(crate) ack_as: Option<String>,
    pub(crate) row: DrillRow,
    pub(crate) stop: Arc<Notify>,
}

/// Waits up to `d`, or until `stop` is notified; `true` when stopped.
async fn pause(stop: &Notify, d: Duration) -> bool {
    tokio::select! {
        () = stop.notified() => true,
        () = tokio::time::sleep(d) => false,
    }
}

/// Runs the drill to its end and records it. Never panics; every failure
/// ends in the report.
pub(crate) async fn run(s: AppState, st: Start) {
    let engine = s.engine.current();
    let pack = engine.pack();
    let d = &st.drill;
    s.oversight.drill_begins(&st.id, d.stuck_after);
    let mut problems: Vec<String> = Vec::new();
    let mut aborted = false;

    // 1. Traffic: real proposals through the real gates, marked as a drill.
    let first_us = now_us();
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();
    let mut sent = 0u32;
    'steps: for step in &d.steps {
        for _ in 0..step.repeat {
            if pause(&st.stop, Duration::ZERO).await {
                aborted = true;
                break 'steps;
            }
            let p = Proposal {
                tool: step.tool.clone(),
                arguments: step.args.clone(),
                run_id: None,
                mode: Mode::Enforce,
                idempotency_key: None,
                reason: Some(format!("drill {} ({})", d.id, st.id)),
                claimed_agent: None,
                drill: Some(DrillTag {
                    id: st.id.clone(),
                    fault: step.fault,
                    result: step.result.clone(),
                }),
            };
            sent += 1;
            let key = match s.runtime.submit(&d.agent, p).await {
                Ok(sub) => match &sub.action.code {
                    Some(c) => format!("{}/{c}", sub.action.status.as_str()),
                    None => sub.action.status.as_str().to_owned(),
                },
                Err(e) => format!("refused/{}", e.code()),
            };
            *outcomes.entry(key).or_default() += 1;
        }
    }

    // 2. Detection, page, answer — per playbook, in the playbooks' order.
    let mut results = Vec::new();
    let detect_by = first_us + i64::try_from(d.detect_within.as_micros()).unwrap_or(i64::MAX);
    for pb_id in &d.playbooks {
        let Some(pb) = pack.playbooks.get(pb_id) else {
            problems.push(format!("playbook `{pb_id}` is not in the pack in force"));
            continue;
        };
        let mut r = json!({ "playbook": pb_id, "detector": pb.detector.kind(), "respond_within_s": pb.respond_within.as_secs() });
        let mut fails: Vec<String> = Vec::new();
        // Detected?
        let mut inc: Option<IncidentRow> = None;
        while !aborted {
            inc = incident_of(&s, &st.id, pb_id).await;
            if inc.is_some() || now_us() > detect_by {
                break;
            }
            aborted = pause(&st.stop, POLL).await;
        }
        let Some(mut i) = inc else {
            fails.push(format!(
                "no incident within {}s of the first drill event",
                d.detect_within.as_secs()
            ));
            r["pass"] = json!(false);
            r["problems"] = json!(fails);
            results.push(r);
            continue;
        };
        r["incident"] = json!(i.id);
        r["severity"] = json!(i.severity);
        r["detect_ms"] = json!(ms(first_us, i.detected_us));
        if i.detected_us > detect_by {
            fails.push(format!(
                "detected after {} ms; the drill allows {}s",
                ms(first_us, i.detected_us),
                d.detect_within.as_secs()
            ));
        }
        // Did the playbook's switches take effect?
        r["actions"] = json!(effects(&s, &i));
        for a in r["actions"].as_array().cloned().unwrap_or_default() {
            if a["effective"] == json!(false) {
                fails.push(format!(
                    "action `{}` did not take effect{}",
                    a["do"].as_str().unwrap_or("?"),
                    a["why"]
                        .as_str()
                        .map(|w| format!(": {w}"))
                        .unwrap_or_default()
                ));
            }
        }
        // The page.
        let window_end =
            i.detected_us + i64::try_from(pb.respond_within.as_micros()).unwrap_or(i64::MAX);
        let notifies = pb.actions.contains(&PlaybookAction::Notify);
        if notifies {
            let mut page = None;
            while !aborted {
                page = first_page(&s, &i.id).await;
                // The first page is committed with the incident: none now
                // means none ever (no usable route).
                let settled = page.as_ref().is_none_or(|p| p.0 != DeliveryState::Pending);
                if settled || now_us() > window_end {
                    break;
                }
                aborted = pause(&st.stop, POLL).await;
            }
            match page {
                Some((DeliveryState::Delivered, route, at)) => {
                    r["page_route"] = json!(route);
                    r["page_ms"] = json!(ms(first_us, at));
                }
                Some((state, route, _)) => {
                    r["page_route"] = json!(route);
                    fails.push(format!("the page to `{route}` was not delivered ({state})"));
                }
                None => {
                    let skipped = serde_json::from_str::<Value>(&i.detail)
                        .ok()
                        .and_then(|v| v.get("skipped_routes").cloned())
                        .unwrap_or(Value::Null);
                    fails.push(format!(
                        "nobody was paged: the owner `{}` has no usable route (skipped: {skipped})",
                        i.owner
                    ));
                }
            }
        }
        // Acknowledged and resolved: by --ack-as at once, else by people
        // within the response window.
        if let Some(person) = &st.ack_as
            && !aborted
        {
            let note = Some(format!("drill {}: answered by --ack-as", st.id));
            if i.state == IncidentState::Open
                && let Err(e) = s.oversight.acknowledge(&i.id, person, note.clone()).await
            {
                fails.push(format!("`{person}` could not acknowledge: {e}"));
            }
            if let Err(e) = s.oversight.resolve(&i.id, person, note).await {
                fails.push(format!("`{person}` could not resolve: {e}"));
            }
        }
        // People answer within the window; with --ack-as, the answer above
        // is all there will be (a refused one is not waited for).
        while !aborted {
            if let Ok(Some(now)) = s.store.incident(&i.id).await {
                i = now;
            }
            if st.ack_as.is_some() || i.state == IncidentState::Resolved || now_us() > window_end {
                break;
            }
            aborted = pause(&st.stop, POLL).await;
        }
        match i.acked_us {
            Some(t) => {
                r["ack_ms"] = json!(ms(first_us, t));
                r["acknowledged_by"] = json!(i.acked_by);
                if t > window_end {
                    fails.push(format!(
                        "acknowledged after the {}s response window",
                        pb.respond_within.as_secs()
                    ));
                }
            }
            None => fails.push(format!(
                "not acknowledged within the {}s response window",
                pb.respond_within.as_secs()
            )),
        }
        if let Some(t) = i.resolved_us {
            r["resolve_ms"] = json!(ms(first_us, t));
            r["resolved_by"] = json!(i.resolved_by);
        }
        if aborted {
            fails.push("the drill was aborted".to_owned());
        }
        r["pass"] = json!(fails.is_empty());
        r["problems"] = json!(fails);
        results.push(r);
    }

    // 3. Incidents the drill opened besides its playbooks'.
    let all = s.store.drill_incidents(&st.id).await.unwrap_or_default();
    let others: Vec<Value> = all
        .iter()
        .filter(|i| !d.playbooks.contains(&i.playbook))
        .map(|i| json!({ "incident": i.id, "playbook": i.playbook }))
        .collect();

    // 4. Undo, then the report.
    let undone = undo(&s, &st.id).await;
    let pass = !aborted
        && problems.is_empty()
        && !results.is_empty()
        && results.iter().all(|r| r["pass"] == json!(true));
    let state = if aborted {
        "aborted"
    } else if pass {
        "passed"
    } else {
        "failed"
    };
    let finished = now_us();
    let report = json!({
        "id": st.id,
        "drill": d.id,
        "scenario": d.scenario.as_str(),
        "agent": d.agent,
        "state": state,
        "started": warden_evidence::time_from_micros(st.row.started_us),
        "finished": warden_evidence::time_from_micros(finished),
        "started_by": st.by,
        "ack_as": st.ack_as,
        "pack_version": pack.version.as_str(),
        "sent": sent,
        "outcomes": outcomes,
        "playbooks": results,
        "other_incidents": others,
        "undone": undone,
        "problems": problems,
    });
    finish(&s, &st.row, state, report).await;
    s.oversight.drill_ends(&st.id);
}

/// Records the end of drill `row`: its report on the row and in a
/// `drill_finished` record.
pub(crate) async fn finish(s: &AppState, row: &DrillRow, state: &str, report: Value) {
    let mut row = row.clone();
    row.state = state.to_owned();
    row.finished_us = Some(now_us());
    row.report = report.to_string();
    let mut rec = Record::new(RecordKind::DrillFinished);
    rec.message = Some(format!("drill {} (`{}`) {state}", row.id, row.name));
    rec.code = Some(state.to_owned());
    rec.detail = Some(report);
    if let Err(e) = s.log.commit(vec![rec], vec![StateWrite::Drill(row)]).await {
        tracing::error!(error = %e, "cannot record the end of a drill");
    }
}

/// The incident drill `id` opened for playbook `pb`.
async fn incident_of(s: &AppState, id: &str, pb: &str) -> Option<IncidentRow> {
    s.store
        .drill_incidents(id)
        .await
        .ok()?
        .into_iter()
        .find(|i| i.playbook == pb)
}

/// The first page of incident `id`: its state, route and time.
async fn first_page(s: &AppState, id: &str) -> Option<(DeliveryState, String, i64)> {
    let ns = s.store.notifications_of(id).await.ok()?;
    let n = ns.into_iter().find(|n| n.step == "opened")?;
    Some((n.state, n.route, n.updated_us))
}

/// Whether each switch the playbook threw holds now.
fn effects(s: &AppState, i: &IncidentRow) -> Vec<Value> {
    let detail: Value = serde_json::from_str(&i.detail).unwrap_or(Value::Null);
    let controls = s.runtime.controls();
    let mut out = Vec::new();
    for a in detail["actions"].as_array().cloned().unwrap_or_default() {
        let what = a["do"].as_str().unwrap_or("").to_owned();
        if what == "notify" {
            continue;
        }
        let ok = a["ok"] == json!(true);
        let effective = ok
            && match what.as_str() {
                "pause" => a["agent"]
                    .as_str()
                    .is_some_and(|ag| controls.paused(ag).is_some()),
                "quarantine" => a["agent"]
                    .as_str()
                    .is_some_and(|ag| controls.quarantine_of(ag).is_some()),
                "circuit" => a["tools"].as_array().is_some_and(|ts| {
                    !ts.is_empty()
                        && ts.iter().all(|t| {
                            t.as_str()
                                .is_some_and(|t| controls.open_circuit(t).is_some())
                        })
                }),
                _ => false,
            };
        out.push(json!({ "do": what, "effective": effective, "why": a.get("why") }));
    }
    out
}

/// Undoes what drill `id` changed: resumes, releases and closes what its
/// incidents' playbooks switched (only switches those incidents threw),
/// cancels its pending approvals, resolves its incidents left open.
/// Returns what it did, one line each.
pub(crate) async fn undo(s: &AppState, id: &str) -> Vec<String> {
    let by = format!("drill:{id}");
    let controls = s.runtime.controls();
    let mut done = Vec::new();
    let incidents = s.store.drill_incidents(id).await.unwrap_or_default();
    for i in &incidents {
        let detail: Value = serde_json::from_str(&i.detail).unwrap_or(Value::Null);
        let mine = |reason: Option<&str>| {
            reason.is_some_and(|r| r.starts_with(&format!("incident {}:", i.id)))
        };
        for a in detail["actions"].as_array().cloned().unwrap_or_default() {
            if a["ok"] != json!(true) {
                continue;
            }
            let why = Some(format!("end of drill {id}"));
            match a["do"].as_str() {
                Some("pause") => {
                    if let Some(agent) = a["agent"].as_str()
                        && controls
                            .paused(agent)
                            .is_some_and(|p| mine(p.reason.as_deref()))
                    {
                        match controls.set_paused(agent, false, &by, why).await {
                            Ok(_) => done.push(format!("resumed agent `{agent}`")),
                            Err(e) => done.push(format!("could not resume `{agent}`: {e}")),
                        }
                    }
                }
                Some("quarantine") => {
                    if let Some(agent) = a["agent"].as_str()
                        && controls.quarantine_of(agent).as_deref() == a["group"].as_str()
                    {
                        match controls.set_quarantine(agent, None, &by, why).await {
                            Ok(_) => done.push(format!("released agent `{agent}` from quarantine")),
                            Err(e) => done.push(format!("could not release `{agent}`: {e}")),
                        }
                    }
                }
                Some("circuit") => {
                    for t in a["tools"].as_array().cloned().unwrap_or_default() {
                        let Some(tool) = t.as_str() else { continue };
                        if controls
                            .open_circuit(tool)
                            .is_some_and(|c| mine(c.reason.as_deref()))
                        {
                            match controls.set_circuit(tool, None, &by, why.clone()).await {
                                Ok(_) => done.push(format!("closed the circuit of `{tool}`")),
                                Err(e) => done.push(format!("could not close `{tool}`: {e}")),
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // Approvals the drill's proposals opened and nobody answered.
    let mut cancelled = 0;
    if let Ok((pending, _)) = s
        .store
        .approvals(&ApprovalFilter {
            state: Some("pending".into()),
            limit: 1000,
            ..ApprovalFilter::default()
        })
        .await
    {
        for a in pending {
            let ctx: Value = serde_json::from_str(&a.context).unwrap_or(Value::Null);
            let of_drill = ctx
                .get("trigger")
                .and_then(|t| serde_json::from_value::<warden_model::Trigger>(t.clone()).ok())
                .is_some_and(|t| t.drill_id() == Some(id));
            if of_drill
                && s.runtime
                    .cancel_approval(
                        &a.id,
                        Canceller::Operator(&by),
                        Some(format!("end of drill {id}")),
                    )
                    .await
                    .is_ok()
            {
                cancelled += 1;
            }
        }
    }
    if cancelled > 0 {
        done.push(format!("cancelled {cancelled} pending approval request(s)"));
    }
    for i in incidents
        .iter()
        .filter(|i| i.state != IncidentState::Resolved)
    {
        // Re-read: the runner may have resolved it meanwhile.
        if let Ok(Some(now)) = s.store.incident(&i.id).await
            && now.state != IncidentState::Resolved
        {
            match s
                .oversight
                .close_drill_incident(&i.id, &by, format!("end of drill {id}"))
                .await
            {
                Ok(_) => done.push(format!("resolved incident {}", i.id)),
                Err(e) => done.push(format!("could not resolve incident {}: {e}", i.id)),
            }
        }
    }
    done
}

/// On start: drills a previous process left running are undone and ended
/// `aborted`, so no agent stays paused nor circuit open because of one.
pub(crate) async fn recover(s: &AppState) {
    let running = match s.store.drills(true, 1000).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot look for interrupted drills");
            return;
        }
    };
    for row in running {
        let undone = undo(s, &row.id).await;
        let mut report: Value = serde_json::from_str(&row.report).unwrap_or_else(|_| json!({}));
        if let Value::Object(m) = &mut report {
            m.insert("state".into(), json!("aborted"));
            m.insert("undone".into(), json!(undone));
            m.insert(
                "problems".into(),
                json!(["interrupted: the server stopped mid-drill; cleaned up on the next start"]),
            );
        }
        tracing::warn!(drill = %row.id, "cleaned up a drill the previous process left running");
        finish(s, &row, "aborted", report).await;
    }
}

/// The `drill_started` record and row of a new drill.
pub(crate) fn started(
    id: &str,
    d: &Drill,
    by: &str,
    ack_as: Option<&str>,
    pack: &Pack,
) -> (Record, DrillRow) {
    let t = now_us();
    let scenario = json!({
        "id": id,
        "drill": d.id,
        "scenario": d.scenario.as_str(),
        "agent": d.agent,
        "playbooks": d.playbooks,
        "started": warden_evidence::time_from_micros(t),
        "started_by": by,
        "ack_as": ack_as,
        "pack_version": pack.version.as_str(),
        "state": "running",
    });
    let mut rec = Record::new(RecordKind::DrillStarted);
    rec.agent = Some(d.agent.clone());
    rec.message = Some(format!(
        "drill {id} (`{}`, {}) started by `{by}`: exercises {}",
        d.id,
        d.scenario.as_str(),
        d.playbooks.join(", ")
    ));
    rec.detail = Some(scenario.clone());
    let row = DrillRow {
        id: id.to_owned(),
        name: d.id.clone(),
        state: "running".into(),
        started_by: by.to_owned(),
        started_us: t,
        finished_us: None,
        report: scenario.to_string(),
    };
    (rec, row)
}
