//! Second factors, end to end over the embedded adapters with a clock the tests move by
//! hand: TOTP enrolment and login (drift, replay, expiry), recovery codes, the `mfa_token`'s
//! limits, and how wrong codes count toward the account's lockout. Passkeys are proved in a
//! real browser (scripts/browser-passkeys.py) and in auth-webauthn's own tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_crypto::Rfc6238;
use auth_domain::model::{MailKind, MfaMethod};
use auth_domain::policy::{LockoutPolicy, Policy};
use auth_domain::ports::TotpCodec;
use auth_domain::service::{LoggedIn, LoginOutcome, MfaChallenge, SecondFactor, SecretPassword};
use auth_domain::{AuthError, ClientContext, Event};
use auth_testkit::{
    Harness, NEW_PASSWORD, PASSWORD, access, harness, login_request, register_and_verify,
};
use chrono::TimeDelta;

macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected Err({}), got {other:?}", stringify!($pattern)),
        }
    };
}

const ADA: &str = "ada@example.com";

fn policy() -> Policy {
    Policy {
        lockout: LockoutPolicy {
            threshold: 5,
            ..LockoutPolicy::default()
        },
        ..Policy::default()
    }
}

/// RFC 4648 base32 (no padding), as the enrolment hands the secret out.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .expect("base32 character") as u32;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

/// A user with a TOTP authenticator app: the secret the app holds.
struct App {
    secret: Vec<u8>,
}

impl App {
    /// The app's code at the harness's current time, `offset` steps away.
    fn code(&self, h: &Harness, offset: i64) -> String {
        let step = (h.clock.now_secs() / 30 + offset) as u64;
        Rfc6238.code_at(&self.secret, step)
    }
}

trait Now {
    fn now_secs(&self) -> i64;
}

impl Now for auth_testkit::FakeClock {
    fn now_secs(&self) -> i64 {
        use auth_domain::ports::Clock;
        self.now().timestamp()
    }
}

async fn session_of(h: &Harness) -> auth_domain::model::AccessClaims {
    let logged_in = auth_testkit::login(h, "ada").await;
    h.service
        .authenticate(access(&logged_in.tokens))
        .await
        .unwrap()
}

/// Registers Ada, enrols and confirms TOTP; returns her app and recovery codes. The clock
/// then moves to the next step, so the confirming code is not the one a test presents.
async fn ada_with_totp(h: &Harness) -> (App, Vec<String>) {
    register_and_verify(h, ADA, "ada").await;
    let claims = session_of(h).await;
    let enrolment = h
        .service
        .enrol_totp(&claims, SecretPassword(PASSWORD.to_owned()))
        .await
        .unwrap();
    let app = App {
        secret: base32_decode(&enrolment.secret),
    };
    let codes = h
        .service
        .confirm_totp(&claims, &app.code(h, 0))
        .await
        .unwrap();
    h.clock.advance(TimeDelta::seconds(30));
    (app, codes)
}

async fn login_for_mfa(h: &Harness, device_token: Option<&str>) -> MfaChallenge {
    match h
        .service
        .login(
            login_request("ada", PASSWORD, device_token),
            &ClientContext::default(),
        )
        .await
    {
        Ok(LoginOutcome::MfaRequired(challenge)) => challenge,
        other => panic!("expected mfa_required, got {other:?}"),
    }
}

/// A password login completed with the app's current code: the session's claims.
async fn signed_in_with_totp(h: &Harness, app: &App) -> auth_domain::model::AccessClaims {
    let challenge = login_for_mfa(h, None).await;
    let logged_in = verify(h, &challenge.mfa_token, SecondFactor::Totp(app.code(h, 0)))
        .await
        .unwrap();
    h.service
        .authenticate(access(&logged_in.tokens))
        .await
        .unwrap()
}

/// A code that is not `right`.
fn wrong_code(right: &str) -> String {
    if right == "123456" {
        "654321"
    } else {
        "123456"
    }
    .to_owned()
}

async fn verify(h: &Harness, token: &str, code: SecondFactor) -> Result<LoggedIn, AuthError> {
    h.service
        .verify_mfa(token, code, &ClientContext::default())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_enrolment_changes_nothing_at_login_and_a_wrong_first_code_confirms_nothing() {
    let h = harness(policy()).await;
    register_and_verify(&h, ADA, "ada").await;
    let claims = session_of(&h).await;

    assert_err!(
        h.service
            .enrol_totp(&claims, SecretPassword("not-the-password".to_owned()))
            .await,
        AuthError::WrongPassword
    );
    let enrolment = h
        .service
        .enrol_totp(&claims, SecretPassword(PASSWORD.to_owned()))
        .await
        .unwrap();
    assert!(
        enrolment
            .otpauth_url
            .starts_with("otpauth://totp/Auth:ada?"),
        "{}",
        enrolment.otpauth_url
    );
    assert!(
        enrolment
            .otpauth_url
            .contains(&format!("secret={}", enrolment.secret))
    );
    assert_eq!(base32_decode(&enrolment.secret).len(), 20);

    // Pending: the login is as before.
    auth_testkit::login(&h, "ada").await;
    let app = App {
        secret: base32_decode(&enrolment.secret),
    };
    let wrong = if app.code(&h, 0) == "000000" {
        "000001"
    } else {
        "000000"
    };
    assert_err!(
        h.service.confirm_totp(&claims, wrong).await,
        AuthError::InvalidMfaCode
    );
    assert!(!h.service.mfa_status(&claims).await.unwrap().totp);
    auth_testkit::login(&h, "ada").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_totp_the_password_gives_an_mfa_token_and_a_code_gives_the_session() {
    let h = harness(policy()).await;
    let (app, codes) = ada_with_totp(&h).await;
    assert_eq!(codes.len(), 10);
    assert_eq!(
        codes.iter().collect::<std::collections::HashSet<_>>().len(),
        10
    );
    let notice = h.mailbox.last(ADA, MailKind::TotpEnabled).await;
    assert!(notice.is_some(), "the owner is told TOTP was turned on");

    h.events.clear();
    let challenge = login_for_mfa(&h, None).await;
    assert_eq!(
        challenge.methods,
        vec![MfaMethod::Totp, MfaMethod::RecoveryCode]
    );
    assert_eq!(challenge.expires_in, 300);
    let logged_in = verify(
        &h,
        &challenge.mfa_token,
        SecondFactor::Totp(app.code(&h, 0)),
    )
    .await
    .unwrap();
    assert!(
        h.service
            .authenticate(access(&logged_in.tokens))
            .await
            .is_ok()
    );
    let events = h.events.all();
    let user = logged_in.profile.id;
    assert!(events.contains(&Event::MfaRequired { user }), "{events:?}");
    assert!(events.contains(&Event::MfaVerified {
        user,
        method: MfaMethod::Totp
    }));
    assert!(events.contains(&Event::LoginSucceeded {
        user,
        session: logged_in.tokens.session_id
    }));

    // The token is single use.
    h.clock.advance(TimeDelta::seconds(30));
    assert_err!(
        verify(
            &h,
            &challenge.mfa_token,
            SecondFactor::Totp(app.code(&h, 0))
        )
        .await,
        AuthError::InvalidToken
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_step_of_drift_either_way_is_accepted_and_two_are_not() {
    // Refused codes count toward the lockout (with their logins' passwords): a threshold
    // out of reach keeps this test about drift.
    let h = harness(Policy {
        lockout: LockoutPolicy {
            threshold: 50,
            ..LockoutPolicy::default()
        },
        ..Policy::default()
    })
    .await;
    let (app, _) = ada_with_totp(&h).await;
    for (offset, accepted) in [(-2, false), (2, false), (-1, true), (1, true)] {
        h.clock.advance(TimeDelta::seconds(90));
        let challenge = login_for_mfa(&h, None).await;
        let result = verify(
            &h,
            &challenge.mfa_token,
            SecondFactor::Totp(app.code(&h, offset)),
        )
        .await;
        assert_eq!(result.is_ok(), accepted, "offset {offset}: {result:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_accepted_once_even_by_another_login() {
    let h = harness(policy()).await;
    let (app, _) = ada_with_totp(&h).await;
    let code = app.code(&h, 0);
    let first = login_for_mfa(&h, None).await;
    verify(&h, &first.mfa_token, SecondFactor::Totp(code.clone()))
        .await
        .unwrap();

    let second = login_for_mfa(&h, None).await;
    assert_err!(
        verify(&h, &second.mfa_token, SecondFactor::Totp(code)).await,
        AuthError::InvalidMfaCode
    );
    // The next step's code works.
    h.clock.advance(TimeDelta::seconds(30));
    verify(&h, &second.mfa_token, SecondFactor::Totp(app.code(&h, 0)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mfa_token_dies_after_five_minutes() {
    let h = harness(policy()).await;
    let (app, _) = ada_with_totp(&h).await;
    let challenge = login_for_mfa(&h, None).await;
    h.clock.advance(TimeDelta::seconds(301));
    assert_err!(
        verify(
            &h,
            &challenge.mfa_token,
            SecondFactor::Totp(app.code(&h, 0))
        )
        .await,
        AuthError::InvalidToken
    );
    assert_err!(
        verify(&h, "not-a-token", SecondFactor::Totp(app.code(&h, 0))).await,
        AuthError::InvalidToken
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mfa_token_dies_after_five_wrong_codes() {
    // A lockout threshold above the token's limit, to see the token's own limit.
    let h = harness(Policy {
        lockout: LockoutPolicy {
            threshold: 50,
            ..LockoutPolicy::default()
        },
        ..Policy::default()
    })
    .await;
    let (app, _) = ada_with_totp(&h).await;
    let challenge = login_for_mfa(&h, None).await;
    let right = app.code(&h, 0);
    let wrong = wrong_code(&right);
    for _ in 0..5 {
        assert_err!(
            verify(&h, &challenge.mfa_token, SecondFactor::Totp(wrong.clone())).await,
            AuthError::InvalidMfaCode
        );
    }
    assert_err!(
        verify(&h, &challenge.mfa_token, SecondFactor::Totp(right)).await,
        AuthError::InvalidToken
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_count_toward_the_lockout_and_the_owner_is_told() {
    let h = harness(policy()).await;
    let (app, _) = ada_with_totp(&h).await;
    // The password's attempt counts until the second factor completes: 1 + 4 wrong
    // codes reach the threshold of 5.
    let challenge = login_for_mfa(&h, None).await;
    let right = app.code(&h, 0);
    let wrong = wrong_code(&right);
    for _ in 0..4 {
        assert_err!(
            verify(&h, &challenge.mfa_token, SecondFactor::Totp(wrong.clone())).await,
            AuthError::InvalidMfaCode
        );
    }
    assert_err!(
        verify(&h, &challenge.mfa_token, SecondFactor::Totp(right)).await,
        AuthError::AccountLocked { .. }
    );
    assert_err!(
        h.service
            .login(
                login_request("ada", PASSWORD, None),
                &ClientContext::default()
            )
            .await,
        AuthError::AccountLocked { .. }
    );
    assert!(h.mailbox.last(ADA, MailKind::AccountLocked).await.is_some());
    assert!(
        h.events
            .all()
            .iter()
            .any(|e| matches!(e, Event::AccountLocked { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_code_forgets_the_failures_before_it() {
    let h = harness(policy()).await;
    let (app, _) = ada_with_totp(&h).await;
    for _ in 0..3 {
        let challenge = login_for_mfa(&h, None).await;
        let right = app.code(&h, 0);
        let wrong = wrong_code(&right);
        for _ in 0..2 {
            assert_err!(
                verify(&h, &challenge.mfa_token, SecondFactor::Totp(wrong.clone())).await,
                AuthError::InvalidMfaCode
            );
        }
        verify(&h, &challenge.mfa_token, SecondFactor::Totp(right))
            .await
            .unwrap();
        h.clock.advance(TimeDelta::seconds(30));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_recovery_code_works_once_and_the_owner_is_told() {
    let h = harness(policy()).await;
    let (_, codes) = ada_with_totp(&h).await;
    let challenge = login_for_mfa(&h, None).await;
    h.events.clear();
    // A wrong code first: it must not silence the notice of the right one.
    assert_err!(
        verify(
            &h,
            &challenge.mfa_token,
            SecondFactor::RecoveryCode("zzzzz-zzzzz".to_owned())
        )
        .await,
        AuthError::InvalidMfaCode
    );
    assert!(
        h.mailbox
            .last(ADA, MailKind::RecoveryCodeUsed)
            .await
            .is_none()
    );
    let events = h.events.all();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::MfaFailed {
                reason: "invalid_mfa_code",
                user: Some(_),
                method: Some(MfaMethod::RecoveryCode),
            }
        )),
        "a refused code is reported: {events:?}"
    );
    // As typed: upper case, without the dash.
    let typed = codes[0].to_uppercase().replace('-', "");
    verify(&h, &challenge.mfa_token, SecondFactor::RecoveryCode(typed))
        .await
        .unwrap();
    assert!(
        h.mailbox
            .last(ADA, MailKind::RecoveryCodeUsed)
            .await
            .is_some()
    );

    let again = login_for_mfa(&h, None).await;
    assert_err!(
        verify(
            &h,
            &again.mfa_token,
            SecondFactor::RecoveryCode(codes[0].clone())
        )
        .await,
        AuthError::InvalidMfaCode
    );
    let logged_in = verify(
        &h,
        &again.mfa_token,
        SecondFactor::RecoveryCode(codes[1].clone()),
    )
    .await
    .unwrap();
    let claims = h
        .service
        .authenticate(access(&logged_in.tokens))
        .await
        .unwrap();
    assert_eq!(
        h.service
            .mfa_status(&claims)
            .await
            .unwrap()
            .recovery_codes_left,
        8
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_recovery_codes_replace_the_old_set() {
    let h = harness(policy()).await;
    let (app, old) = ada_with_totp(&h).await;
    let claims = signed_in_with_totp(&h, &app).await;
    assert_err!(
        h.service
            .renew_recovery_codes(&claims, SecretPassword("wrong-password".to_owned()))
            .await,
        AuthError::WrongPassword
    );
    let new = h
        .service
        .renew_recovery_codes(&claims, SecretPassword(PASSWORD.to_owned()))
        .await
        .unwrap();
    assert_eq!(new.len(), 10);

    let challenge = login_for_mfa(&h, None).await;
    assert_err!(
        verify(
            &h,
            &challenge.mfa_token,
            SecondFactor::RecoveryCode(old[2].clone())
        )
        .await,
        AuthError::InvalidMfaCode
    );
    verify(
        &h,
        &challenge.mfa_token,
        SecondFactor::RecoveryCode(new[2].clone()),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_totp_needs_the_password_and_a_code_and_logins_are_as_before() {
    let h = harness(policy()).await;
    let (app, codes) = ada_with_totp(&h).await;
    let claims = signed_in_with_totp(&h, &app).await;
    h.clock.advance(TimeDelta::seconds(30));
    assert_err!(
        h.service
            .disable_totp(
                &claims,
                SecretPassword("wrong".to_owned()),
                &app.code(&h, 0)
            )
            .await,
        AuthError::WrongPassword
    );
    assert_err!(
        h.service
            .disable_totp(&claims, SecretPassword(PASSWORD.to_owned()), "abcde-fghjk")
            .await,
        AuthError::InvalidMfaCode
    );
    // A recovery code removes it too.
    h.service
        .disable_totp(&claims, SecretPassword(PASSWORD.to_owned()), &codes[5])
        .await
        .unwrap();
    assert!(h.mailbox.last(ADA, MailKind::TotpDisabled).await.is_some());
    let status = h.service.mfa_status(&claims).await.unwrap();
    assert!(!status.totp);
    assert_eq!(status.recovery_codes_left, 0);
    auth_testkit::login(&h, "ada").await;
    assert_err!(
        h.service
            .disable_totp(
                &claims,
                SecretPassword(PASSWORD.to_owned()),
                &app.code(&h, 0)
            )
            .await,
        AuthError::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_totp_twice_is_a_conflict() {
    let h = harness(policy()).await;
    let (app, _) = ada_with_totp(&h).await;
    let claims = signed_in_with_totp(&h, &app).await;
    assert_err!(
        h.service
            .enrol_totp(&claims, SecretPassword(PASSWORD.to_owned()))
            .await,
        AuthError::MfaState(_)
    );
    assert_err!(
        h.service.confirm_totp(&claims, "123456").await,
        AuthError::MfaState(_)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_between_the_password_and_the_code_kills_the_mfa_token() {
    let h = harness(policy()).await;
    let (app, _) = ada_with_totp(&h).await;
    let challenge = login_for_mfa(&h, None).await;
    h.service
        .forgot_password(ADA, &ClientContext::default())
        .await
        .unwrap();
    let mail = h.mailbox.last(ADA, MailKind::ResetPassword).await.unwrap();
    h.service
        .reset_password(
            mail.token().unwrap(),
            SecretPassword(NEW_PASSWORD.to_owned()),
            &ClientContext::default(),
        )
        .await
        .unwrap();
    assert_err!(
        verify(
            &h,
            &challenge.mfa_token,
            SecondFactor::Totp(app.code(&h, 0))
        )
        .await,
        AuthError::InvalidToken
    );
    // The reset does not bypass the second factor: the new password asks for it too.
    let after = h
        .service
        .login(
            login_request("ada", NEW_PASSWORD, None),
            &ClientContext::default(),
        )
        .await;
    assert!(
        matches!(after, Ok(LoginOutcome::MfaRequired(_))),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_token_survives_the_second_factor() {
    let h = harness(policy()).await;
    let (app, _) = ada_with_totp(&h).await;
    let challenge = login_for_mfa(&h, None).await;
    let first = verify(
        &h,
        &challenge.mfa_token,
        SecondFactor::Totp(app.code(&h, 0)),
    )
    .await
    .unwrap();
    h.clock.advance(TimeDelta::seconds(30));
    let challenge = login_for_mfa(&h, Some(&first.device_token)).await;
    let second = verify(
        &h,
        &challenge.mfa_token,
        SecondFactor::Totp(app.code(&h, 0)),
    )
    .await
    .unwrap();
    assert_ne!(second.device_token, first.device_token);
    // Failures elsewhere lock the identifier, not this device.
    for _ in 0..5 {
        let _ = h
            .service
            .login(
                login_request("ada", "not-the-password", None),
                &ClientContext::default(),
            )
            .await;
    }
    h.clock.advance(TimeDelta::seconds(30));
    let challenge = login_for_mfa(&h, Some(&second.device_token)).await;
    verify(
        &h,
        &challenge.mfa_token,
        SecondFactor::Totp(app.code(&h, 0)),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_password_whose_attempt_reaches_the_threshold_is_told_of_the_lock() {
    let h = harness(policy()).await;
    let (_, _) = ada_with_totp(&h).await;
    for _ in 0..4 {
        assert_err!(
            h.service
                .login(
                    login_request("ada", "not-the-password", None),
                    &ClientContext::default(),
                )
                .await,
            AuthError::InvalidCredentials
        );
    }
    // The fifth attempt is right, but a second factor is due: it counts until then.
    assert_err!(
        h.service
            .login(
                login_request("ada", PASSWORD, None),
                &ClientContext::default()
            )
            .await,
        AuthError::AccountLocked { .. }
    );
    assert!(h.mailbox.last(ADA, MailKind::AccountLocked).await.is_some());
}
