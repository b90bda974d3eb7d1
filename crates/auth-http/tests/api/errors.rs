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
