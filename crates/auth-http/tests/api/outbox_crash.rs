//! Mail claimed by a worker that died (killed before it delivered or gave it back) does
//! not wait minutes: on SQLite the restarted service sends it at once; on a database that
//! instances share, another instance sends it once the dead worker's short lease ends.
//! The dead worker is played by a claim made through the store, never finished.

use std::time::{Duration, Instant};

use auth_domain::model::MailKind;
use auth_domain::ports::OutboxStore as _;
use awc::http::StatusCode;

use crate::helpers::{Backing, TestApp, TestResult, on_postgres, spawn_on};

/// Waits (up to 20 s) until `app`'s worker has delivered a verification mail to `email`.
async fn delivered(app: &TestApp, email: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if app.inbox.last(email, MailKind::VerifyEmail).is_some() {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Registers `email` on `app`, whose worker is stopped, and claims its mail as a worker
/// that then died would have, `ago` before now.
async fn claimed_by_a_dead_worker(
    app: &TestApp,
    email: &str,
    ago: chrono::TimeDelta,
) -> TestResult {
    app.stop_worker().await;
    let res = app
        .register(email, email.split('@').next().unwrap_or("user"))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    // Claimed `ago` with the service's lease: due when that lease ends. (A claim "in the
    // past" would not find the mail, queued just now, due.)
    let lease = app.state.service.policy().outbox.lease;
    let claimed = app
        .state
        .service
        .ports()
        .store
        .claim_mail(chrono::Utc::now(), lease - ago, 10)
        .await?;
    assert_eq!(claimed.len(), 1, "the dead worker's claim");
    Ok(())
}

#[actix_web::test]
async fn after_a_crash_the_restarted_service_sends_the_mail_its_worker_had_claimed_at_once()
-> TestResult {
    if on_postgres() {
        eprintln!("SKIPPED: one process owns the data on SQLite only (see the next test)");
        return Ok(());
    }
    // Arrange
    let backing = Backing::fresh().await;
    let before = spawn_on(&backing, &[]).await;
    claimed_by_a_dead_worker(&before, "crashed@example.com", chrono::TimeDelta::zero()).await?;

    // Act: the service starts again on the same file.
    let after = spawn_on(&backing, &[]).await;

    // Assert
    assert!(
        delivered(&after, "crashed@example.com").await,
        "the claimed mail did not go out within 20 s of the restart"
    );
    Ok(())
}

#[actix_web::test]
async fn on_a_shared_database_another_instance_sends_a_dead_workers_mail_when_its_short_lease_ends()
-> TestResult {
    if !on_postgres() {
        eprintln!("SKIPPED: runs with AUTH_TEST_STORAGE=postgres (.ci/run does)");
        return Ok(());
    }
    // Arrange: the dead worker claimed the mail 29 s ago.
    let backing = Backing::fresh().await;
    let dead = spawn_on(&backing, &[]).await;
    claimed_by_a_dead_worker(&dead, "orphan@example.com", chrono::TimeDelta::seconds(29)).await?;

    // Act: another instance's worker polls every second.
    let other = spawn_on(&backing, &[("MAIL_POLL_INTERVAL", "1")]).await;

    // Assert
    assert!(
        delivered(&other, "orphan@example.com").await,
        "the dead worker's mail did not go out within 20 s"
    );
    Ok(())
}
