//! Templates from a directory override the built-in ones; a broken one stops startup.

use auth_domain::ports::MailTransport;
use auth_mail_smtp::{SmtpError, SmtpMailer};

use crate::support::*;

#[tokio::test]
async fn a_template_in_the_templates_dir_changes_the_subject() {
    let server = TestServer::start();
    let (_dir, path) = templates_dir(&[(
        "verify_email.subject.txt",
        "Welcome to {{ product }}: confirm your address",
    )]);
    let mut config = server.config();
    config.templates_dir = Some(path);
    config.product_name = "Acme".to_owned();
    let mailer = SmtpMailer::new(config).unwrap();

    mailer.send(&verify_mail()).await.unwrap();

    let received = server.only_mail();
    let message = received.parsed();
    assert_eq!(
        message.subject(),
        Some("Welcome to Acme: confirm your address")
    );
    let text = message.body_text(0).unwrap();
    assert!(text.contains(LINK), "the body is still the built-in one");
    assert!(text.contains("your Acme account"), "{text}");
}

#[test]
fn a_broken_template_stops_the_mailer_from_being_built() {
    let cases = [
        ("verify_email.html", "{% if %}broken", "syntax error"),
        (
            "reset_password.txt",
            "Hello {{ nmae }}",
            "misspelt variable",
        ),
        (
            "layout.html",
            "{{ name | no_such_filter }}",
            "unknown filter",
        ),
        (
            "account_locked.txt",
            "{% extends \"missing.txt\" %}",
            "missing layout",
        ),
    ];
    for (file, source, why) in cases {
        let (_dir, path) = templates_dir(&[(file, source)]);
        let mut config = config_for(closed_port(), auth_mail_smtp::Security::None);
        config.templates_dir = Some(path);

        let built = SmtpMailer::new(config);

        assert!(
            matches!(built, Err(SmtpError::Template { .. })),
            "{why}: {built:?}"
        );
    }
}

#[test]
fn a_missing_templates_dir_stops_the_mailer_from_being_built() {
    let mut config = config_for(closed_port(), auth_mail_smtp::Security::None);
    config.templates_dir = Some("/nonexistent/auth-mail-templates".into());

    assert!(matches!(
        SmtpMailer::new(config),
        Err(SmtpError::TemplateFile { .. })
    ));
}
