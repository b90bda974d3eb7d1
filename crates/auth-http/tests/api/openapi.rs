//! The served OpenAPI document, as client generators read it (issue 16): each defect a
//! generated client tripped on has a test here; scripts/clients.sh generates the real
//! clients and walks the flow with them.

use auth_domain::model::MailKind;
use awc::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestResult, registration, spawn_app, spawn_with};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every (path, method, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, &'static str, Value)> {
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if item[method].is_object() {
                    out.push((path.clone(), method, item[method].clone()));
                }
            }
        }
    }
    out
}

/// The component a `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(name) => {
            &doc["components"]["schemas"][name.trim_start_matches("#/components/schemas/")]
        }
        None => schema,
    }
}

async fn document(vars: &[(&str, &str)]) -> Value {
    let app = spawn_with(vars).await;
    let doc = app.get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    doc.body
}

#[actix_web::test]
async fn request_bodies_carry_no_defaults_so_required_fields_stay_required() -> TestResult {
    let doc = document(&[]).await;
    let mut bodies = 0;
    for (path, method, op) in operations(&doc) {
        let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") else {
            continue;
        };
        bodies += 1;
        let schema = resolve(&doc, schema);
        assert!(schema["oneOf"].is_null(), "{method} {path}: {schema}");
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(
                property.get("default").is_none(),
                "{method} {path}: {field} has a default ({property}); generated models would accept it missing"
            );
        }
    }
    assert_eq!(bodies, 20, "every operation with a JSON body was checked");
    Ok(())
}

#[actix_web::test]
async fn optional_means_absent_or_null_and_a_name_only_update_keeps_the_phone() -> TestResult {
    let doc = document(&[]).await;
    let update = &doc["components"]["schemas"]["ProfileUpdateRequest"];
    assert!(
        update["required"].as_array().is_none_or(Vec::is_empty),
        "{update}"
    );
    let phone = &update["properties"]["phone_number"];
    assert_eq!(phone["type"], json!(["string", "null"]), "{phone}");
    let described = phone["description"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        described.contains("absent") && described.contains("null"),
        "{described}"
    );

    // What a generated client sends for a name-only update: the name, nothing else.
    let app = spawn_app().await;
    let (access, _) = app.signed_in("keep@example.com", "keepphone").await;
    let set = json!({"phone_number": "+15550100200"});
    let res = app
        .call("PUT", "/users/profile", Some(&access), Some(&set), &[])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let renamed = json!({"name": "Renamed"});
    let res = app
        .call("PUT", "/users/profile", Some(&access), Some(&renamed), &[])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(
        res.body["user"]["phone_number"], "+15550100200",
        "{}",
        res.body
    );
    assert_eq!(res.body["user"]["name"], "Renamed");
    Ok(())
}

#[actix_web::test]
async fn the_logout_body_is_optional_never_null_and_a_bare_logout_works() -> TestResult {
    let doc = document(&[]).await;
    let body = &doc["paths"]["/auth/logout"]["post"]["requestBody"];
    assert_eq!(body["required"], false, "{body}");
    let schema = &body["content"]["application/json"]["schema"];
    assert_eq!(
        schema["$ref"], "#/components/schemas/LogoutRequest",
        "{schema}"
    );

    let app = spawn_app().await;
    let (access, _) = app.signed_in("bare@example.com", "barelogout").await;
    let res = app
        .call("POST", "/auth/logout", Some(&access), None, &[])
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    Ok(())
}

#[actix_web::test]
async fn the_jwks_is_typed_as_rfc_7517_names_it() -> TestResult {
    let doc = document(&[]).await;
    let ok = &doc["paths"]["/.well-known/jwks.json"]["get"]["responses"]["200"];
    let schema = resolve(&doc, &ok["content"]["application/json"]["schema"]);
    assert_eq!(schema["required"], json!(["keys"]), "{schema}");
    let key = resolve(&doc, &schema["properties"]["keys"]["items"]);
    for member in ["kty", "use", "alg", "kid", "n", "e", "crv", "x", "y"] {
        assert!(key["properties"][member].is_object(), "{member}: {key}");
    }
    let kty = resolve(&doc, &key["properties"]["kty"]);
    assert_eq!(kty["enum"], json!(["RSA", "EC", "OKP"]), "{kty}");
    Ok(())
}

#[actix_web::test]
async fn fixed_sets_are_enums_and_every_schema_has_an_api_name() -> TestResult {
    let doc = document(&[]).await;
    let schemas = doc["components"]["schemas"]
        .as_object()
        .ok_or("no schemas")?;
    for name in schemas.keys() {
        assert!(
            !["BTreeMap", "HashMap", "Object", "Value"].contains(&name.as_str()),
            "a schema named {name}"
        );
    }
    let problem = &schemas["Problem"];
    let code = resolve(&doc, &problem["properties"]["code"]);
    let codes = code["enum"].as_array().ok_or("code is not an enum")?;
    assert!(codes.contains(&json!("validation_failed")) && codes.contains(&json!("token_reused")));
    assert!(problem["properties"]["errors"]["additionalProperties"].is_object());
    for (schema, field, value) in [
        ("LoginResponse", "token_type", "Bearer"),
        ("TokenResponse", "token_type", "Bearer"),
        ("HealthResponse", "status", "degraded"),
        ("Check", "status", "warn"),
        ("LiveResponse", "status", "ok"),
    ] {
        let set = resolve(&doc, &schemas[schema]["properties"][field]);
        let values = set["enum"]
            .as_array()
            .ok_or(format!("{schema}.{field} is free text"))?;
        assert!(values.contains(&json!(value)), "{schema}.{field}: {set}");
    }
    Ok(())
}

#[actix_web::test]
async fn headers_are_documented_on_the_answers_that_carry_them() -> TestResult {
    let doc = document(&[]).await;
    for (path, method, op) in operations(&doc) {
        let secured = op["security"].is_array();
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            let headers = &response["headers"];
            let has = |name: &str| headers[name].is_object();
            let at = format!("{method} {path} {status}");
            assert!(has("X-Request-Id") && has("Cache-Control"), "{at}");
            if status == "429" {
                for name in ["Retry-After", "RateLimit", "RateLimit-Policy"] {
                    assert!(has(name), "{at}: {name}");
                }
            }
            if status == "423" || status == "503" {
                assert!(has("Retry-After"), "{at}");
            }
            if status == "401" && secured {
                assert!(has("WWW-Authenticate"), "{at}");
            }
            if path.starts_with("/auth/") && path != "/auth/verify-token" && status.starts_with('2')
            {
                assert!(has("RateLimit") && has("RateLimit-Policy"), "{at}");
            }
        }
    }
    // As served: a counted answer carries what the document says.
    let app = spawn_app().await;
    let res = app
        .post(
            "/auth/register",
            &registration("hdr@example.com", "headers"),
        )
        .await;
    for name in [
        "ratelimit",
        "ratelimit-policy",
        "x-request-id",
        "cache-control",
    ] {
        assert!(res.header(name).is_some(), "{name} not served");
    }
    Ok(())
}

#[actix_web::test]
async fn every_operation_has_a_summary_a_description_and_bodies_have_real_examples() -> TestResult {
    let doc = document(&[]).await;
    for (path, method, op) in operations(&doc) {
        for field in ["summary", "description"] {
            let text = op[field].as_str().unwrap_or_default();
            assert!(!text.trim().is_empty(), "{method} {path} has no {field}");
        }
    }
    let register = &doc["components"]["schemas"]["RegisterRequest"]["properties"];
    assert_eq!(register["email"]["example"], "test@example.com");
    assert_eq!(register["password"]["example"], PASSWORD);
    let login = &doc["components"]["schemas"]["LoginRequest"]["properties"];
    assert_eq!(login["username"]["example"], "testuser");
    assert_eq!(login["password"]["example"], PASSWORD);
    Ok(())
}

#[actix_web::test]
async fn servers_name_public_url_or_the_origin_the_document_came_from() -> TestResult {
    let configured = document(&[("PUBLIC_URL", "https://auth.example.com/")]).await;
    assert_eq!(configured["servers"][0]["url"], "https://auth.example.com");
    let default = document(&[]).await;
    assert_eq!(default["servers"][0]["url"], "/");
    Ok(())
}

#[actix_web::test]
async fn the_metrics_content_type_is_documented_as_served() -> TestResult {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.body;
    let served = app.get("/metrics").await;
    let content_type = served.header("content-type").unwrap_or_default();
    let documented = &doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert!(
        documented[content_type.as_str()].is_object(),
        "{content_type} vs {documented}"
    );
    Ok(())
}

#[actix_web::test]
async fn swagger_try_it_out_works_on_the_first_click_for_register_and_login() -> TestResult {
    // Swagger UI fills "Try it out" with the schema's example: each must be a request the
    // service accepts.
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.body;
    let example = |name: &str| doc["components"]["schemas"][name]["example"].clone();
    let register = example("RegisterRequest");
    let res = app.post("/auth/register", &register).await;
    assert_eq!(res.status, StatusCode::CREATED, "{register} → {}", res.body);
    let email = register["email"].as_str().unwrap_or_default().to_owned();
    let token = app.mailed_token(&email, MailKind::VerifyEmail).await;
    let res = app
        .post("/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let login = example("LoginRequest");
    let res = app.post("/auth/login", &login).await;
    assert_eq!(res.status, StatusCode::OK, "{login} → {}", res.body);
    for (path, method, op) in operations(&doc) {
        if let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") {
            let body = resolve(&doc, schema);
            assert!(
                body["example"].is_object(),
                "{method} {path}: no example body"
            );
        }
    }
    Ok(())
}
