//! The outbox relay: delivers queued mails, retries with backoff, gives up for good.

use std::error::Error as StdError;
use std::sync::{Mutex, MutexGuard, PoisonError};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;
use crate::model::{Mail, MailKind, OneTimeKind, OutboxMail, OutboxStats};
use crate::ports::{
    DeliveryError, Keyring, MailTransport, OneTimeTokenStore, OutboxStore, PortError, Randomness,
    SealedField, UserStore,
};
use crate::types::{Email, Timestamp};

use super::{Adapters, AuthService};

/// What the sealed payload of a queued mail holds.
#[derive(Serialize, Deserialize)]
struct Payload {
    to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

/// The plaintext of a mail's payload (sealed before it is stored).
pub(crate) fn encode(mail: &Mail) -> Result<String, PortError> {
    serde_json::to_string(&Payload {
        to: mail.to.as_str().to_owned(),
        name: mail.name.clone(),
        link: mail.link.as_ref().map(|l| l.expose_secret().to_owned()),
    })
    .map_err(PortError::unexpected)
}

fn decode(kind: MailKind, plaintext: &str) -> Result<Mail, PortError> {
    let payload: Payload = serde_json::from_str(plaintext).map_err(PortError::unexpected)?;
    let to = Email::parse(&payload.to)
        .map_err(|_| PortError::unexpected("queued mail with an invalid recipient"))?;
    Ok(Mail {
        to,
        name: payload.name,
        kind,
        link: payload.link.map(SecretString::from),
    })
}

/// What became of one mail in [`AuthService::deliver_mail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered; the mail and its payload are deleted.
    Sent,
    /// Failed; due again at this time.
    Retry(Timestamp),
    /// Failed for good (refused, out of attempts, or its link expired before it could be
    /// delivered); the payload is erased.
    Dead,
    /// Handled, but its lease had run out and another worker had claimed it meanwhile:
    /// the outcome was left to that worker.
    LeaseLost,
    /// A request queued without its link (forgot-password, resend-verification) that
    /// needed no mail: no account has the address, or it is verified already. Deleted
    /// unsent.
    Discarded,
}

/// One mail handled by [`AuthService::deliver_mail`].
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Outbox id.
    pub id: Uuid,
    /// Kind.
    pub kind: MailKind,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// What became of it.
    pub outcome: DeliveryOutcome,
    /// Why it failed (no recipient, name or link in it).
    pub error: Option<String>,
    /// When it was queued.
    pub queued_at: Timestamp,
}

/// The mails one [`AuthService::deliver_mail`] call handled.
#[derive(Debug, Default)]
pub struct DeliveryReport {
    /// Each mail attempted, in order.
    pub mails: Vec<Delivered>,
    /// Mails claimed but given back unattempted (stop asked, or the leases could not be
    /// renewed in time).
    pub released: usize,
    /// Mails claimed but left unattempted because a renewal found that another worker had
    /// claimed them meanwhile (this batch's lease had run out).
    pub lost: usize,
    /// A storage failure that cut the batch short; the mails not yet handled are claimed
    /// again when their lease ends.
    pub interrupted: Option<AuthError>,
}

impl DeliveryReport {
    fn count(&self, f: impl Fn(&DeliveryOutcome) -> bool) -> usize {
        self.mails.iter().filter(|m| f(&m.outcome)).count()
    }

    /// Mails delivered.
    pub fn sent(&self) -> usize {
        self.count(|o| *o == DeliveryOutcome::Sent)
    }

    /// Mails that will be retried.
    pub fn retried(&self) -> usize {
        self.count(|o| matches!(o, DeliveryOutcome::Retry(_)))
    }

    /// Mails given up on.
    pub fn dead(&self) -> usize {
        self.count(|o| *o == DeliveryOutcome::Dead)
    }

    /// Whether nothing was claimed.
    pub fn is_empty(&self) -> bool {
        self.mails.is_empty() && self.released == 0 && self.lost == 0
    }

    /// How many mails the batch claimed.
    pub fn claimed(&self) -> usize {
        self.mails.len() + self.released + self.lost
    }
}

/// The claims one batch holds, shared between [`AuthService::deliver_batch`] and whoever
/// renews their leases while it runs ([`AuthService::renew_mail_leases`], on a timer, so
/// that a delivery longer than the lease keeps its mail). One per batch.
#[derive(Debug, Default)]
pub struct Leases {
    state: Mutex<LeaseState>,
}

#[derive(Debug, Default)]
struct LeaseState {
    /// Claims not finished yet: (id, attempts as the claim returned them).
    held: Vec<(Uuid, u32)>,
    /// When storage last confirmed the leases held (the claim, then each renewal).
    confirmed_at: Option<Timestamp>,
    /// Held claims that a renewal found taken by another worker.
    lost: Vec<Uuid>,
}

impl Leases {
    fn state(&self) -> MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hold(&self, mails: &[OutboxMail], at: Timestamp) {
        let mut state = self.state();
        state.held = mails.iter().map(|m| (m.id, m.attempts)).collect();
        state.confirmed_at = Some(at);
        state.lost.clear();
    }

    fn finish(&self, id: Uuid) {
        self.state().held.retain(|(held, _)| *held != id);
    }

    fn held(&self) -> Vec<(Uuid, u32)> {
        self.state().held.clone()
    }

    fn confirmed_at(&self) -> Option<Timestamp> {
        self.state().confirmed_at
    }

    fn is_lost(&self, id: Uuid) -> bool {
        self.state().lost.contains(&id)
    }

    /// A renewal at `at` of `asked` extended `renewed`: the others still held are lost.
    fn renewed(&self, at: Timestamp, asked: &[(Uuid, u32)], renewed: &[Uuid]) {
        let mut state = self.state();
        state.confirmed_at = Some(at);
        let lost: Vec<Uuid> = asked
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !renewed.contains(id) && state.held.iter().any(|(h, _)| h == id))
            .collect();
        state.lost.extend(lost);
    }

    /// Whether no claim is held (nothing to renew).
    pub fn is_empty(&self) -> bool {
        self.state().held.is_empty()
    }
}

/// The outcome, unless a fenced update found the mail claimed by another worker.
fn fenced(applied: bool, outcome: DeliveryOutcome) -> DeliveryOutcome {
    if applied {
        outcome
    } else {
        DeliveryOutcome::LeaseLost
    }
}

fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_round_trips_with_and_without_optional_parts() -> Result<(), Box<dyn StdError>> {
        let mail = Mail {
            to: Email::parse("Ada@Example.com")?,
            name: Some("Ada \"Countess\" <L>".into()),
            kind: MailKind::ResetPassword,
            link: Some(SecretString::from("http://app/reset-password?token=abc")),
        };
        let back = decode(MailKind::ResetPassword, &encode(&mail)?)?;
        assert_eq!(back.to.as_str(), "ada@example.com");
        assert_eq!(back.name, mail.name);
        assert_eq!(
            back.link.as_ref().map(|l| l.expose_secret().to_owned()),
            Some("http://app/reset-password?token=abc".to_owned())
        );
        let bare = Mail {
            name: None,
            link: None,
            kind: MailKind::AccountLocked,
            ..mail
        };
        let back = decode(MailKind::AccountLocked, &encode(&bare)?)?;
        assert!(back.name.is_none() && back.link.is_none());
        assert!(decode(MailKind::AccountLocked, "{\"to\":\"not an address\"}").is_err());
        Ok(())
    }
}
