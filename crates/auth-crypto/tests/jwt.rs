#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_crypto::{Asymmetric, JwtCodec};
use auth_domain::model::{AccessClaims, DeviceClaims};
use auth_domain::ports::{TokenCodec, TokenRejection};
use auth_domain::types::{SessionId, UserId};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, Timelike, Utc};
use josekit::jwk::KeyPair;
use josekit::jws::{ES256, EdDSA, HS256, JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use uuid::Uuid;

fn claims(ttl: TimeDelta) -> AccessClaims {
    let now = Utc::now().with_nanosecond(0).unwrap();
    AccessClaims {
        user_id: UserId(Uuid::now_v7()),
        session_id: SessionId(Uuid::now_v7()),
        jti: Uuid::now_v7(),
        username: "testuser".into(),
        issued_at: now,
        expires_at: now + ttl,
    }
}

fn rsa_pem() -> String {
    let pair = RS256.generate_key_pair(2048).unwrap();
    String::from_utf8(pair.to_pem_private_key()).unwrap()
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn decode_part(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn an_hs256_access_token_round_trips_with_every_claim() {
    let codec = JwtCodec::hs256(&[7; 32], "iss", "aud").unwrap();
    let c = claims(TimeDelta::minutes(15));
    let token = codec.issue_access(&c).unwrap();
    assert_eq!(codec.verify_access(&token, Utc::now()).unwrap(), c);
    let p = parts(&token);
    let header = decode_part(&p[0]);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], codec.key_id());
    let payload = decode_part(&p[1]);
    for claim in [
        "iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "typ",
    ] {
        assert!(payload.get(claim).is_some(), "claim {claim} missing");
    }
    assert!(payload["exp"].is_i64(), "NumericDate as an integer");
    assert_eq!(
        codec.jwks()["keys"].as_array().map(Vec::len),
        Some(0),
        "a shared secret is never published"
    );
}

#[test]
fn an_expired_token_is_reported_as_expired() {
    let codec = JwtCodec::hs256(&[7; 32], "iss", "aud").unwrap();
    let mut c = claims(TimeDelta::minutes(15));
    c.issued_at -= TimeDelta::hours(1);
    c.expires_at = c.issued_at + TimeDelta::minutes(15);
    let token = codec.issue_access(&c).unwrap();
    assert_eq!(
        codec.verify_access(&token, Utc::now()),
        Err(TokenRejection::Expired)
    );
}

#[test]
fn wrong_issuer_audience_or_key_is_invalid() {
    let codec = JwtCodec::hs256(&[7; 32], "iss", "aud").unwrap();
    let token = codec.issue_access(&claims(TimeDelta::minutes(5))).unwrap();
    let cases = [
        (JwtCodec::hs256(&[7; 32], "other", "aud").unwrap(), "issuer"),
        (
            JwtCodec::hs256(&[7; 32], "iss", "other").unwrap(),
            "audience",
        ),
        (JwtCodec::hs256(&[8; 32], "iss", "aud").unwrap(), "key"),
    ];
    for (other, why) in cases {
        assert_eq!(
            other.verify_access(&token, Utc::now()),
            Err(TokenRejection::Invalid),
            "{why}"
        );
    }
}

/// The token with another user's id as `sub`, keeping its header and signature.
fn forged_subject(token: &str) -> String {
    let p = parts(token);
    let mut payload = decode_part(&p[1]);
    payload["sub"] = serde_json::json!(Uuid::now_v7().to_string());
    format!(
        "{}.{}.{}",
        p[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        p[2]
    )
}

#[test]
fn an_altered_payload_is_invalid() {
    let codec = JwtCodec::hs256(&[7; 32], "iss", "aud").unwrap();
    let token = codec.issue_access(&claims(TimeDelta::minutes(5))).unwrap();
    let forged = forged_subject(&token);
    assert_eq!(
        codec.verify_access(&forged, Utc::now()),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn alg_none_is_refused() {
    let codec = JwtCodec::hs256(&[7; 32], "iss", "aud").unwrap();
    let token = codec.issue_access(&claims(TimeDelta::minutes(5))).unwrap();
    let p = parts(&token);
    let header = serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": codec.key_id()});
    for sig in ["", "AAAA"] {
        let forged = format!(
            "{}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            p[1]
        );
        assert_eq!(
            codec.verify_access(&forged, Utc::now()),
            Err(TokenRejection::Invalid)
        );
    }
}

#[test]
fn hs256_signed_with_the_rs256_public_key_is_refused() {
    let codec = JwtCodec::asymmetric(Asymmetric::Rs256, &rsa_pem(), None, "iss", "aud").unwrap();
    let genuine = codec.issue_access(&claims(TimeDelta::minutes(5))).unwrap();
    assert!(codec.verify_access(&genuine, Utc::now()).is_ok());
    // The classic confusion attack: the attacker knows the public key (JWKS) and uses it as
    // an HMAC secret.
    let public = serde_json::to_string(&codec.jwks()["keys"][0]).unwrap();
    let signer = HS256.signer_from_bytes(public.as_bytes()).unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id(codec.key_id());
    let payload_json = decode_part(&parts(&genuine)[1]);
    let payload = JwtPayload::from_map(payload_json.as_object().unwrap().clone()).unwrap();
    let forged = jwt::encode_with_signer(&payload, &header, &signer).unwrap();
    assert_eq!(
        codec.verify_access(&forged, Utc::now()),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn rs256_publishes_its_key_with_a_thumbprint_kid_and_accepts_rotated_keys() {
    let old = rsa_pem();
    let old_codec = JwtCodec::asymmetric(Asymmetric::Rs256, &old, None, "iss", "aud").unwrap();
    let old_token = old_codec
        .issue_access(&claims(TimeDelta::minutes(5)))
        .unwrap();
    let old_public =
        String::from_utf8(RS256.key_pair_from_pem(&old).unwrap().to_pem_public_key()).unwrap();

    let new_codec = JwtCodec::asymmetric(
        Asymmetric::Rs256,
        &rsa_pem(),
        Some(&old_public),
        "iss",
        "aud",
    )
    .unwrap();
    let jwks = new_codec.jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "signing key and the rotated-out key");
    assert_eq!(keys[0]["kid"], new_codec.key_id());
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "no private part");
    assert!(
        new_codec.verify_access(&old_token, Utc::now()).is_ok(),
        "tokens of the old key still verify"
    );
}

#[test]
fn es256_and_eddsa_keys_work() {
    let es = String::from_utf8(ES256.generate_key_pair().unwrap().to_pem_private_key()).unwrap();
    let ed = String::from_utf8(
        EdDSA
            .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
            .unwrap()
            .to_pem_private_key(),
    )
    .unwrap();
    for (alg, pem) in [(Asymmetric::Es256, es), (Asymmetric::EdDsa, ed)] {
        let codec = JwtCodec::asymmetric(alg, &pem, None, "iss", "aud").unwrap();
        let token = codec.issue_access(&claims(TimeDelta::minutes(5))).unwrap();
        assert!(codec.verify_access(&token, Utc::now()).is_ok(), "{alg:?}");
        assert_eq!(codec.jwks()["keys"].as_array().map(Vec::len), Some(1));
    }
}

#[test]
fn a_device_token_is_not_an_access_token_and_vice_versa() {
    let codec = JwtCodec::hs256(&[7; 32], "iss", "aud").unwrap();
    let device = DeviceClaims {
        user_id: UserId(Uuid::now_v7()),
        device_id: Uuid::now_v7(),
        expires_at: Utc::now().with_nanosecond(0).unwrap() + TimeDelta::days(90),
    };
    let device_token = codec.issue_device(&device).unwrap();
    assert_eq!(
        codec.verify_device(&device_token, Utc::now()).unwrap(),
        device
    );
    assert_eq!(
        codec.verify_access(&device_token, Utc::now()),
        Err(TokenRejection::Invalid)
    );
    let access = codec.issue_access(&claims(TimeDelta::minutes(5))).unwrap();
    assert_eq!(
        codec.verify_device(&access, Utc::now()),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn short_hs256_secrets_and_garbage_keys_are_refused() {
    assert!(JwtCodec::hs256(b"short", "iss", "aud").is_err());
    assert!(JwtCodec::asymmetric(Asymmetric::Rs256, "not a pem", None, "iss", "aud").is_err());
}

#[test]
fn a_remembered_token_verifies_again_until_it_expires_and_nothing_else_rides_on_it() {
    let codec = JwtCodec::asymmetric(Asymmetric::Rs256, &rsa_pem(), None, "iss", "aud")
        .unwrap()
        .with_verify_cache(16);
    let c = claims(TimeDelta::minutes(15));
    let token = codec.issue_access(&c).unwrap();
    let now = Utc::now();
    assert_eq!(
        codec.verify_access(&token, now).unwrap(),
        c,
        "first: verified"
    );
    assert_eq!(
        codec.verify_access(&token, now).unwrap(),
        c,
        "again: remembered, same claims"
    );

    // A forgery that shares the remembered token's header and signature is still checked.
    let forged = forged_subject(&token);
    assert_eq!(
        codec.verify_access(&forged, now),
        Err(TokenRejection::Invalid)
    );
    assert_eq!(
        codec.verify_access(&format!("{token}x"), now),
        Err(TokenRejection::Invalid),
        "a token is remembered by its whole text"
    );

    // Expiry is checked on every use, remembered or not.
    assert_eq!(
        codec.verify_access(&token, c.expires_at),
        Err(TokenRejection::Expired)
    );
    assert_eq!(
        codec.verify_access(&token, c.expires_at + TimeDelta::seconds(1)),
        Err(TokenRejection::Expired)
    );
    // A device token is no access token, however often it was seen.
    let device = codec
        .issue_device(&DeviceClaims {
            user_id: c.user_id,
            device_id: Uuid::now_v7(),
            expires_at: c.expires_at,
        })
        .unwrap();
    assert!(codec.verify_device(&device, now).is_ok());
    assert_eq!(
        codec.verify_access(&device, now),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn a_token_another_codec_would_refuse_is_not_accepted_through_a_remembered_one() {
    // Two codecs with different audiences: one remembering the token does not make the other
    // accept it (each codec has its own memory).
    let pem = rsa_pem();
    let issuer = JwtCodec::asymmetric(Asymmetric::Rs256, &pem, None, "iss", "aud")
        .unwrap()
        .with_verify_cache(16);
    let other = JwtCodec::asymmetric(Asymmetric::Rs256, &pem, None, "iss", "other")
        .unwrap()
        .with_verify_cache(16);
    let token = issuer.issue_access(&claims(TimeDelta::minutes(5))).unwrap();
    assert!(issuer.verify_access(&token, Utc::now()).is_ok());
    assert_eq!(
        other.verify_access(&token, Utc::now()),
        Err(TokenRejection::Invalid)
    );
    // Off (capacity 0): the same answers, every time in full.
    let off = JwtCodec::asymmetric(Asymmetric::Rs256, &pem, None, "iss", "aud")
        .unwrap()
        .with_verify_cache(0);
    for _ in 0..2 {
        assert!(off.verify_access(&token, Utc::now()).is_ok());
    }
}
