//! The outbox relay: delivers queued mails, retries with backoff, gives up for good.
//! Here: what a queued mail holds, what a delivery reports, the leases a batch holds;
//! the relay itself is in [`relay`].

use std::sync::{Mutex, MutexGuard, PoisonError};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;
use crate::model::{Mail, MailKind, OutboxMail};
use crate::ports::PortError;
use crate::types::{Email, Timestamp};

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

mod relay;

#[cfg(test)]
mod tests {
    use std::error::Error as StdError;

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
