//! Oversight tables on both backends: incidents upserted with their
//! records, the outbox (due rows, leases, a delivered row never pending
//! again), circuits, and the reads behind the views.

use warden_store::{
    ActionRow, ApprovalRow, CircuitRow, IncidentFilter, IncidentRow, NotificationRow, RunRow,
    StateWrite,
};

use crate::both;
use crate::common::{TestDb, engine, records};

fn incident(id: &str, state: &str, detected: i64) -> IncidentRow {
    IncidentRow {
        id: id.into(),
        playbook: "policy-violations".into(),
        detector: "policy_violation".into(),
        dedup_key: format!("agent:{id}"),
        state: state.parse().unwrap(),
        severity: "critical".into(),
        owner: "olivia".into(),
        summary: "support-bot attempted a forbidden refund".into(),
        subject: r#"{"agent":"support-bot"}"#.into(),
        first_event_us: detected - 5,
        first_seq: Some(1),
        detected_us: detected,
        acked_us: None,
        acked_by: None,
        resolved_us: None,
        resolved_by: None,
        level: 0,
        due_us: Some(detected + 1_000),
        breaches: 0,
        triggers: 1,
        last_trigger_us: detected,
        detail: "{}".into(),
        updated_us: detected,
        drill: None,
    }
}

fn page(incident: &str, step: &str, next: i64) -> NotificationRow {
    NotificationRow {
        id: format!("{incident}:{step}:olivia-webhook"),
        incident_id: incident.into(),
        step: step.into(),
        route: "olivia-webhook".into(),
        kind: "webhook".into(),
        payload: r#"{"event":"incident.opened"}"#.into(),
        state: warden_model::DeliveryState::Pending,
        attempts: 0,
        next_us: next,
        lease_us: None,
        last_error: None,
        created_us: next,
        updated_us: next,
    }
}

fn action(id: &str, tool: &str, state: &str, hash: &str, attempts: i64, created: i64) -> ActionRow {
    ActionRow {
        id: id.into(),
        agent: "support-bot".into(),
        tool: tool.into(),
        run_id: None,
        step: None,
        mode: "check".into(),
        shadow: false,
        state: state.parse().unwrap(),
        code: None,
        idempotency_key: None,
        request_hash: hash.into(),
        arguments: None,
        decision: "{}".into(),
        result: None,
        attempts,
        created_us: created,
        updated_us: created,
    }
}

both!(incidents_and_the_outbox_round_trip);
async fn incidents_and_the_outbox_round_trip(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 1);
    let log = db.log().await;
    let a = incident("inc_a", "open", 100);
    let b = incident("inc_b", "resolved", 200);
    log.commit(
        recs[..1].to_vec(),
        vec![
            StateWrite::Incident(a.clone()),
            StateWrite::Incident(b.clone()),
            StateWrite::Notification(page("inc_a", "opened", 100)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(db.store.incident("inc_a").await.unwrap(), Some(a.clone()));
    let list = |state: Option<&str>| {
        let f = IncidentFilter {
            state: state.map(str::to_owned),
            limit: 10,
        };
        let store = db.store.clone();
        async move {
            store
                .incidents(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(None).await, ["inc_b", "inc_a"], "newest first");
    assert_eq!(list(Some("active")).await, ["inc_a"]);
    assert_eq!(list(Some("resolved")).await, ["inc_b"]);
    let ids: Vec<String> = db
        .store
        .active_incidents()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["inc_a"]);
    let mut counts = db.store.incident_counts().await.unwrap();
    counts.sort();
    assert_eq!(counts, [("open".into(), 1), ("resolved".into(), 1)]);

    // The outbox: due, claimed once, invisible while leased.
    assert_eq!(db.store.next_notification_due().await.unwrap(), Some(100));
    assert!(
        db.store.due_notifications(99, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let due = db.store.due_notifications(100, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(
        db.store
            .claim_notification(&due[0].id, 100, 500)
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .claim_notification(&due[0].id, 101, 600)
            .await
            .unwrap(),
        "held by the first sender"
    );
    assert!(
        db.store
            .due_notifications(200, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    assert_eq!(
        db.store.due_notifications(501, 10).await.unwrap().len(),
        1,
        "lease expired"
    );

    // Delivered: never pending again, even if the step is queued again.
    let mut sent = page("inc_a", "opened", 100);
    sent.state = warden_model::DeliveryState::Delivered;
    sent.attempts = 1;
    log.commit(Vec::new(), vec![StateWrite::Notification(sent.clone())])
        .await
        .unwrap();
    log.commit(
        Vec::new(),
        vec![StateWrite::Notification(page("inc_a", "opened", 700))],
    )
    .await
    .unwrap();
    let rows = db.store.notifications_of("inc_a").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].state.as_str(), rows[0].attempts), ("delivered", 1));
    assert!(
        db.store
            .due_notifications(10_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.store.next_notification_due().await.unwrap(), None);

    // Circuits.
    let c = CircuitRow {
        tool: "crm.lookup_customer".into(),
        open_until_us: 9_000,
        reason: Some("cascade".into()),
        opened_by: Some("playbook:tool-failure-cascade".into()),
        updated_us: 1,
    };
    log.commit(Vec::new(), vec![StateWrite::Circuit(c.clone())])
        .await
        .unwrap();
    assert_eq!(db.store.circuits().await.unwrap(), [c]);
}

both!(views_read_runs_approvals_and_hotspots);
async fn views_read_runs_approvals_and_hotspots(db: &TestDb) {
    let log = db.log().await;
    let run = |id: &str, state: &str, updated: i64| RunRow {
        id: id.into(),
        workflow: "refund-request".into(),
        agent: "support-bot".into(),
        state: state.parse().unwrap(),
        trigger: None,
        done_steps: "[]".into(),
        step_data: "{}".into(),
        correlation: None,
        created_us: 1,
        updated_us: updated,
    };
    log.commit(
        Vec::new(),
        vec![
            StateWrite::Run(run("run_old", "running", 10)),
            StateWrite::Run(run("run_new", "running", 1_000)),
            StateWrite::Run(run("run_done", "completed", 10)),
            // Three identical lookups (two repeats), one failing tool, one
            // connector re-send.
            StateWrite::Action(action(
                "a1",
                "crm.lookup_customer",
                "approved",
                "sha256:same",
                0,
                100,
            )),
            StateWrite::Action(action(
                "a2",
                "crm.lookup_customer",
                "approved",
                "sha256:same",
                0,
                101,
            )),
            StateWrite::Action(action(
                "a3",
                "crm.lookup_customer",
                "approved",
                "sha256:same",
                0,
                102,
            )),
            StateWrite::Action(action("a4", "stripe.refund", "failed", "sha256:r1", 2, 103)),
            StateWrite::Action(action("a5", "stripe.refund", "failed", "sha256:r2", 1, 104)),
            StateWrite::Action(action("a6", "stripe.refund", "denied", "sha256:r3", 0, 105)),
            StateWrite::Action(action(
                "a0",
                "email.send_customer",
                "failed",
                "sha256:e",
                1,
                5,
            )),
        ],
    )
    .await
    .unwrap();
    let counts = db.store.run_counts(500).await.unwrap();
    let mut by_state = counts.by_state.clone();
    by_state.sort();
    assert_eq!(by_state, [("completed".into(), 1), ("running".into(), 2)]);
    assert_eq!(
        counts
            .stuck
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["run_old"]
    );

    let hot = db.store.hotspots(100, 10).await.unwrap();
    let got: Vec<(&str, i64, i64, i64, i64)> = hot
        .iter()
        .map(|h| (h.tool.as_str(), h.actions, h.failed, h.denied, h.retries))
        .collect();
    assert_eq!(
        got,
        [
            ("stripe.refund", 3, 2, 1, 1),
            ("crm.lookup_customer", 3, 0, 0, 2)
        ],
        "the action before the window is left out"
    );
    assert_eq!(db.store.hotspots(100, 1).await.unwrap().len(), 1);

    // Pending approvals per group, ages at "now".
    let approval = |id: &str, eligible: &str, created: i64| ApprovalRow {
        id: id.into(),
        action_id: format!("act_{id}"),
        agent: "support-bot".into(),
        tool: "stripe.refund".into(),
        run_id: None,
        request_hash: format!("sha256:{id}"),
        state: warden_model::ApprovalState::Pending,
        slots: "[]".into(),
        eligible: eligible.into(),
        votes: "[]".into(),
        context: "{}".into(),
        due_us: None,
        escalations: 0,
        returned: false,
        created_us: created,
        updated_us: created,
        arguments: None,
    };
    log.commit(
        Vec::new(),
        vec![
            StateWrite::Approval(approval("apr_1", ",finance,", 1_000_000)),
            StateWrite::Approval(approval("apr_2", ",finance,support-leads,", 3_000_000)),
        ],
    )
    .await
    .unwrap();
    let ages = db.store.approval_ages(11_000_000).await.unwrap();
    let got: Vec<(&str, i64, &str, f64)> = ages
        .iter()
        .map(|a| {
            (
                a.group.as_str(),
                a.pending,
                a.oldest_id.as_str(),
                a.oldest_s,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("finance", 2, "apr_1", 10.0),
            ("support-leads", 1, "apr_2", 8.0)
        ],
        "the group with the oldest request first"
    );
}
