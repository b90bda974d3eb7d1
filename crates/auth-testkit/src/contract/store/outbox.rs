//! [`OutboxStore`](auth_domain::ports::OutboxStore): mails queued durably (alone, or in the
//! same transaction as the account change that causes them), claimed under a lease by
//! any number of workers without two claims ever returning one mail, retried, given back,
//! sent or given up on (retries, releases and deaths only by the mail's latest claim).
//! Claims and stats see every mail in the store, so these cases, like the cleanup ones,
//! need a store no other test writes to meanwhile.

use auth_domain::model::{
    MailKind, OneTimeKind, OutboxMail, OutboxStats, Outgoing, ProfileChanges,
};
use auth_domain::ports::{CleanupReport, DEAD_MAIL_RETENTION, Store, StoreError, Taken};
use auth_domain::types::{PasswordHash, Timestamp, UserId};
use chrono::TimeDelta;
use uuid::Uuid;

use super::{insert, new_user};
use crate::contract::fixtures::{self, unique};
use crate::contract::{Must, race};

/// How long a claim holds its mails in these cases.
pub(super) const LEASE: TimeDelta = TimeDelta::minutes(5);

/// Queues `mail`, which must succeed.
pub(super) async fn enqueue<S: Store>(store: &S, mail: &Outgoing) {
    store.enqueue_mail(mail).await.must("enqueue_mail");
}

/// Claims up to `limit` mails due at `at` under [`LEASE`].
pub(super) async fn claim<S: Store>(store: &S, at: Timestamp, limit: u32) -> Vec<OutboxMail> {
    let claimed = store.claim_mail(at, LEASE, limit).await.must("claim_mail");
    assert!(
        claimed.len() <= limit as usize,
        "a claim returns at most its limit: {} > {limit}",
        claimed.len()
    );
    claimed
}

/// `mail_retry` of `mail` as a claim returned it (its `attempts`); whether it applied.
pub(super) async fn retry<S: Store>(
    store: &S,
    mail: &OutboxMail,
    attempts: u32,
    at: Timestamp,
) -> bool {
    let applied = store.mail_retry(mail.id, attempts, at).await;
    applied.must("mail_retry")
}

/// `mail_dead` of `mail` fenced by `attempts`; whether it applied.
pub(super) async fn dead<S: Store>(
    store: &S,
    mail: &OutboxMail,
    attempts: u32,
    at: Timestamp,
) -> bool {
    let applied = store.mail_dead(mail.id, attempts, at).await;
    applied.must("mail_dead")
}

/// `mail_release` of `mail` fenced by `attempts`; whether it applied.
pub(super) async fn release<S: Store>(
    store: &S,
    mail: &OutboxMail,
    attempts: u32,
    at: Timestamp,
) -> bool {
    let applied = store.mail_release(mail.id, attempts, at).await;
    applied.must("mail_release")
}

/// The outbox's stats.
pub(super) async fn stats<S: Store>(store: &S) -> OutboxStats {
    store.outbox_stats().await.must("outbox_stats")
}

/// `mail` as a claim returns it after `attempts` claims.
pub(super) fn attempted(mail: &OutboxMail, attempts: u32) -> OutboxMail {
    OutboxMail {
        attempts,
        ..mail.clone()
    }
}

/// The mails sorted by id, for comparisons that ignore the order of a claim.
pub(super) fn sorted(mut mails: Vec<OutboxMail>) -> Vec<OutboxMail> {
    mails.sort_by_key(|m| m.id);
    mails
}

/// Asserts that the outbox is empty: nothing queued or dead, nothing to claim even long
/// after. (Claims: call it last.)
#[track_caller]
fn assert_empty(stats: OutboxStats, claimed: Vec<OutboxMail>, what: &str) {
    assert_eq!(
        stats,
        OutboxStats::default(),
        "{what}: nothing queued or dead"
    );
    assert_eq!(claimed, vec![], "{what}: nothing to claim");
}

/// A queued mail of each kind is claimed as written (id, kind, sealed payload, creation
/// time) with its first attempt counted.
pub async fn an_enqueued_mail_is_claimed_as_written_with_its_attempt_counted<S: Store>(store: &S) {
    let now = fixtures::now();
    let mails: Vec<Outgoing> = MailKind::ALL
        .into_iter()
        .map(|kind| fixtures::notice(kind, now - TimeDelta::seconds(1)))
        .collect();
    for mail in &mails {
        enqueue(store, mail).await;
    }

    let claimed = claim(store, now, 100).await;
    let expected: Vec<OutboxMail> = mails.iter().map(|m| attempted(&m.mail, 1)).collect();
    assert_eq!(
        sorted(claimed),
        sorted(expected),
        "every mail, as written, attempts 1"
    );
}

/// A claimed mail is not claimed again while its lease runs; when the lease ends (its
/// worker died without a word) it is claimed again, with a second attempt counted.
pub async fn a_claimed_mail_is_claimed_again_only_when_its_lease_ends<S: Store>(store: &S) {
    let now = fixtures::now();
    let mail = fixtures::notice(MailKind::PasswordChanged, now);
    enqueue(store, &mail).await;

    assert_eq!(claim(store, now, 10).await, vec![attempted(&mail.mail, 1)]);
    for at in [now, now + LEASE - TimeDelta::milliseconds(1)] {
        assert_eq!(claim(store, at, 10).await, vec![], "leased at {at}");
    }
    let end = now + LEASE;
    assert_eq!(
        claim(store, end, 10).await,
        vec![attempted(&mail.mail, 2)],
        "claimed again when the lease ends"
    );
    assert_eq!(claim(store, end, 10).await, vec![], "under a new lease");
}

/// A claim takes at most `limit` mails, those due earliest first (by due time, not by
/// creation: a retry can move a newer mail ahead), and never a mail not yet due.
pub async fn a_claim_takes_at_most_its_limit_earliest_due_first<S: Store>(store: &S) {
    let now = fixtures::now();
    // Due at creation: 5, 4, 3, 2 and 1 seconds ago, and one in a minute.
    let mails: Vec<Outgoing> = (1..=5)
        .rev()
        .map(|s| fixtures::notice(MailKind::AccountLocked, now - TimeDelta::seconds(s)))
        .collect();
    let later = fixtures::notice(MailKind::AccountLocked, now + TimeDelta::minutes(1));
    for mail in mails.iter().chain([&later]) {
        enqueue(store, mail).await;
    }

    let first = claim(store, now, 2).await;
    assert_eq!(
        sorted(first),
        sorted(vec![
            attempted(&mails[0].mail, 1),
            attempted(&mails[1].mail, 1)
        ]),
        "the two due earliest"
    );
    // The newest due mail (never claimed: attempts 0) becomes due before the others.
    let moved = retry(store, &mails[4].mail, 0, now - TimeDelta::seconds(10)).await;
    assert!(
        moved,
        "mail_retry of an unclaimed mail at its attempts (0) applies"
    );
    assert_eq!(
        claim(store, now, 1).await,
        vec![attempted(&mails[4].mail, 1)],
        "due earliest after its retry time moved"
    );
    let rest = claim(store, now, 10).await;
    assert_eq!(
        sorted(rest),
        sorted(vec![
            attempted(&mails[2].mail, 1),
            attempted(&mails[3].mail, 1)
        ]),
        "the rest of those due, not the one due later"
    );
    let at = now + TimeDelta::minutes(1);
    assert_eq!(
        claim(store, at, 10).await,
        vec![attempted(&later.mail, 1)],
        "the later one once due"
    );
    assert_eq!(
        claim(store, at + LEASE, 0).await,
        vec![],
        "limit 0 claims nothing, though mails are due"
    );
}

/// After a failed attempt, `mail_retry` makes the mail due at the retry time: not
/// claimed before it (even when the lease ends earlier), claimed at it.
pub async fn a_retried_mail_is_due_again_at_its_retry_time<S: Store>(store: &S) {
    let now = fixtures::now();
    let mail = fixtures::notice(MailKind::EmailChanged, now);
    enqueue(store, &mail).await;
    assert_eq!(claim(store, now, 10).await, vec![attempted(&mail.mail, 1)]);

    let retry_at = now + LEASE + TimeDelta::minutes(10);
    assert!(
        retry(store, &mail.mail, 1, retry_at).await,
        "mail_retry applies"
    );
    for at in [now + LEASE, retry_at - TimeDelta::milliseconds(1)] {
        assert_eq!(claim(store, at, 10).await, vec![], "not due at {at}");
    }
    assert_eq!(
        claim(store, retry_at, 10).await,
        vec![attempted(&mail.mail, 2)],
        "due at the retry time"
    );

    // A retry time sooner than the lease's end also counts.
    let soon = retry_at + TimeDelta::seconds(1);
    assert!(
        retry(store, &mail.mail, 2, soon).await,
        "mail_retry applies"
    );
    assert_eq!(claim(store, soon, 10).await, vec![attempted(&mail.mail, 3)]);
}

/// `mail_sent` deletes the mail: never claimed again, no longer counted. It is
/// idempotent, and a no-op for an unknown id.
pub async fn a_sent_mail_is_gone<S: Store>(store: &S) {
    let now = fixtures::now();
    let sent = fixtures::notice(MailKind::VerifyEmail, now - TimeDelta::seconds(2));
    let other = fixtures::notice(MailKind::ResetPassword, now - TimeDelta::seconds(1));
    enqueue(store, &sent).await;
    enqueue(store, &other).await;
    assert_eq!(claim(store, now, 10).await.len(), 2, "setup: both claimed");

    store.mail_sent(sent.mail.id).await.must("mail_sent");
    store.mail_sent(sent.mail.id).await.must("mail_sent again");
    store
        .mail_sent(Uuid::now_v7())
        .await
        .must("mail_sent unknown");
    assert_eq!(
        stats(store).await,
        OutboxStats {
            queued: 1,
            oldest_queued_at: Some(other.mail.created_at),
            dead: 0,
        },
        "only the other one is left"
    );
    let far = now + TimeDelta::days(365);
    assert_eq!(
        claim(store, far, 10).await,
        vec![attempted(&other.mail, 2)],
        "the sent mail is never claimed again"
    );
}

/// `mail_dead` gives a mail up: it is never claimed again (a later `mail_retry` does not
/// revive it), it counts as dead and no longer as queued. A second `mail_dead` changes
/// nothing and says so.
pub async fn a_dead_mail_is_never_claimed_and_counted_dead<S: Store>(store: &S) {
    let now = fixtures::now();
    let mail = fixtures::notice(MailKind::AccountDeleted, now);
    enqueue(store, &mail).await;
    assert_eq!(claim(store, now, 10).await, vec![attempted(&mail.mail, 1)]);

    let m = &mail.mail;
    assert!(dead(store, m, 1, now + TimeDelta::seconds(1)).await, "dead");
    let again = dead(store, m, 1, now + TimeDelta::seconds(2)).await;
    assert!(!again, "mail_dead of a dead mail changes nothing");
    let unknown = store.mail_dead(Uuid::now_v7(), 1, now).await;
    assert!(!unknown.must("mail_dead unknown"), "no such mail");
    assert!(!retry(store, m, 1, now).await, "mail_retry of a dead mail");
    let expected = OutboxStats {
        queued: 0,
        oldest_queued_at: None,
        dead: 1,
    };
    assert_eq!(stats(store).await, expected, "dead, not queued");
    for at in [now, now + LEASE, now + TimeDelta::days(365)] {
        assert_eq!(claim(store, at, 10).await, vec![], "never claimed: {at}");
    }
    assert_eq!(stats(store).await, expected, "still dead");
}

/// A worker whose lease ran out cannot undo the claim that followed it: its `mail_dead`
/// and `mail_retry`, fenced by the attempts its claim returned, change nothing and say so,
/// and the mails stay queued under the new lease; those of the latest claim, with its
/// attempts, apply.
pub async fn a_worker_whose_lease_ran_out_cannot_undo_the_next_claim<S: Store>(store: &S) {
    let now = fixtures::now();
    let kept = fixtures::notice(MailKind::ResetPassword, now - TimeDelta::seconds(2));
    let given_up = fixtures::notice(MailKind::AccountLocked, now - TimeDelta::seconds(1));
    enqueue(store, &kept).await;
    enqueue(store, &given_up).await;
    let (kept, given_up) = (&kept.mail, &given_up.mail);
    assert_eq!(
        sorted(claim(store, now, 10).await),
        sorted(vec![attempted(kept, 1), attempted(given_up, 1)]),
        "the first worker's claim"
    );
    let end = now + LEASE;
    assert_eq!(
        sorted(claim(store, end, 10).await),
        sorted(vec![attempted(kept, 2), attempted(given_up, 2)]),
        "the second worker's claim, when the first lease ends"
    );

    // The first worker, late, reports what it did with its claim.
    for mail in [kept, given_up] {
        assert!(!dead(store, mail, 1, end).await, "a stale mail_dead");
        assert!(!retry(store, mail, 1, end).await, "a stale mail_retry");
    }
    assert_eq!(
        stats(store).await,
        OutboxStats {
            queued: 2,
            oldest_queued_at: Some(kept.created_at),
            dead: 0,
        },
        "both still queued, none dead"
    );
    assert_eq!(
        claim(store, end, 10).await,
        vec![],
        "both still under the second lease: the stale retry did not make them due"
    );

    // The second worker's outcomes apply.
    let retry_at = end + TimeDelta::minutes(1);
    let retried = retry(store, kept, 2, retry_at).await;
    assert!(retried, "mail_retry with the latest claim's attempts");
    let died = dead(store, given_up, 2, end).await;
    assert!(died, "mail_dead with the latest claim's attempts");
    assert_eq!(
        stats(store).await,
        OutboxStats {
            queued: 1,
            oldest_queued_at: Some(kept.created_at),
            dead: 1,
        },
        "one queued, one dead"
    );
    assert_eq!(
        claim(store, retry_at, 10).await,
        vec![attempted(kept, 3)],
        "the retried mail is claimed at its retry time, the dead one never"
    );
}

/// `mail_release` gives a claim back without counting its attempt: the mail is due at
/// once (at the release's time, not when the lease would have ended) and the next claim
/// counts that attempt again. Fenced like the others: with attempts other than the
/// mail's (a claim that is no longer the latest) it changes nothing and says so.
pub async fn a_released_mail_is_due_at_once_with_its_attempt_given_back<S: Store>(store: &S) {
    let now = fixtures::now();
    let mail = fixtures::notice(MailKind::VerifyEmail, now);
    enqueue(store, &mail).await;
    let mail = &mail.mail;
    assert_eq!(claim(store, now, 10).await, vec![attempted(mail, 1)]);

    let at = now + TimeDelta::seconds(1);
    assert!(release(store, mail, 1, at).await, "released");
    assert_eq!(
        claim(store, at, 10).await,
        vec![attempted(mail, 1)],
        "due at once, its attempt given back"
    );

    // That claim's lease ends and another claim takes the mail: the claim before it is stale.
    let end = at + LEASE;
    assert_eq!(claim(store, end, 10).await, vec![attempted(mail, 2)]);
    for attempts in [0, 1, 3] {
        let released = release(store, mail, attempts, end).await;
        assert!(
            !released,
            "released with attempts {attempts} (the mail's: 2)"
        );
    }
    assert_eq!(claim(store, end, 10).await, vec![], "still leased");
    assert!(
        release(store, mail, 2, end).await,
        "released by the latest claim"
    );
    assert_eq!(
        claim(store, end, 10).await,
        vec![attempted(mail, 2)],
        "due at once, its attempt given back"
    );
}

/// A dead mail stays as it died: `mail_retry`, `mail_dead` and `mail_release`, even with
/// the attempts of the claim that gave it up, change nothing and say so. It is never
/// claimed again, and its time of death (by which cleanup judges it) does not move.
pub async fn retry_dead_and_release_leave_a_dead_mail_as_it_is<S: Store>(store: &S) {
    let now = fixtures::now();
    let mail = fixtures::notice(MailKind::EmailChanged, now);
    enqueue(store, &mail).await;
    let mail = &mail.mail;
    assert_eq!(claim(store, now, 10).await, vec![attempted(mail, 1)]);
    let died = now + TimeDelta::seconds(1);
    assert!(dead(store, mail, 1, died).await, "setup: dead");

    let later = died + TimeDelta::minutes(1);
    assert!(!retry(store, mail, 1, now).await, "mail_retry");
    assert!(!dead(store, mail, 1, later).await, "mail_dead");
    assert!(!release(store, mail, 1, now).await, "mail_release");
    let expected = OutboxStats {
        queued: 0,
        oldest_queued_at: None,
        dead: 1,
    };
    assert_eq!(stats(store).await, expected, "still dead");
    for at in [now, later, later + LEASE] {
        assert_eq!(claim(store, at, 10).await, vec![], "never claimed: {at}");
    }
    // Dead since `died`, before `later`: a cleanup whose cutoff is `later` deletes it.
    let report = store
        .cleanup(
            later + DEAD_MAIL_RETENTION,
            now,
            chrono::DateTime::UNIX_EPOCH,
        )
        .await
        .must("cleanup");
    assert_eq!(
        report,
        CleanupReport {
            dead_mails: 1,
            ..CleanupReport::default()
        },
        "dead since the first mail_dead"
    );
}

/// `outbox_stats` counts queued mails (due or not, claimed or not), gives the creation
/// time of the oldest of them, and counts dead mails; an empty outbox gives zeros.
pub async fn outbox_stats_count_queued_and_dead_mails_and_tell_the_oldest_queued<S: Store>(
    store: &S,
) {
    assert_eq!(stats(store).await, OutboxStats::default(), "empty");
    let now = fixtures::now();
    let mails: Vec<Outgoing> = (1..=3)
        .rev()
        .map(|m| fixtures::notice(MailKind::PasswordChanged, now - TimeDelta::minutes(m)))
        .collect();
    let later = fixtures::notice(MailKind::PasswordChanged, now + TimeDelta::hours(1));
    for mail in mails.iter().chain([&later]) {
        enqueue(store, mail).await;
    }
    assert_eq!(
        stats(store).await,
        OutboxStats {
            queued: 4,
            oldest_queued_at: Some(mails[0].mail.created_at),
            dead: 0,
        },
        "all queued, the one not yet due too"
    );

    let oldest = claim(store, now, 1).await;
    assert_eq!(oldest, vec![attempted(&mails[0].mail, 1)], "setup");
    assert!(dead(store, &mails[0].mail, 1, now).await, "setup: dead");
    let claimed = claim(store, now, 1).await;
    assert_eq!(claimed, vec![attempted(&mails[1].mail, 1)], "setup");
    assert_eq!(
        stats(store).await,
        OutboxStats {
            queued: 3,
            oldest_queued_at: Some(mails[1].mail.created_at),
            dead: 1,
        },
        "a claimed mail is still queued; the dead one is not"
    );
}

/// A mail queued with its link's token writes the token too: it is found, unused.
pub async fn enqueueing_a_mail_with_a_link_writes_its_token<S: Store>(store: &S) {
    let user = new_user(store).await;
    let now = fixtures::now();
    let mail = fixtures::link_mail(
        user.id,
        OneTimeKind::ResetPassword,
        MailKind::ResetPassword,
        now,
    );
    enqueue(store, &mail).await;

    let token = mail.token.clone().must("a link mail has a token");
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(found.must("find_one_time"), Some(token), "the token");
    assert_eq!(
        claim(store, now, 10).await,
        vec![attempted(&mail.mail, 1)],
        "the mail"
    );
}

/// A registration writes its mail and the mail's token with the account; a registration
/// refused with `Taken` (username or email) writes neither.
pub async fn a_registration_writes_its_mail_unless_it_is_refused<S: Store>(store: &S) {
    let now = fixtures::now();
    let first = fixtures::user().build();
    let welcome = fixtures::link_mail(
        first.id,
        OneTimeKind::VerifyEmail,
        MailKind::VerifyEmail,
        now,
    );
    store
        .insert_user(&first, Some(&welcome))
        .await
        .must("insert_user with its mail");
    let token = welcome.token.clone().must("a link mail has a token");
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(found.must("find_one_time"), Some(token), "the token");
    assert_eq!(
        claim(store, now, 10).await,
        vec![attempted(&welcome.mail, 1)],
        "the mail"
    );

    let same_name = fixtures::user().username(&first.username).build();
    let same_email = fixtures::user()
        .email_index(first.email_index.clone())
        .build();
    for (user, which) in [(same_name, Taken::Username), (same_email, Taken::Email)] {
        let mail = fixtures::link_mail(
            user.id,
            OneTimeKind::VerifyEmail,
            MailKind::VerifyEmail,
            now,
        );
        match store.insert_user(&user, Some(&mail)).await {
            Err(StoreError::Taken(found)) if found == which => {}
            other => panic!("expected Err(Taken({which:?})), got {other:?}"),
        }
        let token = mail.token.clone().must("a link mail has a token");
        let found = store.find_one_time(&token.hash, token.kind).await;
        assert_eq!(found.must("find_one_time"), None, "no token: {which:?}");
    }
    let far = now + TimeDelta::days(1);
    assert_eq!(
        stats(store).await.queued,
        1,
        "only the first registration's mail"
    );
    assert_eq!(
        claim(store, far, 10).await,
        vec![attempted(&welcome.mail, 2)]
    );
}

/// Changes refused (`NotFound`, `Taken`) and the deletion of a missing account write no
/// mail and no token.
pub async fn refused_changes_write_no_mail<S: Store>(store: &S) {
    let now = fixtures::now();
    let nobody = UserId(Uuid::now_v7());
    let user = new_user(store).await;
    let other = new_user(store).await;
    let notice = |kind| fixtures::notice(kind, now);

    let changes = ProfileChanges {
        name_sealed: Some(fixtures::sealed("name")),
        ..ProfileChanges::default()
    };
    let result = store
        .update_profile(nobody, &changes, now, Some(&notice(MailKind::ChangeEmail)))
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "update_profile of a missing account: {result:?}"
    );
    let hash = PasswordHash(unique("$2b$04$new"));
    let result = store
        .set_password(
            nobody,
            &hash,
            now,
            Some(&notice(MailKind::PasswordChanged)),
            None,
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "set_password of a missing account: {result:?}"
    );
    let (index, sealed) = (fixtures::blind_index(), fixtures::sealed("email"));
    let result = store
        .apply_email_change(
            nobody,
            &index,
            &sealed,
            now,
            Some(&notice(MailKind::EmailChanged)),
            None,
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "apply_email_change of a missing account: {result:?}"
    );
    let deleted = store
        .delete_user(nobody, Some(&notice(MailKind::AccountDeleted)), None)
        .await;
    assert!(!deleted.must("delete_user"), "a missing account");

    // Refused with Taken, with a link mail (and its token) for an account that exists.
    let rename = ProfileChanges {
        username: Some((other.username.clone(), other.username_normalized.clone())),
        pending_email_sealed: Some(fixtures::sealed("pending")),
        ..ProfileChanges::default()
    };
    let link = fixtures::link_mail(
        user.id,
        OneTimeKind::ChangeEmail,
        MailKind::ChangeEmail,
        now,
    );
    let result = store
        .update_profile(user.id, &rename, now, Some(&link))
        .await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Username))),
        "a rename onto a taken username: {result:?}"
    );
    let token = link.token.clone().must("a link mail has a token");
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(found.must("find_one_time"), None, "no token");
    let result = store
        .apply_email_change(
            user.id,
            &other.email_index,
            &sealed,
            now,
            Some(&notice(MailKind::EmailChanged)),
            None,
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Taken(Taken::Email))),
        "an email change onto a taken email: {result:?}"
    );

    let far = now + TimeDelta::days(1);
    assert_empty(stats(store).await, claim(store, far, 10).await, "refused");
}

/// Each change that succeeds writes its mail (and its link's token) with it: a profile
/// change, a new password, an email change; the notice of a deletion survives the
/// deletion, while the account's tokens go with it.
pub async fn changes_write_their_mail_with_them<S: Store>(store: &S) {
    let now = fixtures::now();
    let user = new_user(store).await;

    let changes = ProfileChanges {
        pending_email_sealed: Some(fixtures::sealed("pending")),
        ..ProfileChanges::default()
    };
    let link = fixtures::link_mail(
        user.id,
        OneTimeKind::ChangeEmail,
        MailKind::ChangeEmail,
        now - TimeDelta::seconds(4),
    );
    let updated = store
        .update_profile(user.id, &changes, now, Some(&link))
        .await
        .must("update_profile with its mail");
    assert_eq!(updated.pending_email_sealed, changes.pending_email_sealed);
    let token = link.token.clone().must("a link mail has a token");
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(found.must("find_one_time").as_ref(), Some(&token), "token");

    let password = fixtures::notice(MailKind::PasswordChanged, now - TimeDelta::seconds(3));
    let hash = PasswordHash(unique("$2b$04$new"));
    store
        .set_password(user.id, &hash, now, Some(&password), None)
        .await
        .must("set_password with its mail");
    let email = fixtures::notice(MailKind::EmailChanged, now - TimeDelta::seconds(2));
    let (index, sealed) = (fixtures::blind_index(), fixtures::sealed("email"));
    store
        .apply_email_change(user.id, &index, &sealed, now, Some(&email), None)
        .await
        .must("apply_email_change with its mail");
    let found = store.user_by_id(user.id).await.must("user_by_id");
    let found = found.must("stored");
    assert_eq!((found.password_hash, found.email_index), (hash, index));

    let deleted = fixtures::notice(MailKind::AccountDeleted, now - TimeDelta::seconds(1));
    assert!(
        store
            .delete_user(user.id, Some(&deleted), None)
            .await
            .must("delete_user with its mail")
    );
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(
        found.must("find_one_time"),
        None,
        "the account's token goes"
    );

    let expected: Vec<OutboxMail> = [&link, &password, &email, &deleted]
        .into_iter()
        .map(|m| attempted(&m.mail, 1))
        .collect();
    assert_eq!(
        sorted(claim(store, now, 10).await),
        sorted(expected),
        "every mail, the deletion notice included"
    );
}

/// Of four workers claiming batches of three at once, in a loop until nothing is left,
/// forty queued mails are each claimed exactly once.
pub async fn of_four_workers_claiming_forty_mails_each_mail_is_claimed_once<S: Store>(store: &S) {
    let now = fixtures::now();
    let mails: Vec<Outgoing> = (0..40)
        .map(|i| fixtures::notice(MailKind::ALL[i % 8], now - TimeDelta::seconds(60)))
        .collect();
    for mail in &mails {
        enqueue(store, mail).await;
    }

    let batches = race(4, |_| async {
        let mut mine = Vec::new();
        loop {
            let batch = claim(store, now, 3).await;
            if batch.is_empty() {
                return mine;
            }
            mine.extend(batch);
        }
    });
    let claimed: Vec<OutboxMail> = batches.into_iter().flatten().collect();
    let expected: Vec<OutboxMail> = mails.iter().map(|m| attempted(&m.mail, 1)).collect();
    assert_eq!(claimed.len(), 40, "forty claims in all");
    assert_eq!(sorted(claimed), sorted(expected), "each mail exactly once");
    assert_eq!(stats(store).await.queued, 40, "all still queued (leased)");
}

/// A change whose mail cannot be written (its id is already used) fails and changes
/// nothing: the account, the token and the mail are written together or not at all.
pub async fn a_change_whose_mail_cannot_be_written_changes_nothing<S: Store>(store: &S) {
    let now = fixtures::now();
    let queued = fixtures::notice(MailKind::AccountLocked, now);
    enqueue(store, &queued).await;
    // A link mail (with a fresh token) whose id is that of the queued mail.
    let clash = |user| {
        let mut outgoing =
            fixtures::link_mail(user, OneTimeKind::VerifyEmail, MailKind::VerifyEmail, now);
        outgoing.mail.id = queued.mail.id;
        outgoing
    };

    let user = fixtures::user().build();
    let mail = clash(user.id);
    let result = store.insert_user(&user, Some(&mail)).await;
    assert!(result.is_err(), "insert_user: {result:?}");
    assert!(
        !matches!(result, Err(StoreError::Taken(_))),
        "not a taken username or email: {result:?}"
    );
    assert_eq!(
        store.user_by_id(user.id).await.must("user_by_id"),
        None,
        "the account is not stored"
    );
    let token = mail.token.clone().must("a link mail has a token");
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(found.must("find_one_time"), None, "nor the token");

    let user = insert(store, fixtures::user().build()).await;
    let hash = PasswordHash(unique("$2b$04$new"));
    let mail = clash(user.id);
    let result = store
        .set_password(user.id, &hash, now, Some(&mail), None)
        .await;
    assert!(result.is_err(), "set_password: {result:?}");
    let found = store.user_by_id(user.id).await.must("user_by_id");
    assert_eq!(found.as_ref(), Some(&user), "the password is not changed");
    let token = mail.token.clone().must("a link mail has a token");
    let found = store.find_one_time(&token.hash, token.kind).await;
    assert_eq!(found.must("find_one_time"), None, "nor the token written");

    assert_eq!(
        claim(store, now, 10).await,
        vec![attempted(&queued.mail, 1)],
        "only the mail queued first"
    );
}
