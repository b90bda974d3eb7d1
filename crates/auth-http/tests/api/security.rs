//! The findings of the security review (issue 14), each as a user or an attacker would see
//! it over HTTP: account-existence oracles, the lockout and rate-limit paths, races with a
//! password reset, links that must die, and re-authentication for an email change.

use actix_web::http::StatusCode;
use auth_domain::model::MailKind;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Response, TestApp, TestResult, spawn_app, spawn_with};

/// The password an attacker's probe registers with.
const PROBE_PASSWORD: &str = "Probe-Lantern-Orchard-4417";
const NEW_PASSWORD: &str = "Copper-Meadow-Zephyr-8820";

fn probe(email: &str, username: &str) -> Value {
    json!({"email": email, "username": username, "password": PROBE_PASSWORD,
           "name": "Pro", "surname": "Be"})
}

async fn login_as(app: &TestApp, field: &str, value: &str, password: &str) -> Response {
    app.post(
        "/auth/login",
        &json!({ field: value, "password": password }),
    )
    .await
}

/// What a probe sees of one registration: the registration's answer, whether its username
/// is now refused to another registration, and the answers to logins with its password by
/// email and by username and with a wrong password.
async fn what_a_probe_sees(app: &TestApp, email: &str, username: &str) -> Vec<(u16, String)> {
    let mut seen = Vec::new();
    let mut note = |res: Response| seen.push((res.status.as_u16(), res.code().to_owned()));
    let registered = app.post("/auth/register", &probe(email, username)).await;
    assert_eq!(registered.body["user"]["username"], username);
    assert_eq!(registered.body["user"]["email"], email);
    note(registered);
    let other = format!("other-{username}@example.net");
    note(app.post("/auth/register", &probe(&other, username)).await);
    note(login_as(app, "email", email, PROBE_PASSWORD).await);
    note(login_as(app, "username", username, PROBE_PASSWORD).await);
    note(login_as(app, "email", email, "Not-The-Probe-Password-1").await);
    note(login_as(app, "username", username, "Not-The-Probe-Password-1").await);
    seen
}

/// Finding 1: registering a taken email keeps a pending registration that answers exactly
/// like a fresh one: the username is reserved, the probe's password logs in to
/// `email_not_verified`, a wrong one to `invalid_credentials`. The owner is mailed, keeps
/// logging in, and the probe is never sent a link.
#[actix_web::test]
async fn a_registration_for_a_taken_email_answers_like_a_fresh_one_everywhere() -> TestResult {
    let app = spawn_app().await;
    app.verified_user("owner@example.com", "owner").await;

    let taken = what_a_probe_sees(&app, "owner@example.com", "probe_taken").await;
    let fresh = what_a_probe_sees(&app, "fresh@example.com", "probe_fresh").await;

    let expected: Vec<(u16, String)> = [
        (201, ""),
        (409, "conflict"),
        (403, "email_not_verified"),
        (403, "email_not_verified"),
        (401, "invalid_credentials"),
        (401, "invalid_credentials"),
    ]
    .into_iter()
    .map(|(status, code)| (status, code.to_owned()))
    .collect();
    assert_eq!(fresh, expected, "a fresh registration");
    assert_eq!(taken, fresh, "a taken email must answer like a fresh one");

    let owner = login_as(&app, "email", "owner@example.com", PASSWORD).await;
    assert_eq!(owner.status, StatusCode::OK, "the owner logs in as before");
    let mailbox = app.mailbox().await;
    assert_eq!(
        mailbox
            .to("owner@example.com", MailKind::RegistrationAttempt)
            .len(),
        1,
        "the owner is told someone tried to register"
    );
    assert!(
        mailbox.to("owner@example.com", MailKind::VerifyEmail).len() == 1,
        "no verification link is minted for the pending registration (only the owner's own)"
    );
    Ok(())
}

/// Finding 3: the per-identifier limit, shared by every IP, cannot keep the owner out:
/// a login presenting the account's own device token is exempt from it (and from the
/// lockout others caused); without one, or with another account's, it is refused.
#[actix_web::test]
async fn a_valid_device_token_gets_past_a_per_identifier_limit_spent_by_others() -> TestResult {
    let app = spawn_with(&[("RATE_LIMIT_IDENTIFIER", "3")]).await;
    app.verified_user("victim@example.com", "victim").await;
    app.verified_user("mallory@example.com", "mallory").await;
    let device = app.login("victim").await.str("device_token");
    let foreign_device = app.login("mallory").await.str("device_token");

    let mut refused = None;
    for _ in 0..4 {
        let res = login_as(&app, "username", "victim", "Guess-Guess-Guess-1").await;
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(res);
            break;
        }
    }
    let refused = refused.expect("the attacker's guesses spend the per-identifier limit");
    assert_eq!(refused.code(), "rate_limited");
    assert!(refused.header("retry-after").is_some());

    let without = login_as(&app, "username", "victim", PASSWORD).await;
    assert_eq!(
        without.status,
        StatusCode::TOO_MANY_REQUESTS,
        "no device token"
    );
    let with_foreign = app
        .post(
            "/auth/login",
            &json!({"username": "victim", "password": PASSWORD, "device_token": foreign_device}),
        )
        .await;
    assert_eq!(
        with_foreign.status,
        StatusCode::TOO_MANY_REQUESTS,
        "another account's device token does not count"
    );
    let with_own = app
        .post(
            "/auth/login",
            &json!({"username": "victim", "password": PASSWORD, "device_token": device}),
        )
        .await;
    assert_eq!(with_own.status, StatusCode::OK, "{}", with_own.body);
    Ok(())
}

/// Finding 4, with real concurrency: logins with the old password that start while a reset
/// is under way either fail or get a session the reset ends. None outlives it.
#[actix_web::test]
async fn logins_racing_a_password_reset_never_outlive_it() -> TestResult {
    // A real bcrypt cost, so that each login spends its hashing time while the reset
    // commits (the race the review reproduced).
    let app = spawn_with(&[
        ("BCRYPT_COST", "9"),
        ("HASH_CONCURRENCY", "16"),
        ("LOCKOUT_THRESHOLD", "1000"),
    ])
    .await;
    app.verified_user("racer@example.com", "racer").await;
    let forgot = app
        .post(
            "/auth/forgot-password",
            &json!({"email": "racer@example.com"}),
        )
        .await;
    assert_eq!(forgot.status, StatusCode::ACCEPTED);
    let token = app
        .mailed_token("racer@example.com", MailKind::ResetPassword)
        .await;

    let reset_body = json!({"token": token, "new_password": NEW_PASSWORD});
    let reset = app.post("/auth/reset-password", &reset_body);
    let logins = (0..12u64).map(|n| {
        let app = &app;
        async move {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(4 * n)).await;
            login_as(app, "username", "racer", PASSWORD).await
        }
    });
    let (reset, logins) =
        futures_util::future::join(reset, futures_util::future::join_all(logins)).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);

    for (n, login) in logins.into_iter().enumerate() {
        match login.status {
            StatusCode::UNAUTHORIZED => assert_eq!(login.code(), "invalid_credentials"),
            StatusCode::OK => {
                let refresh = app
                    .post(
                        "/auth/refresh-token",
                        &json!({"refresh_token": login.str("refresh_token")}),
                    )
                    .await;
                assert_eq!(
                    refresh.status,
                    StatusCode::UNAUTHORIZED,
                    "login {n} kept a session past the reset: {}",
                    refresh.body
                );
                let profile = app
                    .get_auth("/users/profile", &login.str("access_token"))
                    .await;
                assert_eq!(profile.status, StatusCode::UNAUTHORIZED, "login {n}");
            }
            other => panic!("login {n}: {other} {}", login.body),
        }
    }
    let after = login_as(&app, "username", "racer", PASSWORD).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "the old password is dead"
    );
    Ok(())
}

/// Finding 5: a password change kills an outstanding reset link; an email change kills
/// the links mailed to the old address.
#[actix_web::test]
async fn a_password_or_email_change_kills_the_links_mailed_before() -> TestResult {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("links@example.com", "links").await;
    app.post(
        "/auth/forgot-password",
        &json!({"email": "links@example.com"}),
    )
    .await;
    let before_change = app
        .mailed_token("links@example.com", MailKind::ResetPassword)
        .await;
    let changed = app
        .call(
            "POST",
            "/users/change-password",
            Some(&access),
            Some(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let used = app
        .post(
            "/auth/reset-password",
            &json!({"token": before_change, "new_password": "Another-Fresh-Phrase-3301"}),
        )
        .await;
    assert_eq!(used.status, StatusCode::BAD_REQUEST, "{}", used.body);
    assert_eq!(used.code(), "invalid_token");

    // A reset link mailed to the old address, then the email changes.
    let other = app.signed_in("old@example.com", "mover").await.0;
    app.post(
        "/auth/forgot-password",
        &json!({"email": "old@example.com"}),
    )
    .await;
    let to_old_address = app
        .mailed_token("old@example.com", MailKind::ResetPassword)
        .await;
    let requested = app
        .call(
            "PUT",
            "/users/profile",
            Some(&other),
            Some(&json!({"email": "new@example.com", "current_password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(requested.status, StatusCode::OK, "{}", requested.body);
    let confirm = app
        .mailed_token("new@example.com", MailKind::ChangeEmail)
        .await;
    let confirmed = app
        .post("/auth/verify-email", &json!({"token": confirm}))
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let used = app
        .post(
            "/auth/reset-password",
            &json!({"token": to_old_address, "new_password": "Another-Fresh-Phrase-3301"}),
        )
        .await;
    assert_eq!(used.status, StatusCode::BAD_REQUEST, "{}", used.body);
    assert_eq!(used.code(), "invalid_token");
    Ok(())
}

/// Finding 5's sibling: a reset cancels a pending email change, so whoever requested it
/// with a stolen session cannot confirm it after the owner took the account back.
#[actix_web::test]
async fn a_reset_cancels_an_email_change_requested_before_it() -> TestResult {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("owner2@example.com", "owner2").await;
    let requested = app
        .call(
            "PUT",
            "/users/profile",
            Some(&access),
            Some(&json!({"email": "thief@example.com", "current_password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(requested.status, StatusCode::OK, "{}", requested.body);
    let thiefs_link = app
        .mailed_token("thief@example.com", MailKind::ChangeEmail)
        .await;
    app.post(
        "/auth/forgot-password",
        &json!({"email": "owner2@example.com"}),
    )
    .await;
    let reset = app
        .mailed_token("owner2@example.com", MailKind::ResetPassword)
        .await;
    let res = app
        .post(
            "/auth/reset-password",
            &json!({"token": reset, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let confirmed = app
        .post("/auth/verify-email", &json!({"token": thiefs_link}))
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        confirmed.body
    );
    let owner = login_as(&app, "email", "owner2@example.com", NEW_PASSWORD).await;
    assert_eq!(owner.status, StatusCode::OK, "the email did not change");
    Ok(())
}

/// Finding 6: an access token alone cannot change the email: the current password is
/// required (400 without, 403 when wrong), and the current address is told of a change.
#[actix_web::test]
async fn changing_the_email_needs_the_current_password_and_tells_the_old_address() -> TestResult {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("keep@example.com", "keeper").await;
    let put = |body: Value| {
        let (app, access) = (&app, access.clone());
        async move {
            app.call("PUT", "/users/profile", Some(&access), Some(&body), &[])
                .await
        }
    };

    let missing = put(json!({"email": "stolen@example.com"})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(missing.code(), "validation_failed");
    assert!(missing.body["errors"]["current_password"].is_array());
    let wrong =
        put(json!({"email": "stolen@example.com", "current_password": "Wrong-Guess-Pass-99"}))
            .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.body);
    assert_eq!(wrong.code(), "invalid_credentials");
    let empty = put(json!({"name": "Renamed", "current_password": ""})).await;
    assert_eq!(
        empty.status,
        StatusCode::BAD_REQUEST,
        "a malformed current_password is refused even without a new email: {}",
        empty.body
    );
    let name_only = put(json!({"name": "Renamed"})).await;
    assert_eq!(
        name_only.status,
        StatusCode::OK,
        "other fields need no password"
    );

    let right = put(json!({"email": "moved@example.com", "current_password": PASSWORD})).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert_eq!(right.body["email_change_pending"], true);
    let mailbox = app.mailbox().await;
    assert_eq!(
        mailbox
            .to("keep@example.com", MailKind::EmailChangeRequested)
            .len(),
        1,
        "the current address is told"
    );
    assert_eq!(
        mailbox
            .to("stolen@example.com", MailKind::ChangeEmail)
            .len(),
        0,
        "refused requests mail nothing"
    );
    Ok(())
}

/// Finding 6: email changes are limited per account (5 an hour by default) and per new
/// address, across accounts.
#[actix_web::test]
async fn email_changes_are_limited_per_account_and_per_new_address() -> TestResult {
    let app = spawn_app().await;
    let (first, _) = app.signed_in("one@example.com", "one").await;
    let (second, _) = app.signed_in("two@example.com", "two").await;
    let change = |access: &str, to: &str| {
        let (app, access, to) = (&app, access.to_owned(), to.to_owned());
        async move {
            app.call(
                "PUT",
                "/users/profile",
                Some(&access),
                Some(&json!({"email": to, "current_password": PASSWORD})),
                &[],
            )
            .await
            .status
        }
    };
    for n in 0..5 {
        let status = change(&first, &format!("hop{n}@example.com")).await;
        assert_eq!(status, StatusCode::OK, "change {n}");
    }
    assert_eq!(
        change(&first, "hop5@example.com").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the sixth change from one account in an hour"
    );
    for _ in 0..4 {
        assert_eq!(change(&second, "hop0@example.com").await, StatusCode::OK);
    }
    assert_eq!(
        change(&second, "hop0@example.com").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the sixth change to one address in an hour, from any account"
    );
    Ok(())
}

/// Finding 7, with real concurrency: 20 wrong logins at once evaluate no more guesses than
/// the lockout threshold; the others are refused as locked before any hashing.
#[actix_web::test]
async fn concurrent_wrong_logins_evaluate_no_more_guesses_than_the_threshold() -> TestResult {
    // A real bcrypt cost, so that the guesses are all in flight at once.
    let app = spawn_with(&[
        ("LOCKOUT_THRESHOLD", "5"),
        ("HASH_CONCURRENCY", "8"),
        ("BCRYPT_COST", "9"),
    ])
    .await;
    app.verified_user("target@example.com", "target").await;
    let guesses = (0..20).map(|n| {
        let app = &app;
        async move { login_as(app, "username", "target", &format!("Wrong-Guess-{n}-x9")).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let evaluated = answers
        .iter()
        .filter(|r| r.status == StatusCode::UNAUTHORIZED)
        .count();
    let locked = answers
        .iter()
        .filter(|r| r.status == StatusCode::LOCKED)
        .count();
    assert_eq!(
        evaluated, 5,
        "exactly the threshold of guesses is evaluated"
    );
    assert_eq!(locked, 15, "the rest are refused as locked");
    Ok(())
}
