//! Appends, checkpoints, queries, timelines, export, prune and key rotation,
//! on both backends.

use std::collections::BTreeSet;

use warden_evidence::{FindingKind, RecordKind, SigningKeyPair, merkle, verify_export};
use warden_store::{AuditLog, Filter, LogOptions};

use crate::both;
use crate::common::{TestDb, engine, records};

both!(concurrent_appends_get_every_position_once);
async fn concurrent_appends_get_every_position_once(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 60);
    let n = recs.len() as u64;
    let log = db.log().await;
    // 32 writers at once, each appending its share.
    let mut tasks = Vec::new();
    for chunk in recs.chunks(recs.len().div_ceil(32)) {
        let log = log.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for r in chunk {
                got.push(log.append(r).await.unwrap());
            }
            got
        }));
    }
    let mut seqs = BTreeSet::new();
    for t in tasks {
        for receipt in t.await.unwrap() {
            assert!(
                seqs.insert(receipt.seq),
                "position {} given twice",
                receipt.seq
            );
        }
    }
    assert_eq!(seqs, (0..n).collect::<BTreeSet<_>>());
    let cp = log.checkpoint().await.unwrap();
    assert_eq!(cp.checkpoint.size, n);
    assert_eq!(db.store.leaf_count().await.unwrap(), n);
    let report = db.verify_ok().await;
    assert_eq!(report.leaves, n);
    assert_eq!(report.root, hex::encode(cp.checkpoint.root));
    // Every stored record hashes to its receipt's leaf and carries its seq.
    let tree = db.store.tree().await.unwrap();
    assert_eq!(tree.root(), cp.checkpoint.root);
    let stored = db.store.leaves(-1, 10_000).await.unwrap();
    for row in &stored {
        let body = row.body.as_ref().unwrap();
        assert_eq!(merkle::leaf_hash(body), row.leaf_hash);
        let r: warden_evidence::Record = serde_json::from_slice(body).unwrap();
        assert_eq!(r.seq, row.seq);
    }
    log.close().await.unwrap();
}

both!(reopened_log_continues_the_same_tree);
async fn reopened_log_continues_the_same_tree(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 10);
    let (a, b) = recs.split_at(recs.len() / 2);
    let log = db.log().await;
    for r in a {
        log.append(r.clone()).await.unwrap();
    }
    let first = log.close().await.unwrap();
    let log = db.log().await;
    for r in b {
        log.append(r.clone()).await.unwrap();
    }
    let second = log.close().await.unwrap();
    assert_eq!(second.checkpoint.size, recs.len() as u64);
    // The later tree head extends the earlier one.
    let tree = db.store.tree().await.unwrap();
    let proof = tree
        .consistency_proof(first.checkpoint.size, second.checkpoint.size)
        .unwrap();
    assert!(merkle::verify_consistency(
        first.checkpoint.size,
        second.checkpoint.size,
        &first.checkpoint.root,
        &second.checkpoint.root,
        &proof
    ));
    let report = db.verify_ok().await;
    assert_eq!(report.checkpoints, 2);
}

both!(queries_match_what_was_recorded);
async fn queries_match_what_was_recorded(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 80);
    let log = db.log().await;
    for r in &recs {
        log.append(r.clone()).await.unwrap();
    }
    let all = |f: Filter| async move {
        let f = Filter {
            limit: 100_000,
            ..f
        };
        let mut got: Vec<u64> = db
            .store
            .query(&f)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        got.reverse();
        got
    };
    let expect = |p: &dyn Fn(&warden_evidence::Record) -> bool| -> Vec<u64> {
        recs.iter()
            .enumerate()
            .filter(|(_, r)| p(r))
            .map(|(i, _)| i as u64)
            .collect()
    };
    let by_agent = all(Filter {
        agent: Some("billing-bot".into()),
        ..Filter::default()
    })
    .await;
    assert!(!by_agent.is_empty());
    assert_eq!(
        by_agent,
        expect(&|r| r.agent.as_deref() == Some("billing-bot"))
    );

    let by_tool = all(Filter {
        tool: Some("stripe.refund".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(
        by_tool,
        expect(&|r| r.tool.as_deref() == Some("stripe.refund"))
    );

    let denied = all(Filter {
        decision: Some("deny".into()),
        ..Filter::default()
    })
    .await;
    assert!(!denied.is_empty());
    assert_eq!(
        denied,
        expect(&|r| r.decision().map(|d| d.as_str()) == Some("deny"))
    );

    let code = all(Filter {
        code: Some("approval_denied".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(
        code,
        expect(&|r| r.code.as_deref() == Some("approval_denied"))
    );

    let gate = "refund-over-100-needs-finance";
    let by_policy = all(Filter {
        policy: Some(gate.into()),
        ..Filter::default()
    })
    .await;
    assert!(!by_policy.is_empty());
    assert_eq!(
        by_policy,
        expect(&|r| r
            .checks
            .iter()
            .any(|c| c.policies.iter().any(|p| p.id == gate)))
    );

    let by_approver = all(Filter {
        approver: Some("dave".into()),
        ..Filter::default()
    })
    .await;
    assert!(!by_approver.is_empty());
    assert_eq!(
        by_approver,
        expect(&|r| r.approvals.iter().any(|a| a.approver == "dave"))
    );

    // A time window: runs 10..20 (one run a minute from the start).
    let start = recs[0].time_micros();
    let (since, until) = (start + 10 * 60_000_000, start + 20 * 60_000_000);
    let window = all(Filter {
        agent: Some("support-bot".into()),
        since_us: Some(since),
        until_us: Some(until),
        ..Filter::default()
    })
    .await;
    assert!(!window.is_empty());
    assert_eq!(
        window,
        expect(&|r| r.agent.as_deref() == Some("support-bot")
            && (since..until).contains(&r.time_micros()))
    );

    // Free text, case-insensitive; LIKE wildcards in the text are literal.
    let text = all(Filter {
        text: Some("ZD-10007".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(
        text,
        expect(&|r| serde_json::to_string(r).unwrap().contains("ZD-10007"))
    );
    assert!(
        all(Filter {
            text: Some("%".into()),
            ..Filter::default()
        })
        .await
        .is_empty()
    );

    // Limit returns the newest.
    let newest = db
        .store
        .query(&Filter {
            limit: 3,
            ..Filter::default()
        })
        .await
        .unwrap();
    let n = recs.len() as u64;
    assert_eq!(
        newest.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [n - 1, n - 2, n - 3]
    );

    // A run, in order, from records alone.
    let run = db.store.run_records("run-0000004").await.unwrap();
    assert_eq!(run.first().unwrap().kind, "run_started");
    assert_eq!(run.last().unwrap().kind, "run_finished");
    assert!(run.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        run.len(),
        recs.iter()
            .filter(|r| r.run.as_deref() == Some("run-0000004"))
            .count()
    );
    log.close().await.unwrap();
}

both!(export_verifies_offline_and_catches_edits);
async fn export_verifies_offline_and_catches_edits(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 20);
    let log = db.log().await;
    for r in &recs {
        log.append(r.clone()).await.unwrap();
    }
    log.checkpoint().await.unwrap();
    let mut out = Vec::new();
    let n = db
        .store
        .export(&mut out, warden_evidence::now())
        .await
        .unwrap();
    assert_eq!(n, recs.len() as u64);
    let key = db.data.signer().verifier();
    let report = verify_export(out.as_slice(), vec![key.clone()]).unwrap();
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(report.leaves, n);

    // Another key: every checkpoint is rejected.
    let stranger = SigningKeyPair::generate(key.name()).unwrap().verifier();
    let report = verify_export(out.as_slice(), vec![stranger]).unwrap();
    assert_eq!(report.first().unwrap().kind, FindingKind::BadSignature);

    // Change one refund amount in the export text.
    let text = String::from_utf8(out.clone()).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("amount_cents"))
        .unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == line {
                l.replacen("amount_cents\\\":", "amount_cents\\\":1", 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    let report = verify_export(edited.join("\n").as_bytes(), vec![key.clone()]).unwrap();
    let first = report.first().unwrap();
    assert_eq!(first.kind, FindingKind::Modified);
    assert_eq!(first.seq, Some((line - 1 - report.checkpoints) as u64));

    // Garbage is an error with a line number, not a panic.
    let err = verify_export("{\"type\":\"leaf\"}\n".as_bytes(), vec![key]).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    log.close().await.unwrap();
}

both!(pruned_payloads_keep_the_tree_and_proofs);
async fn pruned_payloads_keep_the_tree_and_proofs(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 30);
    let log = db.log().await;
    for r in &recs {
        log.append(r.clone()).await.unwrap();
    }
    let before = log.checkpoint().await.unwrap();
    // Prune the first ten runs.
    let cutoff = recs[0].time_micros() + 10 * 60_000_000;
    let expected = recs.iter().filter(|r| r.time_micros() < cutoff).count() as u64;
    assert_eq!(db.store.prune(cutoff).await.unwrap(), expected);
    assert_eq!(
        db.store.prune(cutoff).await.unwrap(),
        0,
        "pruning twice is a no-op"
    );
    let report = db.verify_ok().await;
    assert_eq!(report.pruned, expected);
    assert_eq!(report.root, hex::encode(before.checkpoint.root));
    // Old proofs still verify against the same root.
    let tree = db.store.tree().await.unwrap();
    let p = tree.inclusion_proof(0, tree.size()).unwrap();
    assert!(merkle::verify_inclusion(
        0,
        tree.size(),
        &tree.leaves()[0],
        &p,
        &before.checkpoint.root
    ));
    // Queries still find pruned records, without their payload.
    let first_run = db.store.run_records("run-0000000").await.unwrap();
    assert!(!first_run.is_empty() && first_run.iter().all(|r| r.record.is_none()));
    let mut out = Vec::new();
    log.checkpoint().await.unwrap();
    db.store
        .export(&mut out, warden_evidence::now())
        .await
        .unwrap();
    let report = verify_export(out.as_slice(), vec![db.data.signer().verifier()]).unwrap();
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(report.pruned, expected);
    log.close().await.unwrap();
}

both!(key_rotation_is_a_record_and_chains_trust);
async fn key_rotation_is_a_record_and_chains_trust(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 6);
    let original = db.data.signer().clone();
    let log = AuditLog::open(
        db.store.clone(),
        original.clone(),
        LogOptions {
            checkpoint_interval: None,
            ..LogOptions::default()
        },
    )
    .await
    .unwrap();
    for r in &recs[..10] {
        log.append(r.clone()).await.unwrap();
    }
    let next = SigningKeyPair::generate(original.name()).unwrap();
    let first_new = log.rotate_key(next.clone()).await.unwrap();
    assert_eq!(first_new.key_id, next.key_id());
    for r in &recs[10..] {
        log.append(r.clone()).await.unwrap();
    }
    log.close().await.unwrap();
    let rotated = db
        .store
        .query(&Filter {
            kind: Some("key_rotated".into()),
            limit: 10,
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(rotated.len(), 1);
    let rec = rotated[0].record.as_ref().unwrap();
    assert_eq!(rec.kind, RecordKind::KeyRotated);
    assert_eq!(
        rec.detail.as_ref().unwrap()["new_key"],
        serde_json::Value::String(next.verifier().to_string())
    );
    // Trusting only the original key is enough: it vouches for the new one.
    let report = db
        .store
        .verify(vec![original.verifier()], |_| {})
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.findings);
    // Trusting only the new key: the checkpoints before the rotation fail.
    let report = db
        .store
        .verify(vec![next.verifier()], |_| {})
        .await
        .unwrap();
    assert_eq!(report.first().unwrap().kind, FindingKind::BadSignature);
    assert_eq!(db.store.signing_keys().await.unwrap().len(), 2);
}

both!(a_failed_batch_writes_nothing);
async fn a_failed_batch_writes_nothing(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 4);
    let log = db.log().await;
    for r in &recs[..5] {
        log.append(r.clone()).await.unwrap();
    }
    // Someone takes the next position behind Warden's back: the next batch
    // cannot commit, and none of it may land.
    let mut c = db.backdoor().await;
    sqlx::query(
        "INSERT INTO evidence (seq, leaf_hash, body, time_us, kind) VALUES ($1, $2, NULL, 0, 'x')",
    )
    .bind(5i64)
    .bind(vec![0u8; 32])
    .execute(&mut c)
    .await
    .unwrap();
    let err = log.append(recs[5].clone()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("nothing from this batch was written"),
        "{err}"
    );
    assert_eq!(
        db.store.leaf_count().await.unwrap(),
        6,
        "5 appended + 1 foreign row"
    );
    let policies_rows: i64 = {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM evidence_policy WHERE seq >= 5")
            .fetch_one(&mut c)
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    };
    assert_eq!(policies_rows, 0, "no half-written index rows");
}

both!(scheduled_checkpoints_are_signed_when_idle);
async fn scheduled_checkpoints_are_signed_when_idle(db: &TestDb) {
    let opts = LogOptions {
        checkpoint_interval: Some(std::time::Duration::from_millis(50)),
        ..LogOptions::default()
    };
    let log = AuditLog::open(db.store.clone(), db.data.signer().clone(), opts)
        .await
        .unwrap();
    // Nothing is appended; checkpoints still arrive, each naming its key.
    let mut seen = Vec::new();
    for _ in 0..400 {
        seen = db.store.checkpoints().await.unwrap();
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(seen.len() >= 3, "only {} scheduled checkpoints", seen.len());
    let key = db.data.signer().verifier();
    for c in &seen {
        assert_eq!(c.checkpoint.size, 0);
        assert_eq!(c.key_id, key.key_id());
        assert!(c.verify(&key));
    }
    let times: BTreeSet<&str> = seen
        .iter()
        .map(|c| c.checkpoint.timestamp.as_str())
        .collect();
    assert_eq!(
        times.len(),
        seen.len(),
        "each checkpoint has its own timestamp"
    );
    log.close().await.unwrap();
}

both!(erasure_drops_matching_payloads_in_one_commit_and_the_log_verifies);
async fn erasure_drops_matching_payloads_in_one_commit_and_the_log_verifies(db: &TestDb) {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 5);
    let log = db.log().await;
    for r in &recs {
        log.append(r.clone()).await.unwrap();
    }
    // Two records of one data subject: a redacted argument, a clear field.
    let args = serde_json::json!({ "customer_id": "cus_ERASE1", "amount_cents": 100 });
    let mut a = warden_evidence::Record::new(RecordKind::ActionDecided);
    db.data
        .redactor()
        .apply(&mut a, &args, &["customer_id".into()])
        .unwrap();
    let a = log.append(a).await.unwrap();
    let mut b = warden_evidence::Record::new(RecordKind::ActionExecuted);
    b.detail = Some(serde_json::json!({ "result": { "customer_id": "cus_ERASE1" } }));
    let b = log.append(b).await.unwrap();
    let before = log.checkpoint().await.unwrap();
    let query = db
        .data
        .redactor()
        .erasure_query("customer_id", "cus_ERASE1")
        .unwrap();
    let mut rec = warden_evidence::Record::new(RecordKind::RecordsErased);
    rec.detail = Some(serde_json::json!({ "reason": "DSR-1" }));
    let report = log.erase(&query, rec).await.unwrap();
    assert_eq!(report.erased.seqs, vec![a.seq, b.seq]);
    let report2 = db.verify_ok().await;
    assert_eq!(report2.pruned, 2);
    // The tree is the same up to the old checkpoint, plus the erasure record.
    assert_eq!(report2.leaves, before.checkpoint.size + 1);
    let stored = db.store.leaves(a.seq as i64 - 1, 10).await.unwrap();
    assert!(stored[0].body.is_none() && stored[1].body.is_none());
    let erased: warden_evidence::Record =
        serde_json::from_slice(stored[2].body.as_ref().unwrap()).unwrap();
    assert_eq!(erased.kind, RecordKind::RecordsErased);
    assert_eq!(erased.detail.as_ref().unwrap()["records"], 2);
    assert!(!String::from_utf8_lossy(stored[2].body.as_ref().unwrap()).contains("cus_ERASE1"));
    // Erasing again finds nothing more.
    let again = log
        .erase(
            &query,
            warden_evidence::Record::new(RecordKind::RecordsErased),
        )
        .await
        .unwrap();
    assert!(again.erased.seqs.is_empty());

    // A requester named in runs' triggers: an ended run's stored trigger
    // goes, a running one keeps it (separation of duties needs it).
    let trigger = warden_model::Trigger {
        source: "ticket".into(),
        reference: Some("T-1".into()),
        requester: Some("grace@example.com".into()),
    };
    for (id, state) in [
        ("run_ended", warden_model::RunStatus::Completed),
        ("run_open", warden_model::RunStatus::Running),
    ] {
        let mut r = warden_evidence::Record::new(RecordKind::RunStarted);
        r.run = Some(id.into());
        r.trigger = Some(trigger.clone());
        let row = warden_store::RunRow {
            id: id.into(),
            workflow: "refund-request".into(),
            agent: "support-bot".into(),
            state,
            trigger: Some(serde_json::to_string(&trigger).unwrap()),
            done_steps: "[]".into(),
            step_data: "{}".into(),
            correlation: None,
            created_us: 1,
            updated_us: 1,
        };
        log.commit(vec![r], vec![warden_store::StateWrite::Run(row)])
            .await
            .unwrap();
    }
    let query = db
        .data
        .redactor()
        .erasure_query("requester", "grace@example.com")
        .unwrap();
    let report = log
        .erase(
            &query,
            warden_evidence::Record::new(RecordKind::RecordsErased),
        )
        .await
        .unwrap();
    assert_eq!(report.erased.seqs.len(), 2);
    assert_eq!(report.erased.runs, ["run_ended", "run_open"]);
    let ended = db.store.run("run_ended").await.unwrap().unwrap();
    assert_eq!(ended.trigger, None);
    let open = db.store.run("run_open").await.unwrap().unwrap();
    assert!(open.trigger.unwrap().contains("grace@example.com"));
    db.verify_ok().await;
    log.close().await.unwrap();
}
