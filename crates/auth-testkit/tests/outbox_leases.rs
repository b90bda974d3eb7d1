//! The mail of a worker that died: it waits one short lease (30 s), not minutes, for
//! another worker; a service restarted on a store that one process owns (SQLite) sends
//! it at once; and a worker that lives keeps its mails by renewing their leases. Over the
//! embedded adapters, with a clock the tests move by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use auth_domain::ClientContext;
use auth_domain::model::MailKind;
use auth_domain::policy::Policy;
use auth_domain::ports::{Clock as _, OutboxStore as _};
use auth_domain::service::Leases;
use auth_testkit::{Harness, harness, registration};
use chrono::TimeDelta;

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";

/// A service with two verification mails queued, claimed by a worker that then vanished
/// (killed before it delivered or gave them back).
async fn claimed_by_a_vanished_worker() -> Harness {
    let h = harness(Policy::default()).await;
    h.service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();
    h.service
        .register(registration(BOB, "bob"), &ClientContext::default())
        .await
        .unwrap();
    let lease = h.service.policy().outbox.lease;
    let now = h.clock.now();
    let claimed = h.service.ports().store.claim_mail(now, lease, 10).await;
    assert_eq!(claimed.unwrap().len(), 2, "the vanished worker's claim");
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mails_of_a_worker_that_vanished_go_out_once_the_short_lease_ends() {
    // Arrange
    let h = claimed_by_a_vanished_worker().await;
    let before = h.service.deliver_mail(10).await.unwrap();

    // Act: another worker, 30 seconds later.
    h.clock.advance(TimeDelta::seconds(30));
    let after = h.service.deliver_mail(10).await.unwrap();

    // Assert
    assert!(before.is_empty(), "held while the lease runs: {before:?}");
    assert_eq!(after.sent(), 2, "{after:?}");
    assert_eq!(h.mailbox.delivered.to(ADA, MailKind::VerifyEmail).len(), 1);
    assert_eq!(h.mailbox.delivered.to(BOB, MailKind::VerifyEmail).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_service_on_a_store_one_process_owns_sends_a_dead_workers_mails_at_once() {
    // Arrange
    let h = claimed_by_a_vanished_worker().await;

    // Act: the service starts again (no time passes).
    let released = h.service.release_mail_leases().await.unwrap();
    let report = h.service.deliver_mail(10).await.unwrap();

    // Assert
    assert_eq!(released, 2);
    assert_eq!(report.sent(), 2, "{report:?}");
    assert!(
        report.mails.iter().all(|m| m.attempts == 2),
        "the dead worker's attempt still counts: {report:?}"
    );
    let stats = h.service.outbox_stats().await.unwrap();
    assert_eq!((stats.queued, stats.dead), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_outlasts_its_lease_renews_it_and_delivers_every_mail_it_claimed() {
    // Arrange: three mails; each delivery "takes" 25 s of the clock (longer than the
    // renewal period, 10 s, and together far longer than the lease, 30 s).
    let h = harness(Policy::default()).await;
    for (email, name) in [(ADA, "ada"), (BOB, "bob"), ("cyd@example.com", "cyd")] {
        h.service
            .register(registration(email, name), &ClientContext::default())
            .await
            .unwrap();
    }
    let leases = Leases::default();
    let clock = h.clock.clone();

    // Act
    let report = h
        .service
        .deliver_batch(
            10,
            move || {
                clock.advance(TimeDelta::seconds(25));
                false
            },
            &leases,
        )
        .await
        .unwrap();

    // Assert
    assert_eq!((report.sent(), report.released, report.lost), (3, 0, 0));
    assert!(report.mails.iter().all(|m| m.attempts == 1), "{report:?}");
    assert!(leases.is_empty(), "every claim finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_renewing_its_lease_keeps_other_workers_away_from_the_mail_it_delivers() {
    // Arrange: worker A's batch holds the mail and pauses (its delivery "under way")
    // until told to go on.
    let h = harness(Policy::default()).await;
    h.service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();
    let leases = Arc::new(Leases::default());
    let (claimed_tx, claimed_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let paused = AtomicBool::new(false);
    let worker_a = {
        let (service, leases) = (Arc::clone(&h.service), Arc::clone(&leases));
        tokio::spawn(async move {
            let stop = move || {
                if !paused.swap(true, Ordering::SeqCst) {
                    let _ = claimed_tx.send(());
                    let _ = go_rx.recv();
                }
                false
            };
            service.deliver_batch(10, stop, &leases).await
        })
    };
    tokio::task::spawn_blocking(move || claimed_rx.recv())
        .await
        .unwrap()
        .unwrap();

    // Act: A renews 20 s after its claim; 40 s after it (past the first lease) worker B
    // looks for due mail; then A goes on.
    h.clock.advance(TimeDelta::seconds(20));
    h.service.renew_mail_leases(&leases).await.unwrap();
    h.clock.advance(TimeDelta::seconds(20));
    let worker_b = h.service.deliver_mail(10).await.unwrap();
    go_tx.send(()).unwrap();
    let worker_a = worker_a.await.unwrap().unwrap();

    // Assert
    assert!(
        worker_b.is_empty(),
        "B found the mail still leased: {worker_b:?}"
    );
    assert_eq!(worker_a.sent(), 1, "{worker_a:?}");
    assert_eq!(
        h.mailbox.delivered.to(ADA, MailKind::VerifyEmail).len(),
        1,
        "sent once"
    );
}
