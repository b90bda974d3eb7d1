//! What the recipient gets.

use auth_domain::model::MailKind;
use auth_domain::ports::MailTransport;
use auth_mail_smtp::SmtpMailer;
use mail_parser::MimeHeaders;

use crate::support::*;

#[tokio::test]
async fn a_verification_mail_arrives_with_its_envelope_headers_and_both_parts() {
    let server = TestServer::start();
    let mailer = SmtpMailer::new(server.config()).unwrap();

    mailer.send(&verify_mail()).await.unwrap();

    let received = server.only_mail();
    assert_eq!(received.from, SENDER_ADDRESS, "envelope sender");
    assert_eq!(
        received.to,
        vec![RECIPIENT.to_owned()],
        "envelope recipient"
    );
    let message = received.parsed();
    let from = message.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.address(), Some(SENDER_ADDRESS));
    assert_eq!(from.name(), Some("Example Auth"));
    let to = message.to().and_then(|a| a.first()).unwrap();
    assert_eq!(to.address(), Some(RECIPIENT));
    assert_eq!(to.name(), Some("Ada"), "the recipient's name is shown");
    assert_eq!(message.subject(), Some("Verify your email"));
    assert!(message.date().is_some(), "Date header");
    assert!(
        message
            .message_id()
            .is_some_and(|id| id.ends_with("@example.com")),
        "Message-ID at the sender's domain: {:?}",
        message.message_id()
    );
    assert_eq!(
        message.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    let content_type = message.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("alternative"))
    );

    let text_part = message.text_part(0).unwrap();
    let text_type = text_part.content_type().unwrap();
    assert_eq!(
        (text_type.ctype(), text_type.subtype()),
        ("text", Some("plain"))
    );
    let text = message.body_text(0).unwrap();
    assert!(text.starts_with("Hello Ada,"), "greets by name: {text}");
    assert!(text.contains(LINK), "the link is in the text: {text}");
    assert!(text.contains("If you did not create an account"), "{text}");

    let html = message.body_html(0).unwrap();
    assert!(html.contains("Hello Ada,"), "{html}");
    assert!(
        html.contains(&format!("href=\"{LINK}\"")),
        "the link is a link: {html}"
    );
    for remote in ["<img", "<link", "<script", "src=", "url("] {
        assert!(
            !html.contains(remote),
            "nothing loads from elsewhere ({remote})"
        );
    }
}

#[tokio::test]
async fn every_kind_renders_with_and_without_a_name_and_a_link() {
    let server = TestServer::start();
    let mailer = SmtpMailer::new(server.config()).unwrap();
    let variants = [(Some("Ada"), Some(LINK)), (None, None)];

    for kind in MailKind::ALL {
        for (name, link) in variants {
            mailer.send(&mail(kind, name, link)).await.unwrap();
        }
    }

    let mails = server.mails();
    assert_eq!(mails.len(), MailKind::ALL.len() * variants.len());
    let expected = MailKind::ALL
        .iter()
        .flat_map(|kind| variants.iter().map(move |variant| (*kind, *variant)));
    for (received, (kind, (name, link))) in mails.iter().zip(expected) {
        let case = format!("{kind:?} name={name:?} link={}", link.is_some());
        let message = received.parsed();
        assert_eq!(message.subject(), Some(kind.subject()), "{case}");
        let text = message.body_text(0).unwrap();
        let html = message.body_html(0).unwrap();
        let greeting = match name {
            Some(name) => format!("Hello {name},"),
            None => "Hello,".to_owned(),
        };
        assert!(text.starts_with(&greeting), "{case}: {text}");
        assert!(html.contains(&greeting), "{case}: {html}");
        for body in [&text, &html] {
            assert_eq!(body.contains(LINK), link.is_some(), "{case}: {body}");
            assert!(body.contains("Auth"), "{case}: names the product");
        }
        assert!(
            !text.lines().any(|line| line.trim() == "none"),
            "{case}: an absent value printed: {text}"
        );
        assert!(
            !html.contains(">none<") && !html.contains("\"none\""),
            "{case}: an absent value printed: {html}"
        );
    }
}

#[tokio::test]
async fn the_html_part_escapes_a_hostile_name() {
    let server = TestServer::start();
    let mailer = SmtpMailer::new(server.config()).unwrap();
    let hostile = "<script>alert(1)</script> & \"Ada\"";

    mailer
        .send(&mail(MailKind::PasswordChanged, Some(hostile), None))
        .await
        .unwrap();

    let received = server.only_mail();
    let message = received.parsed();
    let html = message.body_html(0).unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("Hello &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Ada&quot;,"),
        "{html}"
    );
    let text = message.body_text(0).unwrap();
    assert!(
        text.starts_with(&format!("Hello {hostile},")),
        "plain text as typed: {text}"
    );
    let to = message.to().and_then(|a| a.first()).unwrap();
    assert_eq!(to.name(), Some(hostile), "the To name survives encoding");
}

#[tokio::test]
async fn a_line_break_in_the_name_adds_no_header_and_no_recipient() {
    let server = TestServer::start();
    let mailer = SmtpMailer::new(server.config()).unwrap();

    mailer
        .send(&mail(
            MailKind::AccountLocked,
            Some("Ada\r\nBcc: mallory@example.net"),
            None,
        ))
        .await
        .unwrap();

    let received = server.only_mail();
    assert_eq!(received.to, vec![RECIPIENT.to_owned()]);
    let message = received.parsed();
    assert!(message.bcc().is_none());
    assert_eq!(message.to().map(|to| to.iter().count()), Some(1));
    let raw = String::from_utf8_lossy(&received.data);
    let (headers, _) = raw.split_once("\r\n\r\n").unwrap();
    assert!(!headers.contains("\nBcc:"), "no Bcc header line: {headers}");
    let text = message.body_text(0).unwrap();
    assert!(
        text.starts_with("Hello Ada Bcc: mallory@example.net,"),
        "the name stays on the greeting's line: {text}"
    );
}
