//! Refresh-token parsing and the Authorization header: any text presented as a refresh
//! token, and any header value, is taken or refused without a panic; a refresh token that is
//! taken hashes the same way twice and its text round-trips.
#![no_main]

use auth_domain::types::PlainToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(token) = PlainToken::presented(&text) {
        assert_eq!(token.hash().0, token.hash().0);
        assert_eq!(token.expose(), text.trim());
    }
    if let Ok(value) = actix_web::http::header::HeaderValue::from_bytes(data) {
        let req = actix_web::test::TestRequest::default()
            .insert_header((actix_web::http::header::AUTHORIZATION, value))
            .to_http_request();
        if let Ok(token) = auth_http::extract::bearer(&req) {
            assert!(!token.is_empty());
        }
    }
});
