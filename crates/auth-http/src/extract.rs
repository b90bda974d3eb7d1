//! Extractors: the client's address, the bearer token, and JSON bodies with problem errors.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use auth_domain::events::{ClientContext, Event, EventSink};
use auth_domain::model::AccessClaims;
use ipnet::IpNet;

use crate::error::ApiError;
use crate::state::AppState;

/// Where the request comes from: the peer, or the client that `X-Forwarded-For` names when
/// the peer is a trusted proxy (see [`client_ip`]).
#[derive(Debug, Clone)]
pub struct Client(pub ClientContext);

/// The client IP per `TRUSTED_PROXIES`.
///
/// An untrusted peer is the client, whatever it sends. A trusted peer vouches for the
/// right-most `X-Forwarded-For` entry (the address it saw), and each trusted hop for the
/// entry to its left; so the entries are walked from the right, and the walk stops at:
/// - the first address that is not a trusted proxy: that is the client;
/// - an entry that cannot be read as an address: nobody trusted vouches for anything to its
///   left, so the client is the last trusted hop walked (the peer when it is the right-most
///   entry). Skipping it instead would let a client that writes one such entry have the
///   address it writes to the left of it believed;
/// - the end of the list, every entry trusted: the left-most one.
///
/// Entries may carry a port (`203.0.113.9:51234`, `[2001:db8::1]:443`), as some proxies
/// write them; IPv4-mapped IPv6 addresses count as IPv4. Empty list elements are ignored
/// (RFC 9110, 5.6.1).
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    let headers = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or(UNREADABLE));
    Some(forwarded_client(peer, headers, trusted))
}

/// Stands for a header value that is not visible ASCII: the whole value is unreadable, so
/// it ends the walk like an entry that is not an address.
const UNREADABLE: &str = "unreadable";

/// [`client_ip`] on the peer and the `X-Forwarded-For` header values, in the order received.
pub fn forwarded_client<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut hop = peer.to_canonical();
    if !is_trusted(&hop) {
        return hop;
    }
    let entries: Vec<&str> = forwarded
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for entry in entries.into_iter().rev() {
        let Some(ip) = forwarded_address(entry) else {
            return hop;
        };
        hop = ip;
        if !is_trusted(&hop) {
            return hop;
        }
    }
    hop
}

/// One `X-Forwarded-For` entry: `ip`, `ipv4:port`, `[ipv6]` or `[ipv6]:port`; `None` when
/// it is none of these (`unknown`, an obfuscated identifier, garbage).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .or_else(|_| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or_default()
                .parse::<Ipv6Addr>()
                .map(IpAddr::V6)
        })
        .ok()?;
    Some(ip.to_canonical())
}

impl FromRequest for Client {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.config.trusted_proxies.clone())
            .unwrap_or_default();
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // One context per request, shared with the middleware that reads the rate-limit
        // decisions the use case kept in it.
        let existing = req.extensions().get::<ClientContext>().cloned();
        let context = existing.unwrap_or_else(|| {
            let context = ClientContext::new(client_ip(req, &trusted), user_agent);
            req.extensions_mut().insert(context.clone());
            context
        });
        std::future::ready(Ok(Client(context)))
    }
}

/// The raw bearer token of `Authorization: Bearer <token>`.
pub fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::MissingBearer)?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(ApiError::MissingBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::MissingBearer);
    }
    Ok(token.to_owned())
}

/// A request with a valid, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub AccessClaims);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token?;
            let state = state.ok_or_else(|| {
                ApiError::Domain(auth_domain::AuthError::Unexpected(
                    auth_domain::ports::PortError::unexpected("application state missing"),
                ))
            })?;
            let claims = state
                .service
                .authenticate(&token)
                .await
                .map_err(ApiError::Bearer)?;
            Ok(Authenticated(claims))
        })
    }
}

/// JSON bodies: each way a body can be wrong gets its own problem.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(true)
        .error_handler(move |err, req| {
            let api = match &err {
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => ApiError::PayloadTooLarge(limit),
                JsonPayloadError::Deserialize(de) => ApiError::BadJson(describe(de)),
                other => ApiError::BadJson(other.to_string()),
            };
            refused_body(req, &api);
            api.into()
        })
}

/// Notes a body refused before its handler ran: on `/auth/login` it is still a failed
/// login, counted and audited like the others (no identifier is known).
fn refused_body(req: &HttpRequest, api: &ApiError) {
    if req.path() != "/auth/login" {
        return;
    }
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return;
    };
    let event = Event::LoginFailed {
        reason: api.code(),
        user: None,
        identifier_index: None,
    };
    let client = ClientContext::new(client_ip(req, &state.config.trusted_proxies), None);
    state.service.ports().events.publish(event, &client);
}

/// A JSON request body that must be an object. serde would also fill a struct from an
/// array (`["a@example.com", "name", …]` taken field by field, `[null, null]` as an empty
/// change), which no client means: such a body is a 400 `validation_failed` like any other
/// malformed one. Size, content type and syntax are checked by [`json_config`].
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let value = value.await?.into_inner();
            let parsed = if value.is_object() {
                T::deserialize(value).map_err(|e| ApiError::BadJson(describe(&e)))
            } else {
                Err(ApiError::BadJson(
                    "the body must be a JSON object".to_owned(),
                ))
            };
            parsed.map(JsonObject).map_err(|api| {
                refused_body(&req, &api);
                api.into()
            })
        })
    }
}

/// Limits for raw bodies (routes whose body is optional).
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

fn describe(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof => format!(
            "not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ),
        Category::Data => {
            let msg = err.to_string();
            // serde's message ends with " at line L column C"; keep the useful part.
            msg.split(" at line ").next().unwrap_or(&msg).to_owned()
        }
        Category::Io => "could not be read".to_owned(),
    }
}

/// Parses an optional JSON body (empty means `T::default()`), with the same problems as
/// [`json_config`].
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadJson(describe(&e)))?;
    if !value.is_object() {
        return Err(ApiError::BadJson(
            "the body must be a JSON object".to_owned(),
        ));
    }
    T::deserialize(value).map_err(|e| ApiError::BadJson(describe(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
            .collect()
    }

    #[test]
    fn every_form_of_forwarded_entry_is_read_as_its_address() {
        for (entry, expected) in [
            ("203.0.113.9", Some("203.0.113.9")),
            ("203.0.113.9:51234", Some("203.0.113.9")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("::ffff:203.0.113.9", Some("203.0.113.9")),
            ("[::ffff:203.0.113.9]:80", Some("203.0.113.9")),
            ("unknown", None),
            ("_hidden", None),
            ("203.0.113.9:", None),
            ("203.0.113.9:99999", None),
            ("2001:db8::1:443x", None),
            ("[2001:db8::1", None),
            ("[203.0.113.9]", None),
            ("203.0.113.256", None),
        ] {
            assert_eq!(forwarded_address(entry), expected.map(ip), "{entry:?}");
        }
    }

    #[test]
    fn the_walk_from_the_right_stops_at_the_first_untrusted_or_unreadable_entry() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let proxy = ip("10.0.0.1");
        for (headers, expected, why) in [
            (vec![], "10.0.0.1", "no header: the trusted peer itself"),
            (
                vec!["203.0.113.9"],
                "203.0.113.9",
                "the address the proxy saw",
            ),
            (
                vec!["198.51.100.1, 203.0.113.9"],
                "203.0.113.9",
                "what the client wrote to the left is not believed",
            ),
            (
                vec!["198.51.100.1, 203.0.113.9:51234"],
                "203.0.113.9",
                "an entry with a port is read, not skipped",
            ),
            (
                vec!["198.51.100.1, [2001:db8::1]:443, 10.0.0.7"],
                "2001:db8::1",
                "a bracketed IPv6 entry with a port, behind a second proxy",
            ),
            (
                vec!["198.51.100.1, 10.0.0.9:8080, [2001:db8:ffff::2]:443"],
                "198.51.100.1",
                "trusted hops with ports are walked through",
            ),
            (
                vec!["198.51.100.1, unknown"],
                "10.0.0.1",
                "an unreadable right-most entry: the peer is the last trusted hop",
            ),
            (
                vec!["198.51.100.1, garbage, 10.0.0.7"],
                "10.0.0.7",
                "an unreadable entry: the trusted hop to its right",
            ),
            (
                vec!["10.0.0.5, 10.0.0.7"],
                "10.0.0.5",
                "every entry trusted: the left-most",
            ),
            (
                vec!["198.51.100.1", "203.0.113.9"],
                "203.0.113.9",
                "several header lines are one list, in order",
            ),
            (
                vec!["198.51.100.1", "unreadable"],
                "10.0.0.1",
                "an unreadable header line ends the walk too",
            ),
            (
                vec!["198.51.100.1,, 203.0.113.9 ,"],
                "203.0.113.9",
                "empty list elements are ignored",
            ),
            (
                vec!["::ffff:203.0.113.9"],
                "203.0.113.9",
                "IPv4-mapped is IPv4",
            ),
        ] {
            let got = forwarded_client(proxy, headers.iter().copied(), &trusted);
            assert_eq!(got, ip(expected), "{why}: {headers:?}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let got = forwarded_client(
            ip("198.51.100.7"),
            ["203.0.113.9"].into_iter(),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("198.51.100.7"));
        let mapped = forwarded_client(ip("::ffff:198.51.100.7"), std::iter::empty(), &[]);
        assert_eq!(mapped, ip("198.51.100.7"), "the peer is canonical too");
    }

    #[test]
    fn a_header_value_that_is_not_ascii_is_not_skipped() {
        let req = actix_web::test::TestRequest::default()
            .peer_addr("10.0.0.1:40000".parse().unwrap_or_else(|e| panic!("{e}")))
            .append_header(("X-Forwarded-For", "198.51.100.1"))
            .append_header((
                "X-Forwarded-For",
                header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap_or_else(|e| panic!("{e}")),
            ))
            .to_http_request();
        assert_eq!(
            client_ip(&req, &nets(&["10.0.0.0/8"])),
            Some(ip("10.0.0.1")),
            "the address left of an unreadable line is not believed"
        );
    }
}
