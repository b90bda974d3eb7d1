//! `CORS_ORIGINS`: parsed once, at configuration time, into exactly what the CORS
//! middleware is given, so that `config check` and the start agree and no origin the
//! configuration accepted can stop the server's workers from starting.

use actix_cors::Cors;
use actix_web::http::{Method, Uri, header};

/// The origins allowed cross-origin access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// These serialized origins (`scheme://host[:port]`, lower case, no default port: the
    /// form browsers send in `Origin`), compared exactly. Empty: no cross-origin access.
    Listed(Vec<String>),
    /// `CORS_ORIGINS=*`: any origin, answered with `Access-Control-Allow-Origin: *` and
    /// never with `Access-Control-Allow-Credentials` (as Flask-CORS does). The API uses no
    /// cookies, so credentials are never needed.
    Any,
}

impl Default for CorsOrigins {
    fn default() -> Self {
        Self::Listed(Vec::new())
    }
}

impl CorsOrigins {
    /// Parses the comma-separated value of `CORS_ORIGINS`; returns the origins that are
    /// valid and a problem for each entry that is not (the value is not secret, so
    /// problems quote it).
    pub fn parse(raw: &str) -> (Self, Vec<String>) {
        let entries: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if entries.contains(&"*") {
            let problems = if entries.len() > 1 {
                vec![
                    "CORS_ORIGINS: * allows every origin and cannot be combined with a list: set either * or the origins"
                        .to_owned(),
                ]
            } else {
                Vec::new()
            };
            return (Self::Any, problems);
        }
        let mut origins = Vec::new();
        let mut problems = Vec::new();
        for entry in entries {
            match parse_origin(entry) {
                Ok(origin) if origins.contains(&origin) => {}
                Ok(origin) => origins.push(origin),
                Err(why) => problems.push(format!("CORS_ORIGINS entry {entry:?} {why}")),
            }
        }
        (Self::Listed(origins), problems)
    }

    /// As `config check` shows it.
    pub fn describe(&self) -> String {
        match self {
            Self::Any => "* (any origin, without credentials)".to_owned(),
            Self::Listed(list) if list.is_empty() => "unset".to_owned(),
            Self::Listed(list) => list.join(","),
        }
    }
}

/// One origin in its serialized form (RFC 6454 §6.1: lower-case scheme and host, the
/// default port left out), which is what a browser sends and the middleware compares
/// byte for byte. A trailing `/` is forgiven; a path, query, user name or wildcard is not.
fn parse_origin(raw: &str) -> Result<String, &'static str> {
    let raw = raw.strip_suffix('/').unwrap_or(raw);
    if raw.contains('*') {
        return Err("has a wildcard: list each origin, or set CORS_ORIGINS=* alone for any origin");
    }
    if raw.eq_ignore_ascii_case("null") {
        return Err(
            "is the origin of sandboxed frames and local files, which any page can make: list real origins",
        );
    }
    const SHAPE: &str =
        "is not an origin: expected scheme://host[:port], e.g. https://app.example.com";
    let uri: Uri = raw.parse().map_err(|_| SHAPE)?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(SHAPE);
    };
    if authority.as_str().contains('@') {
        return Err("has a user name: an origin is scheme://host[:port] only");
    }
    if uri.query().is_some() || !matches!(uri.path(), "" | "/") {
        return Err("has a path or query: an origin is scheme://host[:port] only");
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err(SHAPE);
    }
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let origin = match authority.port_u16().filter(|p| Some(*p) != default_port) {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    // The middleware parses what it is given as a URI and refuses its workers on failure:
    // check the very string it will get.
    origin.parse::<Uri>().map_err(|_| SHAPE)?;
    Ok(origin)
}

/// The CORS middleware for `origins`: methods GET, POST, PUT, DELETE; request headers
/// `Authorization`, `Content-Type`, `X-Request-Id`; the rate-limit, retry and request-id
/// headers exposed; preflights cached for an hour; never credentials.
pub fn middleware(origins: &CorsOrigins) -> Cors {
    let cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static("ratelimit"),
            header::HeaderName::from_static("ratelimit-policy"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .max_age(3600);
    match origins {
        // `Cors::default()` does not support credentials, and `send_wildcard` answers `*`
        // rather than echoing the origin: the pair is what a wildcard means in a browser.
        CorsOrigins::Any => cors.allow_any_origin().send_wildcard(),
        CorsOrigins::Listed(list) => list
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_kept_in_the_form_browsers_send() {
        for (raw, expected) in [
            ("https://app.example.com", "https://app.example.com"),
            ("https://app.example.com/", "https://app.example.com"),
            ("HTTPS://App.Example.COM", "https://app.example.com"),
            ("https://app.example.com:443", "https://app.example.com"),
            ("http://localhost:80", "http://localhost"),
            ("http://localhost:3000", "http://localhost:3000"),
            (
                "https://app.example.com:8443",
                "https://app.example.com:8443",
            ),
            ("http://[::1]:3000", "http://[::1]:3000"),
            ("capacitor://localhost", "capacitor://localhost"),
        ] {
            let (origins, problems) = CorsOrigins::parse(raw);
            assert!(problems.is_empty(), "{raw}: {problems:?}");
            assert_eq!(
                origins,
                CorsOrigins::Listed(vec![expected.to_owned()]),
                "{raw}"
            );
        }
    }

    #[test]
    fn what_is_not_an_origin_is_a_problem_naming_the_entry() {
        for raw in [
            "app.example.com",
            "https://app.example.com/app",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "https://*.example.com",
            "null",
            "https://",
            "https://app example.com",
            "https://bücher.example",
        ] {
            let (_, problems) = CorsOrigins::parse(raw);
            assert_eq!(problems.len(), 1, "{raw}: {problems:?}");
            assert!(
                problems[0].contains("CORS_ORIGINS") && problems[0].contains(raw),
                "{raw}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_star_alone_means_any_origin_and_mixed_with_a_list_is_a_problem() {
        assert_eq!(CorsOrigins::parse(" * "), (CorsOrigins::Any, vec![]));
        let (_, problems) = CorsOrigins::parse("https://app.example.com, *");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(CorsOrigins::parse(""), (CorsOrigins::default(), vec![]));
    }

    #[actix_web::test]
    async fn every_origin_the_configuration_accepts_starts_the_middleware() {
        let (listed, problems) = CorsOrigins::parse(
            "https://app.example.com, HTTP://LOCALHOST:3000/, http://[::1]:80, capacitor://localhost",
        );
        assert!(problems.is_empty(), "{problems:?}");
        for origins in [listed, CorsOrigins::Any, CorsOrigins::default()] {
            // `init_service` panics when a middleware refuses to start, as the server's
            // workers would.
            let app = actix_web::test::init_service(
                actix_web::App::new()
                    .wrap(middleware(&origins))
                    .route("/", actix_web::web::get().to(actix_web::HttpResponse::Ok)),
            )
            .await;
            let res = actix_web::test::call_service(
                &app,
                actix_web::test::TestRequest::get().uri("/").to_request(),
            )
            .await;
            assert!(res.status().is_success(), "{origins:?}");
        }
    }
}
