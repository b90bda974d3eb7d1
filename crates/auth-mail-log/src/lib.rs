//! Mailers without a mail server.
//!
//! - [`LogMailer`]: development only. Writes each mail, with its link, to the log (target
//!   `auth_mail`). It is the one place where a token may appear in a log; the recipient is
//!   masked.
//! - [`MemoryMailbox`]: keeps mails in memory, for tests and for embedders that deliver
//!   mail themselves.
#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex, PoisonError};

use auth_domain::model::{Mail, MailKind};
use auth_domain::ports::{MailQueue, PortError};
use secrecy::ExposeSecret;

/// Writes mails to the log instead of sending them.
#[derive(Debug, Clone, Default)]
pub struct LogMailer;

impl MailQueue for LogMailer {
    async fn enqueue(&self, mail: Mail) -> Result<(), PortError> {
        match &mail.link {
            Some(link) => tracing::info!(
                target: "auth_mail",
                to = %mail.to.masked(),
                kind = mail.kind.as_str(),
                subject = mail.kind.subject(),
                link = %link.expose_secret(),
                "mail (development mailer: not sent)"
            ),
            None => tracing::info!(
                target: "auth_mail",
                to = %mail.to.masked(),
                kind = mail.kind.as_str(),
                subject = mail.kind.subject(),
                "mail (development mailer: not sent)"
            ),
        }
        Ok(())
    }
}

/// A mail as kept by [`MemoryMailbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMail {
    /// Normalized recipient.
    pub to: String,
    /// Kind.
    pub kind: MailKind,
    /// The action link, if any.
    pub link: Option<String>,
    /// Recipient's name, if known.
    pub name: Option<String>,
}

impl StoredMail {
    /// The `token` query parameter of the link.
    pub fn token(&self) -> Option<&str> {
        let link = self.link.as_deref()?;
        link.split_once("token=").map(|(_, token)| token)
    }
}

/// Keeps every mail in memory, in order.
#[derive(Debug, Clone, Default)]
pub struct MemoryMailbox {
    mails: Arc<Mutex<Vec<StoredMail>>>,
}

impl MemoryMailbox {
    /// An empty mailbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every mail so far.
    pub fn all(&self) -> Vec<StoredMail> {
        self.mails
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The mails sent to `to`, of `kind`, oldest first.
    pub fn to(&self, to: &str, kind: MailKind) -> Vec<StoredMail> {
        let to = to.trim().to_lowercase();
        self.all()
            .into_iter()
            .filter(|m| m.to == to && m.kind == kind)
            .collect()
    }

    /// The newest mail to `to` of `kind`.
    pub fn last(&self, to: &str, kind: MailKind) -> Option<StoredMail> {
        self.to(to, kind).pop()
    }
}

impl MailQueue for MemoryMailbox {
    async fn enqueue(&self, mail: Mail) -> Result<(), PortError> {
        let stored = StoredMail {
            to: mail.to.as_str().to_owned(),
            kind: mail.kind,
            link: mail.link.map(|l| l.expose_secret().to_owned()),
            name: mail.name,
        };
        self.mails
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stored);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_domain::types::Email;
    use secrecy::SecretString;

    fn mail(link: Option<&str>) -> Result<Mail, auth_domain::types::Invalid> {
        Ok(Mail {
            to: Email::parse("Reader@Example.com")?,
            name: Some("Ada".into()),
            kind: MailKind::VerifyEmail,
            link: link.map(|l| SecretString::from(l.to_owned())),
        })
    }

    #[tokio::test]
    async fn the_mailbox_keeps_mails_and_finds_the_token_in_the_link()
    -> Result<(), Box<dyn std::error::Error>> {
        let mailbox = MemoryMailbox::new();
        mailbox
            .enqueue(mail(Some("http://app/verify-email?token=abc"))?)
            .await?;
        let last = mailbox
            .last("reader@example.com", MailKind::VerifyEmail)
            .ok_or("no mail")?;
        assert_eq!(last.token(), Some("abc"));
        assert!(
            mailbox
                .last("reader@example.com", MailKind::ResetPassword)
                .is_none()
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_log_mailer_accepts_mails_with_and_without_links()
    -> Result<(), Box<dyn std::error::Error>> {
        LogMailer
            .enqueue(mail(Some("http://app/verify-email?token=abc"))?)
            .await?;
        LogMailer.enqueue(mail(None)?).await?;
        Ok(())
    }
}
