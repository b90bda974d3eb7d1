//! Second factors: TOTP enrolment, recovery codes, and completing a login with a code.
//!
//! A login whose password is right, for an account with a second factor, leaves a
//! [`PendingLogin`] in the cache under the hash of a fresh `mfa_token` (5 minutes). A code
//! completes it: the token is taken (single use) and the session starts, as of the
//! password version the login checked. Wrong codes count toward the account's lockout
//! (under the lockout key of the login) and toward the token's own limit (5), after which
//! the token is dead. A TOTP time step is accepted once per account across instances
//! (claimed in the shared cache); each recovery code once (a conditional update).

use chrono::TimeDelta;

use crate::error::{AuthError, Validation};
use crate::events::Event;
use crate::model::{
    AccessClaims, MailKind, MfaMethod, MfaRecord, PendingLogin, RecoveryCodeHash, TotpRecord,
    UserRecord,
};
use crate::ports::{
    AttemptCounter, EphemeralStore, IndexPurpose, Keyring, MfaStore, Randomness, RateLimiter,
    SealedField, StoreError, TotpCodec, UserStore,
};
use crate::types::{PlainToken, Timestamp, UserId};

use super::login::{LoggedIn, MfaChallenge, locked};
use super::register::SecretPassword;
use super::{Action, Adapters, AuthService, ClientContext, Trail};

/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;

/// Characters of a recovery code: Crockford's base32 (no i, l, o, u), lower case.
const CODE_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Bytes of a TOTP secret (160 bits, RFC 4226's recommendation for HMAC-SHA-1).
const TOTP_SECRET_BYTES: usize = 20;

/// Seconds per TOTP step.
const TOTP_STEP_SECS: i64 = 30;

/// A code presented as a second factor.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    /// A 6-digit code from an authenticator app.
    Totp(String),
    /// A single-use recovery code.
    RecoveryCode(String),
}

impl SecondFactor {
    /// A code as typed where either kind is accepted: six digits are a TOTP code,
    /// anything else a recovery code.
    pub fn either(raw: &str) -> Self {
        let trimmed = raw.trim();
        if trimmed.len() == 6 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            Self::Totp(trimmed.to_owned())
        } else {
            Self::RecoveryCode(raw.to_owned())
        }
    }

    fn method(&self) -> MfaMethod {
        match self {
            Self::Totp(_) => MfaMethod::Totp,
            Self::RecoveryCode(_) => MfaMethod::RecoveryCode,
        }
    }
}

/// A TOTP enrolment handed out: the secret, until a first code confirms it.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// The secret in base32 (what an app takes when typed in).
    pub secret: String,
    /// `otpauth://totp/…` (what an app takes as a QR code).
    pub otpauth_url: String,
}

/// A user's second factors as they see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaStatus {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// Passkeys, oldest first.
    pub passkeys: Vec<PasskeyView>,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyView {
    /// Id.
    pub id: crate::types::PasskeyId,
    /// The name given to it.
    pub name: String,
    /// Registered.
    pub created_at: Timestamp,
    /// Last used to sign in.
    pub last_used_at: Option<Timestamp>,
}

/// Hex of a token's SHA-256: the cache key part of an `mfa_token` or a challenge id.
pub(crate) fn token_key(token: &PlainToken) -> String {
    token.hash().to_hex()
}

pub(crate) fn pending_key(token_hash: &str) -> String {
    format!("mfa:login:{token_hash}")
}

fn wrong_key(token_hash: &str) -> String {
    format!("mfa:wrong:{token_hash}")
}

/// Normalizes a recovery code as typed: lower case, no separators or spaces, and the
/// letters Crockford's base32 reads as digits (o → 0, i and l → 1).
fn normalize_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect()
}

impl<A: Adapters> AuthService<A> {
    /// Leaves the login of `user` waiting for its second factor and returns its token.
    pub(crate) async fn mfa_challenge(
        &self,
        user: &UserRecord,
        mfa: &MfaRecord,
        device_id: Option<uuid::Uuid>,
        lock_key: String,
    ) -> Result<MfaChallenge, AuthError> {
        let now = self.now();
        let ttl = self.policy.mfa.token_ttl;
        let token = self.new_token()?;
        let pending = PendingLogin {
            user: user.id,
            password_version: user.password_version,
            device_id,
            lock_key,
            expires_at: now + ttl,
        };
        let value = serde_json::to_vec(&pending).map_err(crate::ports::PortError::unexpected)?;
        self.ports
            .cache
            .put_ephemeral(&pending_key(&token_key(&token)), &value, now + ttl, now)
            .await?;
        Ok(MfaChallenge {
            mfa_token: token.expose().to_owned(),
            methods: mfa.methods(),
            expires_in: ttl.num_seconds(),
        })
    }

    /// The login waiting under `mfa_token` (by its hash), or `InvalidToken`.
    pub(crate) async fn pending_login(&self, token_hash: &str) -> Result<PendingLogin, AuthError> {
        let raw = self
            .ports
            .cache
            .get_ephemeral(&pending_key(token_hash), self.now())
            .await?
            .ok_or(AuthError::InvalidToken)?;
        serde_json::from_slice(&raw).map_err(|_| AuthError::InvalidToken)
    }

    /// Completes a login waiting for its second factor with a TOTP or recovery code.
    /// Counted by the per-IP and per-account limits of `mfa_verify`; a wrong code is
    /// `InvalidMfaCode`, counts toward the login's lockout key (it may lock it: the owner
    /// is mailed) and toward the token's limit. Reports `LoginSucceeded` and `MfaVerified`,
    /// or `MfaFailed` (and `AccountLocked`).
    #[tracing::instrument(
        target = "auth_trace",
        name = "mfa_verify",
        skip_all,
        fields(use_case = "mfa_verify")
    )]
    pub async fn verify_mfa(
        &self,
        mfa_token: &str,
        code: SecondFactor,
        ctx: &ClientContext,
    ) -> Result<LoggedIn, AuthError> {
        let method = code.method();
        let mut trail = Trail::default();
        let result = self
            .verify_mfa_steps(mfa_token, code, ctx, &mut trail)
            .await;
        self.second_factor_outcome(&result, Some(method), ctx, trail);
        result
    }

    /// Reports how a second factor ended.
    pub(crate) fn second_factor_outcome(
        &self,
        result: &Result<LoggedIn, AuthError>,
        method: Option<MfaMethod>,
        ctx: &ClientContext,
        trail: Trail,
    ) {
        match result {
            Ok(logged_in) => {
                if let Some(method) = method {
                    self.publish(
                        Event::MfaVerified {
                            user: logged_in.profile.id,
                            method,
                        },
                        ctx,
                    );
                }
                self.publish(
                    Event::LoginSucceeded {
                        user: logged_in.profile.id,
                        session: logged_in.tokens.session_id,
                    },
                    ctx,
                );
            }
            Err(err) => {
                self.publish(
                    Event::MfaFailed {
                        reason: err.code(),
                        user: trail.user,
                        method,
                    },
                    ctx,
                );
                if trail.locked_out {
                    self.publish(
                        Event::AccountLocked {
                            user: trail.user,
                            identifier_index: None,
                        },
                        ctx,
                    );
                }
            }
        }
    }

    async fn verify_mfa_steps(
        &self,
        mfa_token: &str,
        code: SecondFactor,
        ctx: &ClientContext,
        trail: &mut Trail,
    ) -> Result<LoggedIn, AuthError> {
        self.throttle_client(Action::MfaVerify, ctx, None).await?;
        let token = PlainToken::presented(mfa_token).map_err(|_| AuthError::InvalidToken)?;
        let token_hash = token_key(&token);
        let pending = self.pending_login(&token_hash).await?;
        trail.user = Some(pending.user);
        self.throttle_client(
            Action::MfaVerify,
            &ctx.without_ip(),
            Some(&pending.user.to_string()),
        )
        .await?;
        let (user, lifted) = self.attempt_second_factor(&pending, trail).await?;
        let mfa = self.ports.store.mfa(user.id).await?;
        let accepted = self.check_code(&user, &mfa, &code).await?;
        if !accepted {
            return Err(self.wrong_second_factor(&token_hash, &user, trail).await);
        }
        self.complete_login(&token_hash, &pending, &user, lifted, ctx, trail)
            .await
    }

    /// Counts one second-factor attempt under the login's lockout key (`AccountLocked`
    /// when it is locked) and loads the account, which must still have the password the
    /// login checked (`InvalidToken` otherwise). Returns it with the lock this attempt
    /// set, if it set one.
    pub(crate) async fn attempt_second_factor(
        &self,
        pending: &PendingLogin,
        trail: &mut Trail,
    ) -> Result<(UserRecord, Option<Timestamp>), AuthError> {
        let now = self.now();
        let reservation = self
            .ports
            .cache
            .reserve_attempt(&pending.lock_key, &self.policy.lockout, now)
            .await?;
        if !reservation.counted {
            let until = reservation.state.locked_at(now).unwrap_or(now);
            return Err(locked(until - now));
        }
        trail.locked_out = reservation.lock_set(now).is_some();
        let user = self
            .ports
            .store
            .user_by_id(pending.user)
            .await?
            .filter(|u| u.password_version == pending.password_version)
            .ok_or(AuthError::InvalidToken)?;
        Ok((user, reservation.lock_set(now)))
    }

    /// A wrong second factor: counts it against the token (dead after the policy's
    /// limit), mails the owner if this attempt locked the account, and gives the error.
    pub(crate) async fn wrong_second_factor(
        &self,
        token_hash: &str,
        user: &UserRecord,
        trail: &Trail,
    ) -> AuthError {
        let now = self.now();
        let cache = &self.ports.cache;
        let counted = cache
            .increment(&wrong_key(token_hash), now + self.policy.mfa.token_ttl, now)
            .await;
        match counted {
            Ok(wrong) if wrong >= self.policy.mfa.max_wrong_codes => {
                if let Err(err) = cache.remove_ephemeral(&pending_key(token_hash)).await {
                    return err.into();
                }
            }
            Ok(_) => {}
            Err(err) => return err.into(),
        }
        if trail.locked_out
            && let Err(err) = self.mail_locked(user).await
        {
            return err;
        }
        AuthError::InvalidMfaCode
    }

    /// The second factor was right: takes the token (single use), forgets the lockout
    /// failures, and starts the session.
    pub(crate) async fn complete_login(
        &self,
        token_hash: &str,
        pending: &PendingLogin,
        user: &UserRecord,
        lifted: Option<Timestamp>,
        ctx: &ClientContext,
        trail: &mut Trail,
    ) -> Result<LoggedIn, AuthError> {
        let now = self.now();
        self.ports
            .cache
            .take_ephemeral(&pending_key(token_hash), now)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        trail.locked_out = false;
        self.ports
            .cache
            .record_success(&pending.lock_key, &self.policy.lockout, now, lifted)
            .await?;
        self.sign_in(user, pending.device_id, ctx, trail).await
    }

    /// Whether `code` is a valid second factor of `user` now: a TOTP code of the current
    /// step or one either side, not used before (the step is claimed across instances),
    /// or an unused recovery code (used up by this call; the owner is mailed).
    pub(crate) async fn check_code(
        &self,
        user: &UserRecord,
        mfa: &MfaRecord,
        code: &SecondFactor,
    ) -> Result<bool, AuthError> {
        match code {
            SecondFactor::Totp(code) => {
                let Some(totp) = mfa.totp.as_ref().filter(|t| t.confirmed_at.is_some()) else {
                    return Ok(false);
                };
                let Some(step) = self.totp_step(totp, code)? else {
                    return Ok(false);
                };
                self.claim_step(user.id, step).await
            }
            SecondFactor::RecoveryCode(raw) => {
                if !mfa.required() {
                    return Ok(false);
                }
                let normalized = normalize_code(raw);
                if normalized.is_empty() || normalized.len() > 64 {
                    return Ok(false);
                }
                let hash = self.recovery_code_hash(user.id, &normalized);
                let used = self
                    .ports
                    .store
                    .use_recovery_code(user.id, &hash, self.now(), None)
                    .await?;
                if used {
                    // The notice is written after the use, not with it: building it counts
                    // against the one-mail-a-minute limit of its kind, which wrong codes
                    // must not spend (they would silence the notice of a right one).
                    let profile = self.profile_of(user)?;
                    let mail = self
                        .notice_to_profile(MailKind::RecoveryCodeUsed, &profile)
                        .await?;
                    self.enqueue(mail).await?;
                    self.publish(
                        Event::RecoveryCodeUsed { user: user.id },
                        &ClientContext::default(),
                    );
                }
                Ok(used)
            }
        }
    }

    /// The step (of the current one and its neighbours within the drift) whose code
    /// `code` is, if any.
    fn totp_step(&self, totp: &TotpRecord, code: &str) -> Result<Option<u64>, AuthError> {
        let secret = self.open(SealedField::TotpSecret, &totp.secret_sealed)?;
        let secret = base64_decode(&secret)?;
        let now_step = u64::try_from(self.now().timestamp() / TOTP_STEP_SECS).unwrap_or(0);
        let drift = self.policy.mfa.totp_drift_steps;
        let first = now_step.saturating_sub(drift);
        let mut matched = None;
        // Every candidate is computed (no early exit): the time taken does not say which
        // step matched.
        for step in first..=now_step.saturating_add(drift) {
            if self.ports.totp.matches(&secret, step, code) && matched.is_none() {
                matched = Some(step);
            }
        }
        Ok(matched)
    }

    /// Marks a TOTP step of `user` used, across instances: `false` if it was already (a
    /// replay). The mark outlives every time the step's code is accepted.
    async fn claim_step(&self, user: UserId, step: u64) -> Result<bool, AuthError> {
        let now = self.now();
        let drift = i64::try_from(self.policy.mfa.totp_drift_steps).unwrap_or(1);
        let step_start = i64::try_from(step).unwrap_or(i64::MAX / 2) * TOTP_STEP_SECS;
        let accepted_until = Timestamp::from_timestamp(step_start, 0).unwrap_or(now)
            + TimeDelta::seconds((drift + 1) * TOTP_STEP_SECS);
        let expires_at = accepted_until.max(now) + TimeDelta::seconds(TOTP_STEP_SECS);
        Ok(self
            .ports
            .cache
            .claim_once(&format!("mfa:totp:{user}:{step}"), expires_at, now)
            .await?)
    }

    fn recovery_code_hash(&self, user: UserId, normalized: &str) -> RecoveryCodeHash {
        RecoveryCodeHash(
            self.ports
                .keys
                .blind_index(IndexPurpose::RecoveryCode, &format!("{user}:{normalized}")),
        )
    }

    /// A fresh set of recovery codes (as shown once to the user) and their hashes.
    fn new_recovery_codes(
        &self,
        user: UserId,
    ) -> Result<(Vec<String>, Vec<RecoveryCodeHash>), AuthError> {
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        let mut hashes = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let mut bytes = [0u8; 10];
            self.ports.random.fill(&mut bytes)?;
            let chars: String = bytes
                .iter()
                .map(|b| char::from(CODE_ALPHABET[usize::from(b & 31)]))
                .collect();
            let shown = format!("{}-{}", &chars[..5], &chars[5..]);
            hashes.push(self.recovery_code_hash(user, &normalize_code(&shown)));
            codes.push(shown);
        }
        Ok((codes, hashes))
    }

    /// The caller's second factors.
    #[tracing::instrument(
        target = "auth_trace",
        name = "mfa_status",
        skip_all,
        fields(use_case = "mfa_status")
    )]
    pub async fn mfa_status(&self, claims: &AccessClaims) -> Result<MfaStatus, AuthError> {
        let user = self.current_user(claims.user_id).await?;
        let mfa = self.ports.store.mfa(user.id).await?;
        let passkeys = mfa
            .passkeys
            .iter()
            .map(|p| {
                Ok(PasskeyView {
                    id: p.id,
                    name: self.open(SealedField::PasskeyName, &p.name_sealed)?,
                    created_at: p.created_at,
                    last_used_at: p.last_used_at,
                })
            })
            .collect::<Result<Vec<_>, AuthError>>()?;
        Ok(MfaStatus {
            totp: mfa.totp_enabled(),
            passkeys,
            recovery_codes_left: if mfa.required() {
                mfa.recovery_codes_left
            } else {
                0
            },
        })
    }

    /// Counts a second-factor check of a signed-in user (confirming or removing a factor)
    /// against the per-account limit.
    async fn throttle_account(&self, what: &str, user: UserId) -> Result<(), AuthError> {
        let key = format!("rl:{what}:user:{user}");
        let decision = self
            .ports
            .cache
            .hit(&key, self.policy.rate.per_identifier, self.now())
            .await?;
        if decision.allowed {
            Ok(())
        } else {
            Err(AuthError::RateLimited(decision))
        }
    }

    /// Starts a TOTP enrolment after checking the password: a new secret, pending until
    /// [`Self::confirm_totp`]. `MfaState` when TOTP is enabled already.
    #[tracing::instrument(
        target = "auth_trace",
        name = "enrol_totp",
        skip_all,
        fields(use_case = "enrol_totp")
    )]
    pub async fn enrol_totp(
        &self,
        claims: &AccessClaims,
        password: SecretPassword,
    ) -> Result<TotpEnrolment, AuthError> {
        const ENABLED: &str = "TOTP is already enabled; remove it first to enrol again.";
        let user = self.current_user(claims.user_id).await?;
        self.reauthenticate(&user, &password).await?;
        if self.ports.store.mfa(user.id).await?.totp_enabled() {
            return Err(AuthError::MfaState(ENABLED));
        }
        let mut secret = [0u8; TOTP_SECRET_BYTES];
        self.ports.random.fill(&mut secret)?;
        let record = TotpRecord {
            user_id: user.id,
            secret_sealed: self.seal(SealedField::TotpSecret, &base64_encode(&secret))?,
            created_at: self.now(),
            confirmed_at: None,
        };
        self.ports
            .store
            .set_pending_totp(&record)
            .await
            .map_err(|err| match err {
                StoreError::Stale => AuthError::MfaState(ENABLED),
                other => other.into(),
            })?;
        let totp = &self.ports.totp;
        Ok(TotpEnrolment {
            secret: totp.secret_base32(&secret),
            otpauth_url: totp.otpauth_url(&secret, &self.policy.mfa.issuer, &user.username),
        })
    }

    /// Confirms the pending TOTP enrolment with a first code: TOTP is then required at
    /// login. Returns a new set of recovery codes (the old set dies); the owner is mailed.
    /// Reports `FactorAdded`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "confirm_totp",
        skip_all,
        fields(use_case = "confirm_totp")
    )]
    pub async fn confirm_totp(
        &self,
        claims: &AccessClaims,
        code: &str,
    ) -> Result<Vec<String>, AuthError> {
        const NOTHING_PENDING: &str =
            "No TOTP enrolment is pending; start one with POST /users/mfa/totp.";
        let mut v = Validation::default();
        let code = code.trim();
        if code.is_empty() {
            v.add("code", "is required");
        }
        v.finish()?;
        let user = self.current_user(claims.user_id).await?;
        self.throttle_account("mfa_confirm", user.id).await?;
        let mfa = self.ports.store.mfa(user.id).await?;
        let Some(totp) = mfa.totp.as_ref().filter(|t| t.confirmed_at.is_none()) else {
            return Err(AuthError::MfaState(NOTHING_PENDING));
        };
        let Some(step) = self.totp_step(totp, code)? else {
            return Err(AuthError::InvalidMfaCode);
        };
        if !self.claim_step(user.id, step).await? {
            return Err(AuthError::InvalidMfaCode);
        }
        let (codes, hashes) = self.new_recovery_codes(user.id)?;
        let profile = self.profile_of(&user)?;
        let mail = self
            .notice_to_profile(MailKind::TotpEnabled, &profile)
            .await?;
        self.ports
            .store
            .confirm_totp(
                user.id,
                &totp.secret_sealed,
                &hashes,
                self.now(),
                mail.as_ref(),
            )
            .await
            .map_err(|err| match err {
                StoreError::Stale => AuthError::MfaState(NOTHING_PENDING),
                other => other.into(),
            })?;
        self.queued(mail.as_ref());
        self.publish(
            Event::FactorAdded {
                user: user.id,
                method: MfaMethod::Totp,
            },
            &ClientContext::default(),
        );
        Ok(codes)
    }

    /// Removes the TOTP authenticator after checking the password and a code (TOTP or
    /// recovery code). `NotFound` when TOTP is not enabled. The owner is mailed; reports
    /// `FactorRemoved`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "disable_totp",
        skip_all,
        fields(use_case = "disable_totp")
    )]
    pub async fn disable_totp(
        &self,
        claims: &AccessClaims,
        password: SecretPassword,
        code: &str,
    ) -> Result<(), AuthError> {
        let mut v = Validation::default();
        if code.trim().is_empty() {
            v.add("code", "is required");
        }
        v.finish()?;
        let user = self.current_user(claims.user_id).await?;
        self.reauthenticate(&user, &password).await?;
        let mfa = self.ports.store.mfa(user.id).await?;
        if !mfa.totp_enabled() {
            return Err(AuthError::NotFound);
        }
        self.throttle_account("mfa_disable", user.id).await?;
        if !self
            .check_code(&user, &mfa, &SecondFactor::either(code))
            .await?
        {
            return Err(AuthError::InvalidMfaCode);
        }
        let profile = self.profile_of(&user)?;
        let mail = self
            .notice_to_profile(MailKind::TotpDisabled, &profile)
            .await?;
        if self.ports.store.delete_totp(user.id, mail.as_ref()).await? {
            self.queued(mail.as_ref());
            self.publish(
                Event::FactorRemoved {
                    user: user.id,
                    method: MfaMethod::Totp,
                },
                &ClientContext::default(),
            );
        }
        Ok(())
    }

    /// A new set of recovery codes after checking the password; the old set dies.
    /// `MfaState` when the account has no second factor. Reports `RecoveryCodesRenewed`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "renew_recovery_codes",
        skip_all,
        fields(use_case = "renew_recovery_codes")
    )]
    pub async fn renew_recovery_codes(
        &self,
        claims: &AccessClaims,
        password: SecretPassword,
    ) -> Result<Vec<String>, AuthError> {
        let user = self.current_user(claims.user_id).await?;
        self.reauthenticate(&user, &password).await?;
        if !self.ports.store.mfa(user.id).await?.required() {
            return Err(AuthError::MfaState(
                "Recovery codes need a second factor; enable TOTP or add a passkey first.",
            ));
        }
        let (codes, hashes) = self.new_recovery_codes(user.id)?;
        self.ports
            .store
            .replace_recovery_codes(user.id, &hashes, self.now())
            .await?;
        self.publish(
            Event::RecoveryCodesRenewed { user: user.id },
            &ClientContext::default(),
        );
        Ok(codes)
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

fn base64_decode(text: &str) -> Result<Vec<u8>, AuthError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .map_err(|_| AuthError::Unexpected(crate::ports::PortError::unexpected("TOTP secret")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_read_as_typed_with_crockford_confusables() {
        assert_eq!(normalize_code("AB0CD-E1FGH"), "ab0cde1fgh");
        assert_eq!(normalize_code(" abOcd eIfgh "), "ab0cde1fgh");
        assert_eq!(normalize_code("ab0cd-elfgh"), "ab0cde1fgh");
    }

    #[test]
    fn six_digits_are_a_totp_code_and_anything_else_a_recovery_code() {
        assert!(matches!(SecondFactor::either(" 123456 "), SecondFactor::Totp(c) if c == "123456"));
        assert!(matches!(
            SecondFactor::either("12345"),
            SecondFactor::RecoveryCode(_)
        ));
        assert!(matches!(
            SecondFactor::either("abcde-12345"),
            SecondFactor::RecoveryCode(_)
        ));
    }
}
