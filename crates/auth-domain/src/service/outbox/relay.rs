//! Delivering the outbox: claim, send, retry with backoff, give up, resolve requests.

use crate::error::{AuthError, error_chain as chain};
use crate::model::{Mail, MailKind, OneTimeKind, OutboxMail, OutboxStats};
use crate::ports::{
    DeliveryError, Keyring, MailTransport, OneTimeTokenStore, OutboxStore, PortError, Randomness,
    SealedField, UserStore,
};

use super::super::{Adapters, AuthService};
use super::{Delivered, DeliveryOutcome, DeliveryReport, Leases, decode, fenced};

impl<A: Adapters> AuthService<A> {
    /// Claims up to `limit` due mails from the outbox and delivers them one by one: a sent
    /// mail is deleted; a transient failure (a payload that does not open included: the
    /// keys may be fixed) is retried after an exponential backoff with jitter; a permanent
    /// refusal, the last allowed attempt, or a link that expired while the mail waited
    /// makes it dead. Between mails the batch renews its leases when they are due for it
    /// ([`crate::policy::OutboxPolicy::renew_every`]); it starts no mail once they were
    /// last confirmed half a lease ago, and gives the rest back. A storage failure cuts the
    /// batch short ([`DeliveryReport::interrupted`]).
    pub async fn deliver_mail(&self, limit: u32) -> Result<DeliveryReport, AuthError> {
        self.deliver_mail_until(limit, || false).await
    }

    /// [`Self::deliver_mail`], checking `stop` before each mail: once it says so, the
    /// mails claimed but not attempted are given back without counting an attempt (due at
    /// once, for any worker) and the call returns. For a graceful shutdown between mails.
    pub async fn deliver_mail_until(
        &self,
        limit: u32,
        stop: impl Fn() -> bool + Send,
    ) -> Result<DeliveryReport, AuthError> {
        self.deliver_batch(limit, stop, &Leases::default()).await
    }

    /// [`Self::deliver_mail_until`], with the batch's claims in `leases`, so that the
    /// caller can renew them ([`Self::renew_mail_leases`]) while a delivery runs: a
    /// delivery may then take longer than the lease without another worker claiming its
    /// mail. A mail a renewal found claimed by another worker is not attempted
    /// ([`DeliveryReport::lost`]).
    pub async fn deliver_batch(
        &self,
        limit: u32,
        stop: impl Fn() -> bool + Send,
        leases: &Leases,
    ) -> Result<DeliveryReport, AuthError> {
        let store = &self.ports.store;
        let outbox = self.policy.outbox;
        let started = self.now();
        let claimed = store.claim_mail(started, outbox.lease, limit).await?;
        leases.hold(&claimed, started);
        let mut report = DeliveryReport {
            mails: Vec::with_capacity(claimed.len()),
            ..DeliveryReport::default()
        };
        let age = || self.now() - leases.confirmed_at().unwrap_or(started);
        let mut claimed = claimed.into_iter();
        while let Some(queued) = claimed.next() {
            let stopping = stop();
            if !stopping
                && age() >= outbox.renew_every()
                && let Err(err) = self.renew_mail_leases(leases).await
            {
                report.interrupted = Some(err);
                break;
            }
            if stopping || age() >= outbox.lease / 2 {
                let rest = std::iter::once(queued).chain(claimed.by_ref());
                if let Err(err) = self.release(rest, &mut report).await {
                    report.interrupted = Some(err);
                }
                break;
            }
            if leases.is_lost(queued.id) {
                report.lost += 1;
                continue;
            }
            let delivered = self.deliver_one(&queued).await;
            leases.finish(queued.id);
            match delivered {
                Ok(delivered) => report.mails.push(delivered),
                Err(err) => {
                    report.interrupted = Some(err);
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Renews the leases of the claims `leases` still holds, to a full lease from now
    /// (fenced: see [`crate::ports::OutboxStore::renew_mail_leases`]). A claim whose mail
    /// another worker has claimed meanwhile is marked lost: the batch will not attempt it.
    pub async fn renew_mail_leases(&self, leases: &Leases) -> Result<(), AuthError> {
        let held = leases.held();
        if held.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let renewed = self
            .ports
            .store
            .renew_mail_leases(&held, now, self.policy.outbox.lease)
            .await?;
        leases.renewed(now, &held, &renewed);
        Ok(())
    }

    /// Gives back every lease at once (see
    /// [`crate::ports::OutboxStore::release_all_leases`]): for a store that one process
    /// owns, at start, before its worker runs, so that the mails a killed process had
    /// claimed go out at once instead of when their leases end. Returns how many.
    pub async fn release_mail_leases(&self) -> Result<u64, AuthError> {
        Ok(self.ports.store.release_all_leases(self.now()).await?)
    }

    async fn release(
        &self,
        mails: impl Iterator<Item = OutboxMail>,
        report: &mut DeliveryReport,
    ) -> Result<(), AuthError> {
        let now = self.now();
        for mail in mails {
            self.ports
                .store
                .mail_release(mail.id, mail.attempts, now)
                .await?;
            report.released += 1;
        }
        Ok(())
    }

    /// Delivers one claimed mail and records the outcome; `Err` only if storage fails.
    async fn deliver_one(&self, queued: &OutboxMail) -> Result<Delivered, AuthError> {
        let store = &self.ports.store;
        let outbox = self.policy.outbox;
        let now = self.now();
        let expired = self
            .link_ttl(queued.kind)
            .is_some_and(|ttl| queued.created_at + ttl <= now);
        let result = if expired {
            Err(DeliveryError::Permanent(
                "its link expired before it could be delivered".into(),
            ))
        } else {
            match self.open_mail(queued) {
                Ok(mail) => match self.resolve_request(mail).await? {
                    Some(mail) => self.ports.mail.send(&mail).await,
                    None => {
                        store.mail_sent(queued.id).await?;
                        return Ok(Delivered {
                            id: queued.id,
                            kind: queued.kind,
                            attempts: queued.attempts,
                            outcome: DeliveryOutcome::Discarded,
                            error: None,
                            queued_at: queued.created_at,
                        });
                    }
                },
                Err(err) => Err(DeliveryError::Transient(Box::new(err))),
            }
        };
        let (outcome, error) = match result {
            Ok(()) => {
                store.mail_sent(queued.id).await?;
                (DeliveryOutcome::Sent, None)
            }
            Err(err) => {
                let text = chain(&err);
                let give_up = matches!(err, DeliveryError::Permanent(_))
                    || queued.attempts >= outbox.max_attempts;
                if give_up {
                    let applied = store
                        .mail_dead(queued.id, queued.attempts, self.now())
                        .await?;
                    (fenced(applied, DeliveryOutcome::Dead), Some(text))
                } else {
                    let at =
                        self.now() + outbox.backoff_with_jitter(queued.attempts, self.jitter()?);
                    let applied = store.mail_retry(queued.id, queued.attempts, at).await?;
                    (fenced(applied, DeliveryOutcome::Retry(at)), Some(text))
                }
            }
        };
        Ok(Delivered {
            id: queued.id,
            kind: queued.kind,
            attempts: queued.attempts,
            outcome,
            error,
            queued_at: queued.created_at,
        })
    }

    /// A reset or verification mail queued without its link is a request that was not
    /// looked up when it was made (so that its answer and its time tell nothing): it is
    /// looked up now. An account with the address (for verification: an unverified one)
    /// gets a fresh single-use token and the mail with its link; otherwise `None`, and
    /// nothing is sent. Every other mail goes as it is. `Err` only if storage fails.
    async fn resolve_request(&self, mail: Mail) -> Result<Option<Mail>, AuthError> {
        if mail.link.is_some() {
            return Ok(Some(mail));
        }
        let store = &self.ports.store;
        let (token_kind, path, ttl) = match mail.kind {
            MailKind::ResetPassword => (
                OneTimeKind::ResetPassword,
                "reset-password",
                self.policy.reset_ttl,
            ),
            MailKind::VerifyEmail => (
                OneTimeKind::VerifyEmail,
                "verify-email",
                self.policy.verify_email_ttl,
            ),
            _ => return Ok(Some(mail)),
        };
        let Some(user) = store.user_by_email(&self.email_index(&mail.to)).await? else {
            return Ok(None);
        };
        if mail.kind == MailKind::VerifyEmail && user.email_verified_at.is_some() {
            return Ok(None);
        }
        let (token, record) = self.new_one_time(token_kind, user.id, ttl, None)?;
        store.insert_one_time(&record).await?;
        Ok(Some(Mail {
            name: self.open(SealedField::Name, &user.name_sealed).ok(),
            link: Some(self.link(path, &token)),
            ..mail
        }))
    }

    /// How long the link of a mail of `kind` works, if it has one.
    fn link_ttl(&self, kind: MailKind) -> Option<chrono::TimeDelta> {
        match kind {
            MailKind::VerifyEmail | MailKind::ChangeEmail => Some(self.policy.verify_email_ttl),
            MailKind::ResetPassword => Some(self.policy.reset_ttl),
            _ => None,
        }
    }

    /// Queue depth, oldest queued mail, dead count.
    pub async fn outbox_stats(&self) -> Result<OutboxStats, AuthError> {
        Ok(self.ports.store.outbox_stats().await?)
    }

    fn open_mail(&self, queued: &OutboxMail) -> Result<Mail, PortError> {
        let plaintext = self.ports.keys.open(SealedField::Mail, &queued.payload)?;
        decode(queued.kind, &plaintext)
    }

    /// A uniform number in `[0, 1]`.
    fn jitter(&self) -> Result<f64, AuthError> {
        let mut bytes = [0u8; 2];
        self.ports.random.fill(&mut bytes)?;
        Ok(f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX))
    }
}
