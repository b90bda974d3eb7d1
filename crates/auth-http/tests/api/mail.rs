//! Mail over real SMTP (a server started inside the test), through the durable outbox:
//! on SQLite by default, on PostgreSQL with `AUTH_TEST_STORAGE=postgres`.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{Backing, TestApp, TestResult, spawn_on};
use crate::smtp::{SmtpServer, smtp_vars};

async fn app_with(backing: &Backing, vars: &[(&'static str, String)]) -> TestApp {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_on(backing, &vars).await
}

const WAIT: Duration = Duration::from_secs(15);

#[actix_web::test]
async fn the_verification_mail_arrives_over_smtp_with_both_parts_and_a_link_that_verifies()
-> TestResult {
    // Arrange
    let smtp = SmtpServer::start();
    let app = app_with(&Backing::fresh().await, &smtp.vars()).await;

    // Act
    let res = app.register("Reader@Example.com", "reader").await;
    let messages = smtp.wait_for(1, WAIT).await;

    // Assert
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(messages.len(), 1, "exactly one mail");
    let mail = &messages[0];
    assert_eq!(mail.to, vec!["reader@example.com".to_owned()]);
    assert_eq!(mail.from, "no-reply@auth.test");
    let parsed = mail.parsed();
    assert_eq!(parsed.subject(), Some("Verify your email"));
    let from = parsed.from().and_then(|a| a.first()).ok_or("From")?;
    assert_eq!(from.address(), Some("no-reply@auth.test"));
    assert_eq!(from.name(), Some("Auth Test"));
    let to = parsed.to().and_then(|a| a.first()).ok_or("To")?;
    assert_eq!(to.address(), Some("reader@example.com"));
    let (text, html) = (mail.text(), mail.html());
    assert!(text.contains("Test"), "greets by name: {text}");
    let token = mail.token();
    let link = format!("http://app.test/verify-email?token={token}");
    assert!(text.contains(&link), "text part has the link: {text}");
    assert!(html.contains(&link), "HTML part has the link: {html}");
    assert!(!html.contains("<img"), "no tracking pixel");

    let verified = app
        .post("/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    app.login("reader").await;

    let metrics = app.get("/metrics").await;
    let text = metrics.body.as_str().unwrap_or_default();
    assert!(
        text.contains("auth_mail_sent_total{kind=\"verify_email\"}"),
        "sent mails are counted: {text}"
    );
    assert!(text.contains("auth_mail_queue_depth"), "{text}");
    let stats = app.state.service.outbox_stats().await?;
    assert_eq!(
        (stats.queued, stats.dead),
        (0, 0),
        "sent mail leaves the outbox"
    );
    Ok(())
}

#[actix_web::test]
async fn an_smtp_outage_delays_mail_without_failing_the_request_and_it_arrives_once() -> TestResult
{
    // Arrange: nothing listens on the mail port yet.
    let port = SmtpServer::free_port();
    let mut vars = smtp_vars(port);
    vars.push(("MAIL_QUEUE_WARN_AGE", "1".to_owned()));
    let app = app_with(&Backing::fresh().await, &vars).await;

    // Act: register while SMTP is down.
    let res = app.register("patient@example.com", "patient").await;
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    let stats_during = app.state.service.outbox_stats().await?;
    let health_during = app.get("/health/ready").await;

    // The server comes up on that port.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    let smtp = SmtpServer::start_on(listener);
    let arrived = smtp.wait_for(1, Duration::from_secs(30)).await;
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let stats_after = app.state.service.outbox_stats().await?;

    // The worker is restarted (as by a deploy) and polls again.
    app.stop_worker().await;
    app.restart_worker();
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;

    // Assert
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(stats_during.queued, 1, "the mail waits in the outbox");
    assert_eq!(
        health_during.status,
        StatusCode::OK,
        "{}",
        health_during.body
    );
    assert_eq!(
        health_during.body["status"], "degraded",
        "{}",
        health_during.body
    );
    assert_eq!(health_during.body["checks"]["mailer"]["status"], "warn");
    assert_eq!(health_during.body["checks"]["mailer"]["queued"], 1);
    assert_eq!(arrived.len(), 1, "the mail arrives once the server is up");
    assert_eq!(
        (stats_after.queued, stats_after.dead),
        (0, 0),
        "a sent mail leaves the outbox, so no worker can send it again"
    );
    assert_eq!(
        smtp.messages().len(),
        1,
        "no duplicate after a worker restart"
    );
    let verified = app
        .post(
            "/auth/verify-email",
            &json!({ "token": arrived[0].token() }),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    let health_after = app.get("/health/ready").await;
    assert_eq!(health_after.body["status"], "ok", "{}", health_after.body);
    let metrics = app.get("/metrics").await;
    let text = metrics.body.as_str().unwrap_or_default();
    assert!(
        text.contains("auth_mail_failed_total{kind=\"verify_email\"}"),
        "failed attempts are counted: {text}"
    );
    Ok(())
}

#[actix_web::test]
async fn two_instances_on_one_database_send_each_mail_exactly_once() -> TestResult {
    // Arrange: two instances on one database, their workers stopped while mail piles up.
    let smtp = SmtpServer::start();
    let backing = Backing::fresh().await;
    let one = app_with(&backing, &smtp.vars()).await;
    let two = app_with(&backing, &smtp.vars()).await;
    one.stop_worker().await;
    two.stop_worker().await;
    let n = 24;
    for i in 0..n {
        let app = if i % 2 == 0 { &one } else { &two };
        let res = app
            .register(&format!("user{i}@example.com"), &format!("user{i}"))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
    assert_eq!(one.state.service.outbox_stats().await?.queued, n as u64);

    // Act: both workers start at once and race for the same mails.
    one.restart_worker();
    two.restart_worker();
    let arrived = smtp.wait_for(n, Duration::from_secs(60)).await;
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;

    // Assert
    assert_eq!(arrived.len(), n, "every mail arrives");
    let all = smtp.messages();
    assert_eq!(all.len(), n, "and none twice");
    for i in 0..n {
        assert_eq!(
            smtp.to(&format!("user{i}@example.com")).len(),
            1,
            "user{i} gets exactly one mail"
        );
    }
    let stats = one.state.service.outbox_stats().await?;
    assert_eq!((stats.queued, stats.dead), (0, 0));
    Ok(())
}

#[actix_web::test]
async fn a_password_reset_mail_over_smtp_carries_a_link_that_resets_the_password() -> TestResult {
    // Arrange
    let smtp = SmtpServer::start();
    let app = app_with(&Backing::fresh().await, &smtp.vars()).await;
    let res = app.register("forgetful@example.com", "forgetful").await;
    assert_eq!(res.status, StatusCode::CREATED);
    smtp.wait_for(1, WAIT).await;

    // Act
    let res = app
        .post(
            "/auth/forgot-password",
            &json!({ "email": "forgetful@example.com" }),
        )
        .await;
    let messages = smtp.wait_for(2, WAIT).await;

    // Assert
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let reset = messages.get(1).ok_or("no reset mail")?;
    assert_eq!(reset.parsed().subject(), Some("Reset your password"));
    let token = reset.token();
    assert!(
        reset
            .text()
            .contains(&format!("http://app.test/reset-password?token={token}"))
    );
    let done = app
        .post(
            "/auth/reset-password",
            &json!({ "token": token, "new_password": "Violet-Harbor-Quasar-2049" }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let notices = smtp.wait_for(3, WAIT).await;
    let changed = notices.get(2).ok_or("no password-changed notice")?;
    assert_eq!(
        changed.parsed().subject(),
        Some("Your password was changed")
    );
    assert!(
        !changed.text().contains("token="),
        "a notice carries no token"
    );
    Ok(())
}
