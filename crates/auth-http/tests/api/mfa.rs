//! Second factors over HTTP, as a web client uses them: TOTP enrolment and login, recovery
//! codes, removal, the errors of the MFA endpoints, and passkey ceremonies as far as a
//! client without an authenticator gets (the full passkey flows run in a real browser:
//! scripts/browser-passkeys.py). On PostgreSQL + Redis, two instances share the codes used.

use auth_crypto::Rfc6238;
use auth_domain::model::MailKind;
use auth_domain::ports::TotpCodec;
use awc::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backing, PASSWORD, TestApp, TestResult, on_redis, spawn_on, spawn_with};

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut count, mut out) = (0u32, 0, Vec::new());
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).expect("base32") as u32;
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

/// The code an authenticator app shows now, `offset` steps away.
pub(crate) fn code(secret: &[u8], offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    Rfc6238.code_at(secret, (now / 30 + offset) as u64)
}

/// Enrols and confirms TOTP for a signed-in user; returns the secret and recovery codes.
pub(crate) async fn enable_totp(app: &TestApp, access: &str) -> (Vec<u8>, Vec<String>) {
    let enrol = app
        .call(
            "POST",
            "/users/mfa/totp",
            Some(access),
            Some(&json!({"password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.body);
    let secret = base32_decode(&enrol.str("secret"));
    // A step ago: the current step's code stays free for the test's first login.
    let confirm = app
        .call(
            "POST",
            "/users/mfa/totp/confirm",
            Some(access),
            Some(&json!({"code": code(&secret, -1)})),
            &[],
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    let codes: Vec<String> = confirm.body["recovery_codes"]
        .as_array()
        .expect("recovery_codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    (secret, codes)
}

async fn password_login(app: &TestApp, username: &str) -> crate::helpers::Response {
    app.post(
        "/auth/login",
        &json!({"username": username, "password": PASSWORD}),
    )
    .await
}

#[actix_web::test]
async fn totp_turns_the_login_into_two_steps_and_the_second_gives_the_usual_body() -> TestResult {
    let app = spawn_with(&[]).await;
    let (access, _) = app.signed_in("mfa@example.com", "mfa").await;
    let status = app.get_auth("/users/mfa", &access).await;
    assert_eq!(
        status.body,
        json!({"totp": false, "passkeys": [], "recovery_codes_left": 0})
    );

    let enrol = app
        .call(
            "POST",
            "/users/mfa/totp",
            Some(&access),
            Some(&json!({"password": PASSWORD})),
            &[],
        )
        .await;
    let url = enrol.str("otpauth_url");
    assert!(url.starts_with("otpauth://totp/Auth:mfa?"), "{url}");
    assert!(url.contains("issuer=Auth"), "{url}");
    assert_eq!(enrol.header("cache-control").as_deref(), Some("no-store"));
    // Pending: logins are unchanged until a code confirms it.
    assert!(password_login(&app, "mfa").await.body["access_token"].is_string());

    let (secret, codes) = enable_totp(&app, &access).await;
    assert_eq!(codes.len(), 10);
    assert!(
        app.mailbox()
            .await
            .last("mfa@example.com", MailKind::TotpEnabled)
            .is_some()
    );
    let status = app.get_auth("/users/mfa", &access).await;
    assert_eq!(
        status.body,
        json!({"totp": true, "passkeys": [], "recovery_codes_left": 10})
    );

    let first = password_login(&app, "mfa").await;
    assert_eq!(first.status, StatusCode::OK);
    let mut keys: Vec<&str> = first
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "expires_in",
            "message",
            "methods",
            "mfa_required",
            "mfa_token"
        ],
        "no token before the second factor: {}",
        first.body
    );
    assert_eq!(first.body["mfa_required"], true);
    assert_eq!(first.body["methods"], json!(["totp", "recovery_code"]));
    assert_eq!(first.body["expires_in"], 300);

    // Captured once: a replay must present the very same code, whatever the clock does.
    let now_code = code(&secret, 0);
    let verified = app
        .post(
            "/auth/mfa/verify",
            &json!({"mfa_token": first.str("mfa_token"), "code": now_code}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    for field in ["message", "access_token", "refresh_token", "device_token"] {
        assert!(
            verified.body[field].is_string(),
            "{field}: {}",
            verified.body
        );
    }
    assert_eq!(verified.body["user"]["username"], "mfa");
    assert_eq!(
        verified.header("cache-control").as_deref(),
        Some("no-store")
    );
    let token = verified.str("access_token");
    assert_eq!(
        app.get_auth("/auth/verify-token", &token).await.status,
        StatusCode::OK
    );

    // The token was single use; the code too, even in another login.
    let again = app
        .post(
            "/auth/mfa/verify",
            &json!({"mfa_token": first.str("mfa_token"), "code": now_code}),
        )
        .await;
    assert_eq!(again.code(), "invalid_token", "{}", again.body);
    let second = password_login(&app, "mfa").await;
    let replay = app
        .post(
            "/auth/mfa/verify",
            &json!({"mfa_token": second.str("mfa_token"), "code": now_code}),
        )
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.code(), "invalid_mfa_code", "{}", replay.body);
    assert_eq!(
        replay.header("content-type").as_deref(),
        Some("application/problem+json")
    );

    // A recovery code works once.
    let recovered = app
        .post(
            "/auth/mfa/verify",
            &json!({"mfa_token": second.str("mfa_token"), "recovery_code": codes[0]}),
        )
        .await;
    assert_eq!(recovered.status, StatusCode::OK, "{}", recovered.body);
    assert!(
        app.mailbox()
            .await
            .last("mfa@example.com", MailKind::RecoveryCodeUsed)
            .is_some()
    );
    let third = password_login(&app, "mfa").await;
    let reused = app
        .post(
            "/auth/mfa/verify",
            &json!({"mfa_token": third.str("mfa_token"), "recovery_code": codes[0]}),
        )
        .await;
    assert_eq!(reused.code(), "invalid_mfa_code");
    Ok(())
}

#[actix_web::test]
async fn removing_totp_takes_the_password_and_a_code_and_logins_are_as_before() -> TestResult {
    let app = spawn_with(&[]).await;
    let (access, _) = app.signed_in("off@example.com", "off").await;
    let (_, codes) = enable_totp(&app, &access).await;

    let wrong_password = app
        .call(
            "DELETE",
            "/users/mfa/totp",
            Some(&access),
            Some(&json!({"password": "not-the-password", "code": codes[0]})),
            &[],
        )
        .await;
    assert_eq!(wrong_password.status, StatusCode::FORBIDDEN);
    let wrong_code = app
        .call(
            "DELETE",
            "/users/mfa/totp",
            Some(&access),
            Some(&json!({"password": PASSWORD, "code": "zzzzz-zzzzz"})),
            &[],
        )
        .await;
    assert_eq!(wrong_code.code(), "invalid_mfa_code", "{}", wrong_code.body);
    let removed = app
        .call(
            "DELETE",
            "/users/mfa/totp",
            Some(&access),
            Some(&json!({"password": PASSWORD, "code": codes[1]})),
            &[],
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert!(
        app.mailbox()
            .await
            .last("off@example.com", MailKind::TotpDisabled)
            .is_some()
    );
    assert!(password_login(&app, "off").await.body["access_token"].is_string());
    let gone = app
        .call(
            "DELETE",
            "/users/mfa/totp",
            Some(&access),
            Some(&json!({"password": PASSWORD, "code": codes[2]})),
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // New recovery codes need a second factor first.
    let none = app
        .call(
            "POST",
            "/users/mfa/recovery-codes",
            Some(&access),
            Some(&json!({"password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(none.status, StatusCode::CONFLICT, "{}", none.body);
    Ok(())
}

/// Method, path, bearer token, body (`null`: none), status, problem code.
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Value,
    StatusCode,
    &'a str,
);

#[actix_web::test]
async fn the_mfa_endpoints_refuse_bad_input_with_problems() -> TestResult {
    let app = spawn_with(&[]).await;
    let (access, _) = app.signed_in("bad@example.com", "bad").await;
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/auth/mfa/verify",
            None,
            json!({"mfa_token": "x"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "POST",
            "/auth/mfa/verify",
            None,
            json!({"mfa_token": "x", "code": "123456", "recovery_code": "a"}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "POST",
            "/auth/mfa/verify",
            None,
            json!({"mfa_token": "not-a-token", "code": "123456"}),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "POST",
            "/auth/mfa/verify",
            None,
            json!({"mfa_token": "A".repeat(43), "code": "123456"}),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "POST",
            "/auth/mfa/verify",
            None,
            json!({"code": 123456}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "POST",
            "/auth/passkey/start",
            None,
            json!({"mfa_token": "A".repeat(43)}),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "POST",
            "/auth/passkey/finish",
            None,
            json!({"challenge_id": "A".repeat(43), "credential": {}}),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "POST",
            "/users/mfa/totp",
            Some(&access),
            json!({"password": "wrong-password"}),
            StatusCode::FORBIDDEN,
            "invalid_credentials",
        ),
        (
            "POST",
            "/users/mfa/totp",
            Some(&access),
            json!({}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "POST",
            "/users/mfa/totp/confirm",
            Some(&access),
            json!({"code": "123456"}),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            "POST",
            "/users/mfa/totp/confirm",
            Some(&access),
            json!({}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "POST",
            "/users/passkeys/register/start",
            Some(&access),
            json!({"password": "wrong-password"}),
            StatusCode::FORBIDDEN,
            "invalid_credentials",
        ),
        (
            "POST",
            "/users/passkeys/register/finish",
            Some(&access),
            json!({"challenge_id": "A".repeat(43), "credential": {}}),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "DELETE",
            "/users/passkeys/0193a3f2-7c1e-7d4a-9b2f-5e8c1d0a4b6f",
            Some(&access),
            json!({}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "GET",
            "/users/mfa",
            None,
            Value::Null,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
    ];
    for (method, path, token, body, status, code) in cases {
        let body = (!body.is_null()).then_some(body);
        let res = app.call(method, path, token, body.as_ref(), &[]).await;
        assert_eq!(res.status, status, "{method} {path}: {}", res.body);
        assert_eq!(res.code(), code, "{method} {path}: {}", res.body);
        assert_eq!(
            res.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{method} {path}"
        );
    }
    let bad_id = app
        .call(
            "DELETE",
            "/users/passkeys/not-a-uuid",
            Some(&access),
            None,
            &[],
        )
        .await;
    assert!(bad_id.status.is_client_error(), "{}", bad_id.body);
    Ok(())
}

#[actix_web::test]
async fn a_passkey_ceremony_gives_browser_options_and_refuses_what_is_not_a_credential()
-> TestResult {
    let app = spawn_with(&[("APP_URL", "http://localhost:3000/app")]).await;
    let (access, _) = app.signed_in("pk@example.com", "pkuser").await;
    let start = app
        .call(
            "POST",
            "/users/passkeys/register/start",
            Some(&access),
            Some(&json!({"password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let options = &start.body["options"];
    assert_eq!(options["rp"]["id"], "localhost", "{options}");
    assert!(options["challenge"].is_string(), "{options}");
    assert!(options["user"]["id"].is_string(), "{options}");
    assert_eq!(options["user"]["name"], "pkuser");
    assert_eq!(
        options["authenticatorSelection"]["residentKey"], "required",
        "{options}"
    );

    let garbage = app
        .call(
            "POST",
            "/users/passkeys/register/finish",
            Some(&access),
            Some(&json!({"challenge_id": start.str("challenge_id"), "credential": {"id": 5}})),
            &[],
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{}", garbage.body);
    assert!(
        garbage.body["errors"]["credential"].is_array(),
        "{}",
        garbage.body
    );
    // The challenge was used by that attempt.
    let used = app
        .call(
            "POST",
            "/users/passkeys/register/finish",
            Some(&access),
            Some(&json!({"challenge_id": start.str("challenge_id"), "credential": {}})),
            &[],
        )
        .await;
    assert_eq!(used.code(), "invalid_token", "{}", used.body);

    // Passwordless: no body at all is fine.
    let sign_in = app
        .call("POST", "/auth/passkey/start", None, None, &[])
        .await;
    assert_eq!(sign_in.status, StatusCode::OK, "{}", sign_in.body);
    assert!(sign_in.body["options"]["challenge"].is_string());
    assert_eq!(sign_in.body["options"]["rpId"], "localhost");
    let refused = app
        .post(
            "/auth/passkey/finish",
            &json!({"challenge_id": sign_in.str("challenge_id"), "credential": "nope"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

    // With the mfa_token of an account without passkeys: a conflict.
    let (access2, _) = app.signed_in("pk2@example.com", "pkuser2").await;
    enable_totp(&app, &access2).await;
    let login = password_login(&app, "pkuser2").await;
    let no_passkey = app
        .post(
            "/auth/passkey/start",
            &json!({"mfa_token": login.str("mfa_token")}),
        )
        .await;
    assert_eq!(
        no_passkey.status,
        StatusCode::CONFLICT,
        "{}",
        no_passkey.body
    );
    Ok(())
}

#[actix_web::test]
async fn wrong_codes_lock_the_account_like_wrong_passwords() -> TestResult {
    let app = spawn_with(&[("LOCKOUT_THRESHOLD", "3")]).await;
    let (access, _) = app.signed_in("lock@example.com", "lock").await;
    let (secret, _) = enable_totp(&app, &access).await;
    let login = password_login(&app, "lock").await;
    let right = code(&secret, 0);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..2 {
        let res = app
            .post(
                "/auth/mfa/verify",
                &json!({"mfa_token": login.str("mfa_token"), "code": wrong}),
            )
            .await;
        assert_eq!(res.code(), "invalid_mfa_code", "{}", res.body);
    }
    let locked = app
        .post(
            "/auth/mfa/verify",
            &json!({"mfa_token": login.str("mfa_token"), "code": right}),
        )
        .await;
    assert_eq!(locked.status, StatusCode::LOCKED, "{}", locked.body);
    assert!(locked.header("retry-after").is_some());
    Ok(())
}

#[actix_web::test]
async fn mfa_verify_is_rate_limited_per_ip_with_headers() -> TestResult {
    let app = spawn_with(&[("RATE_LIMIT_IP", "3")]).await;
    let mut last = None;
    for _ in 0..5 {
        last = Some(
            app.post(
                "/auth/mfa/verify",
                &json!({"mfa_token": "A".repeat(43), "code": "123456"}),
            )
            .await,
        );
    }
    let last = last.expect("a response");
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS, "{}", last.body);
    assert!(last.header("retry-after").is_some());
    assert!(last.header("ratelimit-policy").is_some());
    Ok(())
}

#[actix_web::test]
async fn two_instances_share_mfa_tokens_and_used_codes() -> TestResult {
    if !on_redis() {
        eprintln!(
            "SKIPPED: the two-instance MFA test runs with AUTH_TEST_CACHE=redis (.ci/run does)"
        );
        return Ok(());
    }
    let backing = Backing::fresh().await;
    let a = spawn_on(&backing, &[]).await;
    let b = spawn_on(&backing, &[]).await;
    let (access, _) = a.signed_in("two@example.com", "two").await;
    let (secret, _) = enable_totp(&a, &access).await;
    // Password on A, code on B.
    let now_code = code(&secret, 0);
    let login = password_login(&a, "two").await;
    let verified = b
        .post(
            "/auth/mfa/verify",
            &json!({"mfa_token": login.str("mfa_token"), "code": now_code}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    // The same code on A, in another login: refused.
    let login = password_login(&b, "two").await;
    let replay = a
        .post(
            "/auth/mfa/verify",
            &json!({"mfa_token": login.str("mfa_token"), "code": now_code}),
        )
        .await;
    assert_eq!(replay.code(), "invalid_mfa_code", "{}", replay.body);
    Ok(())
}

#[actix_web::test]
async fn passkeys_are_off_with_a_conflict_when_app_url_is_an_ip_address() -> TestResult {
    let app = spawn_with(&[("APP_URL", "http://127.0.0.1:3000")]).await;
    let (access, _) = app.signed_in("ip@example.com", "ipuser").await;
    let start = app
        .call(
            "POST",
            "/users/passkeys/register/start",
            Some(&access),
            Some(&json!({"password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(start.status, StatusCode::CONFLICT, "{}", start.body);
    assert!(
        start.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("WEBAUTHN_RP_ID")),
        "{}",
        start.body
    );
    let sign_in = app
        .call("POST", "/auth/passkey/start", None, None, &[])
        .await;
    assert_eq!(sign_in.status, StatusCode::CONFLICT, "{}", sign_in.body);
    // TOTP still works.
    let (secret, _) = enable_totp(&app, &access).await;
    assert_eq!(secret.len(), 20);
    Ok(())
}
