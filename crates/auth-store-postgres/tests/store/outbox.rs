//! The outbox on PostgreSQL: claims that skip, without waiting, the rows another
//! transaction holds, and leave out the rows this build cannot read; payloads erased in
//! the table itself; the migration's way back.

use std::time::Duration;

use auth_domain::model::{MailKind, OutboxMail};
use auth_domain::ports::OutboxStore;
use auth_store_postgres::test_support::fresh_database;
use uuid::Uuid;

use crate::common::{TestResult, at, mail, side_connection};

const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The mail as a claim returns it after `attempts` claims.
fn attempted(mail: &OutboxMail, attempts: u32) -> OutboxMail {
    OutboxMail {
        attempts,
        ..mail.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_skips_the_mails_another_transaction_holds_without_waiting() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let mails = [
        mail(MailKind::VerifyEmail, 1),
        mail(MailKind::ResetPassword, 2),
        mail(MailKind::AccountLocked, 3),
    ];
    for m in &mails {
        store.enqueue_mail(m).await?;
    }

    // Another worker's claim, still running, holds the earliest due mail.
    let mut admin = side_connection(db.url()).await?;
    let holder = admin.transaction().await?;
    holder
        .batch_execute(&format!(
            "SELECT 1 FROM outbox WHERE id = '{}' FOR UPDATE",
            mails[0].mail.id
        ))
        .await?;
    let claimed = tokio::time::timeout(Duration::from_secs(2), store.claim_mail(at(10), LEASE, 10))
        .await
        .expect("the claim does not wait for the held row")?;
    assert_eq!(
        claimed,
        vec![attempted(&mails[1].mail, 1), attempted(&mails[2].mail, 1)],
        "the free mails, oldest first"
    );
    holder.rollback().await?;

    assert_eq!(
        store.claim_mail(at(10), LEASE, 10).await?,
        vec![attempted(&mails[0].mail, 1)],
        "released, the held one is claimed"
    );
    Ok(())
}

/// A row this build cannot read (a kind added by a newer version) does not fail the
/// claim: it is left out of it, the other due mails are returned, and it stays leased like
/// the rest, to be claimed (and left out) again when the lease ends.
#[tokio::test]
async fn a_claim_leaves_out_the_rows_it_cannot_read() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let first = mail(MailKind::VerifyEmail, 1);
    let last = mail(MailKind::ResetPassword, 3);
    store.enqueue_mail(&first).await?;
    store.enqueue_mail(&last).await?;
    let unknown = Uuid::now_v7();
    let admin = side_connection(db.url()).await?;
    let created = at(2).timestamp_millis();
    admin
        .batch_execute(&format!(
            "INSERT INTO outbox (id, kind, payload, created_at, due_at, attempts) \
             VALUES ('{unknown}', 'carrier_pigeon', decode('00', 'hex'), \
                     to_timestamp({created} / 1000.0), to_timestamp({created} / 1000.0), 0)"
        ))
        .await?;

    let claimed = store.claim_mail(at(10), LEASE, 10).await?;
    assert_eq!(
        claimed,
        vec![attempted(&first.mail, 1), attempted(&last.mail, 1)],
        "the readable mails, oldest first"
    );
    let until = (at(10) + LEASE).timestamp_millis();
    let rows = admin
        .query(
            "SELECT id::text, (extract(epoch FROM due_at) * 1000)::bigint, attempts \
             FROM outbox ORDER BY created_at",
            &[],
        )
        .await?;
    let rows: Vec<(String, i64, i32)> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let leased: Vec<(String, i64, i32)> = [first.mail.id, unknown, last.mail.id]
        .into_iter()
        .map(|id| (id.to_string(), until, 1))
        .collect();
    assert_eq!(rows, leased, "all three leased, the unreadable one too");
    assert_eq!(store.claim_mail(at(10), LEASE, 10).await?, vec![]);

    assert_eq!(
        store.claim_mail(at(10) + LEASE, LEASE, 10).await?,
        vec![attempted(&first.mail, 2), attempted(&last.mail, 2)],
        "the unreadable row is left out again"
    );
    Ok(())
}

#[tokio::test]
async fn a_dead_mail_keeps_no_payload_in_the_table() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = db.store().await;
    let dead = mail(MailKind::ResetPassword, 1);
    let queued = mail(MailKind::VerifyEmail, 2);
    store.enqueue_mail(&dead).await?;
    store.enqueue_mail(&queued).await?;
    // Never claimed: its attempts are still 0.
    assert!(store.mail_dead(dead.mail.id, 0, at(5)).await?, "dead");

    let admin = side_connection(db.url()).await?;
    // (This crate's tokio-postgres maps neither UUID nor TIMESTAMPTZ: read them as text
    // and milliseconds.)
    let rows = admin
        .query(
            "SELECT id::text, payload, (extract(epoch FROM dead_at) * 1000)::bigint \
             FROM outbox ORDER BY created_at",
            &[],
        )
        .await?;
    let rows: Vec<(String, Option<Vec<u8>>, Option<i64>)> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                dead.mail.id.to_string(),
                None,
                Some(at(5).timestamp_millis())
            ),
            (
                queued.mail.id.to_string(),
                Some(queued.mail.payload.0.clone()),
                None
            ),
        ],
        "the dead mail's payload is erased, the queued one's kept"
    );

    // The table refuses a dead mail that keeps its payload, or a live one without it.
    for sql in [
        "UPDATE outbox SET dead_at = now() WHERE dead_at IS NULL",
        "UPDATE outbox SET payload = NULL WHERE dead_at IS NULL",
    ] {
        let err = admin.batch_execute(sql).await.expect_err(sql);
        assert!(
            format!("{err:?}").contains("outbox_payload_until_dead"),
            "{sql}: {err:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_outbox_migrations_revert_and_apply_again() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let admin = side_connection(db.url()).await?;
    let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'outbox'";
    let leases = "SELECT count(*) FROM information_schema.columns \
                  WHERE table_name = 'outbox' AND column_name = 'leased_until'";
    admin
        .batch_execute(include_str!(
            "../../../../migrations/postgres/2026-12-05-000001_outbox_leases/down.sql"
        ))
        .await?;
    assert_eq!(admin.query_one(leases, &[]).await?.get::<_, i64>(0), 0);
    admin
        .batch_execute(include_str!(
            "../../../../migrations/postgres/2026-11-30-000001_outbox/down.sql"
        ))
        .await?;
    assert_eq!(admin.query_one(tables, &[]).await?.get::<_, i64>(0), 0);
    admin
        .batch_execute(include_str!(
            "../../../../migrations/postgres/2026-11-30-000001_outbox/up.sql"
        ))
        .await?;
    assert_eq!(admin.query_one(tables, &[]).await?.get::<_, i64>(0), 1);
    admin
        .batch_execute(include_str!(
            "../../../../migrations/postgres/2026-12-05-000001_outbox_leases/up.sql"
        ))
        .await?;
    assert_eq!(admin.query_one(leases, &[]).await?.get::<_, i64>(0), 1);

    let store = db.store().await;
    let queued = mail(MailKind::AccountDeleted, 1);
    store.enqueue_mail(&queued).await?;
    assert_eq!(
        store.claim_mail(at(2), LEASE, 10).await?,
        vec![attempted(&queued.mail, 1)]
    );
    Ok(())
}
