//! Wiring: the adapters, policies and state the configuration asks for.

use std::time::Instant;

use auth_crypto::{
    Asymmetric, BcryptHasher, JwtCodec, Key32, KeyMaterial, OsRandom, SecretKeyring, SystemClock,
};
use auth_domain::policy::{LockoutPolicy, OutboxPolicy, Policy, RateLimit, RateLimits};
use auth_domain::{AuthService, Ports};
use auth_mail_log::MemoryMailbox;
use chrono::TimeDelta;
use secrecy::ExposeSecret;

use crate::config::{Config, JwtAlgorithm};
use crate::secrets;
use crate::state::AppState;

use super::adapters::{open_cache, open_mailer, open_storage};
use super::metrics::metrics_handle;

/// A cause of a startup failure, kept for its chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the service could not start. Each variant keeps its cause as its `source`: print the
/// whole chain with [`error_chain`].
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The secrets could not be loaded or generated.
    #[error("secrets")]
    Secrets(#[from] secrets::SecretsError),
    /// A JWT key is unusable.
    #[error("JWT keys")]
    Keys(#[from] auth_crypto::KeyError),
    /// The cache could not be reached.
    #[error("cache: {at}")]
    Cache {
        /// Which cache (its URL without credentials).
        at: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The database could not be opened, migrated or read at start.
    #[error("database: {at}")]
    Database {
        /// Which database, or what was being done.
        at: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The mail settings or templates are unusable.
    #[error("mail: {what}")]
    Mail {
        /// Which setting.
        what: &'static str,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A listening address could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// `host:port (VARIABLE)`.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server could not start.
    #[error("cannot start the HTTP server")]
    Serve(#[source] std::io::Error),
    /// The password hasher could not be set up.
    #[error("password hashing")]
    Hasher(#[source] Cause),
    /// The WebAuthn relying party (WEBAUTHN_RP_ID, WEBAUTHN_ORIGIN) is unusable.
    #[error("passkeys")]
    RelyingParty(#[from] auth_webauthn::RelyingPartyError),
}

impl StartupError {
    pub(super) fn database(at: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Database {
            at: at.into(),
            source: source.into(),
        }
    }
}

/// What the startup banner says.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Storage line.
    pub storage: String,
    /// Secrets line.
    pub secrets: String,
    /// Tokens line.
    pub tokens: String,
    /// Cache line.
    pub cache: String,
    /// Mail line.
    pub mail: String,
    /// Passkeys line.
    pub passkeys: String,
}

pub use auth_domain::error::error_chain;

/// The WebAuthn relying party passkeys are bound to: `WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGIN`
/// and `WEBAUTHN_RP_NAME`, by default the host and origin of `APP_URL` and
/// `MAIL_PRODUCT_NAME`.
///
/// With neither `WEBAUTHN_RP_ID` nor `WEBAUTHN_ORIGIN` set, defaults that name no usable
/// relying party (an `APP_URL` whose host is an IP address) turn passkeys off rather than
/// stop the start: see [`crate::passkeys`].
pub fn relying_party(
    config: &Config,
) -> Result<crate::passkeys::Passkeys, auth_webauthn::RelyingPartyError> {
    use crate::passkeys::Passkeys;
    let (rp_id, origin) = relying_party_names(config);
    let name = config
        .webauthn_rp_name
        .as_deref()
        .unwrap_or(&config.mail_product_name);
    match auth_webauthn::WebauthnRp::new(&rp_id, &origin, name) {
        Ok(rp) => Ok(Passkeys::On(Box::new(rp))),
        Err(err) if config.webauthn_rp_id.is_none() && config.webauthn_origin.is_none() => {
            Ok(Passkeys::Off(format!(
                "APP_URL names no WebAuthn relying party ({err}); set WEBAUTHN_RP_ID and WEBAUTHN_ORIGIN to enable them"
            )))
        }
        Err(err) => Err(err),
    }
}

/// The relying party id and origin in force (defaults from `APP_URL`).
pub fn relying_party_names(config: &Config) -> (String, String) {
    let origin = config.webauthn_origin.clone().unwrap_or_else(|| {
        auth_webauthn::default_relying_party(&config.app_url)
            .map_or_else(|| config.app_url.clone(), |(_, origin)| origin)
    });
    let rp_id = config.webauthn_rp_id.clone().unwrap_or_else(|| {
        auth_webauthn::default_relying_party(&origin)
            .map(|(host, _)| host)
            .unwrap_or_default()
    });
    (rp_id, origin)
}

/// The domain's policies from the configuration.
pub fn policy(config: &Config) -> Policy {
    let minute = TimeDelta::minutes(1);
    Policy {
        access_ttl: config.access_ttl,
        refresh_ttl: config.refresh_ttl,
        reuse_interval: config.reuse_interval,
        lockout: LockoutPolicy {
            threshold: config.lockout_threshold,
            base_lock: config.lockout_duration,
            ..LockoutPolicy::default()
        },
        rate: RateLimits {
            per_ip: RateLimit {
                name: "ip",
                limit: config.rate_limit_ip,
                window: minute,
            },
            per_identifier: RateLimit {
                name: "identifier",
                limit: config.rate_limit_identifier,
                window: minute,
            },
            ..RateLimits::default()
        },
        app_url: config.app_url.clone(),
        mfa: auth_domain::policy::MfaPolicy {
            issuer: config.mail_product_name.clone(),
            ..auth_domain::policy::MfaPolicy::default()
        },
        outbox: OutboxPolicy {
            max_attempts: config.mail_max_attempts,
            first_retry: config.mail_retry_delay,
            // The lease stays short whatever MAIL_TIMEOUT is: the worker renews it while a
            // delivery runs (see `outbox::while_renewing`).
            ..OutboxPolicy::default()
        },
        ..Policy::default()
    }
}

/// Builds the service: secrets, keys, storage (migrated), cache, mailer. `mailbox` replaces
/// the log mailer (tests read mails from it).
pub async fn build_state(
    config: Config,
    mailbox: Option<MemoryMailbox>,
) -> Result<(AppState, Facts), StartupError> {
    let secrets = secrets::load(
        &config.data_dir,
        config.secret_key.as_ref(),
        config.jwt_secret_key.as_ref(),
    )?;
    let keys = key_material(&config, &secrets);
    let (tokens, tokens_fact) = tokens(&config, &secrets)?;
    let pepper = keys.pepper.clone();
    let (cost, concurrency) = (config.bcrypt_cost, config.hash_concurrency);
    let hasher = tokio::task::spawn_blocking(move || BcryptHasher::new(cost, pepper, concurrency))
        .await
        .map_err(|e| StartupError::Hasher(e.into()))?
        .map_err(|e| StartupError::Hasher(e.into()))?
        .observed(crate::telemetry::password_hashed);
    let (store, storage_fact) = open_storage(&config).await?;
    let (cache, cache_fact) = open_cache(&config).await?;
    let (mailer, mail_fact) = open_mailer(&config, mailbox)?;
    let jwks = tokens.jwks();
    let passkeys = relying_party(&config)?;
    let (rp_id, origin) = relying_party_names(&config);
    let passkeys_fact = passkeys.describe(&rp_id, &origin);
    if let crate::passkeys::Passkeys::Off(why) = &passkeys {
        tracing::warn!(reason = %why, "passkeys are off");
    }
    let ports = Ports::<crate::state::ConfiguredAdapters> {
        store,
        cache,
        mail: mailer,
        clock: SystemClock,
        random: OsRandom,
        hasher,
        tokens,
        keys: SecretKeyring::new(keys),
        totp: auth_crypto::Rfc6238,
        passkeys,
        events: crate::events::AppEvents::default(),
    };
    let service = AuthService::new(ports, policy(&config));
    recover(&service).await?;
    let facts = Facts {
        storage: storage_fact,
        secrets: match &secrets.generated_in {
            Some(file) => format!(
                "generated once and kept in {} (mode 0600); set SECRET_KEY and JWT_SECRET_KEY or JWT_PRIVATE_KEY in production",
                file.display()
            ),
            None => "from SECRET_KEY and JWT_SECRET_KEY".to_owned(),
        },
        tokens: tokens_fact,
        cache: cache_fact,
        mail: mail_fact,
        passkeys: passkeys_fact,
    };
    let state = AppState {
        service,
        config,
        jwks,
        metrics: metrics_handle(),
        started: Instant::now(),
    };
    Ok((state, facts))
}

/// What a previous run left: revocations the cache lost, outbox leases of a dead worker.
async fn recover(service: &crate::state::Service) -> Result<(), StartupError> {
    let warmed = service
        .warm_revocations()
        .await
        .map_err(|e| StartupError::database("restoring the revocation list", e))?;
    if warmed > 0 {
        tracing::info!(
            revocations = warmed,
            "revocation list restored from storage"
        );
    }
    crate::outbox::release_leases_of_a_previous_run(service)
        .await
        .map_err(|e| StartupError::database("releasing the outbox leases of a previous run", e))?;
    Ok(())
}

/// The personal-data keys and pepper: derived from the root secret, each replaced by its
/// explicit variable when set.
fn key_material(config: &Config, secrets: &secrets::Secrets) -> KeyMaterial {
    let mut keys = KeyMaterial::derive(secrets.secret_key.expose_secret());
    let explicit = &config.explicit_keys;
    if let Some(k) = explicit.encryption {
        keys.seal = Key32(k);
    }
    if let Some(k) = explicit.blind_index {
        keys.index = Key32(k);
    }
    if let Some(k) = explicit.pepper {
        keys.pepper = Key32(k);
    }
    keys
}

/// The token codec with its verify cache, and the banner line saying where its key came
/// from.
fn tokens(config: &Config, secrets: &secrets::Secrets) -> Result<(JwtCodec, String), StartupError> {
    let (codec, source) = token_codec(config, secrets.jwt_secret_key.expose_secret())?;
    let codec = codec.with_verify_cache(config.jwt_verify_cache);
    let fact = match source {
        KeySource::PrivateKey => format!(
            "{} from JWT_PRIVATE_KEY, kid {}",
            codec.algorithm(),
            codec.key_id()
        ),
        KeySource::Secret => {
            let source = if config.jwt_secret_key.is_some() {
                "JWT_SECRET_KEY"
            } else {
                "a generated secret"
            };
            format!(
                "HS256 from {source}, kid {} (JWKS stays empty: set JWT_PRIVATE_KEY for RS256)",
                codec.key_id()
            )
        }
    };
    Ok((codec, fact))
}

/// Where a token codec's signing key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `JWT_PRIVATE_KEY` (with `JWT_ALGORITHM`, and `JWT_PUBLIC_KEY` for rotation).
    PrivateKey,
    /// HS256 with a shared secret (`JWT_SECRET_KEY` or the generated one).
    Secret,
}

/// The token codec the configuration names (the one place that builds it: `serve` and
/// `config check` alike): the private key with its algorithm, else HS256 with
/// `hs256_secret`.
pub fn token_codec(
    config: &Config,
    hs256_secret: &[u8],
) -> Result<(JwtCodec, KeySource), auth_crypto::KeyError> {
    match &config.jwt_private_key {
        Some(pem) => {
            let alg = match config.jwt_algorithm {
                JwtAlgorithm::Es256 => Asymmetric::Es256,
                JwtAlgorithm::EdDsa => Asymmetric::EdDsa,
                JwtAlgorithm::Rs256 | JwtAlgorithm::Hs256 => Asymmetric::Rs256,
            };
            let codec = JwtCodec::asymmetric(
                alg,
                pem.expose_secret(),
                config.jwt_public_key.as_deref(),
                &config.jwt_issuer,
                &config.jwt_audience,
            )?;
            Ok((codec, KeySource::PrivateKey))
        }
        None => {
            let codec = JwtCodec::hs256(hs256_secret, &config.jwt_issuer, &config.jwt_audience)?;
            Ok((codec, KeySource::Secret))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::passkeys::Passkeys;

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_vars(map).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_relying_party_defaults_to_the_host_and_origin_of_app_url() {
        let c = config(&[("APP_URL", "https://app.example.com:8443/welcome")]);
        assert_eq!(
            relying_party_names(&c),
            (
                "app.example.com".to_owned(),
                "https://app.example.com:8443".to_owned()
            )
        );
        assert!(matches!(relying_party(&c), Ok(Passkeys::On(_))));
        let c = config(&[
            ("APP_URL", "https://app.example.com"),
            ("WEBAUTHN_RP_ID", "example.com"),
        ]);
        assert_eq!(relying_party_names(&c).0, "example.com");
        assert!(matches!(relying_party(&c), Ok(Passkeys::On(_))));
    }

    #[test]
    fn an_app_url_on_an_ip_address_turns_passkeys_off_unless_they_were_asked_for() {
        let c = config(&[("APP_URL", "http://127.0.0.1:3000")]);
        match relying_party(&c) {
            Ok(Passkeys::Off(why)) => assert!(why.contains("WEBAUTHN_RP_ID"), "{why}"),
            other => panic!("expected passkeys off, got {other:?}"),
        }
        // Asked for explicitly and unusable: the start fails, naming the variable.
        let c = config(&[
            ("APP_URL", "https://app.example.com"),
            ("WEBAUTHN_RP_ID", "other.org"),
        ]);
        let err = relying_party(&c).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("WEBAUTHN_RP_ID")),
            "{err:?}"
        );
    }
}
