//! The contract of [`Store`]: accounts ([`users`]), sessions ([`sessions`]), refresh-token
//! rotation ([`rotation`]), single-use tokens ([`one_time`]), users' "not before" marks
//! ([`revocations`]), password versions and pending registrations ([`passwords`]), the mail
//! [`outbox`] and its [`leases`], second factors ([`mfa`]), [`cleanup`] and [`health`].
//! Each case takes a store no other test uses at the same time; see [`crate::contract`].

use auth_domain::model::{SessionRecord, UserRecord};
use auth_domain::ports::Store;
use auth_domain::types::{Timestamp, TokenHash, UserId};

use super::Must;
use super::fixtures;

pub mod cleanup;
pub mod health;
pub mod leases;
pub mod mfa;
pub mod one_time;
pub mod outbox;
pub mod passwords;
pub mod revocations;
pub mod rotation;
pub mod sessions;
pub mod users;

/// Inserts `user`, which must succeed.
async fn insert<S: Store>(store: &S, user: UserRecord) -> UserRecord {
    store.insert_user(&user, None).await.must("insert_user");
    user
}

/// Inserts a fresh account.
async fn new_user<S: Store>(store: &S) -> UserRecord {
    insert(store, fixtures::user().build()).await
}

/// Creates a fresh session of `user` created at `created_at` (expiring an hour later) with
/// a fresh refresh token, and returns both.
async fn new_session<S: Store>(
    store: &S,
    user: UserId,
    created_at: Timestamp,
) -> (SessionRecord, TokenHash) {
    let session = fixtures::session(user, created_at);
    let refresh = fixtures::token_hash();
    store
        .create_session(&session, &refresh)
        .await
        .must("create_session");
    (session, refresh)
}
