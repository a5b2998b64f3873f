//! Editing the database behind Warden's back: `verify` names the first bad
//! leaf and what is wrong with it.

use sqlx::AnyConnection;
use warden_evidence::{FindingKind, Report};

use crate::both;
use crate::common::{TestDb, engine, records};

/// A log of 20 runs with a checkpoint over all of it; returns its size.
async fn seeded(db: &TestDb) -> u64 {
    let engine = engine();
    let recs = records(&engine, db.data.redactor(), 20);
    let log = db.log().await;
    for r in &recs {
        log.append(r.clone()).await.unwrap();
    }
    log.close().await.unwrap();
    recs.len() as u64
}

async fn verify(db: &TestDb) -> Report {
    db.verify().await
}

async fn exec(c: &mut AnyConnection, sql: &'static str, seq: i64) {
    sqlx::query(sql).bind(seq).execute(c).await.unwrap();
}

both!(untouched_log_verifies);
async fn untouched_log_verifies(db: &TestDb) {
    let n = seeded(db).await;
    let r = verify(db).await;
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!((r.leaves, r.latest_checkpoint_size), (n, Some(n)));
}

both!(modified_record_is_named);
async fn modified_record_is_named(db: &TestDb) {
    seeded(db).await;
    let mut c = db.backdoor().await;
    exec(
        &mut c,
        "UPDATE evidence SET body = replace(body, 'refund-request', 'refund-requesT') WHERE seq = $1",
        7,
    )
    .await;
    let r = verify(db).await;
    let f = r.first().unwrap();
    assert_eq!(
        (f.kind, f.seq),
        (FindingKind::Modified, Some(7)),
        "{:?}",
        r.findings
    );
}

both!(rewritten_record_and_hash_break_the_signed_root);
async fn rewritten_record_and_hash_break_the_signed_root(db: &TestDb) {
    seeded(db).await;
    // A careful forger rewrites the record and its leaf hash together.
    let mut c = db.backdoor().await;
    let row = db.store.leaves(11, 1).await.unwrap().remove(0);
    let body = String::from_utf8(row.body.unwrap())
        .unwrap()
        .replace("refund-request", "refund-requesT");
    assert!(body.contains("refund-requesT"));
    let hash = warden_evidence::merkle::leaf_hash(body.as_bytes());
    sqlx::query("UPDATE evidence SET body = $1, leaf_hash = $2 WHERE seq = $3")
        .bind(body)
        .bind(hash.to_vec())
        .bind(12i64)
        .execute(&mut c)
        .await
        .unwrap();
    let r = verify(db).await;
    let f = r.first().unwrap();
    assert_eq!(f.kind, FindingKind::Modified, "{:?}", r.findings);
    assert!(f.message.contains("root signed"), "{}", f.message);
}

both!(deleted_record_is_named);
async fn deleted_record_is_named(db: &TestDb) {
    seeded(db).await;
    let mut c = db.backdoor().await;
    exec(&mut c, "DELETE FROM evidence WHERE seq = $1", 9).await;
    let r = verify(db).await;
    let f = r.first().unwrap();
    assert_eq!(
        (f.kind, f.seq),
        (FindingKind::Deleted, Some(9)),
        "{:?}",
        r.findings
    );
}

both!(reordered_records_are_named);
async fn reordered_records_are_named(db: &TestDb) {
    seeded(db).await;
    // Swap the positions of leaves 4 and 6.
    let mut c = db.backdoor().await;
    exec(&mut c, "UPDATE evidence SET seq = -1 WHERE seq = $1", 4).await;
    exec(&mut c, "UPDATE evidence SET seq = 4 WHERE seq = $1", 6).await;
    exec(&mut c, "UPDATE evidence SET seq = 6 WHERE seq = $1", -1).await;
    let r = verify(db).await;
    let f = r.first().unwrap();
    assert_eq!(
        (f.kind, f.seq),
        (FindingKind::Reordered, Some(4)),
        "{:?}",
        r.findings
    );
    assert!(f.message.contains("appended as leaf 6"), "{}", f.message);
}

both!(truncated_tail_is_named);
async fn truncated_tail_is_named(db: &TestDb) {
    let n = seeded(db).await;
    let mut c = db.backdoor().await;
    exec(
        &mut c,
        "DELETE FROM evidence WHERE seq >= $1",
        (n - 3) as i64,
    )
    .await;
    let r = verify(db).await;
    let f = r.first().unwrap();
    assert_eq!(
        (f.kind, f.seq),
        (FindingKind::Truncated, Some(n - 3)),
        "{:?}",
        r.findings
    );
}

both!(forged_checkpoint_is_rejected);
async fn forged_checkpoint_is_rejected(db: &TestDb) {
    let n = seeded(db).await;
    // Truncate, then hide it by editing the newest checkpoint's size.
    let mut c = db.backdoor().await;
    exec(
        &mut c,
        "DELETE FROM evidence WHERE seq >= $1",
        (n - 1) as i64,
    )
    .await;
    let note: String = {
        use sqlx::Row;
        sqlx::query("SELECT note FROM checkpoints ORDER BY id DESC LIMIT 1")
            .fetch_one(&mut c)
            .await
            .unwrap()
            .try_get("note")
            .unwrap()
    };
    let forged = note.replacen(&format!("\n{n}\n"), &format!("\n{}\n", n - 1), 1);
    sqlx::query("UPDATE checkpoints SET note = $1, size = $2 WHERE size = $3")
        .bind(forged)
        .bind((n - 1) as i64)
        .bind(n as i64)
        .execute(&mut c)
        .await
        .unwrap();
    let r = verify(db).await;
    let f = r.first().unwrap();
    assert_eq!(f.kind, FindingKind::BadSignature, "{:?}", r.findings);
}
