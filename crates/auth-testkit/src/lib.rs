//! Test support: the auth service on its embedded adapters (SQLite in a throwaway
//! directory, the in-process cache, a memory mailbox, real crypto with bcrypt cost 4) and
//! a clock that tests move by hand.
//!
//! ```no_run
//! # async fn example() {
//! use auth_domain::policy::Policy;
//! let h = auth_testkit::harness(Policy::default()).await;
//! auth_testkit::register_and_verify(&h, "ada@example.com", "ada").await;
//! let logged_in = auth_testkit::login(&h, "ada").await;
//! # let _ = logged_in;
//! # }
//! ```
//!
//! [`contract`] is the port contract test-kit: the documented promises of every port as
//! tests generic over the port, run against any adapter with
//! [`store_contract_tests!`] and [`cache_contract_tests!`].
#![forbid(unsafe_code)]

pub mod contract;

use std::sync::{Arc, Mutex, PoisonError};

use auth_cache_memory::MemoryCache;
use auth_crypto::{BcryptHasher, JwtCodec, KeyMaterial, OsRandom, SecretKeyring};
use auth_domain::events::RecordedEvents;
use auth_domain::model::MailKind;
use auth_domain::policy::Policy;
use auth_domain::ports::Clock;
use auth_domain::service::{
    LoggedIn, LoginIdentifier, LoginOutcome, LoginRequest, Registration, SecretPassword,
};
use auth_domain::types::Timestamp;
use auth_domain::{Adapters, AuthService, ClientContext, Ports};
use auth_mail_log::{MemoryMailbox, StoredMail};
use auth_store_sqlite::SqliteStore;
use chrono::{TimeDelta, Utc};
use secrecy::ExposeSecret;
use tempfile::TempDir;

/// The password [`register_and_verify`] registers and [`login`] presents: strong enough
/// for the default [`auth_domain::policy::PasswordPolicy`].
pub const PASSWORD: &str = "Plum-Tractor-Nebula-7318";

/// A second strong password, for changes and resets.
pub const NEW_PASSWORD: &str = "Violet-Harbor-Quasar-2049";

/// A clock that only moves when told. It starts at the real current time, because the
/// in-process cache judges revocation entries against the system clock: a fake "now" far
/// from the real one would make revocations look expired (or eternal). Clones share one
/// time.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<Mutex<Timestamp>>);

impl FakeClock {
    /// A clock at the real current time.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(Utc::now())))
    }

    /// Moves the time forward (or back, with a negative delta).
    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The adapters of the tests: the embedded ones, with [`FakeClock`] and [`MemoryMailbox`].
#[derive(Debug)]
pub struct TestAdapters;

impl Adapters for TestAdapters {
    type Store = SqliteStore;
    type Cache = MemoryCache;
    type Mail = MemoryMailbox;
    type Clock = FakeClock;
    type Random = OsRandom;
    type Hasher = BcryptHasher;
    type Tokens = JwtCodec;
    type Keys = SecretKeyring;
    type Totp = auth_crypto::Rfc6238;
    type Passkeys = auth_webauthn::WebauthnRp;
    type Events = RecordedEvents;
}

/// The mailbox of a [`Harness`]: every read first runs the outbox relay until nothing is
/// due, as the worker of a running service would, then reads what was delivered.
#[derive(Debug, Clone)]
pub struct HarnessMailbox {
    service: Arc<AuthService<TestAdapters>>,
    /// The transport the relay delivers to (tell it to fail with `fail_next`).
    pub delivered: MemoryMailbox,
}

impl HarnessMailbox {
    /// Delivers every mail due now.
    ///
    /// # Panics
    /// If the relay fails.
    pub async fn deliver(&self) {
        loop {
            match self.service.deliver_mail(100).await {
                Ok(report) if report.interrupted.is_some() => {
                    panic!("deliver mail: {:?}", report.interrupted)
                }
                Ok(report) if report.is_empty() => return,
                Ok(_) => {}
                Err(err) => panic!("deliver mail: {err:?}"),
            }
        }
    }

    /// Every mail delivered so far.
    pub async fn all(&self) -> Vec<StoredMail> {
        self.deliver().await;
        self.delivered.all()
    }

    /// The mails delivered to `to`, of `kind`, oldest first.
    pub async fn to(&self, to: &str, kind: MailKind) -> Vec<StoredMail> {
        self.deliver().await;
        self.delivered.to(to, kind)
    }

    /// The newest mail delivered to `to` of `kind`.
    pub async fn last(&self, to: &str, kind: MailKind) -> Option<StoredMail> {
        self.deliver().await;
        self.delivered.last(to, kind)
    }
}

/// A service under test and the handles to observe and steer it.
#[derive(Debug)]
pub struct Harness {
    /// The service (in an `Arc`, so tests can share it between tasks).
    pub service: Arc<AuthService<TestAdapters>>,
    /// Its clock.
    pub clock: FakeClock,
    /// Every mail it sent (through its outbox).
    pub mailbox: HarnessMailbox,
    /// Its cache (shares state with the service's).
    pub cache: MemoryCache,
    /// Every event its use cases reported.
    pub events: RecordedEvents,
    /// Holds the SQLite file; deleted when the harness is dropped.
    _dir: TempDir,
}

/// A fresh service with `policy`: an empty SQLite file in a new temporary directory, an
/// empty cache and mailbox, bcrypt at cost 4, and a [`FakeClock`] at the real time.
///
/// Must run inside the Tokio runtime of the test: the store runs its queries on it.
///
/// # Panics
/// If the temporary directory, the database or a key cannot be set up.
pub async fn harness(policy: Policy) -> Harness {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("temporary directory: {err}"),
    };
    let store = match SqliteStore::open(&dir.path().join("auth.db"), 4).await {
        Ok(store) => store,
        Err(err) => panic!("sqlite store: {err:?}"),
    };
    let keys = KeyMaterial::derive(b"auth-testkit root secret, not for production");
    let hasher = match BcryptHasher::new(4, keys.pepper.clone(), 4) {
        Ok(hasher) => hasher,
        Err(err) => panic!("bcrypt hasher: {err:?}"),
    };
    let tokens = match JwtCodec::hs256(
        b"auth-testkit jwt secret of at least 32 bytes",
        "auth-testkit",
        "auth-testkit-clients",
    ) {
        Ok(tokens) => tokens,
        Err(err) => panic!("jwt codec: {err}"),
    };
    let clock = FakeClock::new();
    let mailbox = MemoryMailbox::new();
    let cache = MemoryCache::new();
    let events = RecordedEvents::default();
    let ports = Ports::<TestAdapters> {
        store,
        cache: cache.clone(),
        mail: mailbox.clone(),
        clock: clock.clone(),
        random: OsRandom,
        hasher,
        tokens,
        keys: SecretKeyring::new(keys),
        totp: auth_crypto::Rfc6238,
        passkeys: relying_party(),
        events: events.clone(),
    };
    let service = Arc::new(AuthService::new(ports, policy));
    Harness {
        mailbox: HarnessMailbox {
            service: Arc::clone(&service),
            delivered: mailbox,
        },
        service,
        clock,
        cache,
        events,
        _dir: dir,
    }
}

/// A valid registration for `email` and `username` with [`PASSWORD`].
pub fn registration(email: &str, username: &str) -> Registration {
    Registration {
        email: email.to_owned(),
        username: username.to_owned(),
        password: SecretPassword(PASSWORD.to_owned()),
        name: "Ada".to_owned(),
        surname: "Lovelace".to_owned(),
        phone_number: None,
    }
}

/// A login as `identifier` (an email if it contains `@`, else a username).
pub fn login_request(identifier: &str, password: &str, device_token: Option<&str>) -> LoginRequest {
    let identifier = if identifier.contains('@') {
        LoginIdentifier::Email(identifier.to_owned())
    } else {
        LoginIdentifier::Username(identifier.to_owned())
    };
    LoginRequest {
        identifier,
        password: SecretPassword(password.to_owned()),
        device_token: device_token.map(str::to_owned),
    }
}

/// Registers `email` / `username` with [`PASSWORD`] and verifies the email with the token
/// of the verification mail.
///
/// # Panics
/// If registration or verification fails, or no verification mail arrives (one is sent
/// per address and minute: advance the clock between registrations of one address).
pub async fn register_and_verify(h: &Harness, email: &str, username: &str) {
    if let Err(err) = h
        .service
        .register(registration(email, username), &ClientContext::default())
        .await
    {
        panic!("register {username}: {err:?}");
    }
    let Some(mail) = h.mailbox.last(email, MailKind::VerifyEmail).await else {
        panic!("no verification mail to {email}");
    };
    let Some(token) = mail.token() else {
        panic!("the verification mail to {email} has no token");
    };
    if let Err(err) = h
        .service
        .verify_email(token, &ClientContext::default())
        .await
    {
        panic!("verify {email}: {err:?}");
    }
}

/// Logs in as `identifier` (username, or email if it contains `@`) with [`PASSWORD`].
///
/// # Panics
/// If the login fails.
pub async fn login(h: &Harness, identifier: &str) -> LoggedIn {
    let request = login_request(identifier, PASSWORD, None);
    match h.service.login(request, &ClientContext::default()).await {
        Ok(LoginOutcome::SignedIn(logged_in)) => *logged_in,
        Ok(LoginOutcome::MfaRequired(_)) => {
            panic!("login {identifier}: a second factor is required")
        }
        Err(err) => panic!("login {identifier}: {err:?}"),
    }
}

/// The session a login started.
///
/// # Panics
/// If the login asked for a second factor instead.
pub fn signed_in(outcome: LoginOutcome) -> LoggedIn {
    match outcome {
        LoginOutcome::SignedIn(logged_in) => *logged_in,
        LoginOutcome::MfaRequired(_) => panic!("the login asked for a second factor"),
    }
}

/// The access token of a login or refresh.
pub fn access(tokens: &auth_domain::model::TokenPair) -> &str {
    tokens.access_token.expose_secret()
}

/// The refresh token of a login or refresh.
pub fn refresh(tokens: &auth_domain::model::TokenPair) -> &str {
    tokens.refresh_token.expose_secret()
}

/// The relying party of the harness: the page at [`RP_ORIGIN`], id `localhost`.
pub const RP_ORIGIN: &str = "http://localhost:3000";

fn relying_party() -> auth_webauthn::WebauthnRp {
    match auth_webauthn::WebauthnRp::new("localhost", RP_ORIGIN, "Auth") {
        Ok(rp) => rp,
        Err(err) => panic!("test relying party: {err}"),
    }
}
