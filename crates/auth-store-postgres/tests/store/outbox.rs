//! The outbox on PostgreSQL: claims that skip, without waiting, the rows another
//! transaction holds; payloads erased in the table itself; the migration's way back.

use std::time::Duration;

use auth_domain::model::{MailKind, OutboxMail};
use auth_domain::ports::OutboxStore;
use auth_store_postgres::test_support::fresh_database;

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
    store.mail_dead(dead.mail.id, at(5)).await?;

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
async fn the_outbox_migration_reverts_and_applies_again() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let admin = side_connection(db.url()).await?;
    let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'outbox'";
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

    let store = db.store().await;
    let queued = mail(MailKind::AccountDeleted, 1);
    store.enqueue_mail(&queued).await?;
    assert_eq!(
        store.claim_mail(at(2), LEASE, 10).await?,
        vec![attempted(&queued.mail, 1)]
    );
    Ok(())
}
