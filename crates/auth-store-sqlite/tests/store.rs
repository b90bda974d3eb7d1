//! What only the SQLite store promises: the file on disk (owner-only, WAL mode), data and
//! migrations across reopening (and the outbox migration's way back), dead mails' payloads
//! erased in the table itself, outbox rows this build cannot read left out of claims, and
//! operations that finish after their caller gave up.
//! The ports' contracts (users, sessions, rotation races, one-time tokens, cleanup…) are
//! tested once for every adapter by the contract test-kit:
//! `cargo test -p auth-testkit --test contract_sqlite`.

#[path = "store/common.rs"]
mod common;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::task::Poll;

use auth_domain::model::{MailKind, OutboxMail, Rotation};
use auth_domain::ports::{OutboxStore, SessionStore, UserStore};
use auth_store_sqlite::{MIGRATIONS, SqliteStore, migrate};
use common::{TestResult, at, mail, session, store, token, user};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Integer, Nullable, Text};
use diesel_migrations::MigrationHarness;

/// One row of `outbox` as stored, read with plain SQL.
#[derive(Debug, PartialEq, Eq, QueryableByName)]
struct RawMail {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Binary>)]
    payload: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    dead_at: Option<i64>,
}

fn connect(
    path: &std::path::Path,
) -> Result<SqliteConnection, Box<dyn std::error::Error + Send + Sync>> {
    let url = path.to_str().ok_or("the temporary path is not UTF-8")?;
    Ok(SqliteConnection::establish(url)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_the_store_at_the_same_path() -> TestResult {
    let (store, _dir, path) = store().await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;
    drop(store);

    assert!(migrate(&path)?.is_empty(), "nothing left to migrate");
    let reopened = SqliteStore::open(&path, 2).await?;
    assert_eq!(reopened.user_by_username("alice").await?, Some(alice));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_and_its_write_ahead_log_are_readable_by_their_owner_only() -> TestResult {
    let (store, _dir, path) = store().await?;
    store
        .insert_user(&user("alice", "alice@example.com"), None)
        .await?;
    // The -wal file exists only in WAL mode, and holds recent writes until a checkpoint.
    for file in [path.clone(), path.with_extension("db-wal")] {
        let mode = std::fs::metadata(&file)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{} has mode {mode:o}", file.display());
    }
    Ok(())
}

/// On a current-thread runtime, as under actix-web, with one connection: a caller that
/// gives up (a dropped request) leaves the operation to finish on its own and the
/// connection usable; the next caller then sees its effect.
#[tokio::test]
async fn an_operation_abandoned_by_its_caller_still_completes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("auth.db"), 1).await?;
    let alice = user("alice", "alice@example.com");
    store.insert_user(&alice, None).await?;
    store
        .create_session(&session(alice.id, 0), &token(1))
        .await?;

    let (presented, successor) = (token(1), token(2));
    let mut abandoned = Box::pin(store.rotate_refresh(&presented, &successor, at(1_000)));
    let first = std::future::poll_fn(|cx| Poll::Ready(abandoned.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "still running after its first poll");
    drop(abandoned);

    match store
        .rotate_refresh(&token(1), &token(2), at(2_000))
        .await?
    {
        Rotation::AlreadyRotated { rotated_at, .. } => assert_eq!(rotated_at, at(1_000)),
        other => return Err(format!("expected AlreadyRotated, got {other:?}").into()),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_mail_keeps_no_payload_in_the_table() -> TestResult {
    let (store, _dir, path) = store().await?;
    let dead = mail(MailKind::ResetPassword, 1);
    let queued = mail(MailKind::VerifyEmail, 2);
    store.enqueue_mail(&dead).await?;
    store.enqueue_mail(&queued).await?;
    // Never claimed: its attempts are still 0.
    assert!(store.mail_dead(dead.mail.id, 0, at(5)).await?, "dead");

    let mut conn = connect(&path)?;
    let rows: Vec<RawMail> =
        diesel::sql_query("SELECT id, payload, dead_at FROM outbox ORDER BY created_at")
            .load(&mut conn)?;
    assert_eq!(
        rows,
        vec![
            RawMail {
                id: dead.mail.id.to_string(),
                payload: None,
                dead_at: Some(at(5).timestamp_millis()),
            },
            RawMail {
                id: queued.mail.id.to_string(),
                payload: Some(queued.mail.payload.0.clone()),
                dead_at: None,
            },
        ],
        "the dead mail's payload is erased, the queued one's kept"
    );

    // The table refuses a dead mail that keeps its payload, or a live one without it.
    for sql in [
        "UPDATE outbox SET dead_at = 1 WHERE dead_at IS NULL",
        "UPDATE outbox SET payload = NULL WHERE dead_at IS NULL",
    ] {
        let Err(err) = conn.batch_execute(sql) else {
            return Err(format!("accepted: {sql}").into());
        };
        assert!(
            err.to_string().contains("CHECK constraint failed"),
            "{sql}: {err}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_migrations_revert_and_apply_again() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("auth.db");
    migrate(&path)?;
    let tables = "SELECT count(*) AS n FROM sqlite_master WHERE name LIKE 'outbox%'";
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = connect(&path)?;
    assert_eq!(
        diesel::sql_query(tables).get_result::<Count>(&mut conn)?.n,
        3,
        "table and indexes"
    );

    // Every later migration reverts first (each must have a working down.sql), then the
    // outbox's.
    let mut reverted = Vec::new();
    loop {
        let version = conn
            .revert_last_migration(MIGRATIONS)
            .map_err(|err| err.to_string())?
            .to_string();
        let outbox = version == "20261130000001";
        reverted.push(version);
        if outbox {
            break;
        }
    }
    assert_eq!(
        diesel::sql_query(tables).get_result::<Count>(&mut conn)?.n,
        0,
        "all gone"
    );
    drop(conn);

    reverted.reverse();
    assert_eq!(migrate(&path)?, reverted, "applied again");
    let store = SqliteStore::open(&path, 2).await?;
    let queued = mail(MailKind::AccountDeleted, 1);
    store.enqueue_mail(&queued).await?;
    assert_eq!(
        store
            .claim_mail(at(2), chrono::TimeDelta::minutes(5), 10)
            .await?,
        vec![OutboxMail {
            attempts: 1,
            ..queued.mail
        }]
    );
    Ok(())
}

/// A claim updates its mails in chunks (SQLite limits the parameters of one statement):
/// a batch larger than a chunk is claimed whole, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_larger_than_one_update_takes_every_mail_once() -> TestResult {
    let (store, _dir, _path) = store().await?;
    let mut queued = Vec::new();
    for n in 0..1_201 {
        let outgoing = mail(MailKind::AccountLocked, n);
        store.enqueue_mail(&outgoing).await?;
        queued.push(OutboxMail {
            attempts: 1,
            ..outgoing.mail
        });
    }
    let lease = chrono::TimeDelta::minutes(5);
    let claimed = store.claim_mail(at(5_000), lease, 2_000).await?;
    assert_eq!(claimed, queued, "all of them, earliest due first");
    assert_eq!(store.claim_mail(at(5_000), lease, 2_000).await?, vec![]);
    Ok(())
}

/// One row of `outbox`'s claim state, read with plain SQL.
#[derive(Debug, PartialEq, Eq, QueryableByName)]
struct RawClaim {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    due_at: i64,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

/// Rows this build cannot read (a kind added by a newer version, an id that is not a
/// UUID) do not fail the claim: they are left out of it, the other due mails are
/// returned, and they stay leased like the rest, to be claimed (and left out) again when
/// the lease ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_leaves_out_the_rows_it_cannot_read() -> TestResult {
    let (store, _dir, path) = store().await?;
    let first = mail(MailKind::VerifyEmail, 1);
    let last = mail(MailKind::ResetPassword, 4);
    store.enqueue_mail(&first).await?;
    store.enqueue_mail(&last).await?;
    let unknown_kind = uuid::Uuid::now_v7().to_string();
    let not_a_uuid = "not-a-uuid".to_owned();
    let mut conn = connect(&path)?;
    for (id, kind, created) in [
        (&unknown_kind, "carrier_pigeon", at(2)),
        (&not_a_uuid, MailKind::AccountLocked.as_str(), at(3)),
    ] {
        let ms = created.timestamp_millis();
        conn.batch_execute(&format!(
            "INSERT INTO outbox (id, kind, payload, created_at, due_at, attempts) \
             VALUES ('{id}', '{kind}', x'00', {ms}, {ms}, 0)"
        ))?;
    }

    let lease = chrono::TimeDelta::minutes(5);
    let claimed = store.claim_mail(at(10), lease, 10).await?;
    let expected = vec![
        OutboxMail {
            attempts: 1,
            ..first.mail.clone()
        },
        OutboxMail {
            attempts: 1,
            ..last.mail.clone()
        },
    ];
    assert_eq!(claimed, expected, "the readable mails, in due order");

    let until = (at(10) + lease).timestamp_millis();
    let (first_id, last_id) = (first.mail.id.to_string(), last.mail.id.to_string());
    let leased: Vec<RawClaim> = [first_id, unknown_kind, not_a_uuid, last_id]
        .into_iter()
        .map(|id| RawClaim {
            id,
            due_at: until,
            attempts: 1,
        })
        .collect();
    let rows: Vec<RawClaim> =
        diesel::sql_query("SELECT id, due_at, attempts FROM outbox ORDER BY created_at")
            .load(&mut conn)?;
    assert_eq!(rows, leased, "all four leased, the unreadable ones too");
    assert_eq!(store.claim_mail(at(10), lease, 10).await?, vec![]);

    let again = store.claim_mail(at(10) + lease, lease, 10).await?;
    let expected: Vec<OutboxMail> = expected
        .into_iter()
        .map(|mail| OutboxMail {
            attempts: 2,
            ..mail
        })
        .collect();
    assert_eq!(again, expected, "the unreadable rows are left out again");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_reports_connections_in_use_idle_and_waiting() -> TestResult {
    let (store, _dir, _path) = store().await?;
    let at_rest = store.pool_status();
    assert_eq!(at_rest.max_size, 4, "the size it was opened with");
    assert_eq!((at_rest.in_use, at_rest.waiting), (0, 0), "{at_rest:?}");
    assert_eq!(
        at_rest.idle, 1,
        "the connection that checked the file rests"
    );

    let lookups: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.user_by_username("nobody").await })
        })
        .collect();
    for lookup in lookups {
        assert_eq!(lookup.await??, None);
    }
    let after = store.pool_status();
    assert_eq!((after.in_use, after.waiting), (0, 0), "{after:?}");
    assert!((1..=4).contains(&after.idle), "{after:?}");
    Ok(())
}

/// A deleted account leaves no trace in the database file: `secure_delete` zeroes the
/// freed content, so once the write-ahead log is checkpointed the username (stored in the
/// clear) and the sealed values are gone from the file, not merely unlinked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_is_overwritten_in_the_database_file() -> TestResult {
    let (store, _dir, path) = store().await?;
    let marker = "zz_erasure_marker_7f3a9c";
    let doomed = user(marker, "erased@example.com");
    store.insert_user(&doomed, None).await?;
    let checkpoint = |path: &std::path::Path| -> TestResult {
        connect(path)?.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    };
    let file_holds_marker = |path: &std::path::Path| -> Result<bool, std::io::Error> {
        let bytes = std::fs::read(path)?;
        Ok(bytes
            .windows(marker.len())
            .any(|window| window == marker.as_bytes()))
    };
    checkpoint(&path)?;
    assert!(file_holds_marker(&path)?, "written to the file first");

    assert!(store.delete_user(doomed.id, None, None).await?);
    checkpoint(&path)?;
    assert!(
        !file_holds_marker(&path)?,
        "the deleted row's bytes must be overwritten, not left in a free page"
    );
    Ok(())
}
