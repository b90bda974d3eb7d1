//! JWT parsing and verification: any text presented as an access or device token, to an
//! HS256 and an RS256 codec (each remembering verified tokens, as the service does), is
//! refused without a panic; and a token the codec issued, with the fuzzer's bytes spliced
//! into it, is refused unless it is byte for byte the issued one.
#![no_main]

use std::sync::LazyLock;

use auth_crypto::{Asymmetric, JwtCodec, generate_key_pair};
use auth_domain::model::AccessClaims;
use auth_domain::ports::TokenCodec;
use auth_domain::types::{SessionId, UserId};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

struct Fixture {
    codecs: Vec<JwtCodec>,
    issued: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let hs = JwtCodec::hs256(&[7; 32], "fuzz", "fuzz")
        .map(|c| c.with_verify_cache(64))
        .unwrap_or_else(|e| panic!("HS256 codec: {e}"));
    let key = generate_key_pair(Asymmetric::Rs256).unwrap_or_else(|e| panic!("RSA key: {e}"));
    let rs = JwtCodec::asymmetric(Asymmetric::Rs256, key.private_pem.expose_secret(), None, "fuzz", "fuzz")
        .map(|c| c.with_verify_cache(64))
        .unwrap_or_else(|e| panic!("RS256 codec: {e}"));
    let now = chrono::Utc::now();
    let claims = AccessClaims {
        user_id: UserId(uuid::Uuid::nil()),
        session_id: SessionId(uuid::Uuid::nil()),
        jti: uuid::Uuid::nil(),
        username: "fuzz".into(),
        issued_at: now,
        expires_at: now + chrono::TimeDelta::days(3650),
    };
    let issued = [&hs, &rs]
        .iter()
        .map(|c| c.issue_access(&claims).unwrap_or_else(|e| panic!("issue: {e}")))
        .collect();
    Fixture { codecs: vec![hs, rs], issued }
});

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    let now = chrono::Utc::now();
    let text = String::from_utf8_lossy(data);
    for codec in &fixture.codecs {
        let _ = codec.verify_access(&text, now);
        let _ = codec.verify_device(&text, now);
    }
    // Splice the input into each issued token at a position it chooses.
    let Some((&at, rest)) = data.split_first() else {
        return;
    };
    for (codec, token) in fixture.codecs.iter().zip(&fixture.issued) {
        let mut bytes = token.as_bytes().to_vec();
        let pos = usize::from(at) * bytes.len() / 256;
        bytes.splice(pos..(pos + rest.len()).min(bytes.len()), rest.iter().copied());
        let Ok(spliced) = String::from_utf8(bytes) else {
            continue;
        };
        if spliced != *token {
            assert!(
                codec.verify_access(&spliced, now).is_err(),
                "an altered token was accepted: {spliced}"
            );
        }
    }
});
