//! Users' "not before" marks in storage:
//! [`SessionStore::revoke_user_tokens`](auth_domain::ports::SessionStore::revoke_user_tokens)
//! and [`SessionStore::user_revocations`](auth_domain::ports::SessionStore::user_revocations).

use auth_domain::ports::Store;
use auth_domain::types::{Timestamp, UserId};
use chrono::TimeDelta;
use uuid::Uuid;

use super::new_user;
use crate::contract::{Must, fixtures};

/// The marks in force at `now` of `users` only, sorted.
async fn marks_of<S: Store>(
    store: &S,
    users: &[UserId],
    now: Timestamp,
) -> Vec<(UserId, Timestamp, Timestamp)> {
    let mut marks: Vec<_> = store
        .user_revocations(now)
        .await
        .must("user_revocations")
        .into_iter()
        .filter(|(user, _, _)| users.contains(user))
        .collect();
    marks.sort();
    marks
}

/// A later call with an earlier mark (and an earlier `until`) moves neither back; a later
/// mark moves the mark forward.
pub async fn a_users_not_before_mark_never_moves_back<S: Store>(store: &S) {
    let user = UserId(Uuid::now_v7());
    let now = fixtures::now();
    let (mark, until) = (now, now + TimeDelta::minutes(15));
    store
        .revoke_user_tokens(user, mark, until)
        .await
        .must("revoke_user_tokens");
    store
        .revoke_user_tokens(
            user,
            now - TimeDelta::minutes(1),
            now + TimeDelta::minutes(5),
        )
        .await
        .must("revoke_user_tokens earlier");
    assert_eq!(
        marks_of(store, &[user], now).await,
        vec![(user, mark, until)],
        "an earlier mark is ignored"
    );
    let after_short = now + TimeDelta::minutes(10);
    assert_eq!(
        marks_of(store, &[user], after_short).await,
        vec![(user, mark, until)],
        "still in force until the first until"
    );

    let (later, later_until) = (now + TimeDelta::seconds(1), now + TimeDelta::minutes(20));
    store
        .revoke_user_tokens(user, later, later_until)
        .await
        .must("revoke_user_tokens later");
    assert_eq!(
        marks_of(store, &[user], now).await,
        vec![(user, later, later_until)],
        "a later mark moves it forward"
    );
}

/// `user_revocations` lists the marks whose `until` is after the given time, and only
/// those.
pub async fn user_revocations_lists_only_marks_in_force<S: Store>(store: &S) {
    let now = fixtures::now();
    let users = [
        UserId(Uuid::now_v7()),
        UserId(Uuid::now_v7()),
        UserId(Uuid::now_v7()),
    ];
    let marks = [
        (users[0], now, now + TimeDelta::minutes(10)),
        (users[1], now, now + TimeDelta::minutes(1)),
        (
            users[2],
            now - TimeDelta::minutes(20),
            now - TimeDelta::seconds(1),
        ),
    ];
    for (user, not_before, until) in marks {
        store
            .revoke_user_tokens(user, not_before, until)
            .await
            .must("revoke_user_tokens");
    }
    let mut expected = vec![marks[0], marks[1]];
    expected.sort();
    assert_eq!(
        marks_of(store, &users, now).await,
        expected,
        "the marks in force"
    );
    assert_eq!(
        marks_of(store, &users, marks[1].2).await,
        vec![marks[0]],
        "a mark is no longer in force at its until"
    );
}

/// A user's mark is kept after the account is deleted.
pub async fn a_users_mark_outlives_the_account<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let until = now + TimeDelta::minutes(15);
    store
        .revoke_user_tokens(user.id, now, until)
        .await
        .must("revoke_user_tokens");
    assert!(
        store
            .delete_user(user.id, None, None)
            .await
            .must("delete_user")
    );
    assert_eq!(
        marks_of(store, &[user.id], now).await,
        vec![(user.id, now, until)],
        "the mark survives the account"
    );
}
