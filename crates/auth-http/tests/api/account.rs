use auth_domain::model::MailKind;
use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestResult, spawn_app};

#[actix_web::test]
async fn the_profile_shows_every_field() -> TestResult {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("prof@example.com", "prof").await;
    let res = app.get_auth("/users/profile", &access).await;
    assert_eq!(res.status, StatusCode::OK);
    let user = &res.body["user"];
    for field in [
        "id",
        "username",
        "email",
        "name",
        "surname",
        "phone_number",
        "email_verified",
        "created_at",
        "updated_at",
        "last_login_at",
    ] {
        assert!(user.get(field).is_some(), "{field} missing");
    }
    assert_eq!(user["email_verified"], true);
    Ok(())
}

#[actix_web::test]
async fn a_profile_update_changes_only_what_is_sent() -> TestResult {
    let app = spawn_app().await;
    app.verified_user("other@example.com", "other").await;
    let (access, _) = app.signed_in("upd@example.com", "upd").await;
    let res = app
        .call(
            "PUT",
            "/users/profile",
            Some(&access),
            Some(&json!({"name": "Ada", "phone_number": "+1 555 010 0200"})),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["user"]["name"], "Ada");
    assert_eq!(res.body["user"]["surname"], "User");
    assert_eq!(res.body["user"]["phone_number"], "+15550100200");
    let cleared = app
        .call(
            "PUT",
            "/users/profile",
            Some(&access),
            Some(&json!({"phone_number": null})),
            &[],
        )
        .await;
    assert_eq!(
        cleared.body["user"]["phone_number"],
        serde_json::Value::Null
    );
    let taken = app
        .call(
            "PUT",
            "/users/profile",
            Some(&access),
            Some(&json!({"username": "OTHER"})),
            &[],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    let invalid = app
        .call(
            "PUT",
            "/users/profile",
            Some(&access),
            Some(&json!({"name": "", "phone_number": "abc"})),
            &[],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert!(
        invalid.body["errors"]["name"].is_array()
            && invalid.body["errors"]["phone_number"].is_array()
    );
    Ok(())
}

#[actix_web::test]
async fn a_new_email_takes_effect_only_once_verified() -> TestResult {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("old@example.com", "mover").await;
    let res = app
        .call(
            "PUT",
            "/users/profile",
            Some(&access),
            Some(&json!({"email": "new@example.com", "current_password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["email_change_pending"], true);
    assert_eq!(res.body["user"]["email"], "old@example.com", "not yet");
    let token = app
        .mailed_token("new@example.com", MailKind::ChangeEmail)
        .await;
    let verified = app
        .post("/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(verified.status, StatusCode::OK);
    let profile = app.get_auth("/users/profile", &access).await;
    assert_eq!(profile.body["user"]["email"], "new@example.com");
    assert!(
        app.mailbox()
            .await
            .last("old@example.com", MailKind::EmailChanged)
            .is_some(),
        "the old address is told"
    );
    let login = app
        .post(
            "/auth/login",
            &json!({"email": "new@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    Ok(())
}

#[actix_web::test]
async fn changing_the_password_ends_the_other_sessions_only() -> TestResult {
    let app = spawn_app().await;
    let (current, _) = app.signed_in("chg@example.com", "changer").await;
    let other = app.login("changer").await.str("access_token");
    let wrong = app
        .call("POST", "/users/change-password", Some(&current), Some(&json!({"current_password": "nope nope", "new_password": "Another-Str0ng-Passphrase"})), &[])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong.code(), "invalid_credentials");
    let weak = app
        .call(
            "POST",
            "/users/change-password",
            Some(&current),
            Some(&json!({"current_password": PASSWORD, "new_password": "changer123"})),
            &[],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    let ok = app
        .call(
            "POST",
            "/users/change-password",
            Some(&current),
            Some(
                &json!({"current_password": PASSWORD, "new_password": "Another-Str0ng-Passphrase"}),
            ),
            &[],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        app.get_auth("/auth/verify-token", &other).await.code(),
        "token_revoked"
    );
    assert_eq!(
        app.get_auth("/auth/verify-token", &current).await.status,
        StatusCode::OK
    );
    let old = app
        .post(
            "/auth/login",
            &json!({"username": "changer", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert!(
        app.mailbox()
            .await
            .last("chg@example.com", MailKind::PasswordChanged)
            .is_some()
    );
    Ok(())
}

#[actix_web::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_session() -> TestResult {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("reset@example.com", "resetter").await;
    let unknown = app
        .post(
            "/auth/forgot-password",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    let known = app
        .post(
            "/auth/forgot-password",
            &json!({"email": "reset@example.com"}),
        )
        .await;
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(known.body, unknown.body, "no enumeration");
    assert!(
        app.mailbox()
            .await
            .last("nobody@example.com", MailKind::ResetPassword)
            .is_none()
    );
    let token = app
        .mailed_token("reset@example.com", MailKind::ResetPassword)
        .await;
    let mail = app
        .mailbox()
        .await
        .last("reset@example.com", MailKind::ResetPassword)
        .ok_or("mail")?;
    assert!(
        mail.link
            .unwrap_or_default()
            .starts_with("http://app.test/reset-password?token=")
    );

    let weak = app
        .post(
            "/auth/reset-password",
            &json!({"token": token, "new_password": "resetter1"}),
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    let ok = app
        .post(
            "/auth/reset-password",
            &json!({"token": token, "new_password": "Brand-New-Passphrase-42"}),
        )
        .await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "the token survived the weak attempt: {}",
        ok.body
    );
    let again = app
        .post(
            "/auth/reset-password",
            &json!({"token": token, "new_password": "Brand-New-Passphrase-43"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.code(), "invalid_token");
    assert_eq!(
        app.get_auth("/auth/verify-token", &access).await.code(),
        "token_revoked"
    );
    let login = app
        .post(
            "/auth/login",
            &json!({"username": "resetter", "password": "Brand-New-Passphrase-42"}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    Ok(())
}

#[actix_web::test]
async fn deleting_the_account_needs_the_password_and_frees_email_and_username() -> TestResult {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("gone@example.com", "gone").await;
    let wrong = app
        .call(
            "DELETE",
            "/users/delete-account",
            Some(&access),
            Some(&json!({"password": "wrong wrong"})),
            &[],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let ok = app
        .call(
            "DELETE",
            "/users/delete-account",
            Some(&access),
            Some(&json!({"password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_auth("/auth/verify-token", &access).await.code(),
        "token_revoked"
    );
    let login = app
        .post(
            "/auth/login",
            &json!({"username": "gone", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    assert!(
        app.mailbox()
            .await
            .last("gone@example.com", MailKind::AccountDeleted)
            .is_some()
    );
    let again = app.register("gone@example.com", "gone").await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert!(
        app.mailbox()
            .await
            .last("gone@example.com", MailKind::RegistrationAttempt)
            .is_none(),
        "a real new account"
    );
    Ok(())
}

#[actix_web::test]
async fn sessions_are_listed_and_revoked_one_by_one() -> TestResult {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("sess@example.com", "sess").await;
    let second = app.login("sess").await.str("access_token");
    let (intruder, _) = app.signed_in("intr@example.com", "intruder").await;
    let list = app.get_auth("/users/sessions", &access).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["total_count"], 2);
    let sessions = list.body["active_sessions"].as_array().ok_or("array")?;
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    for field in [
        "id",
        "created_at",
        "last_used_at",
        "expires_at",
        "user_agent",
        "ip",
        "current",
    ] {
        assert!(sessions[0].get(field).is_some(), "{field}");
    }
    let other_id = sessions
        .iter()
        .find(|s| s["current"] == false)
        .and_then(|s| s["id"].as_str())
        .ok_or("other")?;
    let foreign = app
        .call(
            "DELETE",
            &format!("/users/sessions/{other_id}"),
            Some(&intruder),
            None,
            &[],
        )
        .await;
    assert_eq!(
        foreign.status,
        StatusCode::NOT_FOUND,
        "another user's session is not found"
    );
    let bad = app
        .call(
            "DELETE",
            "/users/sessions/not-a-uuid",
            Some(&access),
            None,
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
    let ok = app
        .call(
            "DELETE",
            &format!("/users/sessions/{other_id}"),
            Some(&access),
            None,
            &[],
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_auth("/auth/verify-token", &second).await.code(),
        "token_revoked"
    );
    assert_eq!(
        app.get_auth("/users/sessions", &access).await.body["total_count"],
        1
    );
    Ok(())
}

#[actix_web::test]
async fn password_guesses_with_a_stolen_access_token_are_rate_limited() -> TestResult {
    let app = crate::helpers::spawn_with(&[("RATE_LIMIT_IDENTIFIER", "2")]).await;
    let (access, _) = app.signed_in("guess@example.com", "guessed").await;
    let body =
        json!({"current_password": "guess guess", "new_password": "Another-Str0ng-Passphrase"});
    for _ in 0..2 {
        let res = app
            .call(
                "POST",
                "/users/change-password",
                Some(&access),
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
    }
    let limited = app
        .call(
            "DELETE",
            "/users/delete-account",
            Some(&access),
            Some(&json!({"password": "guess guess"})),
            &[],
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.header("retry-after").is_some());
    Ok(())
}
