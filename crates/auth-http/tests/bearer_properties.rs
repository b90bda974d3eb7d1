//! Property tests of `auth_http::extract::bearer`, the parser of
//! `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive,
//! RFC 7235 §2.1).
//!
//! Expected answers come from how each input is built (a token wrapped in a scheme and
//! white space must come back exactly; another scheme, no token, no header or a value that
//! is not visible ASCII must be refused as a missing bearer), plus "never panics on any
//! header value" with the shape every accepted token has.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use actix_web::test::TestRequest;
use auth_http::error::ApiError;
use auth_http::extract::bearer;
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn with_header(value: HeaderValue) -> Result<String, ApiError> {
    bearer(
        &TestRequest::default()
            .insert_header((AUTHORIZATION, value))
            .to_http_request(),
    )
}

fn with_text(value: &str) -> Result<String, ApiError> {
    with_header(HeaderValue::from_str(value).expect("a valid header value"))
}

/// "bearer" in any ASCII case.
fn bearer_scheme() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), 6).prop_map(|upper| {
        "bearer"
            .chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

/// An RFC 6750 b64token (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`),
/// JWT-shaped or not.
fn b64token() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._~+/\\-]{1,60}=*",
        "[A-Za-z0-9_\\-]{10,40}\\.[A-Za-z0-9_\\-]{10,80}\\.[A-Za-z0-9_\\-]{10,43}",
    ]
}

/// Optional white space (space or tab).
fn ows() -> impl Strategy<Value = String> {
    "[ \\t]{0,3}"
}

/// Any bytes a header value may hold: tab, visible ASCII and space, and obs-text.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        1 => Just(b'\t'),
        8 => 0x20u8..=0x7e,
        1 => 0x80u8..=0xff,
    ];
    prop_oneof![
        proptest::collection::vec(byte, 0..80),
        (bearer_scheme(), "[ \\t]{0,2}[ -~]{0,20}")
            .prop_map(|(s, rest)| format!("{s} {rest}").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// `<ows>Bearer<1+ spaces, then ows><token><ows>` gives the token back exactly.
    #[test]
    fn a_bearer_token_comes_back_exactly(
        scheme in bearer_scheme(),
        token in b64token(),
        (lead, sep, trail) in (ows(), ows(), ows()),
    ) {
        let value = format!("{lead}{scheme} {sep}{token}{trail}");
        prop_assert_eq!(with_text(&value).ok(), Some(token));
    }

    /// Any other scheme, "bearer" with no space or no token after it, and a value that is
    /// only white space, are a missing bearer.
    #[test]
    fn anything_but_a_bearer_token_is_a_missing_bearer(
        scheme in prop_oneof![
            "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~\\-]{0,10}",
            bearer_scheme().prop_map(|s| format!("{s}x")),
            bearer_scheme().prop_map(|s| s[..5].to_owned()),
        ],
        token in b64token(),
        (lead, trail) in (ows(), ows()),
        bearer in bearer_scheme(),
    ) {
        prop_assume!(!scheme.eq_ignore_ascii_case("bearer"));
        let other_scheme = format!("{lead}{scheme} {token}{trail}");
        prop_assert!(matches!(with_text(&other_scheme), Err(ApiError::MissingBearer)), "{other_scheme:?}");
        let glued = format!("{lead}{bearer}{token}{trail}");
        prop_assert!(matches!(with_text(&glued), Err(ApiError::MissingBearer)), "{glued:?}");
        let no_token = format!("{lead}{bearer} {trail}");
        prop_assert!(matches!(with_text(&no_token), Err(ApiError::MissingBearer)), "{no_token:?}");
        let blank = format!("{lead}{trail}");
        prop_assert!(matches!(with_text(&blank), Err(ApiError::MissingBearer)), "{blank:?}");
    }

    /// Never panics on any header value. An accepted token is non-empty, has no white space
    /// at either end, appears in the value, and the value starts (after white space) with
    /// "bearer " in some case. A value that is not visible ASCII is refused.
    #[test]
    fn bearer_never_panics_and_accepts_only_its_shape(bytes in header_bytes()) {
        let value = HeaderValue::from_bytes(&bytes).expect("header bytes");
        match with_header(value) {
            Ok(token) => {
                let text = std::str::from_utf8(&bytes).expect("accepted values are ASCII");
                prop_assert!(!token.is_empty());
                prop_assert_eq!(token.trim(), token.as_str());
                prop_assert!(text.contains(&token));
                let start = text.trim_start();
                prop_assert!(start.len() > 7 && start[..7].eq_ignore_ascii_case("bearer "), "{text:?}");
            }
            Err(err) => {
                prop_assert!(matches!(err, ApiError::MissingBearer), "{err:?}");
            }
        }
        if bytes.iter().any(|b| *b >= 0x80) {
            let value = HeaderValue::from_bytes(&bytes).expect("header bytes");
            prop_assert!(matches!(with_header(value), Err(ApiError::MissingBearer)));
        }
    }
}

#[test]
fn no_authorization_header_is_a_missing_bearer() {
    let req = TestRequest::default().to_http_request();
    assert!(matches!(bearer(&req), Err(ApiError::MissingBearer)));
}
