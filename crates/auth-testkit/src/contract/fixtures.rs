//! Records to store in contract cases. Every builder gives values no other call gives
//! (usernames, email indexes, token hashes, cache keys), so cases never collide, even on
//! a store or cache that other tests use. Sealed fields and blind indexes are arbitrary
//! bytes: at the level of the ports nothing opens them. Times are whole milliseconds.

use std::sync::atomic::{AtomicU64, Ordering};

use auth_domain::model::{
    MailKind, OneTimeKind, OneTimeTokenRecord, OutboxMail, Outgoing, PasskeyRecord,
    RecoveryCodeHash, SessionRecord, TotpRecord, UserRecord,
};
use auth_domain::types::{
    BlindIndex, PasskeyId, PasswordHash, Sealed, SessionId, Timestamp, TokenHash, UserId,
};
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

/// The real current time, truncated to whole milliseconds (so that it survives a store
/// that keeps milliseconds).
pub fn now() -> Timestamp {
    whole_millis(Utc::now())
}

/// `at` truncated to whole milliseconds.
pub fn whole_millis(at: Timestamp) -> Timestamp {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// `at` truncated to whole seconds, as the service passes "not before" marks.
pub fn whole_seconds(at: Timestamp) -> Timestamp {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// A text no other call in this or any other process gives: `{label}-{n}-{random}`.
pub fn unique(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = Uuid::new_v4().simple().to_string();
    format!("{label}-{n}-{}", &random[..12])
}

/// A fresh blind index.
pub fn blind_index() -> BlindIndex {
    BlindIndex(unique("index").into_bytes())
}

/// Fresh "sealed" bytes, labelled for readable failures.
pub fn sealed(label: &str) -> Sealed {
    Sealed(unique(&format!("sealed:{label}")).into_bytes())
}

/// A fresh refresh- or one-time-token hash (random).
pub fn token_hash() -> TokenHash {
    let mut bytes = [0; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    TokenHash(bytes)
}

/// A fresh rate-limit or attempt-counter key.
pub fn key(label: &str) -> String {
    unique(&format!("contract:{label}"))
}

/// A fresh access-token id, session id and user id, for cache cases.
pub fn ids() -> (Uuid, SessionId, UserId) {
    (
        Uuid::new_v4(),
        SessionId(Uuid::now_v7()),
        UserId(Uuid::now_v7()),
    )
}

/// A new account with a unique username and email index, created at [`now`]; see
/// [`UserBuilder`].
pub fn user() -> UserBuilder {
    let username = unique("User");
    let at = now();
    UserBuilder(UserRecord {
        id: UserId(Uuid::now_v7()),
        username_normalized: username.to_ascii_lowercase(),
        username,
        email_index: blind_index(),
        email_sealed: sealed("email"),
        phone_index: None,
        phone_sealed: None,
        name_sealed: sealed("name"),
        surname_sealed: sealed("surname"),
        password_hash: PasswordHash(unique("$2b$04$hash")),
        email_verified_at: None,
        pending_email_sealed: None,
        created_at: at,
        updated_at: at,
        last_login_at: None,
        password_version: 0,
        pending_for: None,
    })
}

/// Builds a [`UserRecord`]; start from [`user`].
#[derive(Debug, Clone)]
pub struct UserBuilder(UserRecord);

impl UserBuilder {
    /// The username as typed; the normalized form is its ASCII lower case.
    pub fn username(mut self, as_typed: &str) -> Self {
        self.0.username = as_typed.to_owned();
        self.0.username_normalized = as_typed.to_ascii_lowercase();
        self
    }

    /// The email's blind index (to share one between accounts).
    pub fn email_index(mut self, index: BlindIndex) -> Self {
        self.0.email_index = index;
        self
    }

    /// A phone number (fresh index and sealed value).
    pub fn phone(mut self) -> Self {
        self.0.phone_index = Some(blind_index());
        self.0.phone_sealed = Some(sealed("phone"));
        self
    }

    /// A pending email change (fresh sealed value).
    pub fn pending_email(mut self) -> Self {
        self.0.pending_email_sealed = Some(sealed("pending-email"));
        self
    }

    /// Verified at `at`.
    pub fn verified_at(mut self, at: Timestamp) -> Self {
        self.0.email_verified_at = Some(at);
        self
    }

    /// Last logged in at `at`.
    pub fn logged_in_at(mut self, at: Timestamp) -> Self {
        self.0.last_login_at = Some(at);
        self
    }

    /// Created (and last changed) at `at`.
    pub fn created_at(mut self, at: Timestamp) -> Self {
        self.0.created_at = at;
        self.0.updated_at = at;
        self
    }

    /// A pending registration for the taken email `index`, with this password tag (its own
    /// email index stays unique).
    pub fn pending_for(mut self, index: BlindIndex, password_tag: u16) -> Self {
        self.0.pending_for = Some(auth_domain::model::PendingFor {
            email_index: index,
            password_tag,
        });
        self
    }

    /// The record.
    pub fn build(self) -> UserRecord {
        self.0
    }
}

/// A live session of `user` created (and last used) at `created_at`, expiring one hour
/// later, with a user agent and a sealed IP.
pub fn session(user: UserId, created_at: Timestamp) -> SessionRecord {
    SessionRecord {
        id: SessionId(Uuid::now_v7()),
        user_id: user,
        created_at,
        last_used_at: created_at,
        expires_at: created_at + TimeDelta::hours(1),
        user_agent: Some(unique("agent")),
        ip_sealed: Some(sealed("ip")),
        revoked_at: None,
    }
}

/// An unused single-use token of `user` with a fresh hash, created an hour before it
/// expires at `expires_at`, bound to no email.
pub fn one_time(user: UserId, kind: OneTimeKind, expires_at: Timestamp) -> OneTimeTokenRecord {
    OneTimeTokenRecord {
        hash: token_hash(),
        kind,
        user_id: user,
        created_at: expires_at - TimeDelta::hours(1),
        expires_at,
        used_at: None,
        email_index: None,
    }
}

/// A mail to queue: a fresh id (UUID v7), `kind`, a fresh "sealed" payload, created (and
/// so due) at `created_at`, never attempted.
pub fn outbox_mail(kind: MailKind, created_at: Timestamp) -> OutboxMail {
    OutboxMail {
        id: Uuid::now_v7(),
        kind,
        payload: sealed(&format!("mail:{}", kind.as_str())),
        created_at,
        attempts: 0,
    }
}

/// [`outbox_mail`], ready to write with a change: a notice without a link (no token).
pub fn notice(kind: MailKind, created_at: Timestamp) -> Outgoing {
    Outgoing {
        mail: outbox_mail(kind, created_at),
        token: None,
    }
}

/// [`outbox_mail`] with the single-use token of its link, ready to write with a change:
/// a token of `user` of `token_kind` (see [`one_time`]) expiring an hour after
/// `created_at`, in a mail of `mail_kind`.
pub fn link_mail(
    user: UserId,
    token_kind: OneTimeKind,
    mail_kind: MailKind,
    created_at: Timestamp,
) -> Outgoing {
    Outgoing {
        mail: outbox_mail(mail_kind, created_at),
        token: Some(one_time(user, token_kind, created_at + TimeDelta::hours(1))),
    }
}

/// A pending TOTP authenticator of `user` with a fresh sealed secret, enrolled at
/// `created_at`.
pub fn pending_totp(user: UserId, created_at: Timestamp) -> TotpRecord {
    TotpRecord {
        user_id: user,
        secret_sealed: sealed("totp-secret"),
        created_at,
        confirmed_at: None,
    }
}

/// `n` fresh recovery codes (keyed hashes: arbitrary unique bytes at this level).
pub fn recovery_codes(n: usize) -> Vec<RecoveryCodeHash> {
    (0..n)
        .map(|_| RecoveryCodeHash(BlindIndex(unique("recovery-code").into_bytes())))
        .collect()
}

/// A fresh credential id, as an authenticator makes one (random bytes).
pub fn credential_id() -> Vec<u8> {
    let mut id = Uuid::new_v4().as_bytes().to_vec();
    id.extend_from_slice(Uuid::new_v4().as_bytes());
    id
}

/// A passkey of `user` (fresh id, credential id and sealed name) registered at
/// `created_at` with signature counter `sign_count`, never used.
pub fn passkey(user: UserId, created_at: Timestamp, sign_count: u32) -> PasskeyRecord {
    PasskeyRecord {
        id: PasskeyId(Uuid::now_v7()),
        user_id: user,
        credential_id: credential_id(),
        name_sealed: sealed("passkey-name"),
        credential: unique(&format!("credential:public-key:counter-{sign_count}")),
        sign_count,
        created_at,
        last_used_at: None,
    }
}
