//! The use cases, as one service generic over its ports.

mod account;
mod credentials;
mod login;
mod outbox;
mod recovery;
mod register;
mod tokens;

use std::fmt;
use std::net::IpAddr;

use chrono::{TimeDelta, Timelike};
use secrecy::SecretString;

pub use account::ProfileUpdate;
pub use login::{LoggedIn, LoginIdentifier, LoginRequest};
pub use outbox::{Delivered, DeliveryOutcome, DeliveryReport, Leases};
pub use register::{Registered, Registration, SecretPassword};
pub use tokens::Rewarmed;

use crate::error::AuthError;
pub use crate::events::ClientContext;
use crate::events::{Event, EventSink};
use crate::model::{
    Mail, MailKind, OneTimeKind, OneTimeTokenRecord, OutboxMail, Outgoing, Profile, UserRecord,
};
use crate::policy::{Policy, RateDecision};
use crate::ports::{
    Cache, Clock, IndexPurpose, Keyring, MailTransport, OutboxStore, PasswordHasher, Randomness,
    RateLimiter, SealedField, Store, TokenCodec,
};
use crate::types::{Email, PlainToken, Timestamp, UserId};

/// The adapters one service runs on, as associated types, so the service has one type
/// parameter however many ports it has.
pub trait Adapters: Send + Sync + 'static {
    /// Durable storage.
    type Store: Store;
    /// Revocation list, rate limiter, attempt counters.
    type Cache: Cache;
    /// Mail delivery, used by the outbox worker.
    type Mail: MailTransport;
    /// Time.
    type Clock: Clock;
    /// Randomness.
    type Random: Randomness;
    /// Password hashing.
    type Hasher: PasswordHasher;
    /// JWT signing and verification.
    type Tokens: TokenCodec;
    /// Keyed operations on personal data.
    type Keys: Keyring;
    /// Where the use cases report what happened (audit log, metrics).
    type Events: EventSink;
}

/// The adapters themselves.
pub struct Ports<A: Adapters> {
    /// Durable storage.
    pub store: A::Store,
    /// Revocation list, rate limiter, attempt counters.
    pub cache: A::Cache,
    /// Mail delivery, used by the outbox worker.
    pub mail: A::Mail,
    /// Time.
    pub clock: A::Clock,
    /// Randomness.
    pub random: A::Random,
    /// Password hashing.
    pub hasher: A::Hasher,
    /// JWT signing and verification.
    pub tokens: A::Tokens,
    /// Keyed operations on personal data.
    pub keys: A::Keys,
    /// Where the use cases report what happened (audit log, metrics).
    pub events: A::Events,
}

/// Who a login or a refresh concerned, as far as it got, for the events it reports.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trail {
    /// The account, once known (a login on an unknown identifier has none).
    pub(crate) user: Option<UserId>,
    /// The session, once known.
    pub(crate) session: Option<crate::types::SessionId>,
    /// Login: the blind index (hex) of the identifier, the key of its lockout counter.
    pub(crate) identifier_index: Option<String>,
    /// Login: this failure locked the identifier.
    pub(crate) locked_out: bool,
}

/// What a followed verification link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailVerified {
    /// Whose address.
    pub user: UserId,
    /// `true`: a pending new address replaced the old one; `false`: the registration's
    /// address is verified.
    pub email_changed: bool,
}

/// Actions that are rate limited, named in keys and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// POST /auth/register
    Register,
    /// POST /auth/login
    Login,
    /// POST /auth/verify-email
    VerifyEmail,
    /// POST /auth/resend-verification
    ResendVerification,
    /// POST /auth/refresh-token
    Refresh,
    /// POST /auth/logout
    Logout,
    /// POST /auth/forgot-password
    ForgotPassword,
    /// POST /auth/reset-password
    ResetPassword,
}

impl Action {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::VerifyEmail => "verify_email",
            Self::ResendVerification => "resend_verification",
            Self::Refresh => "refresh",
            Self::Logout => "logout",
            Self::ForgotPassword => "forgot_password",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// What [`AuthService::mail_link`] issues and sends.
pub(crate) struct LinkMail<'a> {
    pub(crate) token_kind: OneTimeKind,
    pub(crate) mail_kind: MailKind,
    pub(crate) path: &'a str,
    pub(crate) user: UserId,
    pub(crate) ttl: TimeDelta,
    pub(crate) email_index: Option<crate::types::BlindIndex>,
}

/// The auth service: every use case of the API.
pub struct AuthService<A: Adapters> {
    ports: Ports<A>,
    policy: Policy,
}

impl<A: Adapters> fmt::Debug for AuthService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<A: Adapters> AuthService<A> {
    /// A service over these adapters and policies.
    pub fn new(ports: Ports<A>, policy: Policy) -> Self {
        Self { ports, policy }
    }

    /// The policies in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The adapters (for health checks and wiring).
    pub fn ports(&self) -> &Ports<A> {
        &self.ports
    }

    /// Counts a request to `action` against the per-IP and per-identifier limits. Returns
    /// the tighter decision (for `RateLimit` headers), or `RateLimited`.
    ///
    /// The per-IP limit counts an IPv4 address (IPv4-mapped IPv6 included) by itself, and an
    /// IPv6 address by its /64 prefix: that is the smallest block a network hands out (one
    /// LAN, one customer), so one holder has 2^64 addresses to rotate through. Two addresses
    /// of one /64 share the limit; neighbouring /64s do not.
    pub async fn throttle(
        &self,
        action: Action,
        ip: Option<IpAddr>,
        identifier: Option<&str>,
    ) -> Result<RateDecision, AuthError> {
        let now = self.now();
        let mut tightest: Option<RateDecision> = None;
        let mut keys = Vec::with_capacity(2);
        if let Some(ip) = ip {
            let subject = match ip.to_canonical() {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => {
                    let prefix = u128::from(v6) & (u128::MAX << 64);
                    format!("{}/64", std::net::Ipv6Addr::from(prefix))
                }
            };
            keys.push((
                format!("rl:{}:ip:{subject}", action.as_str()),
                self.policy.rate.per_ip,
            ));
        }
        if let Some(id) = identifier
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
        {
            let index = self.ports.keys.blind_index(IndexPurpose::Identifier, &id);
            keys.push((
                format!("rl:{}:id:{}", action.as_str(), index.to_hex()),
                self.policy.rate.per_identifier,
            ));
        }
        for (key, limit) in keys {
            let decision = self.ports.cache.hit(&key, limit, now).await?;
            if !decision.allowed {
                return Err(AuthError::RateLimited(decision));
            }
            if tightest.is_none_or(|t| decision.remaining < t.remaining) {
                tightest = Some(decision);
            }
        }
        Ok(tightest.unwrap_or(crate::policy::gcra(self.policy.rate.per_ip, None, now).1))
    }

    /// [`Self::throttle`] for a request of `client`: keeps the decision in the context (for
    /// the answer's `RateLimit` headers) and reports a refusal.
    pub(crate) async fn throttle_client(
        &self,
        action: Action,
        client: &ClientContext,
        identifier: Option<&str>,
    ) -> Result<(), AuthError> {
        match self.throttle(action, client.ip, identifier).await {
            Ok(decision) => {
                client.tighten(decision);
                Ok(())
            }
            Err(err) => {
                if matches!(err, AuthError::RateLimited(_)) {
                    self.publish(
                        Event::RateLimited {
                            action: action.as_str(),
                        },
                        client,
                    );
                }
                Err(err)
            }
        }
    }

    /// Reports `event` through the events port.
    pub(crate) fn publish(&self, event: Event, client: &ClientContext) {
        self.ports.events.publish(event, client);
    }

    /// Reports a mail queued by a write that succeeded (`mail` is what it carried).
    pub(crate) fn queued(&self, mail: Option<&Outgoing>) {
        if mail.is_some() {
            self.publish(Event::MailQueued, &ClientContext::default());
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    /// Now, rounded down to the second: "not before" marks compare with `iat`, which has
    /// whole seconds, so a token issued later in the same second must not fall before it.
    pub(crate) fn now_floor_secs(&self) -> Timestamp {
        let now = self.now();
        now.with_nanosecond(0).unwrap_or(now)
    }

    /// A UUID v7 from the clock and randomness ports (ids sort by creation time).
    pub(crate) fn new_uuid(&self) -> Result<uuid::Uuid, AuthError> {
        let mut random = [0u8; 10];
        self.ports.random.fill(&mut random)?;
        let millis = u64::try_from(self.now().timestamp_millis()).unwrap_or(0);
        Ok(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }

    pub(crate) fn new_token(&self) -> Result<PlainToken, AuthError> {
        let mut bytes = [0u8; PlainToken::BYTES];
        self.ports.random.fill(&mut bytes)?;
        Ok(PlainToken::from_bytes(&bytes))
    }

    pub(crate) fn seal(
        &self,
        field: SealedField,
        value: &str,
    ) -> Result<crate::types::Sealed, AuthError> {
        Ok(self.ports.keys.seal(field, value)?)
    }

    pub(crate) fn open(
        &self,
        field: SealedField,
        sealed: &crate::types::Sealed,
    ) -> Result<String, AuthError> {
        Ok(self.ports.keys.open(field, sealed)?)
    }

    pub(crate) fn email_index(&self, email: &Email) -> crate::types::BlindIndex {
        self.ports
            .keys
            .blind_index(IndexPurpose::Email, email.as_str())
    }

    /// The 16-bit keyed tag of a password that pending registrations are found by (see
    /// [`crate::model::PendingFor`]).
    pub(crate) fn password_tag(&self, password: &crate::types::Password) -> u16 {
        let index = self
            .ports
            .keys
            .blind_index(IndexPurpose::PendingPassword, password.expose());
        let byte = |i: usize| index.0.get(i).copied().unwrap_or(0);
        u16::from_be_bytes([byte(0), byte(1)])
    }

    /// Decrypts a stored account for its owner.
    pub(crate) fn profile_of(&self, user: &UserRecord) -> Result<Profile, AuthError> {
        let phone_number = match &user.phone_sealed {
            Some(sealed) => Some(self.open(SealedField::Phone, sealed)?),
            None => None,
        };
        let pending_email = match &user.pending_email_sealed {
            Some(sealed) => Some(self.open(SealedField::Email, sealed)?),
            None => None,
        };
        Ok(Profile {
            id: user.id,
            username: user.username.clone(),
            email: self.open(SealedField::Email, &user.email_sealed)?,
            name: self.open(SealedField::Name, &user.name_sealed)?,
            surname: self.open(SealedField::Name, &user.surname_sealed)?,
            phone_number,
            email_verified: user.email_verified_at.is_some(),
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
            pending_email,
        })
    }

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

    /// Refuses a new password that zxcvbn scores too low, with the user's own username,
    /// email and names as the words an attacker tries first.
    pub(crate) fn check_new_password(
        &self,
        password: &crate::types::Password,
        profile: &Profile,
    ) -> Result<(), AuthError> {
        let mut v = crate::error::Validation::default();
        let inputs = [
            profile.username.as_str(),
            &profile.email,
            &profile.name,
            &profile.surname,
        ];
        v.field(
            "new_password",
            self.policy.password.check(password, &inputs),
        );
        v.finish()
    }

    /// Parses an email field: a malformed address is a validation error.
    pub(crate) fn email_field(raw_email: &str) -> Result<Email, AuthError> {
        let mut v = crate::error::Validation::default();
        let email = v.field("email", Email::parse(raw_email));
        v.finish()?;
        email.ok_or_else(|| AuthError::Validation(Default::default()))
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
