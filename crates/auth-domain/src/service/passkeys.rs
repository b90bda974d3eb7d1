//! Passkeys: registering one (after the password), removing one, and signing in with one,
//! as the second factor of a login or passwordless with a discoverable credential.
//!
//! Each ceremony's state waits in the shared cache under the hash of a fresh
//! `challenge_id` for 5 minutes and is taken once: a finished, expired or unknown
//! challenge is `InvalidToken`. A sign-in stores the credential's new signature counter
//! only while the counter is still the one the assertion was checked against, so of two
//! sign-ins racing with a cloned authenticator one fails.

use crate::error::AuthError;
use crate::events::Event;
use crate::model::{
    AccessClaims, CeremonyPurpose, MailKind, MfaMethod, PasskeyRecord, PendingCeremony,
};
use crate::ports::{
    EphemeralStore, MfaStore, PasskeyCeremonies, PasskeyError, PortError, StoreError, UserStore,
};
use crate::types::{PasskeyId, PlainToken, Timestamp};

use super::login::LoggedIn;
use super::mfa::token_key;
use super::register::SecretPassword;
use super::{Action, Adapters, AuthService, ClientContext, Trail};

/// The longest passkey name kept (characters).
const NAME_MAX: usize = 64;

/// A ceremony started: the browser's options and the id to finish it with.
#[derive(Debug, Clone)]
pub struct CeremonyStarted {
    /// Opaque, single use, 5 minutes.
    pub challenge_id: String,
    /// `PublicKeyCredentialCreationOptions` or `…RequestOptions`, JSON form.
    pub options: serde_json::Value,
}

/// A passkey just registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRegistered {
    /// Its id.
    pub id: PasskeyId,
    /// Its name.
    pub name: String,
    /// When.
    pub created_at: Timestamp,
}

fn ceremony_key(challenge_hash: &str) -> String {
    format!("mfa:ceremony:{challenge_hash}")
}

/// A refused or unreadable browser response, as the client sees it.
fn response_error(err: PasskeyError, refused: AuthError) -> AuthError {
    match err {
        PasskeyError::Malformed(_) => {
            AuthError::invalid_field("credential", "is not a WebAuthn credential response")
        }
        PasskeyError::Refused(reason) => {
            tracing::info!(target: "auth_trace", reason = %reason, "passkey refused");
            refused
        }
        PasskeyError::Disabled => AuthError::MfaState(PASSKEYS_DISABLED),
        PasskeyError::Port(port) => port.into(),
    }
}

const PASSKEYS_DISABLED: &str = "Passkeys are not enabled on this service (its operator sets WEBAUTHN_RP_ID and WEBAUTHN_ORIGIN).";

impl<A: Adapters> AuthService<A> {
    async fn save_ceremony(
        &self,
        purpose: CeremonyPurpose,
        state: String,
        options: serde_json::Value,
    ) -> Result<CeremonyStarted, AuthError> {
        let now = self.now();
        let expires_at = now + self.policy.mfa.ceremony_ttl;
        let challenge = self.new_token()?;
        let pending = PendingCeremony {
            purpose,
            state,
            expires_at,
        };
        let value = serde_json::to_vec(&pending).map_err(PortError::unexpected)?;
        self.ports
            .cache
            .put_ephemeral(
                &ceremony_key(&token_key(&challenge)),
                &value,
                expires_at,
                now,
            )
            .await?;
        Ok(CeremonyStarted {
            challenge_id: challenge.expose().to_owned(),
            options,
        })
    }

    /// Takes the ceremony under `challenge_id` (single use), or `InvalidToken`.
    async fn take_ceremony(&self, challenge_id: &str) -> Result<PendingCeremony, AuthError> {
        let challenge = PlainToken::presented(challenge_id).map_err(|_| AuthError::InvalidToken)?;
        let raw = self
            .ports
            .cache
            .take_ephemeral(&ceremony_key(&token_key(&challenge)), self.now())
            .await?
            .ok_or(AuthError::InvalidToken)?;
        serde_json::from_slice(&raw).map_err(|_| AuthError::InvalidToken)
    }

    /// Starts registering a passkey for the caller, after checking their password.
    #[tracing::instrument(
        target = "auth_trace",
        name = "passkey_register_start",
        skip_all,
        fields(use_case = "passkey_register_start")
    )]
    pub async fn start_passkey_registration(
        &self,
        claims: &AccessClaims,
        password: SecretPassword,
    ) -> Result<CeremonyStarted, AuthError> {
        let user = self.current_user(claims.user_id).await?;
        self.reauthenticate(&user, &password).await?;
        let mfa = self.ports.store.mfa(user.id).await?;
        let exclude: Vec<Vec<u8>> = mfa
            .passkeys
            .iter()
            .map(|p| p.credential_id.clone())
            .collect();
        let ceremony = self
            .ports
            .passkeys
            .start_registration(user.id, &user.username, &exclude)
            .map_err(|err| response_error(err, AuthError::InvalidMfaCode))?;
        self.save_ceremony(
            CeremonyPurpose::Register { user: user.id },
            ceremony.state,
            ceremony.options,
        )
        .await
    }

    /// Finishes a registration the caller started: verifies the browser's response and
    /// stores the passkey (named `name`, or "Passkey"). The owner is mailed; reports
    /// `FactorAdded`. A response that does not verify is `validation_failed` on
    /// `credential`; a credential registered already is `Conflict`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "passkey_register_finish",
        skip_all,
        fields(use_case = "passkey_register_finish")
    )]
    pub async fn finish_passkey_registration(
        &self,
        claims: &AccessClaims,
        challenge_id: &str,
        credential: &serde_json::Value,
        name: Option<&str>,
    ) -> Result<PasskeyRegistered, AuthError> {
        let name = match name.map(str::trim) {
            None | Some("") => "Passkey".to_owned(),
            Some(name) if name.chars().count() > NAME_MAX => {
                return Err(AuthError::invalid_field(
                    "name",
                    "must be at most 64 characters",
                ));
            }
            Some(name) if name.chars().any(char::is_control) => {
                return Err(AuthError::invalid_field(
                    "name",
                    "must not contain control characters",
                ));
            }
            Some(name) => name.to_owned(),
        };
        let user = self.current_user(claims.user_id).await?;
        let ceremony = self.take_ceremony(challenge_id).await?;
        if ceremony.purpose != (CeremonyPurpose::Register { user: user.id }) {
            return Err(AuthError::InvalidToken);
        }
        let refused = AuthError::invalid_field(
            "credential",
            "was not accepted (challenge, origin or signature)",
        );
        let new = self
            .ports
            .passkeys
            .finish_registration(&ceremony.state, credential)
            .map_err(|err| response_error(err, refused))?;
        let now = self.now();
        let record = PasskeyRecord {
            id: PasskeyId(self.new_uuid()?),
            user_id: user.id,
            credential_id: new.credential_id,
            name_sealed: self.seal(crate::ports::SealedField::PasskeyName, &name)?,
            credential: new.credential,
            sign_count: new.sign_count,
            created_at: now,
            last_used_at: None,
        };
        let profile = self.profile_of(&user)?;
        let mail = self
            .notice_to_profile(MailKind::PasskeyAdded, &profile)
            .await?;
        self.ports
            .store
            .insert_passkey(&record, mail.as_ref())
            .await?;
        self.queued(mail.as_ref());
        self.publish(
            Event::FactorAdded {
                user: user.id,
                method: MfaMethod::Passkey,
            },
            &ClientContext::default(),
        );
        Ok(PasskeyRegistered {
            id: record.id,
            name,
            created_at: now,
        })
    }

    /// Removes one of the caller's passkeys (another user's id is `NotFound`). The owner
    /// is mailed; reports `FactorRemoved`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "passkey_delete",
        skip_all,
        fields(use_case = "passkey_delete")
    )]
    pub async fn delete_passkey(
        &self,
        claims: &AccessClaims,
        id: PasskeyId,
    ) -> Result<(), AuthError> {
        let user = self.current_user(claims.user_id).await?;
        // An id that is not one of the caller's passkeys is refused before the notice is
        // built: building it spends the one-mail-a-minute limit of its kind.
        let mfa = self.ports.store.mfa(user.id).await?;
        if !mfa.passkeys.iter().any(|p| p.id == id) {
            return Err(AuthError::NotFound);
        }
        let profile = self.profile_of(&user)?;
        let mail = self
            .notice_to_profile(MailKind::PasskeyRemoved, &profile)
            .await?;
        if !self
            .ports
            .store
            .delete_passkey(user.id, id, mail.as_ref())
            .await?
        {
            return Err(AuthError::NotFound);
        }
        self.queued(mail.as_ref());
        self.publish(
            Event::FactorRemoved {
                user: user.id,
                method: MfaMethod::Passkey,
            },
            &ClientContext::default(),
        );
        Ok(())
    }

    /// Starts a passkey sign-in: with `mfa_token`, the second factor of that login (the
    /// account's passkeys allowed; `MfaState` if it has none); without, passwordless with
    /// a discoverable passkey. Counted by the per-IP limit of `passkey`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "passkey_start",
        skip_all,
        fields(use_case = "passkey_start")
    )]
    pub async fn start_passkey_sign_in(
        &self,
        mfa_token: Option<&str>,
        ctx: &ClientContext,
    ) -> Result<CeremonyStarted, AuthError> {
        self.throttle_client(Action::Passkey, ctx, None).await?;
        let Some(mfa_token) = mfa_token else {
            let ceremony = self
                .ports
                .passkeys
                .start_authentication(&[])
                .map_err(|err| response_error(err, AuthError::InvalidCredentials))?;
            return self
                .save_ceremony(
                    CeremonyPurpose::Passwordless,
                    ceremony.state,
                    ceremony.options,
                )
                .await;
        };
        let token = PlainToken::presented(mfa_token).map_err(|_| AuthError::InvalidToken)?;
        let token_hash = token_key(&token);
        let pending = self.pending_login(&token_hash).await?;
        let mfa = self.ports.store.mfa(pending.user).await?;
        if mfa.passkeys.is_empty() {
            return Err(AuthError::MfaState(
                "This account has no passkey; use another method.",
            ));
        }
        let credentials: Vec<String> = mfa.passkeys.into_iter().map(|p| p.credential).collect();
        let ceremony = self
            .ports
            .passkeys
            .start_authentication(&credentials)
            .map_err(|err| response_error(err, AuthError::InvalidMfaCode))?;
        self.save_ceremony(
            CeremonyPurpose::SecondFactor {
                user: pending.user,
                mfa_token_hash: token_hash,
            },
            ceremony.state,
            ceremony.options,
        )
        .await
    }

    /// Finishes a passkey sign-in started by [`Self::start_passkey_sign_in`] and starts
    /// the session. As a second factor, a passkey that does not verify counts like a wrong
    /// code (`InvalidMfaCode`); passwordless, it is `InvalidCredentials`. Reports
    /// `LoginSucceeded` (and `MfaVerified` for a second factor), or `MfaFailed` /
    /// `LoginFailed`.
    #[tracing::instrument(
        target = "auth_trace",
        name = "passkey_finish",
        skip_all,
        fields(use_case = "passkey_finish")
    )]
    pub async fn finish_passkey_sign_in(
        &self,
        challenge_id: &str,
        credential: &serde_json::Value,
        ctx: &ClientContext,
    ) -> Result<LoggedIn, AuthError> {
        let mut trail = Trail::default();
        if let Err(err) = self.throttle_client(Action::Passkey, ctx, None).await {
            self.publish(
                Event::LoginFailed {
                    reason: err.code(),
                    user: None,
                    identifier_index: None,
                },
                ctx,
            );
            return Err(err);
        }
        let ceremony = match self.take_ceremony(challenge_id).await {
            Ok(ceremony) => ceremony,
            Err(err) => {
                self.publish(
                    Event::LoginFailed {
                        reason: err.code(),
                        user: None,
                        identifier_index: None,
                    },
                    ctx,
                );
                return Err(err);
            }
        };
        match ceremony.purpose.clone() {
            CeremonyPurpose::SecondFactor {
                user,
                mfa_token_hash,
            } => {
                trail.user = Some(user);
                let result = self
                    .passkey_second_factor(&ceremony, &mfa_token_hash, credential, ctx, &mut trail)
                    .await;
                self.second_factor_outcome(&result, Some(MfaMethod::Passkey), ctx, trail);
                result
            }
            CeremonyPurpose::Passwordless => {
                let result = self
                    .passwordless(&ceremony, credential, ctx, &mut trail)
                    .await;
                match &result {
                    Ok(logged_in) => self.publish(
                        Event::LoginSucceeded {
                            user: logged_in.profile.id,
                            session: logged_in.tokens.session_id,
                        },
                        ctx,
                    ),
                    Err(err) => self.publish(
                        Event::LoginFailed {
                            reason: err.code(),
                            user: trail.user,
                            identifier_index: None,
                        },
                        ctx,
                    ),
                }
                result
            }
            CeremonyPurpose::Register { .. } => Err(AuthError::InvalidToken),
        }
    }

    async fn passkey_second_factor(
        &self,
        ceremony: &PendingCeremony,
        token_hash: &str,
        credential: &serde_json::Value,
        ctx: &ClientContext,
        trail: &mut Trail,
    ) -> Result<LoggedIn, AuthError> {
        let pending = self.pending_login(token_hash).await?;
        let identity = self
            .ports
            .passkeys
            .identify(credential)
            .map_err(|err| response_error(err, AuthError::InvalidMfaCode))?;
        let (user, lifted) = self.attempt_second_factor(&pending, trail).await?;
        let passkey = self
            .ports
            .store
            .passkey_by_credential(&identity.credential_id)
            .await?
            .filter(|p| p.user_id == user.id);
        let verified = match passkey {
            Some(passkey) => {
                self.verify_assertion(ceremony, credential, &passkey)
                    .await?
            }
            None => false,
        };
        if !verified {
            return Err(self.wrong_second_factor(token_hash, &user, trail).await);
        }
        self.complete_login(token_hash, &pending, &user, lifted, ctx, trail)
            .await
    }

    async fn passwordless(
        &self,
        ceremony: &PendingCeremony,
        credential: &serde_json::Value,
        ctx: &ClientContext,
        trail: &mut Trail,
    ) -> Result<LoggedIn, AuthError> {
        let identity = self
            .ports
            .passkeys
            .identify(credential)
            .map_err(|err| response_error(err, AuthError::InvalidCredentials))?;
        let passkey = self
            .ports
            .store
            .passkey_by_credential(&identity.credential_id)
            .await?
            .filter(|p| identity.user.is_none_or(|u| u == p.user_id))
            .ok_or(AuthError::InvalidCredentials)?;
        trail.user = Some(passkey.user_id);
        if !self
            .verify_assertion(ceremony, credential, &passkey)
            .await?
        {
            return Err(AuthError::InvalidCredentials);
        }
        let user = self
            .ports
            .store
            .user_by_id(passkey.user_id)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        if user.email_verified_at.is_none() {
            return Err(AuthError::EmailNotVerified);
        }
        self.sign_in(&user, None, ctx, trail).await
    }

    /// Verifies an assertion with a stored passkey and records the use (new counter);
    /// `false` when it does not verify or a racing sign-in moved the counter first.
    async fn verify_assertion(
        &self,
        ceremony: &PendingCeremony,
        credential: &serde_json::Value,
        passkey: &PasskeyRecord,
    ) -> Result<bool, AuthError> {
        let used = match self.ports.passkeys.finish_authentication(
            &ceremony.state,
            credential,
            &passkey.credential,
        ) {
            Ok(used) => used,
            Err(PasskeyError::Refused(reason)) => {
                tracing::info!(target: "auth_trace", reason = %reason, "passkey refused");
                return Ok(false);
            }
            Err(PasskeyError::Malformed(_)) => return Ok(false),
            Err(PasskeyError::Disabled) => return Err(AuthError::MfaState(PASSKEYS_DISABLED)),
            Err(PasskeyError::Port(err)) => return Err(err.into()),
        };
        match self
            .ports
            .store
            .record_passkey_use(
                passkey.id,
                &used.credential,
                used.sign_count,
                passkey.sign_count,
                self.now(),
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Stale | StoreError::NotFound) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }
}
