use auth_domain::model::MailKind;
use awc::http::StatusCode;
use serde_json::json;

use crate::helpers::{TestResult, registration, spawn_app};

#[actix_web::test]
async fn the_seed_quick_start_registers_and_asks_for_verification() -> TestResult {
    let app = spawn_app().await;
    let res = app
        .post(
            "/auth/register",
            &json!({"email":"test@example.com","username":"testuser","password":"SecurePass123!","name":"Test","surname":"User"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["email_verification_required"], true);
    assert!(res.body["message"].is_string());
    let user = &res.body["user"];
    for (field, value) in [
        ("username", "testuser"),
        ("email", "test@example.com"),
        ("name", "Test"),
        ("surname", "User"),
    ] {
        assert_eq!(user[field], value, "{field}");
    }
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap_or_default()).is_ok());
    let mail = app
        .mailbox()
        .await
        .last("test@example.com", MailKind::VerifyEmail)
        .ok_or("no verification mail")?;
    assert!(
        mail.link
            .as_deref()
            .unwrap_or_default()
            .starts_with("http://app.test/verify-email?token=")
    );
    Ok(())
}

#[actix_web::test]
async fn a_taken_email_gets_the_same_answer_and_the_owner_is_told() -> TestResult {
    let app = spawn_app().await;
    let first = app.register("owner@example.com", "owner").await;
    let second = app.register("Owner@Example.com", "someoneelse").await;
    assert_eq!(second.status, first.status);
    assert_eq!(
        second
            .body
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        first
            .body
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
    );
    assert_ne!(
        second.body["user"]["id"], first.body["user"]["id"],
        "the id is not the owner's (it is the pending registration's own)"
    );
    assert!(
        app.mailbox()
            .await
            .last("owner@example.com", MailKind::RegistrationAttempt)
            .is_some()
    );
    assert_eq!(
        app.mailbox()
            .await
            .to("owner@example.com", MailKind::VerifyEmail)
            .len(),
        1,
        "no second verification link"
    );
    Ok(())
}

#[actix_web::test]
async fn a_taken_username_is_a_conflict_whatever_its_case() -> TestResult {
    let app = spawn_app().await;
    app.register("a@example.com", "taken").await;
    let res = app.register("b@example.com", "TAKEN").await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.code(), "conflict");
    Ok(())
}

#[actix_web::test]
async fn invalid_fields_are_listed_one_by_one() -> TestResult {
    let app = spawn_app().await;
    let res = app
        .post("/auth/register", &json!({"email": "not-an-email", "username": "x", "password": "short", "surname": "User", "phone_number": "12"}))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code(), "validation_failed");
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    for field in ["email", "username", "password", "name", "phone_number"] {
        assert!(
            res.body["errors"][field].is_array(),
            "{field} missing from {}",
            res.body
        );
    }
    assert!(res.body["errors"].get("surname").is_none());
    assert!(
        res.body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("email"),
        "error names the fields"
    );
    Ok(())
}

#[actix_web::test]
async fn a_weak_password_is_refused_with_a_reason() -> TestResult {
    let app = spawn_app().await;
    let mut body = registration("weak@example.com", "weakling");
    body["password"] = json!("password123");
    let res = app.post("/auth/register", &body).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body["errors"]["password"][0]
            .as_str()
            .unwrap_or_default()
            .contains("weak")
    );
    Ok(())
}

#[actix_web::test]
async fn a_verification_token_works_once() -> TestResult {
    let app = spawn_app().await;
    app.register("once@example.com", "once").await;
    let token = app
        .mailed_token("once@example.com", MailKind::VerifyEmail)
        .await;
    let ok = app
        .post("/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let again = app
        .post("/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.code(), "invalid_token");
    let garbage = app
        .post("/auth/verify-email", &json!({ "token": "nope" }))
        .await;
    assert_eq!(garbage.code(), "invalid_token");
    Ok(())
}

#[actix_web::test]
async fn resend_verification_answers_202_whoever_asks() -> TestResult {
    let app = spawn_app().await;
    app.register("pending@example.com", "pending").await;
    let known = app
        .post(
            "/auth/resend-verification",
            &json!({"email": "pending@example.com"}),
        )
        .await;
    let unknown = app
        .post(
            "/auth/resend-verification",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(known.body, unknown.body);
    // One mail of a kind per address per minute: the registration mail was just sent.
    assert_eq!(
        app.mailbox()
            .await
            .to("pending@example.com", MailKind::VerifyEmail)
            .len(),
        1
    );
    Ok(())
}
