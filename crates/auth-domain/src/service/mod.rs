//! The use cases, as one service generic over its ports.

mod account;
mod credentials;
mod limits;
mod login;
mod mail;
mod mfa;
mod outbox;
mod passkeys;
mod recovery;
mod register;
mod tokens;

use std::fmt;

use chrono::Timelike;

pub use account::ProfileUpdate;
pub use limits::Action;
pub use login::{LoggedIn, LoginIdentifier, LoginOutcome, LoginRequest, MfaChallenge};
pub(crate) use mail::LinkMail;
pub use mfa::{MfaStatus, PasskeyView, RECOVERY_CODES, SecondFactor, TotpEnrolment};
pub use outbox::{Delivered, DeliveryOutcome, DeliveryReport, Leases};
pub use passkeys::{CeremonyStarted, PasskeyRegistered};
pub use register::{Registered, Registration, SecretPassword};
pub use tokens::Rewarmed;

use crate::error::AuthError;
pub use crate::events::ClientContext;
use crate::events::{Event, EventSink};
use crate::model::{Outgoing, Profile, UserRecord};
use crate::policy::Policy;
use crate::ports::{
    Cache, Clock, IndexPurpose, Keyring, MailTransport, PasskeyCeremonies, PasswordHasher,
    Randomness, SealedField, Store, TokenCodec, TotpCodec,
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
    /// TOTP arithmetic.
    type Totp: TotpCodec;
    /// WebAuthn ceremonies (passkeys).
    type Passkeys: PasskeyCeremonies;
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
    /// TOTP arithmetic.
    pub totp: A::Totp,
    /// WebAuthn ceremonies (passkeys).
    pub passkeys: A::Passkeys,
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
}
