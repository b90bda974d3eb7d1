//! The adapter against a software authenticator: P-256 keys (openssl), `none` attestation,
//! CBOR by hand; and malformed input, which must give `Malformed`, never a panic.

use std::collections::BTreeMap;

use auth_domain::ports::{PasskeyCeremonies, PasskeyError};
use auth_domain::types::UserId;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use webauthn_rs::prelude::Uuid;

use super::WebauthnRp;

const ORIGIN: &str = "http://localhost:3000";

/// Flags of authenticator data: user present, user verified, attested credential data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;
/// Backup eligible, backed up: a synced passkey.
const BE: u8 = 0x08;
const BS: u8 = 0x10;

fn rp() -> WebauthnRp {
    WebauthnRp::new("localhost", ORIGIN, "Auth").unwrap()
}

fn user() -> UserId {
    UserId(Uuid::new_v4())
}

fn sha256(data: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(data)
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(value: &Value) -> Vec<u8> {
    B64.decode(value.as_str().unwrap()).unwrap()
}

/// A platform authenticator holding one discoverable credential.
struct Authenticator {
    key: PKey<Private>,
    x: Vec<u8>,
    y: Vec<u8>,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
    /// Flags it always sets besides UP, UV and AT (backup flags).
    extra_flags: u8,
}

impl Authenticator {
    fn new() -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let ec = EcKey::generate(&group).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .unwrap();
        let mut credential_id = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut credential_id).unwrap();
        Self {
            x: x.to_vec_padded(32).unwrap(),
            y: y.to_vec_padded(32).unwrap(),
            key: PKey::from_ec_key(ec).unwrap(),
            credential_id,
            user_handle: Vec::new(),
            extra_flags: 0,
        }
    }

    /// The public key as a COSE_Key (EC2, ES256, P-256).
    fn cose_key(&self) -> Vec<u8> {
        let map: BTreeMap<Cbor, Cbor> = [
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(-7)),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (Cbor::Integer(-2), Cbor::Bytes(self.x.clone())),
            (Cbor::Integer(-3), Cbor::Bytes(self.y.clone())),
        ]
        .into_iter()
        .collect();
        serde_cbor_2::to_vec(&Cbor::Map(map)).unwrap()
    }

    fn auth_data(rp_id: &str, flags: u8, counter: u32) -> Vec<u8> {
        let mut data = sha256(rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&counter.to_be_bytes());
        data
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// `navigator.credentials.create()` then `toJSON()`, as Chrome gives it.
    fn register(&mut self, options: &Value, origin: &str) -> Value {
        let rp_id = options["rp"]["id"].as_str().unwrap();
        self.user_handle = unb64(&options["user"]["id"]);
        let mut auth_data = Self::auth_data(rp_id, UP | UV | AT | self.extra_flags, 0);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        let id_len = u16::try_from(self.credential_id.len()).unwrap();
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        let attestation: BTreeMap<Cbor, Cbor> = [
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (
                Cbor::Text("authData".into()),
                Cbor::Bytes(auth_data.clone()),
            ),
        ]
        .into_iter()
        .collect();
        let attestation = serde_cbor_2::to_vec(&Cbor::Map(attestation)).unwrap();
        let challenge = options["challenge"].as_str().unwrap();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&Self::client_data("webauthn.create", challenge, origin)),
                "attestationObject": b64(&attestation),
                "transports": ["hybrid", "internal", "smart-card"],
                "publicKeyAlgorithm": -7,
                "publicKey": b64(&self.key.public_key_to_der().unwrap()),
                "authenticatorData": b64(&auth_data),
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {"credProps": {"rk": true}, "prf": {"enabled": false}},
        })
    }

    /// `navigator.credentials.get()` then `toJSON()`, signing `challenge` at `origin`.
    fn assert(&self, challenge: &str, origin: &str, counter: u32, flags: u8) -> Value {
        let auth_data = Self::auth_data("localhost", flags, counter);
        let client_data = Self::client_data("webauthn.get", challenge, origin);
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).unwrap();
        signer.update(&auth_data).unwrap();
        signer.update(&sha256(&client_data)).unwrap();
        let signature = signer.sign_to_vec().unwrap();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(&signature),
                "userHandle": b64(&self.user_handle),
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        })
    }

    /// An assertion for the ceremony's own challenge, at the right origin, with UV.
    fn answer(&self, options: &Value, counter: u32) -> Value {
        self.assert(
            options["challenge"].as_str().unwrap(),
            ORIGIN,
            counter,
            UP | UV | self.extra_flags,
        )
    }
}

/// Registers `auth` for a new user: the user and the stored credential.
fn registered(rp: &WebauthnRp, auth: &mut Authenticator) -> (UserId, String) {
    let user = user();
    let ceremony = rp.start_registration(user, "alice", &[]).unwrap();
    let response = auth.register(&ceremony.options, ORIGIN);
    let new = rp.finish_registration(&ceremony.state, &response).unwrap();
    assert_eq!(new.credential_id, auth.credential_id);
    assert_eq!(new.sign_count, 0);
    (user, new.credential)
}

fn refused(result: Result<impl std::fmt::Debug, PasskeyError>) -> String {
    match result {
        Err(PasskeyError::Refused(reason)) => reason,
        other => panic!("expected Refused, got {other:?}"),
    }
}

fn malformed(result: Result<impl std::fmt::Debug, PasskeyError>) -> String {
    match result {
        Err(PasskeyError::Malformed(reason)) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn is_base64url(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && B64.decode(s).is_ok()
    })
}

// --- relying party configuration -------------------------------------------------------

#[test]
fn accepts_an_origin_and_its_host_or_parent_as_id() {
    for (id, origin) in [
        ("localhost", "http://localhost:3000"),
        ("localhost", "http://localhost:3000/"),
        ("example.com", "https://example.com"),
        ("example.com", "https://login.example.com"),
        ("login.example.com", "https://login.example.com:8443"),
        ("Example.COM", "https://LOGIN.example.com"),
        ("app.test", "http://app.test"),
    ] {
        assert!(
            WebauthnRp::new(id, origin, "Auth").is_ok(),
            "{id} at {origin}"
        );
    }
    // An empty name is the id.
    assert!(WebauthnRp::new("localhost", ORIGIN, "").is_ok());
}

#[test]
fn refuses_an_id_that_does_not_fit_the_origin() {
    for (id, origin, names) in [
        ("localhost", "not a url", "WEBAUTHN_ORIGIN"),
        ("localhost", "localhost:3000", "WEBAUTHN_ORIGIN"),
        ("example.com", "ftp://example.com", "WEBAUTHN_ORIGIN"),
        ("example.com", "https://example.com/app", "WEBAUTHN_ORIGIN"),
        ("example.com", "https://example.com?x=1", "WEBAUTHN_ORIGIN"),
        ("example.com", "https://user@example.com", "WEBAUTHN_ORIGIN"),
        ("127.0.0.1", "http://127.0.0.1:3000", "WEBAUTHN_ORIGIN"),
        ("::1", "http://[::1]:3000", "WEBAUTHN_ORIGIN"),
        ("other.com", "https://example.com", "WEBAUTHN_RP_ID"),
        ("ample.com", "https://example.com", "WEBAUTHN_RP_ID"),
        ("com", "https://example.com", "WEBAUTHN_RP_ID"),
        ("login.example.com", "https://example.com", "WEBAUTHN_RP_ID"),
        ("", "https://example.com", "WEBAUTHN_RP_ID"),
        ("example.com.", "https://example.com", "WEBAUTHN_RP_ID"),
    ] {
        let err = WebauthnRp::new(id, origin, "Auth").unwrap_err().to_string();
        assert!(err.contains(names), "{id} at {origin}: {err}");
    }
}

// --- options -----------------------------------------------------------------------------

#[test]
fn registration_options_are_the_creation_options_json() {
    let rp = rp();
    let user = user();
    let exclude = [vec![1u8, 2, 3], vec![0xfb, 0xff, 0xfe]];
    let ceremony = rp.start_registration(user, "alice", &exclude).unwrap();
    let o = &ceremony.options;
    assert!(o.get("publicKey").is_none(), "the inner object: {o}");
    assert!(is_base64url(&o["challenge"]), "{o}");
    assert!(unb64(&o["challenge"]).len() >= 16);
    assert_eq!(o["rp"], json!({"id": "localhost", "name": "Auth"}));
    assert!(is_base64url(&o["user"]["id"]));
    assert_eq!(unb64(&o["user"]["id"]), user.0.as_bytes());
    assert_eq!(o["user"]["name"], "alice");
    assert_eq!(o["user"]["displayName"], "alice");
    let selection = &o["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");
    assert_eq!(o["attestation"], "none");
    assert!(
        o["pubKeyCredParams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["type"] == "public-key" && p["alg"] == -7)
    );
    let excluded = o["excludeCredentials"].as_array().unwrap();
    assert_eq!(excluded.len(), 2);
    for (entry, id) in excluded.iter().zip(&exclude) {
        assert_eq!(entry["type"], "public-key");
        assert!(is_base64url(&entry["id"]), "{entry}");
        assert_eq!(&unb64(&entry["id"]), id);
    }
    assert!(o["timeout"].as_u64().unwrap() > 0);

    let none = rp.start_registration(user, "alice", &[]).unwrap();
    assert!(none.options.get("excludeCredentials").is_none());
    assert_ne!(none.options["challenge"], o["challenge"]);
}

#[test]
fn authentication_options_are_the_request_options_json() {
    let rp = rp();
    let discoverable = rp.start_authentication(&[]).unwrap().options;
    assert!(discoverable.get("publicKey").is_none());
    assert!(discoverable.get("mediation").is_none());
    assert!(is_base64url(&discoverable["challenge"]));
    assert_eq!(discoverable["rpId"], "localhost");
    assert_eq!(discoverable["userVerification"], "required");
    assert_eq!(discoverable["allowCredentials"], json!([]));

    let mut auth = Authenticator::new();
    let (_, credential) = registered(&rp, &mut auth);
    let o = rp.start_authentication(&[credential]).unwrap().options;
    assert!(o.get("publicKey").is_none());
    assert!(is_base64url(&o["challenge"]));
    assert_eq!(o["rpId"], "localhost");
    assert_eq!(o["userVerification"], "required");
    let allowed = o["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["type"], "public-key");
    assert!(is_base64url(&allowed[0]["id"]));
    assert_eq!(unb64(&allowed[0]["id"]), auth.credential_id);
}

#[test]
fn an_unreadable_stored_credential_is_a_port_error() {
    let rp = rp();
    let err = rp.start_authentication(&["{}".to_owned()]).unwrap_err();
    assert!(matches!(err, PasskeyError::Port(_)), "{err:?}");
}

// --- the ceremonies, end to end ----------------------------------------------------------

#[test]
fn registers_then_authenticates_with_a_counter_moving_forward() {
    let rp = rp();
    let mut auth = Authenticator::new();
    let (_, credential) = registered(&rp, &mut auth);

    let ceremony = rp
        .start_authentication(std::slice::from_ref(&credential))
        .unwrap();
    let response = auth.answer(&ceremony.options, 1);
    let identity = rp.identify(&response).unwrap();
    assert_eq!(identity.credential_id, auth.credential_id);
    assert_eq!(
        identity.user.map(|u| u.0.as_bytes().to_vec()),
        Some(auth.user_handle.clone())
    );
    let first = rp
        .finish_authentication(&ceremony.state, &response, &credential)
        .unwrap();
    assert_eq!(first.sign_count, 1);

    let ceremony = rp
        .start_authentication(std::slice::from_ref(&first.credential))
        .unwrap();
    let response = auth.answer(&ceremony.options, 2);
    let second = rp
        .finish_authentication(&ceremony.state, &response, &first.credential)
        .unwrap();
    assert_eq!(second.sign_count, 2);

    // The same counter again (a cloned authenticator, or a replay), then one going back.
    for counter in [2, 1] {
        let ceremony = rp
            .start_authentication(std::slice::from_ref(&second.credential))
            .unwrap();
        let response = auth.answer(&ceremony.options, counter);
        let reason =
            refused(rp.finish_authentication(&ceremony.state, &response, &second.credential));
        assert!(
            reason.contains("ompromise") || reason.contains("counter"),
            "{reason}"
        );
    }
}

#[test]
fn the_counter_is_checked_against_the_stored_credential() {
    // A ceremony starts at counter 1; another sign-in takes the stored credential to 5
    // before it finishes; the first then answers with 3: forward for its start, backward
    // for the stored credential.
    let rp = rp();
    let mut auth = Authenticator::new();
    let (_, credential) = registered(&rp, &mut auth);
    let ceremony = rp
        .start_authentication(std::slice::from_ref(&credential))
        .unwrap();
    let one = rp
        .finish_authentication(
            &ceremony.state,
            &auth.answer(&ceremony.options, 1),
            &credential,
        )
        .unwrap();
    let slow = rp
        .start_authentication(std::slice::from_ref(&one.credential))
        .unwrap();
    let fast = rp
        .start_authentication(std::slice::from_ref(&one.credential))
        .unwrap();
    let five = rp
        .finish_authentication(&fast.state, &auth.answer(&fast.options, 5), &one.credential)
        .unwrap();
    assert_eq!(five.sign_count, 5);
    let reason = refused(rp.finish_authentication(
        &slow.state,
        &auth.answer(&slow.options, 3),
        &five.credential,
    ));
    assert_eq!(reason, "signature counter did not increase (3 after 5)");
}

#[test]
fn an_authenticator_without_a_counter_keeps_zero() {
    let rp = rp();
    let mut auth = Authenticator::new();
    let (_, mut credential) = registered(&rp, &mut auth);
    for _ in 0..2 {
        let ceremony = rp
            .start_authentication(std::slice::from_ref(&credential))
            .unwrap();
        let used = rp
            .finish_authentication(
                &ceremony.state,
                &auth.answer(&ceremony.options, 0),
                &credential,
            )
            .unwrap();
        assert_eq!(used.sign_count, 0);
        credential = used.credential;
    }
}

#[test]
fn a_synced_passkey_without_a_counter_works_both_ways() {
    // What iCloud Keychain or Google Password Manager give: backed up, counter always 0.
    let rp = rp();
    let mut auth = Authenticator::new();
    auth.extra_flags = BE | BS;
    let (user, mut credential) = registered(&rp, &mut auth);
    for known_user in [true, false, true] {
        let credentials = if known_user {
            vec![credential.clone()]
        } else {
            Vec::new()
        };
        let ceremony = rp.start_authentication(&credentials).unwrap();
        let response = auth.answer(&ceremony.options, 0);
        assert_eq!(rp.identify(&response).unwrap().user, Some(user));
        let used = rp
            .finish_authentication(&ceremony.state, &response, &credential)
            .unwrap();
        assert_eq!(used.sign_count, 0);
        credential = used.credential;
    }
    // Backed up without being eligible is refused.
    let ceremony = rp
        .start_authentication(std::slice::from_ref(&credential))
        .unwrap();
    let challenge = ceremony.options["challenge"].as_str().unwrap();
    let response = auth.assert(challenge, ORIGIN, 0, UP | UV | BS);
    refused(rp.finish_authentication(&ceremony.state, &response, &credential));
}

#[test]
fn refuses_a_wrong_origin_challenge_signature_or_missing_verification() {
    let rp = rp();
    let mut auth = Authenticator::new();
    let (_, credential) = registered(&rp, &mut auth);
    let ceremony = rp
        .start_authentication(std::slice::from_ref(&credential))
        .unwrap();
    let challenge = ceremony.options["challenge"].as_str().unwrap();
    let finish =
        |response: &Value| rp.finish_authentication(&ceremony.state, response, &credential);

    for origin in [
        "http://evil.test:3000",
        "http://localhost:4000",
        "https://localhost:3000",
    ] {
        let reason = refused(finish(&auth.assert(challenge, origin, 1, UP | UV)));
        assert!(reason.contains("Origin"), "{origin}: {reason}");
    }
    let other = rp
        .start_authentication(std::slice::from_ref(&credential))
        .unwrap();
    let reason = refused(finish(&auth.answer(&other.options, 1)));
    assert!(reason.contains("Challenge"), "{reason}");
    let reason = refused(finish(&auth.assert(challenge, ORIGIN, 1, UP)));
    assert!(reason.contains("Verified"), "{reason}");

    let mut tampered = auth.answer(&ceremony.options, 1);
    let mut signature = unb64(&tampered["response"]["signature"]);
    let last = signature.len() - 1;
    signature[last] ^= 1;
    tampered["response"]["signature"] = json!(b64(&signature));
    refused(finish(&tampered));

    // None of that used the ceremony up in the adapter (the cache makes it single use).
    assert!(finish(&auth.answer(&ceremony.options, 1)).is_ok());
}

#[test]
fn refuses_a_registration_at_another_origin_or_for_another_challenge() {
    let rp = rp();
    let mut auth = Authenticator::new();
    let ceremony = rp.start_registration(user(), "alice", &[]).unwrap();
    let response = auth.register(&ceremony.options, "http://evil.test:3000");
    refused(rp.finish_registration(&ceremony.state, &response));
    let other = rp.start_registration(user(), "alice", &[]).unwrap();
    let response = auth.register(&other.options, ORIGIN);
    refused(rp.finish_registration(&ceremony.state, &response));
    // An excluded credential registering again.
    let excluded = rp
        .start_registration(user(), "alice", std::slice::from_ref(&auth.credential_id))
        .unwrap();
    let response = auth.register(&excluded.options, ORIGIN);
    // (webauthn-rs names this CredentialAlteredAlgFromRequest.)
    refused(rp.finish_registration(&excluded.state, &response));
}

#[test]
fn refuses_a_credential_the_ceremony_did_not_allow() {
    let rp = rp();
    let mut alice = Authenticator::new();
    let (_, alice_credential) = registered(&rp, &mut alice);
    let mut mallory = Authenticator::new();
    let (_, mallory_credential) = registered(&rp, &mut mallory);
    let ceremony = rp
        .start_authentication(std::slice::from_ref(&alice_credential))
        .unwrap();
    let response = mallory.answer(&ceremony.options, 1);
    refused(rp.finish_authentication(&ceremony.state, &response, &mallory_credential));
    // And the stored credential must be the one the assertion names.
    let response = alice.answer(&ceremony.options, 1);
    refused(rp.finish_authentication(&ceremony.state, &response, &mallory_credential));
}

#[test]
fn a_discoverable_authentication_finds_the_user_by_its_handle() {
    let rp = rp();
    let mut auth = Authenticator::new();
    let (user, credential) = registered(&rp, &mut auth);
    let ceremony = rp.start_authentication(&[]).unwrap();
    let response = auth.answer(&ceremony.options, 1);
    let identity = rp.identify(&response).unwrap();
    assert_eq!(identity.user, Some(user));
    assert_eq!(identity.credential_id, auth.credential_id);
    let used = rp
        .finish_authentication(&ceremony.state, &response, &credential)
        .unwrap();
    assert_eq!(used.sign_count, 1);

    // Backwards against the stored credential.
    let ceremony = rp.start_authentication(&[]).unwrap();
    let response = auth.answer(&ceremony.options, 1);
    refused(rp.finish_authentication(&ceremony.state, &response, &used.credential));

    // Without a user handle: no user to identify, and refused.
    let ceremony = rp.start_authentication(&[]).unwrap();
    let mut response = auth.answer(&ceremony.options, 2);
    response["response"]["userHandle"] = Value::Null;
    assert_eq!(rp.identify(&response).unwrap().user, None);
    refused(rp.finish_authentication(&ceremony.state, &response, &used.credential));
    response["response"]
        .as_object_mut()
        .unwrap()
        .remove("userHandle");
    assert_eq!(rp.identify(&response).unwrap().user, None);
}

// --- states ------------------------------------------------------------------------------

#[test]
fn a_state_finishes_only_its_own_kind_of_ceremony() {
    let rp = rp();
    let mut auth = Authenticator::new();
    let registration = rp.start_registration(user(), "alice", &[]).unwrap();
    let registration_response = auth.register(&registration.options, ORIGIN);
    let new = rp
        .finish_registration(&registration.state, &registration_response)
        .unwrap();

    let authentication = rp
        .start_authentication(std::slice::from_ref(&new.credential))
        .unwrap();
    let discoverable = rp.start_authentication(&[]).unwrap();
    let assertion = auth.answer(&authentication.options, 1);

    refused(rp.finish_authentication(&registration.state, &assertion, &new.credential));
    refused(rp.finish_registration(&authentication.state, &registration_response));
    refused(rp.finish_registration(&discoverable.state, &registration_response));
    // An authentication's assertion against a discoverable state: another challenge.
    refused(rp.finish_authentication(&discoverable.state, &assertion, &new.credential));

    for state in ["", "{}", "not json", r#"{"kind":"registration"}"#] {
        let err = rp
            .finish_registration(state, &registration_response)
            .unwrap_err();
        assert!(matches!(err, PasskeyError::Port(_)), "{state}: {err:?}");
        let err = rp
            .finish_authentication(state, &assertion, &new.credential)
            .unwrap_err();
        assert!(matches!(err, PasskeyError::Port(_)), "{state}: {err:?}");
    }
    let err = rp
        .finish_authentication(&authentication.state, &assertion, "not a passkey")
        .unwrap_err();
    assert!(matches!(err, PasskeyError::Port(_)), "{err:?}");
}

// --- malformed responses -----------------------------------------------------------------

/// Variants of a valid response with one thing broken.
fn broken(valid: &Value, binary: &[&str]) -> Vec<Value> {
    let mut out = vec![
        Value::Null,
        json!(true),
        json!(12),
        json!("a string"),
        json!([valid.clone()]),
        json!({}),
    ];
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = valid.clone();
        f(&mut v);
        v
    };
    for key in ["rawId", "type", "response"] {
        out.push(with(&|v| {
            v.as_object_mut().unwrap().remove(key);
        }));
        out.push(with(&|v| v[key] = json!(42)));
        out.push(with(&|v| v[key] = Value::Null));
    }
    out.push(with(&|v| v["type"] = json!("password")));
    out.push(with(&|v| v["response"] = json!("text")));
    out.push(with(&|v| v["response"] = json!([1, 2])));
    out.push(with(&|v| v["rawId"] = json!("not base64url!")));
    out.push(with(&|v| v["rawId"] = json!([1, 2, 3])));
    for key in binary {
        out.push(with(&|v| {
            v["response"].as_object_mut().unwrap().remove(*key);
        }));
        out.push(with(&|v| v["response"][*key] = json!(7)));
        out.push(with(&|v| v["response"][*key] = json!({"a": 1})));
        out.push(with(&|v| v["response"][*key] = json!("%%%")));
    }
    out
}

#[test]
fn malformed_registration_responses_are_malformed() {
    let rp = rp();
    let mut auth = Authenticator::new();
    let ceremony = rp.start_registration(user(), "alice", &[]).unwrap();
    let valid = auth.register(&ceremony.options, ORIGIN);
    for response in broken(&valid, &["clientDataJSON", "attestationObject"]) {
        malformed(rp.finish_registration(&ceremony.state, &response));
    }
    for key in ["clientDataJSON", "attestationObject"] {
        let mut response = valid.clone();
        response["response"][key] = json!(b64(b"\xff\x00 not what it should be"));
        let err = rp
            .finish_registration(&ceremony.state, &response)
            .unwrap_err();
        assert!(
            matches!(err, PasskeyError::Malformed(_) | PasskeyError::Refused(_)),
            "{key}: {err:?}"
        );
    }
    let mut response = valid.clone();
    response["response"]["transports"] = json!("usb");
    malformed(rp.finish_registration(&ceremony.state, &response));
    // The valid one still registers.
    assert!(rp.finish_registration(&ceremony.state, &valid).is_ok());
}

#[test]
fn malformed_authentication_responses_are_malformed() {
    let rp = rp();
    let mut auth = Authenticator::new();
    let (_, credential) = registered(&rp, &mut auth);
    let ceremony = rp
        .start_authentication(std::slice::from_ref(&credential))
        .unwrap();
    let valid = auth.answer(&ceremony.options, 1);
    for response in broken(
        &valid,
        &["clientDataJSON", "authenticatorData", "signature"],
    ) {
        malformed(rp.identify(&response));
        malformed(rp.finish_authentication(&ceremony.state, &response, &credential));
    }
    for handle in [
        json!(7),
        json!("%%%"),
        json!(b64(b"abc")),
        json!(b64(&[0u8; 17])),
    ] {
        let mut response = valid.clone();
        response["response"]["userHandle"] = handle;
        malformed(rp.identify(&response));
    }
    let mut response = valid.clone();
    response["response"]["authenticatorData"] = json!(b64(b"short"));
    let err = rp
        .finish_authentication(&ceremony.state, &response, &credential)
        .unwrap_err();
    assert!(
        matches!(err, PasskeyError::Malformed(_) | PasskeyError::Refused(_)),
        "{err:?}"
    );
    assert!(
        rp.finish_authentication(&ceremony.state, &valid, &credential)
            .is_ok()
    );
}

#[test]
fn the_default_relying_party_is_the_host_and_origin_of_a_url() {
    use crate::default_relying_party;
    assert_eq!(
        default_relying_party("https://App.Example.com:8443/welcome?x=1"),
        Some((
            "app.example.com".to_owned(),
            "https://app.example.com:8443".to_owned()
        ))
    );
    assert_eq!(
        default_relying_party("https://example.com:443/"),
        Some(("example.com".to_owned(), "https://example.com".to_owned()))
    );
    assert_eq!(
        default_relying_party("http://[::1]:3000"),
        Some(("::1".to_owned(), "http://[::1]:3000".to_owned()))
    );
    assert_eq!(default_relying_party("not a url"), None);
}
