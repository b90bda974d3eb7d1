//! Mail transports without a mail server, used behind the same outbox worker as SMTP.
//!
//! - [`LogMailer`]: development only. Writes each mail, with its link, to the log (target
//!   `auth_mail`). It is the one place where a token may appear in a log; the recipient is
//!   masked.
//! - [`MemoryMailbox`]: keeps delivered mails in memory, for tests and for embedders that
//!   deliver mail themselves; it can be told to fail, to test retries.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use auth_domain::model::{Mail, MailKind};
use auth_domain::ports::{DeliveryError, MailTransport};
use secrecy::ExposeSecret;

/// Writes mails to the log instead of sending them.
#[derive(Debug, Clone, Default)]
pub struct LogMailer;

impl MailTransport for LogMailer {
    async fn send(&self, mail: &Mail) -> Result<(), DeliveryError> {
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

/// Keeps every delivered mail in memory, in order.
#[derive(Debug, Clone, Default)]
pub struct MemoryMailbox {
    mails: Arc<Mutex<Vec<StoredMail>>>,
    failures: Arc<AtomicU32>,
    refusals: Arc<AtomicU32>,
    notify: Arc<tokio::sync::Notify>,
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

    /// Makes the next `n` deliveries fail with a transient error.
    pub fn fail_next(&self, n: u32) {
        self.failures.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` deliveries fail with a permanent refusal.
    pub fn refuse_next(&self, n: u32) {
        self.refusals.store(n, Ordering::SeqCst);
    }

    /// Waits up to `timeout` for a mail to `to` of `kind` (delivery is asynchronous).
    pub async fn wait_for(
        &self,
        to: &str,
        kind: MailKind,
        timeout: Duration,
    ) -> Option<StoredMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if let Some(mail) = self.last(to, kind) {
                return Some(mail);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.last(to, kind);
            }
        }
    }
}

/// The failure [`MemoryMailbox::fail_next`] simulates.
#[derive(Debug, thiserror::Error)]
#[error("simulated delivery failure")]
pub struct SimulatedFailure;

impl MailTransport for MemoryMailbox {
    async fn send(&self, mail: &Mail) -> Result<(), DeliveryError> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(DeliveryError::Transient(Box::new(SimulatedFailure)));
        }
        let refusing = self
            .refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refusing {
            return Err(DeliveryError::Permanent(Box::new(SimulatedFailure)));
        }
        let stored = StoredMail {
            to: mail.to.as_str().to_owned(),
            kind: mail.kind,
            link: mail.link.as_ref().map(|l| l.expose_secret().to_owned()),
            name: mail.name.clone(),
        };
        self.mails
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stored);
        self.notify.notify_waiters();
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
            .send(&mail(Some("http://app/verify-email?token=abc"))?)
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
            .send(&mail(Some("http://app/verify-email?token=abc"))?)
            .await?;
        LogMailer.send(&mail(None)?).await?;
        Ok(())
    }

    #[tokio::test]
    async fn the_mailbox_fails_when_told_then_delivers_and_wakes_waiters()
    -> Result<(), Box<dyn std::error::Error>> {
        let mailbox = MemoryMailbox::new();
        mailbox.fail_next(1);
        assert!(matches!(
            mailbox.send(&mail(None)?).await,
            Err(DeliveryError::Transient(_))
        ));
        assert!(mailbox.all().is_empty());
        let waiter = {
            let mailbox = mailbox.clone();
            tokio::spawn(async move {
                mailbox
                    .wait_for(
                        "reader@example.com",
                        MailKind::VerifyEmail,
                        Duration::from_secs(5),
                    )
                    .await
            })
        };
        tokio::task::yield_now().await;
        mailbox.send(&mail(None)?).await?;
        assert!(waiter.await?.is_some());
        assert!(
            mailbox
                .wait_for(
                    "nobody@example.com",
                    MailKind::VerifyEmail,
                    Duration::from_millis(20)
                )
                .await
                .is_none()
        );
        Ok(())
    }
}
