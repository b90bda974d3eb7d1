//! The audit log: one event per security-relevant outcome, on target `audit` with the
//! message `audit` (docs/architecture.md, "Audit log", lists the events). An event carries
//! ids, the client IP and the identifier's blind index, never an email, phone, name,
//! password or token; its request id comes from the request's span.

use std::net::IpAddr;

use auth_domain::types::{SessionId, UserId};
use tracing::field::display;

/// One audit event: built, then [emitted](Audit::emit).
#[derive(Debug, Clone)]
#[must_use = "an audit event is written only by `emit`"]
pub struct Audit {
    event: &'static str,
    success: bool,
    reason: Option<&'static str>,
    user: Option<UserId>,
    session: Option<SessionId>,
    ip: Option<IpAddr>,
    identifier_index: Option<String>,
    method: Option<&'static str>,
}

impl Audit {
    fn new(event: &'static str, success: bool) -> Self {
        Self {
            event,
            success,
            reason: None,
            user: None,
            session: None,
            ip: None,
            identifier_index: None,
            method: None,
        }
    }

    /// Which second-factor method (`totp`, `recovery_code`, `passkey`).
    pub fn method(mut self, method: Option<&'static str>) -> Self {
        self.method = method.or(self.method);
        self
    }

    /// `event` happened (`outcome="success"`).
    pub fn success(event: &'static str) -> Self {
        Self::new(event, true)
    }

    /// `event` was attempted and refused, or is an alarm (`outcome="failure"`).
    pub fn failure(event: &'static str) -> Self {
        Self::new(event, false)
    }

    /// Why: the problem code the client got.
    pub fn reason(mut self, code: &'static str) -> Self {
        self.reason = Some(code);
        self
    }

    /// Whose account.
    pub fn user(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    /// Which session.
    pub fn session(mut self, session: SessionId) -> Self {
        self.session = Some(session);
        self
    }

    /// The client IP (after `TRUSTED_PROXIES`).
    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    /// Whose account, when known.
    pub fn maybe_user(mut self, user: Option<UserId>) -> Self {
        self.user = user.or(self.user);
        self
    }

    /// The blind index (hex) of a login identifier, when one was given.
    pub fn identifier_index(mut self, index: Option<String>) -> Self {
        self.identifier_index = index.or(self.identifier_index);
        self
    }

    /// Writes the event (level INFO; absent fields are left out).
    pub fn emit(self) {
        let outcome = if self.success { "success" } else { "failure" };
        crate::telemetry::audit_event(self.event, outcome);
        let user_id = self.user.map(|u| display(u.0));
        let session_id = self.session.map(|s| display(s.0));
        let ip = self.ip.map(display);
        tracing::info!(
            target: "audit",
            event = self.event,
            outcome,
            reason = self.reason,
            user_id,
            session_id,
            ip,
            identifier_index = self.identifier_index.as_deref(),
            method = self.method,
            "audit"
        );
    }
}
