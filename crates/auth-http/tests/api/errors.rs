use awc::http::StatusCode;

use crate::helpers::{TestResult, spawn_app, spawn_with};

fn is_problem(res: &crate::helpers::Response) -> bool {
    res.header("content-type").as_deref() == Some("application/problem+json")
        && ["type", "title", "status", "detail", "code", "error"]
            .iter()
            .all(|k| res.body.get(k).is_some())
}

#[actix_web::test]
async fn malformed_json_is_a_400_problem() -> TestResult {
    let app = spawn_app().await;
    let res = app
        .raw(
            "POST",
            "/auth/login",
            "application/json",
            b"{\"username\": ".to_vec(),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(is_problem(&res), "{}", res.body);
    assert_eq!(res.code(), "validation_failed");
    assert!(res.body["errors"]["body"].is_array());
    let wrong_type = app
        .raw(
            "POST",
            "/auth/login",
            "application/json",
            br#"{"username": 42, "password": "x"}"#.to_vec(),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong_type.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid type")
    );
    Ok(())
}

/// Found by schemathesis: serde fills a struct from a JSON array field by field, so
/// `PUT /users/profile` took `[null, null]` as an empty change (200) and `POST
/// /auth/register` would take its five fields positionally.
#[actix_web::test]
async fn a_body_that_is_not_a_json_object_is_a_400_problem() -> TestResult {
    let app = spawn_app().await;
    let positional = br#"["arr@example.com", "arruser", "SecurePass123!", "Arr", "Ay"]"#;
    for (path, body) in [
        ("/auth/register", positional.to_vec()),
        (
            "/auth/login",
            br#"["arruser", null, "SecurePass123!"]"#.to_vec(),
        ),
        ("/auth/forgot-password", br#""arr@example.com""#.to_vec()),
        ("/auth/refresh-token", b"42".to_vec()),
    ] {
        let res = app.raw("POST", path, "application/json", body).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{path}: {}", res.body);
        assert!(is_problem(&res), "{path}: {}", res.body);
        assert!(
            res.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("must be a JSON object"),
            "{path}: {}",
            res.body
        );
    }
    let (access, _) = app.signed_in("arr@example.com", "arruser").await;
    let res = app
        .call(
            "PUT",
            "/users/profile",
            Some(&access),
            Some(&serde_json::json!([null, null])),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let profile = app.get_auth("/users/profile", &access).await;
    assert_eq!(profile.body["user"]["username"], "arruser", "unchanged");
    let logout = app
        .call(
            "POST",
            "/auth/logout",
            Some(&access),
            Some(&serde_json::json!([true])),
            &[],
        )
        .await;
    assert_eq!(logout.status, StatusCode::BAD_REQUEST, "{}", logout.body);
    assert_eq!(
        app.get_auth("/auth/verify-token", &access).await.status,
        StatusCode::OK,
        "a refused logout ends nothing"
    );
    Ok(())
}

#[actix_web::test]
async fn a_wrong_content_type_is_a_415_problem() -> TestResult {
    let app = spawn_app().await;
    let res = app
        .raw("POST", "/auth/register", "text/plain", b"email=a".to_vec())
        .await;
    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(is_problem(&res));
    assert_eq!(res.code(), "unsupported_media_type");
    Ok(())
}

#[actix_web::test]
async fn an_oversized_body_is_a_413_problem() -> TestResult {
    let app = spawn_with(&[("MAX_BODY_BYTES", "2048")]).await;
    let big = format!("{{\"email\": \"{}\"}}", "a".repeat(4096));
    let res = app
        .raw(
            "POST",
            "/auth/forgot-password",
            "application/json",
            big.into_bytes(),
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(is_problem(&res));
    assert_eq!(res.code(), "payload_too_large");
    let logout = app
        .raw("POST", "/auth/logout", "application/json", vec![b' '; 4096])
        .await;
    assert_eq!(
        logout.status,
        StatusCode::UNAUTHORIZED,
        "authentication is checked first"
    );
    Ok(())
}

#[actix_web::test]
async fn an_unknown_route_is_a_404_problem_not_html() -> TestResult {
    let app = spawn_app().await;
    let res = app.call("GET", "/does/not/exist", None, None, &[]).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(is_problem(&res));
    assert_eq!(res.code(), "not_found");
    Ok(())
}

#[actix_web::test]
async fn a_wrong_method_is_a_405_problem_with_allow() -> TestResult {
    let app = spawn_app().await;
    let res = app.call("GET", "/auth/login", None, None, &[]).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_problem(&res));
    assert_eq!(res.header("allow").as_deref(), Some("POST"));
    Ok(())
}

#[actix_web::test]
async fn a_missing_body_field_is_reported_per_field() -> TestResult {
    let app = spawn_app().await;
    let res = app
        .post("/auth/login", &serde_json::json!({"username": "someone"}))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.body["errors"]["password"].is_array(), "{}", res.body);
    let empty = app
        .post("/auth/reset-password", &serde_json::json!({}))
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(
        empty.body["errors"]["token"].is_array() && empty.body["errors"]["new_password"].is_array()
    );
    Ok(())
}
