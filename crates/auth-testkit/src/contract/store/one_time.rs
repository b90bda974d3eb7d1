//! [`OneTimeTokenStore`](auth_domain::ports::OneTimeTokenStore): single-use tokens found
//! by hash and kind, consumed at most once.

use auth_domain::model::{OneTimeKind, OneTimeTokenRecord};
use auth_domain::ports::Store;
use chrono::TimeDelta;

use super::new_user;
use crate::contract::{Must, fixtures, race};

/// A token is found as written (its email index included) by its hash and kind, used or
/// not, expired or not; another kind or an unknown hash finds nothing.
pub async fn a_one_time_token_is_found_by_hash_and_kind<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let verify = fixtures::one_time(
        user.id,
        OneTimeKind::VerifyEmail,
        now + TimeDelta::hours(24),
    );
    let change = OneTimeTokenRecord {
        email_index: Some(fixtures::blind_index()),
        ..fixtures::one_time(
            user.id,
            OneTimeKind::ChangeEmail,
            now + TimeDelta::hours(24),
        )
    };
    let expired = fixtures::one_time(
        user.id,
        OneTimeKind::ResetPassword,
        now - TimeDelta::minutes(1),
    );
    for token in [&verify, &change, &expired] {
        store.insert_one_time(token).await.must("insert_one_time");
    }

    for token in [&verify, &change, &expired] {
        let found = store.find_one_time(&token.hash, token.kind).await;
        assert_eq!(
            found.must("find_one_time").as_ref(),
            Some(token),
            "as written"
        );
    }
    for kind in [OneTimeKind::ChangeEmail, OneTimeKind::ResetPassword] {
        let found = store.find_one_time(&verify.hash, kind).await;
        assert_eq!(found.must("find_one_time"), None, "another kind: {kind:?}");
    }
    let unknown = fixtures::token_hash();
    let found = store
        .find_one_time(&unknown, OneTimeKind::VerifyEmail)
        .await;
    assert_eq!(found.must("find_one_time"), None, "unknown hash");
}

/// A live token is consumed once: the first `consume_one_time` returns it marked used now,
/// every later one `None`; another kind does not consume it; it is still found, used.
pub async fn a_one_time_token_is_consumed_once<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let token = OneTimeTokenRecord {
        email_index: Some(fixtures::blind_index()),
        ..fixtures::one_time(user.id, OneTimeKind::ChangeEmail, now + TimeDelta::hours(1))
    };
    store.insert_one_time(&token).await.must("insert_one_time");

    let wrong = store
        .consume_one_time(&token.hash, OneTimeKind::ResetPassword, now)
        .await;
    assert_eq!(wrong.must("consume_one_time"), None, "another kind");
    let used = OneTimeTokenRecord {
        used_at: Some(now),
        ..token.clone()
    };
    let consumed = store.consume_one_time(&token.hash, token.kind, now).await;
    assert_eq!(
        consumed.must("consume_one_time"),
        Some(used.clone()),
        "returned, marked used now"
    );
    let later = now + TimeDelta::seconds(1);
    let again = store.consume_one_time(&token.hash, token.kind, later).await;
    assert_eq!(again.must("consume_one_time again"), None, "used once only");
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(found.must("find_one_time"), Some(used), "found, used");
    let unknown = fixtures::token_hash();
    let consumed = store
        .consume_one_time(&unknown, OneTimeKind::VerifyEmail, now)
        .await;
    assert_eq!(consumed.must("consume_one_time"), None, "unknown hash");
}

/// A token past its expiry is not consumed, and stays unused.
pub async fn an_expired_one_time_token_is_not_consumed<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let token = fixtures::one_time(
        user.id,
        OneTimeKind::ResetPassword,
        now + TimeDelta::hours(1),
    );
    store.insert_one_time(&token).await.must("insert_one_time");

    let after = token.expires_at + TimeDelta::milliseconds(1);
    let consumed = store.consume_one_time(&token.hash, token.kind, after).await;
    assert_eq!(consumed.must("consume_one_time"), None, "expired");
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(found.must("find_one_time"), Some(token), "still unused");
}

/// Of ten concurrent consumptions of one token, exactly one gets it.
pub async fn of_ten_concurrent_consumptions_of_one_token_one_wins<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let token = fixtures::one_time(user.id, OneTimeKind::VerifyEmail, now + TimeDelta::hours(1));
    store.insert_one_time(&token).await.must("insert_one_time");

    let results = race(10, |_| store.consume_one_time(&token.hash, token.kind, now));
    let winners: Vec<_> = results
        .into_iter()
        .filter_map(|result| result.must("consume_one_time"))
        .collect();
    assert_eq!(
        winners,
        vec![OneTimeTokenRecord {
            used_at: Some(now),
            ..token
        }],
        "exactly one consumption gets the token"
    );
}
