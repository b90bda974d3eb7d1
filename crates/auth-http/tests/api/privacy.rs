use auth_domain::model::MailKind;
use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{Backing, PASSWORD, TestResult, captured_logs, spawn_on};

#[actix_web::test]
async fn data_and_revocations_survive_a_restart() -> TestResult {
    let backing = Backing::fresh().await;
    let first = spawn_on(&backing, &[]).await;
    let (kept, _) = first.signed_in("keep@example.com", "keeper").await;
    let (revoked, _) = {
        let res = first.login("keeper").await;
        (res.str("access_token"), res.str("refresh_token"))
    };
    first
        .call("POST", "/auth/logout", Some(&revoked), None, &[])
        .await;
    first.stop().await;

    let second = spawn_on(&backing, &[]).await;
    let login = second
        .post(
            "/auth/login",
            &json!({"username": "keeper", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        login.status,
        StatusCode::OK,
        "users survive: {}",
        login.body
    );
    assert_eq!(
        second.get_auth("/auth/verify-token", &kept).await.status,
        StatusCode::OK,
        "secrets survive, so tokens do"
    );
    assert_eq!(
        second.get_auth("/auth/verify-token", &revoked).await.code(),
        "token_revoked",
        "a logout survives too"
    );
    Ok(())
}

/// After a full flow, neither the database file nor the logs hold an email, phone,
/// name, password or token in plain text. (The development mailer's own lines are the one
/// documented exception; this test uses the in-memory mailbox, and skips `auth_mail`.)
#[actix_web::test]
async fn no_personal_data_password_or_token_is_stored_or_logged_in_plain_text() -> TestResult {
    let backing = Backing::fresh().await;
    let app = spawn_on(&backing, &[]).await;
    let email = "leak.check.person@example.org";
    let phone = "+4915123456789";
    let password = "Leak-Check-Passphrase-77";
    let new_password = "Second-Leak-Passphrase-88";
    let name = "Zebedeewhisker";
    let res = app
        .post("/auth/register", &json!({"email": email, "username": "leakcheck", "password": password, "name": name, "surname": "Quillfeatherton", "phone_number": phone}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let verify = app.mailed_token(email, MailKind::VerifyEmail).await;
    app.post("/auth/verify-email", &json!({ "token": verify }))
        .await;
    let login = app
        .post(
            "/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await;
    let access = login.str("access_token");
    let refresh = login.str("refresh_token");
    let device = login.str("device_token");
    let rotated = app
        .post("/auth/refresh-token", &json!({"refresh_token": refresh}))
        .await
        .str("refresh_token");
    app.post(
        "/auth/login",
        &json!({"email": email, "password": "a wrong password"}),
    )
    .await;
    app.post("/auth/forgot-password", &json!({ "email": email }))
        .await;
    let reset = app.mailed_token(email, MailKind::ResetPassword).await;
    app.post(
        "/auth/reset-password",
        &json!({"token": reset, "new_password": new_password}),
    )
    .await;
    let second = app
        .post(
            "/auth/login",
            &json!({"email": email, "password": new_password}),
        )
        .await
        .str("access_token");
    app.get_auth("/users/sessions", &second).await;
    // A mail left in the outbox (its worker stopped): its payload holds an address and a
    // link with a token, and must be sealed like everything else.
    app.stop_worker().await;
    let new_email = "leak.check.newaddress@example.org";
    let changed = app
        .call(
            "PUT",
            "/users/profile",
            Some(&second),
            Some(&json!({ "email": new_email, "current_password": new_password })),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        app.state.service.outbox_stats().await?.queued,
        2,
        "the change-email mail and the notice to the current address wait in the outbox"
    );
    app.call("POST", "/auth/logout", Some(&second), None, &[])
        .await;
    app.stop().await;

    let secrets = [
        ("email", email.to_owned()),
        ("email local part", "leak.check.person".to_owned()),
        ("phone", phone.to_owned()),
        ("phone digits", "15123456789".to_owned()),
        ("name", name.to_owned()),
        ("surname", "Quillfeatherton".to_owned()),
        ("password", password.to_owned()),
        ("new password", new_password.to_owned()),
        ("access token", access.clone()),
        (
            "access token signature",
            access.rsplit('.').next().unwrap_or_default().to_owned(),
        ),
        ("refresh token", refresh),
        ("rotated refresh token", rotated),
        ("device token", device),
        ("verification token", verify),
        ("reset token", reset),
        ("queued mail's address", new_email.to_owned()),
        ("queued mail's link", "verify-email?token=".to_owned()),
        ("any mailed link", "http://app.test/".to_owned()),
    ];
    let stored = stored_bytes(&backing)?;
    assert!(stored.len() > 4096, "the database was read");
    assert!(
        stored
            .windows(b"leakcheck".len())
            .any(|w| w == b"leakcheck"),
        "control: the username is stored in plain text"
    );
    let logs = {
        let raw = captured_logs();
        let raw = raw.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&raw)
            .lines()
            .filter(|line| !line.contains("auth_mail"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        logs.contains("/auth/login"),
        "control: the requests were logged"
    );
    for (what, value) in &secrets {
        assert!(!value.is_empty(), "{what} was captured");
        let needle = value.as_bytes();
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "{what} found in the database"
        );
        // pg_dump shows binary columns as hex: the value must not hide there either.
        let hex: String = needle.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !stored.windows(hex.len()).any(|w| w == hex.as_bytes()),
            "{what} found hex-encoded in the database"
        );
        assert!(!logs.contains(value.as_str()), "{what} found in the logs");
        assert!(
            !logs.to_lowercase().contains(&value.to_lowercase()),
            "{what} found in the logs (any case)"
        );
    }
    Ok(())
}

/// Everything the storage holds, as bytes: the SQLite file and its WAL, or a `pg_dump` of
/// the PostgreSQL database.
fn stored_bytes(backing: &Backing) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    if let Some(db) = &backing.postgres {
        let out = std::process::Command::new("pg_dump")
            .args(["--data-only", "--no-owner", db.url()])
            .output()?;
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return Ok(out.stdout);
    }
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(backing.data_dir())? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("auth.db"))
        {
            stored.extend(std::fs::read(&path)?);
        }
    }
    Ok(stored)
}
