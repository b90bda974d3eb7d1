//! Extractors: the client's address, the bearer token, and JSON bodies with problem errors.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use auth_domain::ClientContext;
use auth_domain::model::AccessClaims;
use ipnet::IpNet;

use crate::error::ApiError;
use crate::state::AppState;

/// Where the request comes from: the peer, or the first untrusted address of
/// `X-Forwarded-For` (from the right) when the peer is a trusted proxy.
#[derive(Debug, Clone)]
pub struct Client(pub ClientContext);

/// The client IP per `TRUSTED_PROXIES`.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip().to_canonical())?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
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
        std::future::ready(Ok(Client(ClientContext {
            ip: client_ip(req, &trusted),
            user_agent,
        })))
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
    if req.path() == "/auth/login" {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.config.trusted_proxies.clone())
            .unwrap_or_default();
        let code = api.code();
        crate::telemetry::login(code);
        crate::audit::Audit::failure("login.failed")
            .reason(code)
            .ip(client_ip(req, &trusted))
            .emit();
    }
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
