use awc::http::StatusCode;

use crate::helpers::{TestResult, spawn_app, spawn_with};

#[actix_web::test]
async fn health_reports_each_dependency() -> TestResult {
    let app = spawn_app().await;
    let health = app.call("GET", "/health", None, None, &[]).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    for dep in ["database", "cache", "mailer"] {
        assert_eq!(health.body["checks"][dep]["status"], "ok", "{dep}");
    }
    assert_eq!(
        app.call("GET", "/health/live", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.call("GET", "/health/ready", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    Ok(())
}

#[actix_web::test]
async fn metrics_are_prometheus_text_by_route_and_status() -> TestResult {
    let app = spawn_app().await;
    app.call("GET", "/health/live", None, None, &[]).await;
    let res = app.call("GET", "/metrics", None, None, &[]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.body.as_str().unwrap_or_default();
    assert!(text.contains("http_requests_total{"), "{text}");
    assert!(text.contains("route=\"/health/live\""));
    assert!(text.contains("http_request_duration_seconds_bucket"));
    Ok(())
}

#[actix_web::test]
async fn invented_methods_are_refused_and_counted_under_one_label() -> TestResult {
    let app = spawn_app().await;
    for method in ["BREWCOFFEE", "XQZ-PROPFIND-7"] {
        let res = app.call(method, "/health/live", None, None, &[]).await;
        assert!(res.status.is_client_error(), "{method}: {}", res.status);
    }
    let text = app.call("GET", "/metrics", None, None, &[]).await.body;
    let text = text.as_str().unwrap_or_default();
    // Each invented method would otherwise be a series kept for the life of the process.
    assert!(
        !text.contains("BREWCOFFEE") && !text.contains("XQZ-PROPFIND-7"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains("method=\"OTHER\"")
            && l.contains("route=\"/health/live\"")),
        "{text}"
    );
    Ok(())
}

#[actix_web::test]
async fn the_openapi_document_describes_every_endpoint_and_docs_are_served() -> TestResult {
    let app = spawn_app().await;
    let doc = app.call("GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(
        doc.body["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1")
    );
    let paths = &doc.body["paths"];
    let expected = [
        ("/auth/register", "post"),
        ("/auth/verify-email", "post"),
        ("/auth/resend-verification", "post"),
        ("/auth/login", "post"),
        ("/auth/refresh-token", "post"),
        ("/auth/logout", "post"),
        ("/auth/forgot-password", "post"),
        ("/auth/reset-password", "post"),
        ("/auth/verify-token", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/users/profile", "get"),
        ("/users/profile", "put"),
        ("/users/change-password", "post"),
        ("/users/delete-account", "delete"),
        ("/users/sessions", "get"),
        ("/users/sessions/{id}", "delete"),
        ("/health", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
    ];
    for (path, method) in expected {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path} missing");
        if operation["requestBody"].is_object() {
            for status in ["400", "413", "415"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} does not document its {status}"
                );
            }
        }
    }
    // Request fields the service requires are required in the document too.
    let register = &doc.body["components"]["schemas"]["RegisterRequest"];
    let required: Vec<&str> = register["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    for field in ["email", "username", "password", "name", "surname"] {
        assert!(
            required.contains(&field),
            "{field} not required: {register}"
        );
    }
    assert_eq!(register["properties"]["password"]["minLength"], 8);
    assert!(doc.body["components"]["schemas"]["Problem"].is_object());
    let docs = app.call("GET", "/docs/", None, None, &[]).await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(
        docs.body.as_str().unwrap_or_default().contains("swagger"),
        "the docs page is served locally"
    );
    Ok(())
}

#[actix_web::test]
async fn every_response_carries_security_headers() -> TestResult {
    let app = spawn_app().await;
    for path in ["/health", "/does-not-exist"] {
        let res = app.call("GET", path, None, None, &[]).await;
        assert_eq!(
            res.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(res.header("x-frame-options").as_deref(), Some("DENY"));
        assert!(res.header("content-security-policy").is_some());
        assert!(res.header("strict-transport-security").is_some());
        assert!(res.header("x-request-id").is_some());
    }
    let echoed = app
        .call(
            "GET",
            "/health/live",
            None,
            None,
            &[("X-Request-Id", "trace-123")],
        )
        .await;
    assert_eq!(echoed.header("x-request-id").as_deref(), Some("trace-123"));
    Ok(())
}

#[actix_web::test]
async fn cors_answers_only_the_configured_origins() -> TestResult {
    let app = spawn_with(&[(
        "CORS_ORIGINS",
        "https://app.example.com, https://admin.example.com",
    )])
    .await;
    let allowed = app
        .call(
            "OPTIONS",
            "/auth/login",
            None,
            None,
            &[
                ("Origin", "https://app.example.com"),
                ("Access-Control-Request-Method", "POST"),
            ],
        )
        .await;
    assert_eq!(
        allowed.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    let refused = app
        .call(
            "OPTIONS",
            "/auth/login",
            None,
            None,
            &[
                ("Origin", "https://evil.example.com"),
                ("Access-Control-Request-Method", "POST"),
            ],
        )
        .await;
    assert!(refused.header("access-control-allow-origin").is_none());
    assert!(refused.status.is_client_error(), "{}", refused.status);
    assert_eq!(
        refused.header("content-type").as_deref(),
        Some("application/problem+json"),
        "a refusal is a problem too"
    );
    Ok(())
}

#[actix_web::test]
async fn cors_origins_star_lets_any_origin_call_and_preflight_without_credentials() -> TestResult {
    let app = spawn_with(&[("CORS_ORIGINS", "*")]).await;
    let simple = app
        .call(
            "GET",
            "/health/live",
            None,
            None,
            &[("Origin", "https://anyone.example.net")],
        )
        .await;
    assert_eq!(simple.status, StatusCode::OK);
    assert_eq!(
        simple.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(
        simple.header("access-control-allow-credentials").is_none(),
        "a wildcard never comes with credentials"
    );

    let preflight = app
        .call(
            "OPTIONS",
            "/auth/login",
            None,
            None,
            &[
                ("Origin", "http://localhost:5173"),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
        )
        .await;
    assert_eq!(preflight.status, StatusCode::OK);
    assert_eq!(
        preflight.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(
        preflight
            .header("access-control-allow-credentials")
            .is_none()
    );
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap_or_default()
            .contains("POST"),
        "{:?}",
        preflight.headers
    );
    Ok(())
}
