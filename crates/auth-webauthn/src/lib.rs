//! Passkeys: WebAuthn ceremonies for one relying party, with `webauthn-rs`, behind the
//! domain's [`PasskeyCeremonies`] port.
//!
//! - Registration asks for a discoverable credential with user verification, excluding the
//!   user's credentials; the user handle is the user id (its 16 UUID bytes).
//! - Authentication with a user's stored credentials is webauthn-rs's passkey
//!   authentication (allow list, user verification required); with none, a discoverable
//!   authentication (the authenticator picks the credential and returns the user handle).
//! - Options are the inner `publicKey` object of webauthn-rs's challenge, binary members
//!   base64url: what `PublicKeyCredential.parseCreationOptionsFromJSON` /
//!   `parseRequestOptionsFromJSON` take. Responses are what `PublicKeyCredential.toJSON()`
//!   gives.
//! - States are webauthn-rs's, serialized with a tag naming the ceremony, so that a state is
//!   never finished by another kind of ceremony.
//! - Credentials are webauthn-rs [`Passkey`]s in JSON: public key, signature counter,
//!   flags; never a private key.
#![forbid(unsafe_code)]

use auth_domain::ports::{
    AssertionIdentity, Ceremony, NewPasskey, PasskeyCeremonies, PasskeyError, PasskeyUse, PortError,
};
use auth_domain::types::UserId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use webauthn_rs::prelude::{
    AuthenticationResult, Credential, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

#[cfg(test)]
mod tests;

/// The relying party could not be set up from its configuration. The message names the
/// variable to fix (`WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGIN`).
#[derive(Debug, thiserror::Error)]
#[error("invalid relying party: {0}")]
pub struct RelyingPartyError(pub String);

/// The relying party a page at `url` belongs to by default: its host (the id) and its
/// origin (`scheme://host[:port]`, path dropped). `None` for what is not a URL with a host.
pub fn default_relying_party(url: &str) -> Option<(String, String)> {
    let parsed = Url::parse(url).ok()?;
    let host = parsed.host_str()?.trim_matches(['[', ']']).to_owned();
    Some((host, parsed.origin().ascii_serialization()))
}

/// WebAuthn ceremonies for one relying party (id, origin and name fixed at construction).
#[derive(Debug)]
pub struct WebauthnRp {
    webauthn: Webauthn,
}

impl WebauthnRp {
    /// A relying party with id `rp_id` (a registrable domain: the host of `origin` or a
    /// parent of it), serving pages at `origin` (`http(s)://host[:port]`), shown as
    /// `rp_name` (the id when empty). `http://localhost:PORT` with id `localhost` works:
    /// browsers treat localhost as a secure context.
    ///
    /// # Errors
    /// When the origin is not an http(s) origin with a domain name (WebAuthn refuses IP
    /// addresses), or the id is neither its host nor a parent domain of it.
    pub fn new(rp_id: &str, origin: &str, rp_name: &str) -> Result<Self, RelyingPartyError> {
        let (rp_id, origin) = validate(rp_id, origin)?;
        let builder = WebauthnBuilder::new(&rp_id, &origin).map_err(|e| {
            RelyingPartyError(format!(
                "WEBAUTHN_RP_ID `{rp_id}` does not fit WEBAUTHN_ORIGIN `{origin}`: {e}"
            ))
        })?;
        let rp_name = rp_name.trim();
        let builder = if rp_name.is_empty() {
            builder
        } else {
            builder.rp_name(rp_name)
        };
        let webauthn = builder
            .build()
            .map_err(|e| RelyingPartyError(format!("cannot set up WebAuthn: {e}")))?;
        Ok(Self { webauthn })
    }
}

/// Checks the configuration; returns the relying party id (lower case) and the origin.
fn validate(rp_id: &str, origin: &str) -> Result<(String, Url), RelyingPartyError> {
    let raw = origin.trim();
    let url = Url::parse(raw)
        .map_err(|e| RelyingPartyError(format!("WEBAUTHN_ORIGIN `{raw}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RelyingPartyError(format!(
            "WEBAUTHN_ORIGIN `{raw}` must be an http:// or https:// origin"
        )));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(RelyingPartyError(format!(
            "WEBAUTHN_ORIGIN `{raw}` must be an origin, scheme://host[:port], without a path, \
             query, fragment or user"
        )));
    }
    let Some(host) = url.domain() else {
        return Err(RelyingPartyError(format!(
            "WEBAUTHN_ORIGIN `{raw}` must name its host by a domain name: WebAuthn does not \
             accept IP addresses (use localhost for local development)"
        )));
    };
    let rp_id = rp_id.trim().to_ascii_lowercase();
    if rp_id.is_empty() {
        return Err(RelyingPartyError("WEBAUTHN_RP_ID is empty".to_owned()));
    }
    // A parent must itself be a registrable domain: at least two labels (`example.com`,
    // never `com`). Without a public-suffix list, `co.uk` would pass; browsers refuse it.
    let parent = rp_id.contains('.') && host.ends_with(&format!(".{rp_id}"));
    if host != rp_id && !parent {
        return Err(RelyingPartyError(format!(
            "WEBAUTHN_RP_ID `{rp_id}` must be the host of WEBAUTHN_ORIGIN (`{host}`) or a \
             registrable parent domain of it"
        )));
    }
    Ok((rp_id, url))
}

/// What [`Ceremony::state`] holds: webauthn-rs's state, tagged with the ceremony's kind.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum State {
    /// A passkey registration.
    Registration { state: PasskeyRegistration },
    /// An authentication with the credentials of a known user.
    Authentication { state: PasskeyAuthentication },
    /// A discoverable authentication: the user is not known beforehand.
    Discoverable { state: DiscoverableAuthentication },
}

impl State {
    fn kind(&self) -> &'static str {
        match self {
            Self::Registration { .. } => "a registration",
            Self::Authentication { .. } => "an authentication",
            Self::Discoverable { .. } => "a discoverable authentication",
        }
    }

    fn read(state: &str) -> Result<Self, PasskeyError> {
        serde_json::from_str(state)
            .map_err(|e| unexpected(format!("unreadable ceremony state: {e}")))
    }

    fn write(&self) -> Result<String, PasskeyError> {
        serde_json::to_string(self)
            .map_err(|e| unexpected(format!("cannot serialize a ceremony state: {e}")))
    }
}

fn unexpected(message: String) -> PasskeyError {
    PasskeyError::Port(PortError::unexpected(message))
}

/// A verification failure; parse failures of the binary members are a malformed response.
fn refused(err: WebauthnError) -> PasskeyError {
    match err {
        WebauthnError::ParseCBORFailure(_)
        | WebauthnError::ParseJSONFailure(_)
        | WebauthnError::ParseNOMFailure
        | WebauthnError::ParseInsufficientBytesAvailable => {
            PasskeyError::Malformed(format!("unreadable authenticator data: {err}"))
        }
        other => PasskeyError::Refused(format!("{other} ({other:?})")),
    }
}

fn read_passkey(credential: &str) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(credential)
        .map_err(|e| unexpected(format!("unreadable stored passkey: {e}")))
}

fn write_passkey(passkey: &Passkey) -> Result<String, PasskeyError> {
    serde_json::to_string(passkey)
        .map_err(|e| unexpected(format!("cannot serialize a passkey: {e}")))
}

/// A passkey's signature counter (0: the authenticator keeps none).
fn counter_of(passkey: &Passkey) -> u32 {
    Credential::from(passkey.clone()).counter
}

/// The inner `publicKey` object of a challenge, as JSON.
fn options_json(public_key: &impl Serialize) -> Result<Value, PasskeyError> {
    let options = serde_json::to_value(public_key)
        .map_err(|e| unexpected(format!("cannot serialize WebAuthn options: {e}")))?;
    if options.is_object() {
        Ok(options)
    } else {
        Err(unexpected(
            "WebAuthn options are not a JSON object".to_owned(),
        ))
    }
}

/// A member of a JSON object; `Malformed` when the value is not an object.
fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, PasskeyError> {
    value
        .as_object()
        .ok_or_else(|| PasskeyError::Malformed(format!("{what} is not a JSON object")))
}

/// Copies `keys` of `from` (those present) into a new object.
fn pick(from: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| from.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

/// The members of a `RegistrationResponseJSON` / `AuthenticationResponseJSON` that
/// webauthn-rs reads, with its names: `id`, `rawId`, `type`, the response's `response_keys`,
/// and `clientExtensionResults` reduced to `keep_extension` (other outputs, such as the
/// browser's `prf` or `largeBlob`, are not requested and could only fail parsing).
fn normalize(
    value: &Value,
    response_keys: &[&str],
    keep_extension: Option<&str>,
) -> Result<Value, PasskeyError> {
    let top = object(value, "the credential")?;
    let response = object(
        top.get("response")
            .ok_or_else(|| PasskeyError::Malformed("missing `response`".to_owned()))?,
        "`response`",
    )?;
    let mut out = pick(top, &["id", "rawId", "type"]);
    out.insert(
        "response".to_owned(),
        Value::Object(pick(response, response_keys)),
    );
    let mut extensions = Map::new();
    if let (Some(name), Some(Value::Object(results))) =
        (keep_extension, top.get("clientExtensionResults"))
        && let Some(output) = results.get(name)
    {
        extensions.insert(name.to_owned(), output.clone());
    }
    out.insert(
        "clientExtensionResults".to_owned(),
        Value::Object(extensions),
    );
    if out.get("type").and_then(Value::as_str) != Some("public-key") {
        return Err(PasskeyError::Malformed(
            "`type` is not \"public-key\"".to_owned(),
        ));
    }
    Ok(Value::Object(out))
}

fn registration_response(value: &Value) -> Result<RegisterPublicKeyCredential, PasskeyError> {
    let normalized = normalize(
        value,
        &["clientDataJSON", "attestationObject", "transports"],
        Some("credProps"),
    )?;
    serde_json::from_value(normalized)
        .map_err(|e| PasskeyError::Malformed(format!("not a RegistrationResponseJSON: {e}")))
}

fn authentication_response(value: &Value) -> Result<PublicKeyCredential, PasskeyError> {
    let mut normalized = normalize(
        value,
        &[
            "clientDataJSON",
            "authenticatorData",
            "signature",
            "userHandle",
        ],
        None,
    )?;
    // An empty user handle is no user handle (some authenticators send one).
    if let Some(response) = normalized
        .get_mut("response")
        .and_then(Value::as_object_mut)
        && response.get("userHandle").and_then(Value::as_str) == Some("")
    {
        response.remove("userHandle");
    }
    serde_json::from_value(normalized)
        .map_err(|e| PasskeyError::Malformed(format!("not an AuthenticationResponseJSON: {e}")))
}

/// The user handle of an assertion as a user id; `Malformed` when it is not 16 bytes.
fn user_of(response: &PublicKeyCredential) -> Result<Option<UserId>, PasskeyError> {
    response
        .get_user_unique_id()
        .map(|handle| {
            Uuid::from_slice(handle)
                .map(UserId)
                .map_err(|_| PasskeyError::Malformed("the user handle is not a user id".to_owned()))
        })
        .transpose()
}

impl PasskeyCeremonies for WebauthnRp {
    fn start_registration(
        &self,
        user: UserId,
        username: &str,
        exclude: &[Vec<u8>],
    ) -> Result<Ceremony, PasskeyError> {
        let exclude = (!exclude.is_empty()).then(|| exclude.to_vec());
        let (challenge, state) = self
            .webauthn
            .start_passkey_registration(user.0, username, username, exclude)
            .map_err(|e| unexpected(format!("cannot start a registration: {e}")))?;
        let mut options = options_json(&challenge.public_key)?;
        // webauthn-rs asks passkeys to be discoverable only opportunistically
        // (`residentKey: "discouraged"`); we need them for passwordless sign-in. It does not
        // check residency when finishing, so asking for it here is all it takes.
        let selection = options
            .get_mut("authenticatorSelection")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| unexpected("options without authenticatorSelection".to_owned()))?;
        selection.insert("residentKey".to_owned(), Value::from("required"));
        selection.insert("requireResidentKey".to_owned(), Value::from(true));
        Ok(Ceremony {
            options,
            state: State::Registration { state }.write()?,
        })
    }

    fn finish_registration(
        &self,
        state: &str,
        response: &Value,
    ) -> Result<NewPasskey, PasskeyError> {
        let state = match State::read(state)? {
            State::Registration { state } => state,
            other => {
                return Err(PasskeyError::Refused(format!(
                    "the state of {} cannot finish a registration",
                    other.kind()
                )));
            }
        };
        let response = registration_response(response)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(refused)?;
        Ok(NewPasskey {
            credential_id: passkey.cred_id().to_vec(),
            credential: write_passkey(&passkey)?,
            sign_count: counter_of(&passkey),
        })
    }

    fn start_authentication(&self, credentials: &[String]) -> Result<Ceremony, PasskeyError> {
        let (options, state) = if credentials.is_empty() {
            let (challenge, state) = self
                .webauthn
                .start_discoverable_authentication()
                .map_err(|e| unexpected(format!("cannot start an authentication: {e}")))?;
            // `challenge.mediation` (conditional UI) is the page's choice, not an option.
            (
                options_json(&challenge.public_key)?,
                State::Discoverable { state },
            )
        } else {
            let passkeys = credentials
                .iter()
                .map(|c| read_passkey(c))
                .collect::<Result<Vec<_>, _>>()?;
            let (challenge, state) = self
                .webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|e| unexpected(format!("cannot start an authentication: {e}")))?;
            (
                options_json(&challenge.public_key)?,
                State::Authentication { state },
            )
        };
        Ok(Ceremony {
            options,
            state: state.write()?,
        })
    }

    fn identify(&self, response: &Value) -> Result<AssertionIdentity, PasskeyError> {
        let response = authentication_response(response)?;
        Ok(AssertionIdentity {
            credential_id: response.get_credential_id().to_vec(),
            user: user_of(&response)?,
        })
    }

    fn finish_authentication(
        &self,
        state: &str,
        response: &Value,
        credential: &str,
    ) -> Result<PasskeyUse, PasskeyError> {
        let state = State::read(state)?;
        let mut passkey = read_passkey(credential)?;
        let response = authentication_response(response)?;
        if response.get_credential_id() != passkey.cred_id().as_slice() {
            return Err(PasskeyError::Refused(
                "the assertion names another credential than the stored one".to_owned(),
            ));
        }
        let result: AuthenticationResult = match state {
            // Verified against the state's copy of the user's credentials: its allow list,
            // user verification, and the counter as it was at the start.
            State::Authentication { state } => self
                .webauthn
                .finish_passkey_authentication(&response, &state)
                .map_err(refused)?,
            // Verified against the stored credential the user handle led to.
            State::Discoverable { state } => {
                if user_of(&response)?.is_none() {
                    return Err(PasskeyError::Refused(
                        "a discoverable authentication without a user handle".to_owned(),
                    ));
                }
                self.webauthn
                    .finish_discoverable_authentication_v2(
                        &response,
                        state,
                        DiscoverableKey::from(&passkey),
                    )
                    .map_err(refused)?
            }
            State::Registration { .. } => {
                return Err(PasskeyError::Refused(
                    "the state of a registration cannot finish an authentication".to_owned(),
                ));
            }
        };
        if !result.user_verified() {
            return Err(PasskeyError::Refused("user not verified".to_owned()));
        }
        // webauthn-rs refuses a counter that did not move past the one it verified against
        // (unless both are 0); the stored credential may have moved on since the ceremony
        // started (another sign-in meanwhile), so check against it too.
        let stored = counter_of(&passkey);
        if (result.counter() > 0 || stored > 0) && result.counter() <= stored {
            return Err(PasskeyError::Refused(format!(
                "signature counter did not increase ({} after {stored})",
                result.counter()
            )));
        }
        if passkey.update_credential(&result).is_none() {
            return Err(unexpected(
                "the verified credential is not the stored one".to_owned(),
            ));
        }
        Ok(PasskeyUse {
            credential: write_passkey(&passkey)?,
            sign_count: result.counter(),
        })
    }
}
