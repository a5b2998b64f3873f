//! Runtime state rows committed with evidence: one transaction for both,
//! upserts, last write wins within a batch, nothing half-written.

use warden_store::{ActionRow, AgentStateRow, RunRow, StateWrite};

use crate::both;
use crate::common::{TestDb, engine, records};

fn action(id: &str, state: &str, t: i64) -> ActionRow {
    ActionRow {
        id: id.into(),
        agent: "support-bot".into(),
        tool: "stripe.refund".into(),
        run_id: Some("run_1".into()),
        step: Some("stripe.refund".into()),
        mode: "enforce".into(),
        shadow: false,
        state: state.parse().unwrap(),
        code: None,
        idempotency_key: Some(format!("key-{id}")),
        request_hash: "sha256:00".into(),
        arguments: Some(r#"{"amount_cents":5000}"#.into()),
        decision: "{}".into(),
        result: None,
        attempts: 0,
        created_us: 1,
        updated_us: t,
    }
}

both!(state_rows_commit_with_their_records);
async fn state_rows_commit_with_their_records(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 1);
    let log = db.log().await;
    let run = RunRow {
        id: "run_1".into(),
        workflow: "refund-request".into(),
        agent: "support-bot".into(),
        state: warden_model::RunStatus::Running,
        trigger: Some(r#"{"source":"ticket"}"#.into()),
        done_steps: "[]".into(),
        step_data: "{}".into(),
        correlation: None,
        created_us: 1,
        updated_us: 1,
    };
    let receipts = log
        .commit(
            recs[..2].to_vec(),
            vec![
                StateWrite::Run(run.clone()),
                StateWrite::Action(action("act_1", "executing", 2)),
                // The same row twice in one batch: the last one wins.
                StateWrite::Action(action("act_1", "succeeded", 3)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(receipts.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1]);
    let got = db.store.action("act_1").await.unwrap().unwrap();
    assert_eq!((got.state.as_str(), got.updated_us), ("succeeded", 3));
    assert_eq!(db.store.run("run_1").await.unwrap().unwrap(), run);
    assert_eq!(
        db.store
            .action_by_key("support-bot", "key-act_1")
            .await
            .unwrap()
            .map(|a| a.id),
        Some("act_1".into())
    );
    assert!(
        db.store
            .action_by_key("billing-bot", "key-act_1")
            .await
            .unwrap()
            .is_none()
    );

    // An upsert replaces the row's mutable fields.
    let mut done = action("act_1", "failed", 9);
    done.code = Some("interrupted".into());
    done.arguments = None;
    let mut run2 = run.clone();
    run2.done_steps = r#"["crm.lookup_customer"]"#.into();
    run2.updated_us = 9;
    log.commit(
        vec![recs[2].clone()],
        vec![
            StateWrite::Action(done.clone()),
            StateWrite::Action(action("act_2", "executing", 9)),
            StateWrite::Run(run2.clone()),
            StateWrite::Agent(AgentStateRow {
                quarantine: None,
                agent: "support-bot".into(),
                paused: true,
                reason: Some("storm".into()),
                changed_by: Some("tina".into()),
                updated_us: 9,
            }),
        ],
    )
    .await
    .unwrap();
    assert_eq!(db.store.action("act_1").await.unwrap().unwrap(), done);
    assert_eq!(db.store.run("run_1").await.unwrap().unwrap(), run2);
    let executing = db.store.actions_in_state("executing").await.unwrap();
    assert_eq!(
        executing.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["act_2"]
    );
    assert_eq!(db.store.run_actions("run_1").await.unwrap().len(), 2);
    let agents = db.store.agent_states().await.unwrap();
    assert_eq!((agents.len(), agents[0].paused), (1, true));
    let counts = db.store.action_counts().await.unwrap();
    assert_eq!(counts, vec![("executing".into(), 1), ("failed".into(), 1)]);
}

both!(a_failed_commit_writes_no_state);
async fn a_failed_commit_writes_no_state(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 1);
    let log = db.log().await;
    log.append(recs[0].clone()).await.unwrap();
    // Take the next leaf position behind the writer's back.
    let mut c = db.backdoor().await;
    sqlx::query(
        "INSERT INTO evidence (seq, leaf_hash, body, time_us, kind) VALUES ($1, $2, NULL, 0, 'x')",
    )
    .bind(1i64)
    .bind(vec![0u8; 32])
    .execute(&mut c)
    .await
    .unwrap();
    let err = log
        .commit(
            vec![recs[1].clone()],
            vec![StateWrite::Action(action("act_9", "executing", 1))],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing from this batch"), "{err}");
    assert!(db.store.action("act_9").await.unwrap().is_none());
}
