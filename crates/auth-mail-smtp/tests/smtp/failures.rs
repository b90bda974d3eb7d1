//! Refusals and outages, as the outbox worker sees them: permanent or transient, and
//! never naming the recipient.

use auth_domain::ports::{DeliveryError, MailTransport};
use auth_mail_smtp::{SmtpError, SmtpMailer, Stage};

use crate::support::*;

/// The error, its sources, Display and Debug: nothing of the recipient, the name or
/// the link.
fn assert_names_no_one(err: &DeliveryError) {
    let shown = error_chain(err);
    for secret in [RECIPIENT, "ada.lovelace", "Ada", "tok_4f9a2c"] {
        assert!(!shown.contains(secret), "{secret:?} leaked into {shown}");
    }
}

fn smtp_error(err: &DeliveryError) -> &SmtpError {
    let inner = match err {
        DeliveryError::Transient(inner) | DeliveryError::Permanent(inner) => inner,
    };
    inner
        .downcast_ref::<SmtpError>()
        .expect("an SmtpError inside")
}

#[tokio::test]
async fn a_recipient_refused_with_550_is_a_permanent_failure() {
    let server = TestServer::with(Behavior {
        refuse: Some((550, RECIPIENT)),
        ..Behavior::default()
    });
    let mailer = SmtpMailer::new(server.config()).unwrap();

    let err = mailer.send(&verify_mail()).await.unwrap_err();

    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    assert!(matches!(
        smtp_error(&err),
        SmtpError::Reply {
            stage: Stage::RcptTo,
            code: 550
        }
    ));
    assert_names_no_one(&err);
    assert!(server.mails().is_empty());
}

#[tokio::test]
async fn a_recipient_deferred_with_451_is_a_transient_failure() {
    let server = TestServer::with(Behavior {
        refuse: Some((451, RECIPIENT)),
        ..Behavior::default()
    });
    let mailer = SmtpMailer::new(server.config()).unwrap();

    let err = mailer.send(&verify_mail()).await.unwrap_err();

    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert!(matches!(
        smtp_error(&err),
        SmtpError::Reply {
            stage: Stage::RcptTo,
            code: 451
        }
    ));
    assert_names_no_one(&err);
}

#[tokio::test]
async fn a_message_refused_with_554_after_transfer_is_a_permanent_failure() {
    let server = TestServer::with(Behavior {
        data_end_code: 554,
        ..Behavior::default()
    });
    let mailer = SmtpMailer::new(server.config()).unwrap();

    let err = mailer.send(&verify_mail()).await.unwrap_err();

    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    assert!(matches!(
        smtp_error(&err),
        SmtpError::Reply {
            stage: Stage::Message,
            code: 554
        }
    ));
    assert_names_no_one(&err);
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_failure_that_names_no_one() {
    let mailer =
        SmtpMailer::new(config_for(closed_port(), auth_mail_smtp::Security::None)).unwrap();

    let err = mailer.send(&verify_mail()).await.unwrap_err();

    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert!(matches!(
        smtp_error(&err),
        SmtpError::Io {
            stage: Stage::Connect,
            kind: std::io::ErrorKind::ConnectionRefused
        }
    ));
    assert_names_no_one(&err);
    assert!(
        mailer.check().await.is_err(),
        "the readiness check fails too"
    );
}

#[tokio::test]
async fn after_a_refused_recipient_the_next_mail_is_delivered() {
    let server = TestServer::with(Behavior {
        refuse: Some((550, "nobody@example.org")),
        ..Behavior::default()
    });
    let mailer = SmtpMailer::new(server.config()).unwrap();

    let refused = mailer
        .send(&addressed_to(verify_mail(), "nobody@example.org"))
        .await;
    let delivered = mailer.send(&verify_mail()).await;

    assert!(
        matches!(refused, Err(DeliveryError::Permanent(_))),
        "{refused:?}"
    );
    assert!(delivered.is_ok(), "{delivered:?}");
    assert_eq!(server.only_mail().to, vec![RECIPIENT.to_owned()]);
}
