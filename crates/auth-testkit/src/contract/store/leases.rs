//! Outbox leases ([`OutboxStore::renew_mail_leases`], [`OutboxStore::release_all_leases`]):
//! a worker that is alive keeps its mails by renewing their leases, only under the claim
//! that holds them; a store that one process owns gives every lease back at that
//! process's start, keeping retries and dead mails as they are. Like the other outbox
//! cases, these claim every mail in the store.
//!
//! [`OutboxStore::renew_mail_leases`]: auth_domain::ports::OutboxStore::renew_mail_leases
//! [`OutboxStore::release_all_leases`]: auth_domain::ports::OutboxStore::release_all_leases

use auth_domain::model::{MailKind, OutboxMail};
use auth_domain::ports::Store;
use auth_domain::types::Timestamp;
use chrono::TimeDelta;
use uuid::Uuid;

use super::outbox::{LEASE, attempted, claim, dead, enqueue, retry, sorted};
use crate::contract::{Must, fixtures};

/// `renew_mail_leases` of `claims` at `at` under [`LEASE`]; the ids it renewed, sorted.
async fn renew<S: Store>(store: &S, claims: &[(&OutboxMail, u32)], at: Timestamp) -> Vec<Uuid> {
    let claims: Vec<(Uuid, u32)> = claims.iter().map(|(m, a)| (m.id, *a)).collect();
    let mut renewed = store
        .renew_mail_leases(&claims, at, LEASE)
        .await
        .must("renew_mail_leases");
    renewed.sort();
    renewed
}

/// A renewed lease runs a full lease from the renewal: no other claim takes the mail
/// when the first lease would have ended, and it is claimed again (a dead worker's) only
/// a full lease after the last renewal.
pub async fn a_renewed_lease_keeps_the_mail_from_other_claims_until_a_lease_after_the_renewal<
    S: Store,
>(
    store: &S,
) {
    let now = fixtures::now();
    let mail = fixtures::notice(MailKind::VerifyEmail, now);
    enqueue(store, &mail).await;
    let m = &mail.mail;
    assert_eq!(claim(store, now, 10).await, vec![attempted(m, 1)]);

    let renewed_at = now + LEASE / 2;
    assert_eq!(renew(store, &[(m, 1)], renewed_at).await, vec![m.id]);
    for at in [now + LEASE, renewed_at + LEASE - TimeDelta::milliseconds(1)] {
        assert_eq!(claim(store, at, 10).await, vec![], "still leased at {at}");
    }
    assert_eq!(
        claim(store, renewed_at + LEASE, 10).await,
        vec![attempted(m, 2)],
        "claimed again a lease after the last renewal"
    );
}

/// The ids of `mails`, sorted.
fn ids(mails: &[OutboxMail]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = mails.iter().map(|m| m.id).collect();
    ids.sort();
    ids
}

/// A renewal extends only the leases its claim still holds: not one a later claim took
/// after the lease ran out (the later claim's renewal applies), and not a mail that was
/// retried (its retry time stays), sent or dead since. It renews those it holds among
/// others it does not.
pub async fn a_renewal_extends_only_the_leases_its_claim_still_holds<S: Store>(store: &S) {
    let now = fixtures::now();
    let taken = fixtures::notice(MailKind::VerifyEmail, now - TimeDelta::seconds(4));
    let retried = fixtures::notice(MailKind::ResetPassword, now - TimeDelta::seconds(3));
    let sent = fixtures::notice(MailKind::PasswordChanged, now - TimeDelta::seconds(2));
    let died = fixtures::notice(MailKind::AccountLocked, now - TimeDelta::seconds(1));
    for mail in [&taken, &retried, &sent, &died] {
        enqueue(store, mail).await;
    }
    let [taken, retried, sent, died] = [&taken.mail, &retried.mail, &sent.mail, &died.mail];
    assert_eq!(claim(store, now, 10).await.len(), 4, "setup: all claimed");
    let retry_at = now + TimeDelta::hours(1);
    assert!(retry(store, retried, 1, retry_at).await);
    store.mail_sent(sent.id).await.must("mail_sent");
    assert!(dead(store, died, 1, now).await);
    let end = now + LEASE;
    assert_eq!(
        claim(store, end, 10).await,
        vec![attempted(taken, 2)],
        "`taken`: its first lease ran out, a second worker claimed it"
    );

    let stale = [(taken, 1), (retried, 1), (sent, 1), (died, 1)];
    assert_eq!(
        renew(store, &stale, end).await,
        Vec::<Uuid>::new(),
        "none of these"
    );
    let next_end = end + LEASE;
    let claimed = claim(store, next_end, 10).await;
    assert_eq!(
        claimed,
        vec![attempted(taken, 3)],
        "`taken` a lease after the second claim (not renewed by the first); `retried` \
         not brought forward from its retry time"
    );

    // The current claim renews, also when asked with stale ones.
    let mixed = [(taken, 2), (taken, 3), (retried, 1)];
    assert_eq!(renew(store, &mixed, next_end).await, vec![taken.id]);
    let before = next_end + LEASE - TimeDelta::milliseconds(1);
    assert_eq!(claim(store, before, 10).await, vec![], "renewed");
    assert_eq!(
        ids(&claim(store, retry_at, 10).await),
        ids(&[taken.clone(), retried.clone()]),
        "`retried` at its retry time"
    );
}

/// Releasing every lease makes each claimed mail due at once with its attempt kept (its
/// worker may have sent it) and no longer leased (a late renewal of the old claim renews
/// nothing); a mail waiting for its retry, a dead one and one not due yet are left as
/// they are. It says how many it released.
pub async fn releasing_every_lease_makes_claimed_mails_due_at_once_with_their_attempt_kept<
    S: Store,
>(
    store: &S,
) {
    let now = fixtures::now();
    let first = fixtures::notice(MailKind::VerifyEmail, now - TimeDelta::seconds(5));
    let second = fixtures::notice(MailKind::ResetPassword, now - TimeDelta::seconds(4));
    let retried = fixtures::notice(MailKind::PasswordChanged, now - TimeDelta::seconds(3));
    let died = fixtures::notice(MailKind::AccountLocked, now - TimeDelta::seconds(2));
    for mail in [&first, &second, &retried, &died] {
        enqueue(store, mail).await;
    }
    let later = fixtures::notice(MailKind::EmailChanged, now + TimeDelta::minutes(1));
    enqueue(store, &later).await;
    assert_eq!(claim(store, now, 10).await.len(), 4, "setup");
    let retry_at = now + TimeDelta::hours(1);
    assert!(retry(store, &retried.mail, 1, retry_at).await);
    assert!(dead(store, &died.mail, 1, now).await);

    let at = now + TimeDelta::seconds(1);
    let released = store.release_all_leases(at).await;

    assert_eq!(
        released.must("release_all_leases"),
        2,
        "the two still leased"
    );
    assert_eq!(
        renew(store, &[(&first.mail, 1)], at).await,
        Vec::<Uuid>::new(),
        "no longer leased"
    );
    assert_eq!(
        sorted(claim(store, at, 10).await),
        sorted(vec![attempted(&first.mail, 2), attempted(&second.mail, 2)]),
        "due at once, their first attempt still counted"
    );
    assert_eq!(
        claim(store, later.mail.created_at, 10).await,
        vec![attempted(&later.mail, 1)],
        "the mail not due yet is due when it was due"
    );
    let at_retry = claim(store, retry_at, 10).await;
    assert!(
        at_retry.contains(&attempted(&retried.mail, 2)),
        "the retry at its time: {at_retry:?}"
    );
    assert!(
        !ids(&at_retry).contains(&died.mail.id),
        "the dead mail never"
    );
}
