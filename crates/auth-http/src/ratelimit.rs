//! IETF `RateLimit-Policy` / `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers).

use actix_web::http::header::HeaderName;
use auth_domain::policy::RateDecision;

/// `RateLimit-Policy: "ip";q=30;w=60` and `RateLimit: "ip";r=29;t=2`.
pub fn rate_limit_headers(decision: &RateDecision) -> [(HeaderName, String); 2] {
    let policy = decision.policy;
    [
        (
            HeaderName::from_static("ratelimit-policy"),
            format!(
                "\"{}\";q={};w={}",
                policy.name,
                policy.limit,
                policy.window.num_seconds()
            ),
        ),
        (
            HeaderName::from_static("ratelimit"),
            format!(
                "\"{}\";r={};t={}",
                policy.name, decision.remaining, decision.reset_after_secs
            ),
        ),
    ]
}
