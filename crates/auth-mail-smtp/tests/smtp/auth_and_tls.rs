//! STARTTLS, implicit TLS and logins.

use auth_domain::ports::{DeliveryError, MailTransport};
use auth_mail_smtp::{Security, SmtpError, SmtpMailer};
use mailin_embedded::AuthMechanism;

use crate::support::*;

fn tls_server(auth: Vec<AuthMechanism>) -> TestServer {
    TestServer::with(Behavior {
        starttls: true,
        auth,
        ..Behavior::default()
    })
}

fn starttls_config(server: &TestServer) -> auth_mail_smtp::SmtpConfig {
    let mut config = config_for(server.addr, Security::StartTls);
    config.allow_invalid_certs = true;
    config
}

#[tokio::test]
async fn with_the_right_login_over_starttls_the_mail_is_delivered() {
    for mechanism in [AuthMechanism::Plain, AuthMechanism::Login] {
        let server = tls_server(vec![mechanism.clone()]);
        let mailer = SmtpMailer::new(with_login(starttls_config(&server), PASSWORD)).unwrap();

        let sent = mailer.send(&verify_mail()).await;

        assert!(sent.is_ok(), "{mechanism:?}: {sent:?}");
        assert_eq!(server.logins(), 1, "{mechanism:?}");
        assert_eq!(server.mails().len(), 1, "{mechanism:?}");
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_transient_failure() {
    let server = tls_server(vec![AuthMechanism::Plain]);
    let mailer = SmtpMailer::new(with_login(starttls_config(&server), "wrong")).unwrap();

    let err = mailer.send(&verify_mail()).await.unwrap_err();

    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    let shown = error_chain(&err);
    assert!(shown.contains("535"), "{shown}");
    assert!(!shown.contains("wrong"), "{shown}");
    assert!(server.mails().is_empty());
}

#[tokio::test]
async fn the_readiness_check_logs_in_and_reports_a_refused_login() {
    let server = tls_server(vec![AuthMechanism::Login]);
    let good = SmtpMailer::new(with_login(starttls_config(&server), PASSWORD)).unwrap();
    let bad = SmtpMailer::new(with_login(starttls_config(&server), "wrong")).unwrap();

    assert!(good.check().await.is_ok());
    assert!(matches!(
        bad.check().await,
        Err(SmtpError::AuthRejected { code: 535 })
    ));
    assert_eq!(server.logins(), 1);
    assert!(server.mails().is_empty(), "a check sends nothing");
}

#[tokio::test]
async fn starttls_delivers_without_a_login() {
    let server = tls_server(Vec::new());
    let mailer = SmtpMailer::new(starttls_config(&server)).unwrap();

    mailer.send(&verify_mail()).await.unwrap();
    mailer.send(&verify_mail()).await.unwrap();

    assert_eq!(server.mails().len(), 2);
}

#[tokio::test]
async fn a_certificate_that_cannot_be_verified_is_refused() {
    let server = tls_server(Vec::new());
    let mut config = starttls_config(&server);
    config.allow_invalid_certs = false;
    let mailer = SmtpMailer::new(config).unwrap();

    let err = mailer.send(&verify_mail()).await.unwrap_err();

    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert!(
        error_chain(&err).contains("TLS handshake failed"),
        "{err:?}"
    );
    assert!(
        server.mails().is_empty(),
        "nothing sent to an unverified server"
    );
}

#[tokio::test]
async fn starttls_not_offered_is_a_transient_failure() {
    let server = TestServer::start();
    let mailer = SmtpMailer::new(starttls_config(&server)).unwrap();

    let err = mailer.send(&verify_mail()).await.unwrap_err();

    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert!(error_chain(&err).contains("STARTTLS"));
    assert!(server.mails().is_empty(), "nothing sent in the clear");
}

#[tokio::test]
async fn implicit_tls_delivers_through_a_tls_front() {
    // mailin-embedded speaks STARTTLS only: a TLS-terminating relay stands in front.
    let server = TestServer::start();
    let front = Relay::start_with(server.addr, Some(tls_acceptor())).await;
    let mut config = config_for(front.addr, Security::ImplicitTls);
    config.allow_invalid_certs = true;
    let mailer = SmtpMailer::new(config).unwrap();

    mailer.send(&verify_mail()).await.unwrap();

    assert_eq!(server.mails().len(), 1);
}
