//! Mail from the use cases: single-use links, notices, and the outbox they go through.

use chrono::TimeDelta;
use secrecy::SecretString;

use crate::error::AuthError;
use crate::model::{Mail, MailKind, OneTimeKind, OneTimeTokenRecord, OutboxMail, Outgoing};
use crate::ports::{OutboxStore, RateLimiter, SealedField};
use crate::types::{Email, PlainToken, UserId};

use super::{Adapters, AuthService, outbox};

/// What [`AuthService::mail_link`] issues and sends.
pub(crate) struct LinkMail<'a> {
    pub(crate) token_kind: OneTimeKind,
    pub(crate) mail_kind: MailKind,
    pub(crate) path: &'a str,
    pub(crate) user: UserId,
    pub(crate) ttl: TimeDelta,
    pub(crate) email_index: Option<crate::types::BlindIndex>,
}

impl<A: Adapters> AuthService<A> {
    /// A single-use token of `kind` for `user`, valid for `ttl`, not yet stored; a
    /// change-email token names the address it is mailed to (`email_index`).
    pub(crate) fn new_one_time(
        &self,
        kind: OneTimeKind,
        user: UserId,
        ttl: TimeDelta,
        email_index: Option<crate::types::BlindIndex>,
    ) -> Result<(PlainToken, OneTimeTokenRecord), AuthError> {
        let token = self.new_token()?;
        let now = self.now();
        let record = OneTimeTokenRecord {
            hash: token.hash(),
            kind,
            user_id: user,
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
            email_index,
        };
        Ok((token, record))
    }

    /// A mail for the outbox, sealed, unless one of the same kind went to the same
    /// address in the last minute (`None`, silently: the caller's answer must not change).
    pub(crate) async fn outbox_mail(
        &self,
        kind: MailKind,
        to: &Email,
        name: Option<String>,
        link: Option<SecretString>,
    ) -> Result<Option<OutboxMail>, AuthError> {
        let index = self.email_index(to);
        let key = format!("mail:{}:{}", kind.as_str(), index.to_hex());
        let decision = self
            .ports
            .cache
            .hit(&key, self.policy.rate.mail, self.now())
            .await?;
        if !decision.allowed {
            return Ok(None);
        }
        let mail = Mail {
            to: to.clone(),
            name,
            kind,
            link,
        };
        Ok(Some(OutboxMail {
            id: self.new_uuid()?,
            kind,
            payload: self.seal(SealedField::Mail, &outbox::encode(&mail)?)?,
            created_at: self.now(),
            attempts: 0,
        }))
    }

    /// [`Self::outbox_mail`] without a link, ready to write with a change.
    pub(crate) async fn notice(
        &self,
        kind: MailKind,
        to: &Email,
        name: Option<String>,
    ) -> Result<Option<Outgoing>, AuthError> {
        let mail = self.outbox_mail(kind, to, name, None).await?;
        Ok(mail.map(|mail| Outgoing { mail, token: None }))
    }

    /// Queues a mail that goes with no change of its own.
    pub(crate) async fn enqueue(&self, mail: Option<Outgoing>) -> Result<(), AuthError> {
        if let Some(mail) = mail {
            self.ports.store.enqueue_mail(&mail).await?;
            self.queued(Some(&mail));
        }
        Ok(())
    }

    /// Queues a request for a link mail of `kind` to `to` without looking up the address:
    /// the outbox relay looks it up when it delivers (a mail without its link is such a
    /// request), so the request costs the same work whether or not an account has the
    /// address. Throttled like any mail (silently).
    pub(crate) async fn request_link_mail(
        &self,
        kind: MailKind,
        to: &Email,
    ) -> Result<(), AuthError> {
        let mail = self.notice(kind, to, None).await?;
        self.enqueue(mail).await
    }

    /// A single-use token and the mail of its link (`{APP_URL}/{path}?token=…`) to `to`,
    /// ready to write with a change; `None` when the mail is throttled (then no token is
    /// issued either).
    pub(crate) async fn link_mail(
        &self,
        link: LinkMail<'_>,
        to: &Email,
        name: Option<String>,
    ) -> Result<Option<Outgoing>, AuthError> {
        let (token, record) =
            self.new_one_time(link.token_kind, link.user, link.ttl, link.email_index)?;
        let url = self.link(link.path, &token);
        let mail = self
            .outbox_mail(link.mail_kind, to, name, Some(url))
            .await?;
        Ok(mail.map(|mail| Outgoing {
            mail,
            token: Some(record),
        }))
    }

    /// `{APP_URL}/{path}?token={token}`.
    pub(crate) fn link(&self, path: &str, token: &PlainToken) -> SecretString {
        let base = self.policy.app_url.trim_end_matches('/');
        SecretString::from(format!("{base}/{path}?token={}", token.expose()))
    }
}
