//! Second factors on PostgreSQL: what READ COMMITTED alone would get wrong without the
//! account's row lock (two replacements of the recovery codes leaving the union of their
//! sets; two removals of the last factors both keeping the codes), and the migration's way
//! back.

use std::sync::Arc;

use auth_domain::model::{PasskeyRecord, RecoveryCodeHash, TotpRecord};
use auth_domain::ports::{MfaStore, UserStore};
use auth_domain::types::{BlindIndex, PasskeyId, Sealed, UserId};
use auth_store_postgres::PgStore;
use auth_store_postgres::test_support::fresh_database;
use uuid::Uuid;

use crate::common::{TestResult, at, side_connection, user};

/// `n` fresh recovery codes.
fn codes(n: usize) -> Vec<RecoveryCodeHash> {
    (0..n)
        .map(|_| RecoveryCodeHash(BlindIndex(Uuid::new_v4().as_bytes().to_vec())))
        .collect()
}

fn passkey(user: UserId) -> PasskeyRecord {
    PasskeyRecord {
        id: PasskeyId(Uuid::now_v7()),
        user_id: user,
        credential_id: Uuid::new_v4().as_bytes().to_vec(),
        name_sealed: Sealed(b"sealed name".to_vec()),
        credential: "public key".to_owned(),
        sign_count: 0,
        created_at: at(1),
        last_used_at: None,
    }
}

/// A new account with a confirmed TOTP authenticator, one passkey and ten recovery codes.
async fn with_two_factors(
    store: &PgStore,
    name: &str,
) -> Result<(UserId, PasskeyId), Box<dyn std::error::Error + Send + Sync>> {
    let account = user(name, &format!("{name}@example.com"));
    store.insert_user(&account, None).await?;
    let totp = TotpRecord {
        user_id: account.id,
        secret_sealed: Sealed(b"sealed secret".to_vec()),
        created_at: at(1),
        confirmed_at: None,
    };
    store.set_pending_totp(&totp).await?;
    store
        .confirm_totp(account.id, &totp.secret_sealed, &codes(10), at(2), None)
        .await?;
    let key = passkey(account.id);
    store.insert_passkey(&key, None).await?;
    Ok((account.id, key.id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replacements_of_the_recovery_codes_leave_one_set() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = Arc::new(db.store().await);
    let account = user("Ada", "ada@example.com");
    store.insert_user(&account, None).await?;
    for round in 0..5 {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .replace_recovery_codes(account.id, &codes(10), at(round))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let left = store.mfa(account.id).await?.recovery_codes_left;
        assert_eq!(left, 10, "round {round}: one set, not a union");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removals_racing_for_the_last_factors_leave_no_recovery_codes() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let store = Arc::new(db.store().await);
    for round in 0..5 {
        let (account, key) = with_two_factors(&store, &format!("user{round}")).await?;
        let totp = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.delete_totp(account, None).await })
        };
        let passkey = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.delete_passkey(account, key, None).await })
        };
        assert!(totp.await??, "round {round}: the TOTP was removed");
        assert!(passkey.await??, "round {round}: the passkey was removed");
        let record = store.mfa(account).await?;
        assert_eq!(
            record.recovery_codes_left, 0,
            "round {round}: the codes went with the last factor"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_mfa_migration_reverts_and_applies_again() -> TestResult {
    let Some(db) = fresh_database().await else {
        return Ok(());
    };
    let admin = side_connection(db.url()).await?;
    let tables = "SELECT count(*) FROM pg_tables \
                  WHERE tablename IN ('totp_authenticators', 'recovery_codes', 'passkeys')";
    assert_eq!(admin.query_one(tables, &[]).await?.get::<_, i64>(0), 3);
    admin
        .batch_execute(include_str!(
            "../../../../migrations/postgres/2026-12-06-000001_mfa/down.sql"
        ))
        .await?;
    assert_eq!(admin.query_one(tables, &[]).await?.get::<_, i64>(0), 0);
    admin
        .batch_execute(include_str!(
            "../../../../migrations/postgres/2026-12-06-000001_mfa/up.sql"
        ))
        .await?;
    assert_eq!(admin.query_one(tables, &[]).await?.get::<_, i64>(0), 3);

    let store = db.store().await;
    let (account, _) = with_two_factors(&store, "grace").await?;
    let record = store.mfa(account).await?;
    assert!(record.totp_enabled() && record.passkeys.len() == 1);
    assert_eq!(record.recovery_codes_left, 10);
    Ok(())
}
