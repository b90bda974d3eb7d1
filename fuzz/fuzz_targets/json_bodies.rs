//! Request bodies as the service reads them: bytes → JSON (objects only, as
//! `auth_http::extract::JsonObject` takes them) → each endpoint's body type → the domain's
//! parsers for every field. Nothing may panic; every refusal is an ordinary error.
#![no_main]

use auth_domain::types::{Email, Password, PersonName, Username};
use auth_http::dto::{
    ChangePasswordRequest, DeleteAccountRequest, EmailRequest, LoginRequest, LogoutRequest,
    ProfileUpdateRequest, RefreshRequest, RegisterRequest, ResetPasswordRequest, TokenRequest,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

fn read<T: DeserializeOwned>(value: &serde_json::Value) -> Option<T> {
    serde_json::from_value(value.clone()).ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if !value.is_object() {
        return;
    }
    if let Some(r) = read::<RegisterRequest>(&value) {
        let _ = Email::parse(&r.email);
        let _ = Username::parse(&r.username);
        let _ = Password::parse(&r.password);
        let _ = PersonName::parse(&r.name);
        let _ = PersonName::parse(&r.surname);
    }
    if let Some(r) = read::<LoginRequest>(&value) {
        let _ = Password::presented(&r.password);
        if let Some(u) = r.username {
            let _ = Username::parse(&u);
            let _ = Email::parse(&u);
        }
    }
    if let Some(r) = read::<EmailRequest>(&value) {
        let _ = Email::parse(&r.email);
    }
    if let Some(r) = read::<ProfileUpdateRequest>(&value) {
        if let Some(u) = r.username {
            let _ = Username::parse(&u);
        }
        if let Some(n) = r.name {
            let _ = PersonName::parse(&n);
        }
        if let Some(e) = r.email {
            let _ = Email::parse(&e);
        }
    }
    if let Some(r) = read::<ResetPasswordRequest>(&value) {
        let _ = Password::parse(&r.new_password);
    }
    if let Some(r) = read::<ChangePasswordRequest>(&value) {
        let _ = Password::presented(&r.current_password);
        let _ = Password::parse(&r.new_password);
    }
    let _ = read::<DeleteAccountRequest>(&value);
    let _ = read::<RefreshRequest>(&value);
    let _ = read::<TokenRequest>(&value);
    let _ = read::<LogoutRequest>(&value);
});
