//! Login, with lockout and device tokens.

use crate::error::{AuthError, Validation};
use crate::model::{DeviceClaims, MailKind, Profile, SessionRecord, TokenPair, UserRecord};
use crate::ports::{
    AttemptCounter, IndexPurpose, Keyring, MfaStore, PasswordHasher, SealedField, SessionStore,
    StoreError, TokenCodec, UserStore,
};
use crate::types::{Email, Password, SessionId};

use super::register::SecretPassword;
use super::{Action, Adapters, AuthService, ClientContext, Trail};
use crate::events::Event;

/// How the user names themself at login.
#[derive(Debug, Clone)]
pub enum LoginIdentifier {
    /// By email.
    Email(String),
    /// By username (an `@` in it makes it an email).
    Username(String),
}

impl LoginIdentifier {
    /// The identifier as typed, trimmed and lower-cased: the key for limits and lockout.
    pub fn normalized(&self) -> String {
        match self {
            Self::Email(s) | Self::Username(s) => s.trim().to_lowercase(),
        }
    }
}

/// A login as received.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// Who.
    pub identifier: LoginIdentifier,
    /// Password as typed.
    pub password: SecretPassword,
    /// A device token from an earlier login, if the client kept one.
    pub device_token: Option<String>,
}

/// What a login with the right password gives: a session, or (for an account with a
/// second factor) a token to complete it with.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Signed in.
    SignedIn(Box<LoggedIn>),
    /// The password was right; a second factor must complete the login.
    MfaRequired(MfaChallenge),
}

/// A login waiting for its second factor.
#[derive(Debug, Clone)]
pub struct MfaChallenge {
    /// Opaque, single use; `POST /auth/mfa/verify` or `/auth/passkey/start` takes it.
    pub mfa_token: String,
    /// What can complete the login.
    pub methods: Vec<crate::model::MfaMethod>,
    /// Seconds until the token dies.
    pub expires_in: i64,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// Access and refresh token.
    pub tokens: TokenPair,
    /// Device token to present at later logins.
    pub device_token: String,
    /// The user's profile.
    pub profile: Profile,
}

impl<A: Adapters> AuthService<A> {
    /// Logs in. Unknown user and wrong password give the same `InvalidCredentials` after the
    /// same work. A locked identifier gives `AccountLocked` before any hashing, unless a
    /// valid device token of this user is presented: failures elsewhere do not lock it.
    ///
    /// Counts the per-IP limit, and the per-identifier one unless a valid device token of
    /// the account is presented. Reports `LoginSucceeded`, or `LoginFailed` (and
    /// `AccountLocked` when this failure locked the identifier).
    ///
    /// For an account with a second factor (a confirmed TOTP authenticator or a passkey),
    /// the right password gives [`LoginOutcome::MfaRequired`] instead of a session, and
    /// reports `MfaRequired`. The password's attempt then stays counted toward the lockout
    /// until the second factor completes the login: knowing the password does not reset
    /// the count that guards the codes.
    #[tracing::instrument(
        target = "auth_trace",
        name = "login",
        skip_all,
        fields(use_case = "login")
    )]
    pub async fn login(
        &self,
        input: LoginRequest,
        ctx: &ClientContext,
    ) -> Result<LoginOutcome, AuthError> {
        let mut trail = Trail::default();
        let result = self.login_steps(input, ctx, &mut trail).await;
        match &result {
            Ok(LoginOutcome::SignedIn(logged_in)) => self.publish(
                Event::LoginSucceeded {
                    user: logged_in.profile.id,
                    session: logged_in.tokens.session_id,
                },
                ctx,
            ),
            Ok(LoginOutcome::MfaRequired(_)) => {
                if let Some(user) = trail.user {
                    self.publish(Event::MfaRequired { user }, ctx);
                }
            }
            Err(err) => {
                self.publish(
                    Event::LoginFailed {
                        reason: err.code(),
                        user: trail.user,
                        identifier_index: trail.identifier_index.clone(),
                    },
                    ctx,
                );
                if trail.locked_out {
                    self.publish(
                        Event::AccountLocked {
                            user: trail.user,
                            identifier_index: trail.identifier_index,
                        },
                        ctx,
                    );
                }
            }
        }
        result
    }

    async fn login_steps(
        &self,
        input: LoginRequest,
        ctx: &ClientContext,
        trail: &mut Trail,
    ) -> Result<LoginOutcome, AuthError> {
        if let Err(err) = self.throttle_client(Action::Login, ctx, None).await {
            // Refused before anything else: only the identifier's index is known.
            let normalized = input.identifier.normalized();
            trail.identifier_index = (!normalized.is_empty()).then(|| {
                self.ports
                    .keys
                    .blind_index(IndexPurpose::Identifier, &normalized)
                    .to_hex()
            });
            return Err(err);
        }
        let (normalized, password) = Self::validate_login(&input)?;
        let id_key = self
            .ports
            .keys
            .blind_index(IndexPurpose::Identifier, &normalized)
            .to_hex();
        trail.identifier_index = Some(id_key.clone());
        let user = self.find_login_user(&normalized, &password).await?;
        trail.user = user.as_ref().map(|u| u.id);
        let now = self.now();
        let device = input
            .device_token
            .as_deref()
            .and_then(|t| self.ports.tokens.verify_device(t, now).ok())
            .filter(|d| user.as_ref().is_some_and(|u| u.id == d.user_id));
        // The per-identifier limit is shared by every IP, so anyone could spend it: a login
        // that proves it comes from the account's own device is exempt (the per-IP limit,
        // counted before, still applies to it).
        if device.is_none() {
            self.throttle_client(Action::Login, &ctx.without_ip(), Some(&normalized))
                .await?;
        }
        let lock_key = match &device {
            Some(d) => format!("lock:{id_key}:dev:{}", d.device_id),
            None => format!("lock:{id_key}"),
        };
        let (user, lifted) = self
            .check_password(user, password.clone(), &lock_key, trail)
            .await?;
        let mfa_required = self.ports.store.second_factor_enabled(user.id).await?;
        if !mfa_required || user.email_verified_at.is_none() {
            self.ports
                .cache
                .record_success(&lock_key, &self.policy.lockout, self.now(), lifted)
                .await?;
        }
        if user.email_verified_at.is_none() {
            return Err(AuthError::EmailNotVerified);
        }
        if let (true, Some(until)) = (mfa_required, lifted) {
            // The right password, but its attempt (which stays counted while a second
            // factor is due) reached the threshold: the lock stands, and a token that
            // could not be used before it ends would only mislead.
            trail.locked_out = true;
            self.mail_locked(&user).await?;
            return Err(locked(until - self.now()));
        }
        if self.ports.hasher.needs_rehash(&user.password_hash) {
            let new_hash = self.ports.hasher.hash(password).await?;
            // Only over the password that was checked: a reset committed meanwhile wins.
            self.ports
                .store
                .rehash_password(user.id, &new_hash, user.password_version)
                .await
                .map_err(stale_is_invalid_credentials)?;
        }
        let device_id = device.map(|d| d.device_id);
        if mfa_required {
            let mfa = self.ports.store.mfa(user.id).await?;
            let challenge = self.mfa_challenge(&user, &mfa, device_id, lock_key).await?;
            return Ok(LoginOutcome::MfaRequired(challenge));
        }
        self.sign_in(&user, device_id, ctx, trail)
            .await
            .map(|logged_in| LoginOutcome::SignedIn(Box::new(logged_in)))
    }

    /// The identifier (normalized) and the password of a login, or `validation_failed`.
    fn validate_login(input: &LoginRequest) -> Result<(String, Password), AuthError> {
        let mut v = Validation::default();
        let password = v.field("password", Password::presented(&input.password.0));
        let normalized = input.identifier.normalized();
        let field = match input.identifier {
            LoginIdentifier::Email(_) => "email",
            LoginIdentifier::Username(_) => "username",
        };
        if normalized.is_empty() {
            v.add(field, "is required");
        }
        v.finish()?;
        let password = password.ok_or(AuthError::InvalidCredentials)?;
        Ok((normalized, password))
    }

    /// Checks `password` against `user` (unknown: against nothing, after the same work),
    /// counting the attempt under `lock_key`: `AccountLocked` before any hashing when the
    /// key is locked, `InvalidCredentials` on a mismatch (which may lock it: the owner is
    /// mailed). On a match the attempt is still counted: the caller records the success
    /// (with the lock this attempt set, returned) once the login no longer needs anything
    /// else.
    async fn check_password(
        &self,
        user: Option<UserRecord>,
        password: Password,
        lock_key: &str,
        trail: &mut Trail,
    ) -> Result<(UserRecord, Option<crate::types::Timestamp>), AuthError> {
        let now = self.now();
        let cache = &self.ports.cache;
        let policy = &self.policy.lockout;
        // Reserve the attempt before hashing: concurrent guesses each count before any is
        // checked, so no more than the threshold are ever evaluated.
        let reservation = cache.reserve_attempt(lock_key, policy, now).await?;
        if !reservation.counted {
            let until = reservation.state.locked_at(now).unwrap_or(now);
            return Err(locked(until - now));
        }
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let matches = self.ports.hasher.verify(password, hash).await?;
        let user = match (user, matches) {
            (Some(user), true) => user,
            (user, _) => {
                trail.locked_out = reservation.lock_set(now).is_some();
                if let (Some(user), true) = (user, trail.locked_out) {
                    self.mail_locked(&user).await?;
                }
                return Err(AuthError::InvalidCredentials);
            }
        };
        Ok((user, reservation.lock_set(now)))
    }

    /// Starts the session, renews the device token (same device id when one was presented)
    /// and returns the profile as of this login.
    pub(crate) async fn sign_in(
        &self,
        user: &UserRecord,
        device_id: Option<uuid::Uuid>,
        ctx: &ClientContext,
        trail: &mut Trail,
    ) -> Result<LoggedIn, AuthError> {
        let tokens = self.start_session(user, ctx).await?;
        trail.session = Some(tokens.pair.session_id);
        let device = DeviceClaims {
            user_id: user.id,
            device_id: match device_id {
                Some(id) => id,
                None => self.new_uuid()?,
            },
            expires_at: self.now() + self.policy.device_ttl,
        };
        let device_token = self.ports.tokens.issue_device(&device)?;
        let mut profile = self.profile_of(user)?;
        profile.last_login_at = Some(tokens.issued_at);
        Ok(LoggedIn {
            tokens: tokens.pair,
            device_token,
            profile,
        })
    }

    /// The account a login names. By username: that account (a pending registration for a
    /// taken email included). By email: the account holding it, unless a pending
    /// registration for that email has the presented password's tag, in which case that
    /// registration: either way one candidate, so one bcrypt, whatever exists.
    async fn find_login_user(
        &self,
        normalized: &str,
        password: &Password,
    ) -> Result<Option<UserRecord>, AuthError> {
        let store = &self.ports.store;
        if !normalized.contains('@') {
            return Ok(store.user_by_username(normalized).await?);
        }
        let Ok(email) = Email::parse(normalized) else {
            return Ok(None);
        };
        let index = self.email_index(&email);
        let owner = store.user_by_email(&index).await?;
        let pending = store
            .pending_registration(&index, self.password_tag(password))
            .await?;
        Ok(pending.or(owner))
    }

    pub(crate) async fn mail_locked(&self, user: &UserRecord) -> Result<(), AuthError> {
        let email = Email::parse(&self.open(SealedField::Email, &user.email_sealed)?);
        if let Ok(email) = email {
            let name = self.open(SealedField::Name, &user.name_sealed).ok();
            let mail = self.notice(MailKind::AccountLocked, &email, name).await?;
            self.enqueue(mail).await?;
        }
        Ok(())
    }

    /// Starts a session for `user` and issues its first token pair, only while the
    /// password the login checked is still the account's password (see
    /// [`crate::ports::SessionStore::create_login_session`]).
    async fn start_session(
        &self,
        user: &UserRecord,
        ctx: &ClientContext,
    ) -> Result<StartedSession, AuthError> {
        let now = self.now();
        let session = SessionRecord {
            id: SessionId(self.new_uuid()?),
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            expires_at: now + self.policy.refresh_ttl,
            user_agent: ctx
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().take(256).collect()),
            ip_sealed: ctx
                .ip
                .map(|ip| self.seal(SealedField::Ip, &ip.to_string()))
                .transpose()?,
            revoked_at: None,
        };
        let refresh = self.new_token()?;
        self.ports
            .store
            .create_login_session(&session, &refresh.hash(), user.password_version)
            .await
            .map_err(stale_is_invalid_credentials)?;
        let pair = self.token_pair(user.id, &user.username, session.id, refresh)?;
        Ok(StartedSession {
            pair,
            issued_at: now,
        })
    }
}

/// A session just started, and when.
struct StartedSession {
    pair: TokenPair,
    issued_at: crate::types::Timestamp,
}

/// The password a login checked was replaced meanwhile (or the account is gone): to the
/// client, the password is no longer valid.
fn stale_is_invalid_credentials(err: StoreError) -> AuthError {
    match err {
        StoreError::Stale | StoreError::NotFound => AuthError::InvalidCredentials,
        other => other.into(),
    }
}

pub(crate) fn locked(left: chrono::TimeDelta) -> AuthError {
    let secs = u64::try_from(left.num_seconds().max(1)).unwrap_or(1);
    AuthError::AccountLocked {
        retry_after_secs: secs,
    }
}
