use awc::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::KeyPair;
use josekit::jws::{HS256, JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};

use crate::helpers::{TestResult, spawn_app, spawn_with};

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default()).unwrap_or(Value::Null)
}

fn sign_hs256(secret: &[u8], header: &Value, payload: &Value) -> String {
    let mut h = JwsHeader::new();
    h.set_token_type(header["typ"].as_str().unwrap_or("at+jwt"));
    h.set_key_id(header["kid"].as_str().unwrap_or_default());
    let p = JwtPayload::from_map(payload.as_object().cloned().unwrap_or_default()).unwrap();
    jwt::encode_with_signer(&p, &h, &HS256.signer_from_bytes(secret).unwrap()).unwrap()
}

#[actix_web::test]
async fn refresh_rotates_and_the_old_token_dies() -> TestResult {
    let app = spawn_with(&[("REFRESH_REUSE_INTERVAL", "0")]).await;
    let (_, refresh) = app.signed_in("rot@example.com", "rot").await;
    let first = app
        .post("/auth/refresh-token", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let next = first.str("refresh_token");
    assert_ne!(next, refresh, "a new refresh token");
    assert!(first.body["access_token"].is_string());
    assert_eq!(first.header("cache-control").as_deref(), Some("no-store"));

    let replay = app
        .post("/auth/refresh-token", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.code(), "token_reused");
    let after_theft = app
        .post("/auth/refresh-token", &json!({"refresh_token": next}))
        .await;
    assert_eq!(
        after_theft.status,
        StatusCode::UNAUTHORIZED,
        "the whole family is revoked"
    );
    assert_eq!(after_theft.code(), "token_revoked");
    let access = first.str("access_token");
    assert_eq!(
        app.get_auth("/auth/verify-token", &access).await.code(),
        "token_revoked"
    );
    Ok(())
}

#[actix_web::test]
async fn two_tabs_refreshing_at_once_get_the_same_successor() -> TestResult {
    let app = spawn_app().await;
    let (_, refresh) = app.signed_in("tabs@example.com", "tabs").await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let url = app.url("/auth/refresh-token");
        let body = json!({"refresh_token": refresh});
        handles.push(actix_web::rt::spawn(async move {
            let mut res = client
                .post(url)
                .send_json(&body)
                .await
                .map_err(|e| e.to_string())?;
            let value: Value = res.json().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((
                res.status(),
                value["refresh_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ))
        }));
    }
    let mut successors = std::collections::HashSet::new();
    for handle in handles {
        let (status, token) = handle.await??;
        assert_eq!(status, StatusCode::OK);
        successors.insert(token);
    }
    assert_eq!(successors.len(), 1, "one successor, never a second branch");
    let successor = successors.into_iter().next().unwrap_or_default();
    let next = app
        .post("/auth/refresh-token", &json!({"refresh_token": successor}))
        .await;
    assert_eq!(next.status, StatusCode::OK, "the successor works");
    Ok(())
}

#[actix_web::test]
async fn an_unknown_or_malformed_refresh_token_is_invalid() -> TestResult {
    let app = spawn_app().await;
    for token in ["", "abc", &URL_SAFE_NO_PAD.encode([0u8; 32])] {
        let res = app
            .post("/auth/refresh-token", &json!({"refresh_token": token}))
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(res.code(), "invalid_token");
    }
    Ok(())
}

#[actix_web::test]
async fn logout_revokes_the_access_token_and_the_session() -> TestResult {
    let app = spawn_app().await;
    let (access, refresh) = app.signed_in("out@example.com", "out").await;
    let ok = app.get_auth("/auth/verify-token", &access).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["valid"], true);
    assert_eq!(ok.body["username"], "out");
    for field in ["user_id", "session_id", "expires_at"] {
        assert!(ok.body[field].is_string(), "{field}");
    }
    let res = app
        .call("POST", "/auth/logout", Some(&access), None, &[])
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let after = app.get_auth("/auth/verify-token", &access).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.body["valid"], false);
    assert_eq!(after.code(), "token_revoked");
    assert!(
        after
            .header("www-authenticate")
            .unwrap_or_default()
            .starts_with("Bearer")
    );
    let profile = app.get_auth("/users/profile", &access).await;
    assert_eq!(
        profile.status,
        StatusCode::UNAUTHORIZED,
        "our own endpoints refuse it too"
    );
    let refreshed = app
        .post("/auth/refresh-token", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(refreshed.code(), "token_revoked");
    Ok(())
}

#[actix_web::test]
async fn logout_all_ends_every_session() -> TestResult {
    let app = spawn_app().await;
    let (first, _) = app.signed_in("all@example.com", "allofthem").await;
    let second = app.login("allofthem").await.str("access_token");
    let res = app
        .call(
            "POST",
            "/auth/logout",
            Some(&first),
            Some(&json!({"all": true})),
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_auth("/auth/verify-token", &second).await.code(),
        "token_revoked"
    );
    let fresh = app.login("allofthem").await.str("access_token");
    assert_eq!(
        app.get_auth("/auth/verify-token", &fresh).await.status,
        StatusCode::OK,
        "a new login works at once"
    );
    Ok(())
}

#[actix_web::test]
async fn a_missing_or_malformed_bearer_is_401_with_www_authenticate() -> TestResult {
    let app = spawn_app().await;
    let none = app.call("GET", "/auth/verify-token", None, None, &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"auth\"")
    );
    assert_eq!(none.body["valid"], false);
    let basic = app
        .call(
            "GET",
            "/users/profile",
            None,
            None,
            &[("Authorization", "Basic dXNlcjpwYXNz")],
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert!(basic.header("www-authenticate").is_some());
    let garbage = app.get_auth("/users/sessions", "not.a.jwt").await;
    assert_eq!(garbage.code(), "invalid_token");
    Ok(())
}

#[actix_web::test]
async fn forged_hs256_tokens_are_refused() -> TestResult {
    let secret = "an-hs256-secret-of-at-least-32-bytes!!";
    let app = spawn_with(&[("JWT_SECRET_KEY", secret)]).await;
    let (access, _) = app.signed_in("forge@example.com", "forge").await;
    let parts: Vec<&str> = access.split('.').collect();
    let header = decode(parts[0]);
    let payload = decode(parts[1]);

    let mut altered = payload.clone();
    altered["sub"] = json!(uuid::Uuid::now_v7().to_string());
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(altered.to_string()),
        parts[2]
    );

    let none_header = json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]});
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(none_header.to_string()),
        parts[1]
    );

    let mut expired = payload.clone();
    let now = chrono::Utc::now().timestamp();
    expired["iat"] = json!(now - 3600);
    expired["nbf"] = json!(now - 3600);
    expired["exp"] = json!(now - 1800);
    let expired = sign_hs256(secret.as_bytes(), &header, &expired);

    let mut other_aud = payload.clone();
    other_aud["aud"] = json!("someone-else");
    let other_aud = sign_hs256(secret.as_bytes(), &header, &other_aud);

    let wrong_key = sign_hs256(b"another-secret-of-at-least-32-bytes!!!", &header, &payload);

    let cases = [
        (tampered, "invalid_token", "altered payload"),
        (alg_none, "invalid_token", "alg none"),
        (expired, "token_expired", "expired"),
        (other_aud, "invalid_token", "another audience"),
        (wrong_key, "invalid_token", "another key"),
    ];
    for (token, code, why) in cases {
        let res = app.get_auth("/auth/verify-token", &token).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(res.code(), code, "{why}");
        assert_eq!(res.body["valid"], false, "{why}");
    }
    let genuine = sign_hs256(secret.as_bytes(), &header, &payload);
    assert_eq!(
        app.get_auth("/auth/verify-token", &genuine).await.status,
        StatusCode::OK,
        "control: a faithful copy passes"
    );
    Ok(())
}

#[actix_web::test]
async fn rs256_tokens_verify_with_the_jwks_and_refuse_the_hs256_confusion() -> TestResult {
    let pair = RS256.generate_key_pair(2048)?;
    let pem = String::from_utf8(pair.to_pem_private_key())?;
    let app = spawn_with(&[("JWT_PRIVATE_KEY", &pem)]).await;
    let (access, _) = app.signed_in("rsa@example.com", "rsa").await;
    let parts: Vec<&str> = access.split('.').collect();
    let header = decode(parts[0]);
    assert_eq!(header["alg"], "RS256");

    let jwks = app
        .call("GET", "/.well-known/jwks.json", None, None, &[])
        .await;
    assert_eq!(jwks.status, StatusCode::OK);
    let key = &jwks.body["keys"][0];
    assert_eq!(key["kid"], header["kid"], "the token names its key");
    assert!(key.get("d").is_none(), "no private material");
    // A downstream service verifies locally with the published key.
    let jwk = josekit::jwk::Jwk::from_map(key.as_object().cloned().unwrap_or_default())?;
    let verifier = RS256.verifier_from_jwk(&jwk)?;
    assert!(jwt::decode_with_verifier(&access, &verifier).is_ok());

    // The classic attack: HS256 "signed" with the public key.
    let public_pem = pair.to_pem_public_key();
    let mut h = header.clone();
    h["alg"] = json!("HS256");
    let forged = sign_hs256(&public_pem, &h, &decode(parts[1]));
    let res = app.get_auth("/auth/verify-token", &forged).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code(), "invalid_token");
    Ok(())
}
