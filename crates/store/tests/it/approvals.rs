//! Approval rows on both backends: written with their records, the inbox
//! (state, group, an approver's groups, oldest first, total), due timers,
//! the open request for a re-proposal, and the arguments joined while the
//! action is not final.

use warden_store::{ActionRow, ApprovalFilter, ApprovalRow, StateWrite};

use crate::both;
use crate::common::{TestDb, engine, records};

fn action(id: &str, state: &str, args: Option<&str>) -> ActionRow {
    ActionRow {
        id: id.into(),
        agent: "support-bot".into(),
        tool: "stripe.refund".into(),
        run_id: None,
        step: None,
        mode: "enforce".into(),
        shadow: false,
        state: state.parse().unwrap(),
        code: None,
        idempotency_key: None,
        request_hash: format!("sha256:{id}"),
        arguments: args.map(str::to_owned),
        decision: "{}".into(),
        result: None,
        attempts: 0,
        created_us: 1,
        updated_us: 1,
    }
}

fn approval(id: &str, action: &str, eligible: &str, due: Option<i64>, created: i64) -> ApprovalRow {
    ApprovalRow {
        id: id.into(),
        action_id: action.into(),
        agent: "support-bot".into(),
        tool: "stripe.refund".into(),
        run_id: None,
        request_hash: format!("sha256:{action}"),
        state: warden_model::ApprovalState::Pending,
        slots: "[]".into(),
        eligible: eligible.into(),
        votes: "[]".into(),
        context: "{}".into(),
        due_us: due,
        escalations: 0,
        returned: false,
        created_us: created,
        updated_us: created,
        arguments: None,
    }
}

both!(approval_rows_serve_the_inbox_the_timers_and_re_proposals);
async fn approval_rows_serve_the_inbox_the_timers_and_re_proposals(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 1);
    let log = db.log().await;
    log.commit(
        recs[..1].to_vec(),
        vec![
            StateWrite::Action(action(
                "act_a",
                "awaiting_approval",
                Some(r#"{"amount_cents":50000}"#),
            )),
            StateWrite::Action(action("act_b", "escalated", Some("{}"))),
            StateWrite::Action(action("act_c", "awaiting_approval", Some("{}"))),
            StateWrite::Approval(approval("apr_a", "act_a", ",finance,", Some(100), 10)),
            StateWrite::Approval(approval(
                "apr_b",
                "act_b",
                ",finance,support-leads,",
                Some(50),
                20,
            )),
            StateWrite::Approval(approval("apr_c", "act_c", ",security,", None, 5)),
        ],
    )
    .await
    .unwrap();

    let got = db.store.approval("apr_a").await.unwrap().unwrap();
    assert_eq!(got.arguments.as_deref(), Some(r#"{"amount_cents":50000}"#));
    assert_eq!(got.due_us, Some(100));
    assert_eq!(
        db.store
            .approval_of_action("act_b")
            .await
            .unwrap()
            .unwrap()
            .id,
        "apr_b"
    );
    assert!(db.store.approval("apr_none").await.unwrap().is_none());

    // The inbox: oldest first, filtered by group and by an approver's groups.
    let ids = |rows: Vec<ApprovalRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let all = ApprovalFilter {
        state: Some("pending".into()),
        limit: 10,
        ..Default::default()
    };
    let (rows, total) = db.store.approvals(&all).await.unwrap();
    assert_eq!(
        (ids(rows), total),
        (vec!["apr_c".into(), "apr_a".into(), "apr_b".into()], 3)
    );
    let leads = ApprovalFilter {
        group: Some("support-leads".into()),
        ..all.clone()
    };
    let (rows, total) = db.store.approvals(&leads).await.unwrap();
    assert_eq!((ids(rows), total), (vec!["apr_b".to_owned()], 1));
    // `finance` must not match `finance-leads` or a prefix.
    let mine = ApprovalFilter {
        any_group: Some(vec!["fin".into(), "security".into()]),
        ..all.clone()
    };
    let (rows, total) = db.store.approvals(&mine).await.unwrap();
    assert_eq!((ids(rows), total), (vec!["apr_c".to_owned()], 1));
    let page = ApprovalFilter {
        limit: 1,
        ..all.clone()
    };
    let (rows, total) = db.store.approvals(&page).await.unwrap();
    assert_eq!((rows.len(), total), (1, 3));

    // Timers: due ones earliest first; requests without a timer never.
    assert_eq!(db.store.next_approval_due().await.unwrap(), Some(50));
    assert_eq!(
        ids(db.store.due_approvals(60, 10).await.unwrap()),
        ["apr_b"]
    );
    assert_eq!(
        ids(db.store.due_approvals(1000, 10).await.unwrap()),
        ["apr_b", "apr_a"]
    );

    // A request ends: its action is final (arguments dropped), it leaves
    // the pending inbox and the timers; a re-proposal finds it once.
    let mut a = db.store.approval("apr_a").await.unwrap().unwrap();
    a.state = warden_model::ApprovalState::Denied;
    a.due_us = None;
    log.commit(
        Vec::new(),
        vec![
            StateWrite::Action(action("act_a", "denied", None)),
            StateWrite::Approval(a.clone()),
        ],
    )
    .await
    .unwrap();
    let got = db.store.approval("apr_a").await.unwrap().unwrap();
    assert_eq!((got.state.as_str(), got.arguments), ("denied", None));
    assert_eq!(
        ids(db.store.due_approvals(1000, 10).await.unwrap()),
        ["apr_b"]
    );
    let found = db
        .store
        .open_approval_for("support-bot", "sha256:act_a")
        .await
        .unwrap();
    assert_eq!(found.map(|r| r.id).as_deref(), Some("apr_a"));
    a.returned = true;
    log.commit(Vec::new(), vec![StateWrite::Approval(a)])
        .await
        .unwrap();
    assert!(
        db.store
            .open_approval_for("support-bot", "sha256:act_a")
            .await
            .unwrap()
            .is_none()
    );
    // Pending ones are found however often.
    assert!(
        db.store
            .open_approval_for("support-bot", "sha256:act_c")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        db.store
            .open_approval_for("billing-bot", "sha256:act_c")
            .await
            .unwrap()
            .is_none()
    );
}
