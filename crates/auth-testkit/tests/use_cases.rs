//! The use cases of the auth service, end to end over the embedded adapters (SQLite, the
//! in-process cache, real crypto), with a clock the tests move by hand. Each test asserts
//! what a user of the API would notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use auth_domain::model::{AccessClaims, MailKind};
use auth_domain::policy::{LockoutPolicy, Policy, RateLimit, RateLimits};
use auth_domain::ports::UserStore;
use auth_domain::service::{ProfileUpdate, Registration, SecretPassword};
use auth_domain::types::SessionId;
use auth_domain::{Action, AuthError, ClientContext, Event};
use auth_testkit::{
    Harness, NEW_PASSWORD, PASSWORD, access, harness, login, login_request, refresh,
    register_and_verify, registration,
};
use chrono::TimeDelta;

/// Asserts that `$result` is an `Err` matching `$pattern`, showing what it was otherwise.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected Err({}), got {other:?}", stringify!($pattern)),
        }
    };
}

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";

/// The default policy, with the lockout threshold the tests count on spelled out.
fn policy() -> Policy {
    Policy {
        lockout: LockoutPolicy {
            threshold: 5,
            ..LockoutPolicy::default()
        },
        ..Policy::default()
    }
}

async fn fresh() -> Harness {
    harness(policy()).await
}

fn ip(raw: &str) -> IpAddr {
    raw.parse().unwrap()
}

async fn claims_of(h: &Harness, access_token: &str) -> AccessClaims {
    h.service.authenticate(access_token).await.unwrap()
}

async fn login_with(
    h: &Harness,
    identifier: &str,
    password: &str,
    device_token: Option<&str>,
) -> Result<auth_domain::service::LoggedIn, AuthError> {
    h.service
        .login(
            login_request(identifier, password, device_token),
            &ClientContext::default(),
        )
        .await
        .map(auth_testkit::signed_in)
}

/// Fails `times` logins as `identifier` with a wrong password; each must be refused as
/// invalid credentials (also the one that locks).
async fn fail_logins(h: &Harness, identifier: &str, times: usize, device_token: Option<&str>) {
    for attempt in 1..=times {
        let result = login_with(h, identifier, "not-the-password", device_token).await;
        match result {
            Err(AuthError::InvalidCredentials) => {}
            other => {
                panic!("wrong password #{attempt}: expected InvalidCredentials, got {other:?}")
            }
        }
    }
}

fn locked_for(result: Result<auth_domain::service::LoggedIn, AuthError>) -> u64 {
    match result {
        Err(AuthError::AccountLocked { retry_after_secs }) => retry_after_secs,
        other => panic!("expected AccountLocked, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Registration and email verification
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_verifies_their_email_with_the_mailed_token_and_then_logs_in() {
    // Arrange
    let h = fresh().await;

    // Act
    let registered = h
        .service
        .register(
            registration("Ada@Example.com", "Ada"),
            &ClientContext::default(),
        )
        .await
        .unwrap();
    let mail = h
        .mailbox
        .last(ADA, MailKind::VerifyEmail)
        .await
        .expect("a verification mail");
    let token = mail.token().expect("a token in the link");
    h.service
        .verify_email(token, &ClientContext::default())
        .await
        .unwrap();
    let logged_in = login(&h, "ada").await;

    // Assert
    assert_eq!(registered.email, ADA, "the email is normalized");
    assert_eq!(registered.username, "Ada", "the username is kept as typed");
    assert_eq!(logged_in.profile.id, registered.id);
    assert!(logged_in.profile.email_verified);
    assert_eq!(logged_in.profile.email, ADA);
    let claims = claims_of(&h, access(&logged_in.tokens)).await;
    assert_eq!(claims.user_id, registered.id);
    assert_eq!(claims.session_id, logged_in.tokens.session_id);
    assert_err!(
        h.service
            .verify_email(token, &ClientContext::default())
            .await,
        AuthError::InvalidToken
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_before_verifying_says_so_only_to_whoever_knows_the_password() {
    // Arrange
    let h = fresh().await;
    h.service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();

    // Act
    let right_password = login_with(&h, "ada", PASSWORD, None).await;
    let wrong_password = login_with(&h, "ada", "not-the-password", None).await;

    // Assert
    assert_err!(right_password, AuthError::EmailNotVerified);
    assert_err!(wrong_password, AuthError::InvalidCredentials);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_taken_email_keeps_a_pending_registration_that_can_never_be_verified() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let owner = login(&h, "ada").await;

    // Act
    let answer = h
        .service
        .register(
            registration(" ADA@example.com ", "impostor"),
            &ClientContext::default(),
        )
        .await
        .expect("the same answer as a fresh registration");

    // Assert
    assert_eq!(answer.email, ADA);
    assert_eq!(answer.username, "impostor");
    assert_ne!(answer.id, owner.profile.id);
    let store = &h.service.ports().store;
    let stored = store.user_by_id(answer.id).await.unwrap().expect("stored");
    assert!(stored.is_pending_registration());
    assert_eq!(stored.email_verified_at, None);
    assert_err!(
        h.service
            .register(registration(BOB, "impostor"), &ClientContext::default())
            .await,
        AuthError::Conflict("username")
    );
    assert_err!(
        login_with(&h, "impostor", PASSWORD, None).await,
        AuthError::EmailNotVerified
    );
    assert_err!(
        login_with(&h, ADA, PASSWORD, None).await,
        AuthError::EmailNotVerified
    );
    assert!(
        h.mailbox
            .last(ADA, MailKind::RegistrationAttempt)
            .await
            .is_some(),
        "the owner is warned"
    );
    assert_eq!(
        h.mailbox.to(ADA, MailKind::VerifyEmail).await.len(),
        1,
        "no verification mail for the pending registration"
    );
    h.clock.advance(TimeDelta::minutes(2));
    h.service
        .resend_verification(ADA, &ClientContext::default())
        .await
        .unwrap();
    assert_eq!(
        h.mailbox.to(ADA, MailKind::VerifyEmail).await.len(),
        1,
        "nor on request: the address belongs to a verified account"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_logs_in_by_email_as_before_while_a_pending_registration_exists() {
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let mut probe = registration(ADA, "impostor");
    probe.password = SecretPassword(NEW_PASSWORD.to_owned());
    h.service
        .register(probe, &ClientContext::default())
        .await
        .unwrap();

    let owner = login_with(&h, ADA, PASSWORD, None).await.unwrap();
    assert_eq!(owner.profile.username, "ada");
    assert_err!(
        login_with(&h, ADA, NEW_PASSWORD, None).await,
        AuthError::EmailNotVerified
    );
    assert_err!(
        login_with(&h, ADA, "Wrong-Password-Entirely-1", None).await,
        AuthError::InvalidCredentials
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_accounts_and_pending_registrations_expire_alike_and_free_their_usernames() {
    // Arrange: a fresh unverified account and a pending registration for a taken email.
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    h.service
        .register(registration(BOB, "unverified"), &ClientContext::default())
        .await
        .unwrap();
    h.service
        .register(registration(ADA, "pending"), &ClientContext::default())
        .await
        .unwrap();
    let ttl = h.service.policy().unverified_ttl;

    // Act: cleanup just before and just after their time.
    h.clock.advance(ttl - TimeDelta::minutes(1));
    let early = h.service.cleanup().await.unwrap();
    h.clock.advance(TimeDelta::minutes(2));
    let late = h.service.cleanup().await.unwrap();

    // Assert
    assert_eq!(early.unverified_users, 0, "kept until they expire");
    assert_eq!(late.unverified_users, 2, "both expire together");
    for username in ["unverified", "pending"] {
        assert_err!(
            login_with(&h, username, PASSWORD, None).await,
            AuthError::InvalidCredentials
        );
        h.service
            .register(
                registration(&format!("{username}@example.net"), username),
                &ClientContext::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{username} is free again: {e:?}"));
    }
    login(&h, "ada").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_kills_every_other_reset_link_of_the_account() {
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    h.service
        .forgot_password(ADA, &ClientContext::default())
        .await
        .unwrap();
    let first = h.mailbox.last(ADA, MailKind::ResetPassword).await.unwrap();
    h.clock.advance(TimeDelta::minutes(2));
    h.service
        .forgot_password(ADA, &ClientContext::default())
        .await
        .unwrap();
    let second = h.mailbox.last(ADA, MailKind::ResetPassword).await.unwrap();
    assert_ne!(first.token(), second.token());

    h.service
        .reset_password(
            second.token().unwrap(),
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await
        .unwrap();
    let older = h
        .service
        .reset_password(
            first.token().unwrap(),
            SecretPassword("Another-Strong-Phrase-6612".to_owned()),
            &ClientContext::default(),
        )
        .await;

    assert_err!(older, AuthError::InvalidToken);
    login_with(&h, ADA, NEW_PASSWORD, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_password_on_the_last_allowed_attempt_is_not_punished() {
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    fail_logins(&h, "ada", 4, None).await;
    login(&h, "ada").await;
    login(&h, "ada").await;
    // Past the per-identifier rate limit's window (10 a minute).
    h.clock.advance(TimeDelta::minutes(1));
    fail_logins(&h, "ada", 4, None).await;
    let after = login_with(&h, "ada", PASSWORD, None).await;
    assert!(
        after.is_ok(),
        "four failures after a success do not lock: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_username_is_a_conflict_whatever_its_case() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;

    // Act
    let result = h
        .service
        .register(registration(BOB, "ADA"), &ClientContext::default())
        .await;

    // Assert
    assert_err!(result, AuthError::Conflict("username"));
    assert!(h.mailbox.last(BOB, MailKind::VerifyEmail).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_password_is_refused_with_a_message_on_the_password() {
    // Arrange
    let h = fresh().await;
    let weak = Registration {
        password: SecretPassword("password1".to_owned()),
        ..registration(ADA, "ada")
    };
    let own_name = Registration {
        password: SecretPassword("adalovelace".to_owned()),
        ..registration(ADA, "ada")
    };

    // Act
    let weak = h.service.register(weak, &ClientContext::default()).await;
    let own_name = h
        .service
        .register(own_name, &ClientContext::default())
        .await;

    // Assert
    for (result, why) in [
        (weak, "a common password"),
        (own_name, "the user's own name"),
    ] {
        match result {
            Err(AuthError::Validation(fields)) => {
                assert!(fields.contains_key("password"), "{why}: {fields:?}");
                assert_eq!(
                    fields.len(),
                    1,
                    "{why}: only the password is wrong: {fields:?}"
                );
            }
            other => panic!("{why}: expected Validation, got {other:?}"),
        }
    }
    assert!(h.mailbox.all().await.is_empty(), "nothing was registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_field_is_reported_at_once() {
    // Arrange
    let h = fresh().await;
    let input = Registration {
        email: "not-an-email".to_owned(),
        username: "x".to_owned(),
        password: SecretPassword("short".to_owned()),
        name: String::new(),
        surname: " ".to_owned(),
        phone_number: Some("12345".to_owned()),
    };

    // Act
    let result = h.service.register(input, &ClientContext::default()).await;

    // Assert
    match result {
        Err(AuthError::Validation(fields)) => {
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            assert_eq!(
                names,
                [
                    "email",
                    "name",
                    "password",
                    "phone_number",
                    "surname",
                    "username"
                ]
            );
            assert!(fields.values().all(|messages| !messages.is_empty()));
        }
        other => panic!("expected Validation, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;

    // Act
    let unknown_username = login_with(&h, "nobody", PASSWORD, None).await;
    let unknown_email = login_with(&h, "nobody@example.com", PASSWORD, None).await;
    let wrong_password = login_with(&h, "ada", "not-the-password", None).await;
    let wrong_password_by_email = login_with(&h, ADA, "not-the-password", None).await;

    // Assert
    assert_err!(unknown_username, AuthError::InvalidCredentials);
    assert_err!(unknown_email, AuthError::InvalidCredentials);
    assert_err!(wrong_password, AuthError::InvalidCredentials);
    assert_err!(wrong_password_by_email, AuthError::InvalidCredentials);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_logs_in_by_email_or_by_username_in_any_case() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "Ada").await;

    // Act
    let by_email = login(&h, "ADA@example.com").await;
    let by_username = login(&h, "aDa").await;

    // Assert
    assert_eq!(by_email.profile.id, by_username.profile.id);
    assert_ne!(
        by_email.tokens.session_id, by_username.tokens.session_id,
        "one session per login"
    );
    assert!(by_email.profile.last_login_at.is_some());
}

// ---------------------------------------------------------------------------------------
// Refresh tokens
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_presented_twice_within_the_reuse_interval_gets_the_same_successor() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let t1 = refresh(&login(&h, "ada").await.tokens).to_owned();

    // Act
    let first = h
        .service
        .refresh(&t1, &ClientContext::default())
        .await
        .unwrap();
    h.clock.advance(TimeDelta::seconds(5));
    let second = h
        .service
        .refresh(&t1, &ClientContext::default())
        .await
        .unwrap();

    // Assert
    let t2 = refresh(&first);
    assert_ne!(t2, t1, "the token rotates");
    assert_eq!(refresh(&second), t2, "a second tab gets the same successor");
    assert_eq!(first.session_id, second.session_id);
    claims_of(&h, access(&first)).await;
    claims_of(&h, access(&second)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_replayed_after_the_reuse_interval_ends_its_whole_session() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let logged_in = login(&h, "ada").await;
    let t1 = refresh(&logged_in.tokens).to_owned();
    let rotated = h
        .service
        .refresh(&t1, &ClientContext::default())
        .await
        .unwrap();
    let again = h
        .service
        .refresh(&t1, &ClientContext::default())
        .await
        .unwrap();
    assert_eq!(refresh(&again), refresh(&rotated));

    // Act
    h.clock
        .advance(h.service.policy().reuse_interval + TimeDelta::seconds(1));
    let replay = h.service.refresh(&t1, &ClientContext::default()).await;

    // Assert
    assert_err!(replay, AuthError::TokenReused);
    assert_err!(
        h.service
            .refresh(refresh(&rotated), &ClientContext::default())
            .await,
        AuthError::TokenRevoked
    );
    assert_err!(
        h.service.authenticate(access(&rotated)).await,
        AuthError::TokenRevoked
    );
    assert_err!(
        h.service.authenticate(access(&logged_in.tokens)).await,
        AuthError::TokenRevoked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_refreshes_of_one_token_all_succeed_with_the_same_successor() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let t1 = refresh(&login(&h, "ada").await.tokens).to_owned();
    let service = Arc::clone(&h.service);

    // Act
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let service = Arc::clone(&service);
            let t1 = t1.clone();
            tokio::spawn(async move { service.refresh(&t1, &ClientContext::default()).await })
        })
        .collect();
    let mut successors = HashSet::new();
    for task in tasks {
        let pair = task
            .await
            .expect("the task ran")
            .expect("every refresh succeeds");
        successors.insert(refresh(&pair).to_owned());
    }

    // Assert
    assert_eq!(successors.len(), 1, "one successor for all");
    let successor = successors.into_iter().next().unwrap();
    let next = h
        .service
        .refresh(&successor, &ClientContext::default())
        .await
        .expect("the successor is live");
    claims_of(&h, access(&next)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_expires_with_its_session() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let t1 = refresh(&login(&h, "ada").await.tokens).to_owned();

    // Act
    h.clock
        .advance(h.service.policy().refresh_ttl + TimeDelta::seconds(1));
    let result = h.service.refresh(&t1, &ClientContext::default()).await;

    // Assert
    assert_err!(result, AuthError::TokenExpired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_expires_after_its_lifetime() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let logged_in = login(&h, "ada").await;
    claims_of(&h, access(&logged_in.tokens)).await;

    // Act
    h.clock
        .advance(h.service.policy().access_ttl + TimeDelta::seconds(1));
    let result = h.service.authenticate(access(&logged_in.tokens)).await;

    // Assert
    assert_err!(result, AuthError::TokenExpired);
    let renewed = h
        .service
        .refresh(refresh(&logged_in.tokens), &ClientContext::default())
        .await
        .expect("refresh still works");
    claims_of(&h, access(&renewed)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_tokens_are_invalid() {
    // Arrange
    let h = fresh().await;

    // Act / Assert
    assert_err!(
        h.service.authenticate("not.a.jwt").await,
        AuthError::InvalidToken
    );
    assert_err!(
        h.service
            .refresh("not-a-token", &ClientContext::default())
            .await,
        AuthError::InvalidToken
    );
    let well_formed_but_unknown = "A".repeat(43);
    assert_err!(
        h.service
            .refresh(&well_formed_but_unknown, &ClientContext::default())
            .await,
        AuthError::InvalidToken
    );
}

// ---------------------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_refuses_both_tokens_of_the_session_and_only_those() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let phone = login(&h, "ada").await;
    let laptop = login(&h, "ada").await;
    let claims = claims_of(&h, access(&phone.tokens)).await;

    // Act
    h.service
        .logout(&claims, false, &ClientContext::default())
        .await
        .unwrap();

    // Assert
    assert_err!(
        h.service.authenticate(access(&phone.tokens)).await,
        AuthError::TokenRevoked
    );
    assert_err!(
        h.service
            .refresh(refresh(&phone.tokens), &ClientContext::default())
            .await,
        AuthError::TokenRevoked
    );
    claims_of(&h, access(&laptop.tokens)).await;
    h.service
        .refresh(refresh(&laptop.tokens), &ClientContext::default())
        .await
        .expect("the other session lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_everywhere_refuses_the_tokens_of_every_session() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let phone = login(&h, "ada").await;
    let laptop = login(&h, "ada").await;
    h.clock.advance(TimeDelta::seconds(2));
    let laptop_renewed = h
        .service
        .refresh(refresh(&laptop.tokens), &ClientContext::default())
        .await
        .unwrap();
    let claims = claims_of(&h, access(&phone.tokens)).await;

    // Act
    h.service
        .logout(&claims, true, &ClientContext::default())
        .await
        .unwrap();

    // Assert
    for (token, which) in [
        (access(&phone.tokens), "phone"),
        (access(&laptop.tokens), "laptop"),
        (access(&laptop_renewed), "laptop, renewed"),
    ] {
        let result = h.service.authenticate(token).await;
        assert!(
            matches!(result, Err(AuthError::TokenRevoked)),
            "{which}: {result:?}"
        );
    }
    assert_err!(
        h.service
            .refresh(refresh(&phone.tokens), &ClientContext::default())
            .await,
        AuthError::TokenRevoked
    );
    assert_err!(
        h.service
            .refresh(refresh(&laptop_renewed), &ClientContext::default())
            .await,
        AuthError::TokenRevoked
    );
    let claims_after = login(&h, "ada").await;
    claims_of(&h, access(&claims_after.tokens)).await;
}

// ---------------------------------------------------------------------------------------
// Lockout
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_passwords_lock_the_account_even_against_the_right_one_until_the_lock_ends() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;

    // Act
    fail_logins(&h, "ada", 5, None).await;
    let sixth = login_with(&h, "ada", PASSWORD, None).await;

    // Assert
    let retry_after = locked_for(sixth);
    let base_lock = u64::try_from(policy().lockout.base_lock.num_seconds()).unwrap();
    assert!(retry_after > 0 && retry_after <= base_lock, "{retry_after}");
    assert!(
        h.mailbox.last(ADA, MailKind::AccountLocked).await.is_some(),
        "the owner is told"
    );
    locked_for(login_with(&h, "ada", "not-the-password", None).await);

    h.clock
        .advance(policy().lockout.base_lock + TimeDelta::seconds(1));
    let after_the_lock = login_with(&h, "ada", PASSWORD, None).await;
    assert!(after_the_lock.is_ok(), "{after_the_lock:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_burst_of_failures_locks_for_longer() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    fail_logins(&h, "ada", 5, None).await;
    let first_lock = locked_for(login_with(&h, "ada", PASSWORD, None).await);
    h.clock
        .advance(policy().lockout.base_lock + TimeDelta::seconds(1));

    // Act
    fail_logins(&h, "ada", 5, None).await;
    let second_lock = locked_for(login_with(&h, "ada", PASSWORD, None).await);

    // Assert
    assert!(
        second_lock > first_lock,
        "{second_lock} s after {first_lock} s"
    );
    assert_eq!(
        h.mailbox.to(ADA, MailKind::AccountLocked).await.len(),
        2,
        "a mail per lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_logged_in_before_is_not_locked_out_by_failures_made_elsewhere() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let device_token = login(&h, "ada").await.device_token;
    fail_logins(&h, "ada", 5, None).await;
    locked_for(login_with(&h, "ada", PASSWORD, None).await);

    // Act
    let from_known_device = login_with(&h, "ada", PASSWORD, Some(&device_token)).await;

    // Assert
    let logged_in = from_known_device.expect("the known device gets in");
    assert!(!logged_in.device_token.is_empty());
    locked_for(login_with(&h, "ada", PASSWORD, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_token_of_another_user_does_not_get_past_a_lock() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    h.clock.advance(TimeDelta::seconds(61));
    register_and_verify(&h, BOB, "bob").await;
    let bobs_device = login(&h, "bob").await.device_token;
    fail_logins(&h, "ada", 5, None).await;

    // Act
    let result = login_with(&h, "ada", PASSWORD, Some(&bobs_device)).await;

    // Assert
    locked_for(result);
}

// ---------------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------------

fn limited(per_ip: u32, per_identifier: u32) -> Policy {
    let minute = TimeDelta::minutes(1);
    Policy {
        rate: RateLimits {
            per_ip: RateLimit {
                name: "ip",
                limit: per_ip,
                window: minute,
            },
            per_identifier: RateLimit {
                name: "identifier",
                limit: per_identifier,
                window: minute,
            },
            ..RateLimits::default()
        },
        ..policy()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fourth_login_from_one_ip_within_a_minute_is_rate_limited_but_other_ips_are_not() {
    // Arrange
    let h = harness(limited(3, 100)).await;
    let attacker = ip("203.0.113.7");
    for _ in 0..3 {
        h.service
            .throttle(Action::Login, Some(attacker), None)
            .await
            .unwrap();
    }

    // Act
    let fourth = h
        .service
        .throttle(Action::Login, Some(attacker), None)
        .await;
    let other_ip = h
        .service
        .throttle(Action::Login, Some(ip("198.51.100.1")), None)
        .await;
    let other_action = h
        .service
        .throttle(Action::Register, Some(attacker), None)
        .await;

    // Assert
    match fourth {
        Err(AuthError::RateLimited(decision)) => {
            assert!(!decision.allowed);
            assert!(decision.retry_after_secs >= 1, "{decision:?}");
            assert_eq!(decision.policy.name, "ip");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(other_ip.is_ok(), "{other_ip:?}");
    assert!(other_action.is_ok(), "{other_action:?}");
    h.clock.advance(TimeDelta::seconds(20));
    let later = h
        .service
        .throttle(Action::Login, Some(attacker), None)
        .await;
    assert!(
        later.is_ok(),
        "a slot frees after window / limit: {later:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fourth_login_for_one_identifier_within_a_minute_is_rate_limited_from_any_ip() {
    // Arrange
    let h = harness(limited(100, 3)).await;
    for n in 1..=3 {
        let from = ip(&format!("198.51.100.{n}"));
        h.service
            .throttle(Action::Login, Some(from), Some("Ada"))
            .await
            .unwrap();
    }

    // Act
    let fourth = h
        .service
        .throttle(Action::Login, Some(ip("198.51.100.4")), Some(" ada "))
        .await;
    let other_identifier = h.service.throttle(Action::Login, None, Some("bob")).await;

    // Assert
    match fourth {
        Err(AuthError::RateLimited(decision)) => {
            assert!(decision.retry_after_secs >= 1, "{decision:?}");
            assert_eq!(decision.policy.name, "identifier");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(other_identifier.is_ok(), "{other_identifier:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_of_one_ipv6_64_share_the_per_ip_limit_but_neighbouring_64s_do_not() {
    // Arrange: one holder of 2001:db8:1:2::/64 rotates through its addresses.
    let h = harness(limited(3, 100)).await;
    for from in [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
    ] {
        h.service
            .throttle(Action::Login, Some(ip(from)), None)
            .await
            .unwrap();
    }

    // Act
    let same_64 = h
        .service
        .throttle(Action::Login, Some(ip("2001:db8:1:2:abcd::9")), None)
        .await;
    let next_64 = h
        .service
        .throttle(Action::Login, Some(ip("2001:db8:1:3::1")), None)
        .await;

    // Assert
    assert_err!(same_64, AuthError::RateLimited(d) if d.policy.name == "ip");
    assert!(
        next_64.is_ok(),
        "another /64 has its own limit: {next_64:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv4_mapped_address_shares_the_limit_of_its_ipv4_address_and_ipv4_neighbours_do_not() {
    // Arrange
    let h = harness(limited(2, 100)).await;
    h.service
        .throttle(Action::Login, Some(ip("203.0.113.7")), None)
        .await
        .unwrap();
    h.service
        .throttle(Action::Login, Some(ip("::ffff:203.0.113.7")), None)
        .await
        .unwrap();

    // Act
    let third = h
        .service
        .throttle(Action::Login, Some(ip("203.0.113.7")), None)
        .await;
    let neighbour = h
        .service
        .throttle(Action::Login, Some(ip("203.0.113.8")), None)
        .await;

    // Assert
    assert_err!(third, AuthError::RateLimited(_));
    assert!(
        neighbour.is_ok(),
        "an IPv4 address is limited by itself: {neighbour:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Mails
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_succeeds_while_mail_fails_and_its_mail_goes_out_after_the_backoff() {
    // Arrange
    let h = fresh().await;
    h.mailbox.delivered.fail_next(2);

    // Act
    h.service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();
    let first = h.service.deliver_mail(10).await.unwrap();
    let still_backing_off = h.service.deliver_mail(10).await.unwrap();
    let queued = h.service.outbox_stats().await.unwrap();
    h.clock.advance(TimeDelta::seconds(31));
    let second = h.service.deliver_mail(10).await.unwrap();
    h.clock.advance(TimeDelta::seconds(61));
    let third = h.service.deliver_mail(10).await.unwrap();

    // Assert
    assert_eq!((first.retried(), first.sent()), (1, 0), "{first:?}");
    assert!(
        still_backing_off.mails.is_empty(),
        "not due before its backoff"
    );
    assert_eq!(queued.queued, 1);
    assert!(queued.oldest_queued_at.is_some());
    assert_eq!(second.retried(), 1, "second failure: {second:?}");
    assert_eq!(third.sent(), 1, "third attempt delivers: {third:?}");
    assert_eq!(third.mails[0].attempts, 3);
    let mail = h.mailbox.last(ADA, MailKind::VerifyEmail).await.unwrap();
    h.service
        .verify_email(mail.token().unwrap(), &ClientContext::default())
        .await
        .unwrap();
    let after = h.service.outbox_stats().await.unwrap();
    assert_eq!(
        (after.queued, after.dead),
        (0, 0),
        "sent mails leave the outbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_that_keeps_failing_is_dead_after_the_last_attempt_and_never_sent() {
    // Arrange
    let h = harness(Policy {
        outbox: auth_domain::policy::OutboxPolicy {
            max_attempts: 3,
            ..Default::default()
        },
        ..policy()
    })
    .await;
    h.mailbox.delivered.fail_next(u32::MAX);
    h.service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();

    // Act
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let report = h.service.deliver_mail(10).await.unwrap();
        outcomes.push((report.retried(), report.dead()));
        h.clock.advance(TimeDelta::hours(5));
    }
    h.mailbox.delivered.fail_next(0);
    h.service
        .resend_verification(ADA, &ClientContext::default())
        .await
        .unwrap();

    // Assert
    assert_eq!(outcomes, vec![(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]);
    let delivered = h.mailbox.to(ADA, MailKind::VerifyEmail).await;
    let stats = h.service.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.queued, stats.dead),
        (0, 1),
        "the dead mail stays dead"
    );
    assert_eq!(delivered.len(), 1, "only the resent link arrives");
    h.service
        .verify_email(delivered[0].token().unwrap(), &ClientContext::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_mail_is_not_queued() {
    // Arrange
    let h = fresh().await;
    h.service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();
    h.service
        .forgot_password(ADA, &ClientContext::default())
        .await
        .unwrap();

    // Act
    h.service
        .forgot_password(ADA, &ClientContext::default())
        .await
        .unwrap();
    let stats = h.service.outbox_stats().await.unwrap();

    // Assert
    assert_eq!(stats.queued, 2, "one verification and one reset mail");
    assert_eq!(h.mailbox.to(ADA, MailKind::ResetPassword).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_the_server_refuses_for_good_is_dead_at_once_and_a_new_request_mails_again() {
    // Arrange
    let h = fresh().await;
    h.mailbox.delivered.refuse_next(1);
    h.service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();

    // Act
    let report = h.service.deliver_mail(10).await.unwrap();
    h.clock.advance(TimeDelta::seconds(61));
    h.service
        .resend_verification(ADA, &ClientContext::default())
        .await
        .unwrap();

    // Assert
    assert_eq!((report.dead(), report.retried()), (1, 0), "{report:?}");
    let mail = h.mailbox.last(ADA, MailKind::VerifyEmail).await;
    let stats = h.service.outbox_stats().await.unwrap();
    assert_eq!((stats.queued, stats.dead), (0, 1));
    h.service
        .verify_email(
            mail.expect("the resent mail").token().unwrap(),
            &ClientContext::default(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mail_that_waited_longer_than_its_link_lives_is_dead_not_sent() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    h.mailbox.delivered.fail_next(1);
    h.service
        .forgot_password(ADA, &ClientContext::default())
        .await
        .unwrap();
    let first = h.service.deliver_mail(10).await.unwrap();

    // Act: the outage outlasts the link (1 h).
    h.clock.advance(TimeDelta::minutes(61));
    let second = h.service.deliver_mail(10).await.unwrap();

    // Assert
    assert_eq!(first.retried(), 1);
    assert_eq!(second.dead(), 1, "{second:?}");
    assert!(
        second.mails[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("expired")),
        "{second:?}"
    );
    assert!(
        h.mailbox.last(ADA, MailKind::ResetPassword).await.is_none(),
        "a dead link is never mailed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_gives_back_its_batch_without_counting_an_attempt() {
    // Arrange: three mails queued.
    let h = fresh().await;
    for (email, username) in [(ADA, "ada"), (BOB, "bob"), ("cyd@example.com", "cyd")] {
        h.service
            .register(registration(email, username), &ClientContext::default())
            .await
            .unwrap();
    }
    let checks = std::sync::atomic::AtomicUsize::new(0);

    // Act: stop is asked after the first mail.
    let stopped = h
        .service
        .deliver_mail_until(10, || {
            checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1
        })
        .await
        .unwrap();
    let next = h.service.deliver_mail(10).await.unwrap();

    // Assert
    assert_eq!((stopped.sent(), stopped.released), (1, 2), "{stopped:?}");
    assert_eq!(next.sent(), 2, "given back mails are due at once: {next:?}");
    assert!(
        next.mails.iter().all(|m| m.attempts == 1),
        "a mail given back did not use an attempt: {next:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_mails_go_out_at_most_once_a_minute_per_address() {
    // Arrange
    let h = fresh().await;
    h.service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();
    assert_eq!(h.mailbox.to(ADA, MailKind::VerifyEmail).await.len(), 1);
    h.clock.advance(TimeDelta::seconds(61));

    // Act
    h.service
        .resend_verification(ADA, &ClientContext::default())
        .await
        .unwrap();
    h.service
        .resend_verification(ADA, &ClientContext::default())
        .await
        .unwrap();
    let within_a_minute = h.mailbox.to(ADA, MailKind::VerifyEmail).await.len();
    h.clock.advance(TimeDelta::seconds(61));
    h.service
        .resend_verification(ADA, &ClientContext::default())
        .await
        .unwrap();
    let a_minute_later = h.mailbox.to(ADA, MailKind::VerifyEmail).await.len();

    // Assert
    assert_eq!(within_a_minute, 2, "two resends within a minute: one mail");
    assert_eq!(a_minute_later, 3, "a minute later: another mail");
    let newest = h.mailbox.last(ADA, MailKind::VerifyEmail).await.unwrap();
    h.service
        .verify_email(newest.token().unwrap(), &ClientContext::default())
        .await
        .unwrap();
    login(&h, "ada").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_a_verification_for_an_unknown_or_verified_address_answers_ok_and_sends_nothing()
{
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    h.clock.advance(TimeDelta::seconds(61));
    let mails_before = h.mailbox.all().await.len();

    // Act
    h.service
        .resend_verification("nobody@example.com", &ClientContext::default())
        .await
        .unwrap();
    h.service
        .resend_verification(ADA, &ClientContext::default())
        .await
        .unwrap();

    // Assert
    assert_eq!(h.mailbox.all().await.len(), mails_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_the_password_of_an_unknown_address_answers_ok_and_sends_nothing() {
    // Arrange
    let h = fresh().await;

    // Act
    let result = h
        .service
        .forgot_password("nobody@example.com", &ClientContext::default())
        .await;

    // Assert
    assert!(result.is_ok(), "{result:?}");
    assert!(h.mailbox.all().await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Password reset
// ---------------------------------------------------------------------------------------

async fn reset_token(h: &Harness, email: &str) -> String {
    h.service
        .forgot_password(email, &ClientContext::default())
        .await
        .unwrap();
    let mail = h
        .mailbox
        .last(email, MailKind::ResetPassword)
        .await
        .expect("a reset mail");
    mail.token().expect("a token in the link").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_new_password_is_refused_and_the_reset_token_still_works() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let token = reset_token(&h, ADA).await;

    // Act
    let weak = h
        .service
        .reset_password(
            &token,
            SecretPassword("password123".to_owned()),
            &ClientContext::default(),
        )
        .await;
    let strong = h
        .service
        .reset_password(
            &token,
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await;

    // Assert
    match weak {
        Err(AuthError::Validation(fields)) => {
            assert!(fields.contains_key("new_password"), "{fields:?}")
        }
        other => panic!("expected Validation, got {other:?}"),
    }
    assert!(strong.is_ok(), "the token survived the refusal: {strong:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_the_password_ends_every_session_and_swaps_the_passwords() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let phone = login(&h, "ada").await;
    let laptop = login(&h, "ada").await;
    let token = reset_token(&h, ADA).await;

    // Act
    h.service
        .reset_password(
            &token,
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await
        .unwrap();

    // Assert
    for session in [&phone, &laptop] {
        assert_err!(
            h.service.authenticate(access(&session.tokens)).await,
            AuthError::TokenRevoked
        );
        assert_err!(
            h.service
                .refresh(refresh(&session.tokens), &ClientContext::default())
                .await,
            AuthError::TokenRevoked
        );
    }
    assert_err!(
        login_with(&h, "ada", PASSWORD, None).await,
        AuthError::InvalidCredentials
    );
    let with_new = login_with(&h, "ada", NEW_PASSWORD, None)
        .await
        .expect("the new password works");
    claims_of(&h, access(&with_new.tokens)).await;
    assert!(
        h.mailbox
            .last(ADA, MailKind::PasswordChanged)
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_token_works_only_once() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let token = reset_token(&h, ADA).await;
    h.service
        .reset_password(
            &token,
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await
        .unwrap();

    // Act
    let reused = h
        .service
        .reset_password(
            &token,
            SecretPassword("Another-Strong-Passphrase-77".to_owned()),
            &ClientContext::default(),
        )
        .await;

    // Assert
    assert_err!(reused, AuthError::InvalidToken);
    login_with(&h, "ada", NEW_PASSWORD, None)
        .await
        .expect("the first reset holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_token_expires() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let token = reset_token(&h, ADA).await;

    // Act
    h.clock.advance(TimeDelta::hours(2));
    let result = h
        .service
        .reset_password(
            &token,
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await;

    // Assert
    assert_err!(result, AuthError::TokenExpired);
    login(&h, "ada").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_also_verifies_the_email_of_an_unverified_account() {
    // Arrange
    let h = fresh().await;
    h.service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();
    let token = reset_token(&h, ADA).await;

    // Act
    h.service
        .reset_password(
            &token,
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await
        .unwrap();

    // Assert
    let logged_in = login_with(&h, "ada", NEW_PASSWORD, None)
        .await
        .expect("verified by the reset");
    assert!(logged_in.profile.email_verified);
}

// ---------------------------------------------------------------------------------------
// The signed-in user's account
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions_only() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let here = login(&h, "ada").await;
    let elsewhere = login(&h, "ada").await;
    let claims = claims_of(&h, access(&here.tokens)).await;

    // Act
    let wrong = h
        .service
        .change_password(
            &claims,
            SecretPassword("not-the-password".to_owned()),
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await;
    let right = h
        .service
        .change_password(
            &claims,
            SecretPassword(PASSWORD.to_owned()),
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await;

    // Assert
    assert_err!(wrong, AuthError::WrongPassword);
    assert!(right.is_ok(), "{right:?}");
    claims_of(&h, access(&here.tokens)).await;
    h.service
        .refresh(refresh(&here.tokens), &ClientContext::default())
        .await
        .expect("the current session lives on");
    assert_err!(
        h.service.authenticate(access(&elsewhere.tokens)).await,
        AuthError::TokenRevoked
    );
    assert_err!(
        h.service
            .refresh(refresh(&elsewhere.tokens), &ClientContext::default())
            .await,
        AuthError::TokenRevoked
    );
    assert_err!(
        login_with(&h, "ada", PASSWORD, None).await,
        AuthError::InvalidCredentials
    );
    login_with(&h, "ada", NEW_PASSWORD, None)
        .await
        .expect("the new password works");
    assert!(
        h.mailbox
            .last(ADA, MailKind::PasswordChanged)
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_account_needs_the_password_and_frees_the_email_and_username() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let logged_in = login(&h, "ada").await;
    let claims = claims_of(&h, access(&logged_in.tokens)).await;

    // Act
    let wrong = h
        .service
        .delete_account(
            &claims,
            SecretPassword("not-the-password".to_owned()),
            &ClientContext::default(),
        )
        .await;
    let still_there = h.service.authenticate(access(&logged_in.tokens)).await;
    let right = h
        .service
        .delete_account(
            &claims,
            SecretPassword(PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await;

    // Assert
    assert_err!(wrong, AuthError::WrongPassword);
    assert!(
        still_there.is_ok(),
        "a wrong password deletes nothing: {still_there:?}"
    );
    assert!(right.is_ok(), "{right:?}");
    assert_err!(
        h.service.authenticate(access(&logged_in.tokens)).await,
        AuthError::TokenRevoked
    );
    assert_err!(
        h.service
            .refresh(refresh(&logged_in.tokens), &ClientContext::default())
            .await,
        AuthError::InvalidToken
    );
    assert_err!(
        login_with(&h, "ada", PASSWORD, None).await,
        AuthError::InvalidCredentials
    );
    assert!(
        h.mailbox
            .last(ADA, MailKind::AccountDeleted)
            .await
            .is_some()
    );

    // One verification mail per address and minute.
    h.clock.advance(TimeDelta::seconds(61));
    register_and_verify(&h, ADA, "ada").await;
    let again = login(&h, "ada").await;
    assert_ne!(again.profile.id, logged_in.profile.id, "a new account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_list_shows_each_live_session_and_marks_the_callers_own() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let phone = login(&h, "ada").await;
    let ctx = ClientContext::new(
        Some(ip("203.0.113.9")),
        Some("laptop-browser/1.0".to_owned()),
    );
    let laptop = h
        .service
        .login(login_request("ada", PASSWORD, None), &ctx)
        .await
        .map(auth_testkit::signed_in)
        .unwrap();
    let claims = claims_of(&h, access(&laptop.tokens)).await;

    // Act
    let sessions = h.service.sessions(&claims).await.unwrap();

    // Assert
    assert_eq!(sessions.len(), 2);
    let current: Vec<_> = sessions.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1, "exactly one is the caller's");
    assert_eq!(current[0].id, laptop.tokens.session_id);
    assert_eq!(current[0].ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(current[0].user_agent.as_deref(), Some("laptop-browser/1.0"));
    assert!(
        sessions
            .iter()
            .any(|s| s.id == phone.tokens.session_id && !s.current)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_one_of_ones_own_sessions_refuses_its_tokens() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let here = login(&h, "ada").await;
    let lost_phone = login(&h, "ada").await;
    let claims = claims_of(&h, access(&here.tokens)).await;

    // Act
    h.service
        .revoke_session(
            &claims,
            lost_phone.tokens.session_id,
            &ClientContext::default(),
        )
        .await
        .unwrap();

    // Assert
    assert_err!(
        h.service.authenticate(access(&lost_phone.tokens)).await,
        AuthError::TokenRevoked
    );
    assert_err!(
        h.service
            .refresh(refresh(&lost_phone.tokens), &ClientContext::default())
            .await,
        AuthError::TokenRevoked
    );
    let sessions = h.service.sessions(&claims).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].current);
    assert_err!(
        h.service
            .revoke_session(
                &claims,
                lost_phone.tokens.session_id,
                &ClientContext::default()
            )
            .await,
        AuthError::NotFound,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_another_users_session_is_not_found_and_changes_nothing() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    h.clock.advance(TimeDelta::seconds(61));
    register_and_verify(&h, BOB, "bob").await;
    let ada = login(&h, "ada").await;
    let bob = login(&h, "bob").await;
    let ada_claims = claims_of(&h, access(&ada.tokens)).await;

    // Act
    let others = h
        .service
        .revoke_session(
            &ada_claims,
            bob.tokens.session_id,
            &ClientContext::default(),
        )
        .await;
    let unknown = h
        .service
        .revoke_session(
            &ada_claims,
            SessionId(uuid::Uuid::now_v7()),
            &ClientContext::default(),
        )
        .await;

    // Assert
    assert_err!(others, AuthError::NotFound);
    assert_err!(unknown, AuthError::NotFound);
    claims_of(&h, access(&bob.tokens)).await;
    h.service
        .refresh(refresh(&bob.tokens), &ClientContext::default())
        .await
        .expect("bob's session is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_to_a_username_taken_in_any_case_is_a_conflict() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    h.clock.advance(TimeDelta::seconds(61));
    register_and_verify(&h, BOB, "bob").await;
    let bob = login(&h, "bob").await;
    let claims = claims_of(&h, access(&bob.tokens)).await;
    let update = ProfileUpdate {
        username: Some("ADA".to_owned()),
        ..ProfileUpdate::default()
    };

    // Act
    let result = h
        .service
        .update_profile(&claims, update, &ClientContext::default())
        .await;

    // Assert
    assert_err!(result, AuthError::Conflict("username"));
    assert_eq!(h.service.profile(&claims).await.unwrap().username, "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_email_takes_effect_only_once_verified_and_the_old_address_is_told() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let logged_in = login(&h, "ada").await;
    let claims = claims_of(&h, access(&logged_in.tokens)).await;
    let new_email = "ada.lovelace@example.org";
    let update = ProfileUpdate {
        email: Some("Ada.Lovelace@Example.org".to_owned()),
        name: Some("Augusta Ada".to_owned()),
        current_password: Some(SecretPassword(PASSWORD.to_owned())),
        ..ProfileUpdate::default()
    };

    // Act
    let (profile, pending) = h
        .service
        .update_profile(&claims, update, &ClientContext::default())
        .await
        .unwrap();
    let before_verifying = login_with(&h, new_email, PASSWORD, None).await;
    let mail = h
        .mailbox
        .last(new_email, MailKind::ChangeEmail)
        .await
        .expect("a confirmation mail");
    h.service
        .verify_email(mail.token().expect("a token"), &ClientContext::default())
        .await
        .unwrap();

    // Assert
    assert!(pending);
    assert_eq!(profile.email, ADA, "the old email stays until verified");
    assert_eq!(profile.pending_email.as_deref(), Some(new_email));
    assert_eq!(profile.name, "Augusta Ada", "other changes apply at once");
    assert_err!(before_verifying, AuthError::InvalidCredentials);
    let with_new = login(&h, new_email).await;
    assert_eq!(with_new.profile.email, new_email);
    assert_eq!(with_new.profile.pending_email, None);
    assert_err!(
        login_with(&h, ADA, PASSWORD, None).await,
        AuthError::InvalidCredentials
    );
    assert!(
        h.mailbox.last(ADA, MailKind::EmailChanged).await.is_some(),
        "the old address is told"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_mailed_for_an_earlier_pending_email_does_not_confirm_a_later_one() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let logged_in = login(&h, "ada").await;
    let claims = claims_of(&h, access(&logged_in.tokens)).await;
    let change_to = |email: &str| ProfileUpdate {
        email: Some(email.to_owned()),
        current_password: Some(SecretPassword(PASSWORD.to_owned())),
        ..ProfileUpdate::default()
    };
    let mine = "mine@example.org";
    let someone_elses = "someone.else@example.org";
    h.service
        .update_profile(&claims, change_to(mine), &ClientContext::default())
        .await
        .unwrap();
    let my_link = h.mailbox.last(mine, MailKind::ChangeEmail).await.unwrap();
    h.service
        .update_profile(&claims, change_to(someone_elses), &ClientContext::default())
        .await
        .unwrap();

    // Act
    let result = h
        .service
        .verify_email(my_link.token().unwrap(), &ClientContext::default())
        .await;

    // Assert
    assert_err!(result, AuthError::InvalidToken);
    let profile = h.service.profile(&claims).await.unwrap();
    assert_eq!(
        profile.email, ADA,
        "an unconfirmed address never becomes the email"
    );
    assert_eq!(profile.pending_email.as_deref(), Some(someone_elses));
    let their_link = h
        .mailbox
        .last(someone_elses, MailKind::ChangeEmail)
        .await
        .unwrap();
    h.service
        .verify_email(their_link.token().unwrap(), &ClientContext::default())
        .await
        .unwrap();
    assert_eq!(
        h.service.profile(&claims).await.unwrap().email,
        someone_elses
    );
}

// ---------------------------------------------------------------------------------------
// What the use cases tell the audit log
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_reports_the_account_and_the_failure_that_locked_it() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let ctx = ClientContext::default();
    h.events.clear();

    // Act
    let ok = h
        .service
        .login(login_request("ada", PASSWORD, None), &ctx)
        .await
        .map(auth_testkit::signed_in)
        .unwrap();
    let after_success = h.events.all();
    h.events.clear();
    for _ in 0..5 {
        let failed = h
            .service
            .login(login_request("ada", "not-the-password", None), &ctx)
            .await;
        assert_err!(failed, AuthError::InvalidCredentials);
    }
    let after_failures = h.events.all();
    h.events.clear();
    let unknown = h
        .service
        .login(login_request("nobody", "not-the-password", None), &ctx)
        .await;
    let after_unknown = h.events.all();

    // Assert
    assert_eq!(
        after_success,
        vec![Event::LoginSucceeded {
            user: ok.profile.id,
            session: ok.tokens.session_id,
        }]
    );
    let index = match after_failures.first() {
        Some(Event::LoginFailed {
            identifier_index: Some(index),
            ..
        }) => index.clone(),
        other => panic!("expected a failed login first, got {other:?}"),
    };
    assert_eq!(index.len(), 64, "the identifier's blind index, in hex");
    let failed = Event::LoginFailed {
        reason: "invalid_credentials",
        user: Some(ok.profile.id),
        identifier_index: Some(index.clone()),
    };
    let mut expected = vec![failed.clone(); 4];
    // The fifth failure locks the account and mails its owner.
    expected.extend([Event::MailQueued, failed]);
    expected.push(Event::AccountLocked {
        user: Some(ok.profile.id),
        identifier_index: Some(index.clone()),
    });
    assert_eq!(after_failures, expected, "only the fifth failure locks");
    assert_err!(unknown, AuthError::InvalidCredentials);
    match after_unknown.as_slice() {
        [
            Event::LoginFailed {
                reason: "invalid_credentials",
                user: None,
                identifier_index: Some(other),
            },
        ] => assert_ne!(other, &index),
        other => panic!("no account behind the identifier: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_reports_the_session_a_reused_token_belonged_to() {
    // Arrange
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    let logged_in = login(&h, "ada").await;
    let ctx = ClientContext::default();
    let t1 = refresh(&logged_in.tokens).to_owned();
    h.events.clear();
    let rotated = h.service.refresh(&t1, &ctx).await;
    let after_rotation = h.events.all();
    h.clock
        .advance(h.service.policy().reuse_interval + TimeDelta::seconds(1));
    h.events.clear();

    // Act
    let replay = h.service.refresh(&t1, &ctx).await;
    let after_replay = h.events.all();
    h.events.clear();
    let unknown = h.service.refresh("not-a-token", &ctx).await;

    // Assert
    assert!(rotated.is_ok());
    assert_eq!(after_rotation, vec![Event::TokensRefreshed]);
    assert_err!(replay, AuthError::TokenReused);
    assert_eq!(
        after_replay,
        vec![Event::RefreshReused {
            user: Some(logged_in.profile.id),
            session: Some(logged_in.tokens.session_id),
        }]
    );
    assert_err!(unknown, AuthError::InvalidToken);
    assert_eq!(h.events.all(), vec![], "an unknown token is no reuse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_login_is_reported_and_its_decision_kept_for_the_answer() {
    // Arrange
    let h = harness(limited(2, 100)).await;
    let ctx = ClientContext::new(Some(ip("192.0.2.7")), None);

    // Act
    for _ in 0..2 {
        let _ = h
            .service
            .login(login_request("ada", "not-the-password", None), &ctx)
            .await;
    }
    let kept = ctx.rate();
    h.events.clear();
    let limited = h
        .service
        .login(login_request("ada", "not-the-password", None), &ctx)
        .await;

    // Assert
    assert_eq!(
        kept.map(|d| d.remaining),
        Some(0),
        "the tighter of the two limits"
    );
    assert_err!(limited, AuthError::RateLimited(_));
    let events = h.events.all();
    assert_eq!(
        events.first(),
        Some(&Event::RateLimited { action: "login" })
    );
    assert!(
        matches!(
            events.get(1),
            Some(Event::LoginFailed {
                reason: "rate_limited",
                user: None,
                identifier_index: Some(_),
            })
        ),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_and_reset_say_whose_account_and_whether_the_email_changed() {
    // Arrange
    let h = fresh().await;
    let registered = h
        .service
        .register(registration(ADA, "ada"), &ClientContext::default())
        .await
        .unwrap();
    let token = h.mailbox.last(ADA, MailKind::VerifyEmail).await.unwrap();

    // Act
    let verified = h
        .service
        .verify_email(token.token().unwrap(), &ClientContext::default())
        .await
        .unwrap();
    let logged_in = login(&h, "ada").await;
    let claims = claims_of(&h, access(&logged_in.tokens)).await;
    let update = ProfileUpdate {
        email: Some(BOB.to_owned()),
        current_password: Some(SecretPassword(PASSWORD.to_owned())),
        ..ProfileUpdate::default()
    };
    h.service
        .update_profile(&claims, update, &ClientContext::default())
        .await
        .unwrap();
    let link = h.mailbox.last(BOB, MailKind::ChangeEmail).await.unwrap();
    let changed = h
        .service
        .verify_email(link.token().unwrap(), &ClientContext::default())
        .await
        .unwrap();
    let token = reset_token(&h, BOB).await;
    let reset = h
        .service
        .reset_password(
            &token,
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(verified.user, registered.id);
    assert!(!verified.email_changed);
    assert_eq!(changed.user, registered.id);
    assert!(changed.email_changed);
    assert_eq!(reset, registered.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_and_resend_do_the_same_work_for_any_address_and_mail_only_accounts() {
    // Arrange: a verified account, an unverified one, and an address with none.
    let h = fresh().await;
    register_and_verify(&h, ADA, "ada").await;
    h.service
        .register(registration(BOB, "bob"), &ClientContext::default())
        .await
        .unwrap();
    h.mailbox.deliver().await;
    // Past the once-a-minute limit on mails of a kind to an address.
    h.clock.advance(TimeDelta::minutes(2));
    let nobody = "nobody@example.com";
    let queued = || async { h.service.outbox_stats().await.unwrap().queued };

    // Act and assert: each request queues one request, whoever the address belongs to.
    for (request, email) in [
        ("forgot", ADA),
        ("forgot", nobody),
        ("resend", BOB),
        ("resend", ADA),
        ("resend", nobody),
    ] {
        let before = queued().await;
        match request {
            "forgot" => h
                .service
                .forgot_password(email, &ClientContext::default())
                .await
                .unwrap(),
            _ => h
                .service
                .resend_verification(email, &ClientContext::default())
                .await
                .unwrap(),
        }
        assert_eq!(
            queued().await,
            before + 1,
            "{request} {email}: one request queued"
        );
    }
    h.mailbox.deliver().await;

    // Only the requests an account needed became mails, each with a working link.
    assert_eq!(queued().await, 0, "every request handled");
    assert_eq!(h.service.outbox_stats().await.unwrap().dead, 0, "none dead");
    let reset = h.mailbox.last(ADA, MailKind::ResetPassword).await.unwrap();
    assert!(
        h.mailbox
            .to(nobody, MailKind::ResetPassword)
            .await
            .is_empty()
    );
    assert!(h.mailbox.to(nobody, MailKind::VerifyEmail).await.is_empty());
    assert_eq!(
        h.mailbox.to(ADA, MailKind::VerifyEmail).await.len(),
        1,
        "a verified address gets no new verification link"
    );
    let resent = h.mailbox.last(BOB, MailKind::VerifyEmail).await.unwrap();
    h.service
        .verify_email(resent.token().unwrap(), &ClientContext::default())
        .await
        .unwrap();
    login(&h, "bob").await;
    h.service
        .reset_password(
            reset.token().unwrap(),
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await
        .unwrap();
    login_with(&h, ADA, NEW_PASSWORD, None).await.unwrap();
}
