//! Claims: what access and device tokens carry, and how each is checked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_domain::model::{AccessClaims, DeviceClaims};
use auth_domain::ports::{PortError, TokenCodec, TokenRejection};
use auth_domain::types::{SessionId, Timestamp, UserId};
use josekit::Value;
use josekit::jwt::JwtPayload;
use uuid::Uuid;

use super::{ACCESS_TYP, DEVICE_TYP, JwtCodec};

pub(super) fn to_system(t: Timestamp) -> SystemTime {
    let secs = u64::try_from(t.timestamp()).unwrap_or(0);
    UNIX_EPOCH
        + Duration::from_secs(secs)
        + Duration::from_nanos(u64::from(t.timestamp_subsec_nanos()))
}

pub(super) fn secs(t: Timestamp) -> Value {
    Value::from(t.timestamp().max(0))
}

pub(super) fn from_system(t: SystemTime) -> Option<Timestamp> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    chrono::DateTime::from_timestamp(i64::try_from(d.as_secs()).ok()?, 0)
}

pub(super) fn str_claim<'a>(payload: &'a JwtPayload, name: &str) -> Option<&'a str> {
    payload.claim(name).and_then(Value::as_str)
}

/// A claim that must hold a UUID; anything else makes the token invalid.
pub(super) fn uuid_claim(raw: Option<&str>) -> Result<Uuid, TokenRejection> {
    raw.and_then(|s| Uuid::parse_str(s).ok())
        .ok_or(TokenRejection::Invalid)
}

impl JwtCodec {
    /// Every check of an access token: signature, header, shared claims, its own claims.
    fn verify_access_fully(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<AccessClaims, TokenRejection> {
        let p = self.verify(token, ACCESS_TYP, now)?;
        if str_claim(&p, "typ") != Some("access") {
            return Err(TokenRejection::Invalid);
        }
        Ok(AccessClaims {
            user_id: UserId(uuid_claim(p.subject())?),
            session_id: SessionId(uuid_claim(str_claim(&p, "sid"))?),
            jti: uuid_claim(p.jwt_id())?,
            username: str_claim(&p, "username").unwrap_or_default().to_owned(),
            issued_at: p
                .issued_at()
                .and_then(from_system)
                .ok_or(TokenRejection::Invalid)?,
            expires_at: p
                .expires_at()
                .and_then(from_system)
                .ok_or(TokenRejection::Invalid)?,
        })
    }

    fn base_payload(
        &self,
        subject: &str,
        issued_at: Timestamp,
        expires_at: Timestamp,
        kind: &str,
    ) -> Result<JwtPayload, PortError> {
        let mut p = JwtPayload::new();
        p.set_issuer(self.issuer.clone());
        p.set_audience(vec![self.audience.clone()]);
        p.set_subject(subject);
        p.set_claim("iat", Some(secs(issued_at)))
            .map_err(PortError::unexpected)?;
        p.set_claim("nbf", Some(secs(issued_at)))
            .map_err(PortError::unexpected)?;
        p.set_claim("exp", Some(secs(expires_at)))
            .map_err(PortError::unexpected)?;
        p.set_claim("typ", Some(Value::from(kind)))
            .map_err(PortError::unexpected)?;
        Ok(p)
    }
}

impl TokenCodec for JwtCodec {
    fn issue_access(&self, claims: &AccessClaims) -> Result<String, PortError> {
        let mut p = self.base_payload(
            &claims.user_id.to_string(),
            claims.issued_at,
            claims.expires_at,
            "access",
        )?;
        p.set_jwt_id(claims.jti.to_string());
        p.set_claim("sid", Some(Value::from(claims.session_id.to_string())))
            .map_err(PortError::unexpected)?;
        p.set_claim("username", Some(Value::from(claims.username.clone())))
            .map_err(PortError::unexpected)?;
        self.sign(ACCESS_TYP, &p)
    }

    fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenRejection> {
        let Some(recent) = &self.recent else {
            return self.verify_access_fully(token, now);
        };
        if let Some(claims) = recent.get(token) {
            return if claims.expires_at > now {
                Ok(claims)
            } else {
                recent.remove(token);
                Err(TokenRejection::Expired)
            };
        }
        let claims = self.verify_access_fully(token, now)?;
        recent.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn issue_device(&self, claims: &DeviceClaims) -> Result<String, PortError> {
        let now = chrono::Utc::now().min(claims.expires_at);
        let mut p = self.base_payload(
            &claims.user_id.to_string(),
            now,
            claims.expires_at,
            "device",
        )?;
        p.set_claim("did", Some(Value::from(claims.device_id.to_string())))
            .map_err(PortError::unexpected)?;
        self.sign(DEVICE_TYP, &p)
    }

    fn verify_device(&self, token: &str, now: Timestamp) -> Result<DeviceClaims, TokenRejection> {
        let p = self.verify(token, DEVICE_TYP, now)?;
        if str_claim(&p, "typ") != Some("device") {
            return Err(TokenRejection::Invalid);
        }
        Ok(DeviceClaims {
            user_id: UserId(uuid_claim(p.subject())?),
            device_id: uuid_claim(str_claim(&p, "did"))?,
            expires_at: p
                .expires_at()
                .and_then(from_system)
                .ok_or(TokenRejection::Invalid)?,
        })
    }
}
