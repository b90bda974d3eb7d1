//! What the use cases report having done, for the audit log and metrics.
//!
//! A use case decides what happened (a login failed and locked its identifier, a rotated
//! refresh token came back, a mail was queued) and publishes it through the [`EventSink`]
//! port; an adapter turns each event into audit lines, counters or a wake-up. Events carry
//! ids, problem codes and keyed digests only: never an email, a name, a password or a token.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::model::MfaMethod;
use crate::policy::RateDecision;
use crate::types::{SessionId, UserId};

/// Which re-authenticated change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reauthentication {
    /// A new email address (`PUT /users/profile` with `email`).
    ChangeEmail,
    /// `POST /users/change-password`.
    ChangePassword,
    /// `DELETE /users/delete-account`.
    DeleteAccount,
}

impl Reauthentication {
    /// Stable name (a metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChangeEmail => "change_email",
            Self::ChangePassword => "change_password",
            Self::DeleteAccount => "delete_account",
        }
    }
}

/// Something a use case did or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A login started a session.
    LoginSucceeded {
        /// Whose.
        user: UserId,
        /// The new session.
        session: SessionId,
    },
    /// A login was refused; `reason` is the problem code the client got.
    LoginFailed {
        /// The problem code (`invalid_credentials`, `account_locked`, `rate_limited`, …).
        reason: &'static str,
        /// The account, when the identifier named one.
        user: Option<UserId>,
        /// The blind index (hex) of the identifier, when one was given.
        identifier_index: Option<String>,
    },
    /// This failed login locked its identifier.
    AccountLocked {
        /// The account, when the identifier named one.
        user: Option<UserId>,
        /// The blind index (hex) of the locked identifier.
        identifier_index: Option<String>,
    },
    /// A request was refused by a rate limit.
    RateLimited {
        /// The limited action ([`crate::Action::as_str`] or [`Reauthentication::as_str`]).
        action: &'static str,
    },
    /// A refresh token was rotated.
    TokensRefreshed,
    /// A rotated refresh token was presented again: its session is revoked.
    RefreshReused {
        /// Whose, when known.
        user: Option<UserId>,
        /// The revoked session, when known.
        session: Option<SessionId>,
    },
    /// A sign-out.
    LoggedOut {
        /// Whose.
        user: UserId,
        /// The session of the token used.
        session: SessionId,
        /// Every session of the user, not only this one.
        all: bool,
    },
    /// A mailed verification link was followed.
    EmailVerified {
        /// Whose address.
        user: UserId,
        /// A pending new address replaced the old one (rather than a registration's
        /// address being verified).
        email_changed: bool,
    },
    /// A password was reset through a mailed link; every session ended.
    PasswordReset {
        /// Whose.
        user: UserId,
    },
    /// A signed-in user changed their password; their other sessions ended.
    PasswordChanged {
        /// Whose.
        user: UserId,
        /// The session that did it.
        session: SessionId,
    },
    /// A new email address is pending until its link is followed.
    EmailChangeRequested {
        /// Whose.
        user: UserId,
        /// The session that asked.
        session: SessionId,
    },
    /// A re-authenticated change was refused (wrong password or rate limited).
    ReauthenticationFailed {
        /// Which change.
        change: Reauthentication,
        /// The problem code (`invalid_credentials` or `rate_limited`).
        reason: &'static str,
        /// Whose.
        user: UserId,
        /// The session that asked.
        session: SessionId,
    },
    /// An account was deleted.
    AccountDeleted {
        /// Whose.
        user: UserId,
        /// The session that did it.
        session: SessionId,
    },
    /// A user revoked one of their sessions.
    SessionRevoked {
        /// Whose.
        user: UserId,
        /// The revoked session (maybe not the caller's own).
        session: SessionId,
    },
    /// A mail was queued in the outbox (the worker may send it at once).
    MailQueued,
    /// A login's password was right; it waits for its second factor.
    MfaRequired {
        /// Whose.
        user: UserId,
    },
    /// A second factor completed a login (reported with the `LoginSucceeded` it led to).
    MfaVerified {
        /// Whose.
        user: UserId,
        /// How.
        method: MfaMethod,
    },
    /// A second factor was refused (a wrong or replayed code, a passkey that did not
    /// verify, a dead `mfa_token`, a lock, a limit); `reason` is the problem code.
    MfaFailed {
        /// The problem code (`invalid_mfa_code`, `invalid_token`, `account_locked`, …).
        reason: &'static str,
        /// Whose, when known.
        user: Option<UserId>,
        /// Which method was tried, when known.
        method: Option<MfaMethod>,
    },
    /// A second factor was added (TOTP confirmed, a passkey registered).
    FactorAdded {
        /// Whose.
        user: UserId,
        /// Which.
        method: MfaMethod,
    },
    /// A second factor was removed.
    FactorRemoved {
        /// Whose.
        user: UserId,
        /// Which.
        method: MfaMethod,
    },
    /// A recovery code was used (to sign in or to remove a factor).
    RecoveryCodeUsed {
        /// Whose.
        user: UserId,
    },
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesRenewed {
        /// Whose.
        user: UserId,
    },
}

/// Where a request comes from, and what its rate limits decided (for the `RateLimit`
/// headers of the answer, success or error).
#[derive(Debug, Clone, Default)]
pub struct ClientContext {
    /// Client IP (after trusted proxies).
    pub ip: Option<IpAddr>,
    /// User-Agent header.
    pub user_agent: Option<String>,
    rate: Arc<Mutex<Option<RateDecision>>>,
}

impl ClientContext {
    /// A request from `ip` with `user_agent`.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<String>) -> Self {
        Self {
            ip,
            user_agent,
            rate: Arc::default(),
        }
    }

    /// The same request with its IP left out (for the limits counted by identifier only);
    /// the decisions taken stay shared.
    pub(crate) fn without_ip(&self) -> Self {
        Self {
            ip: None,
            user_agent: self.user_agent.clone(),
            rate: Arc::clone(&self.rate),
        }
    }

    /// Keeps `decision` if it leaves fewer requests than the one kept so far.
    pub fn tighten(&self, decision: RateDecision) {
        let mut kept = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.is_none_or(|k| decision.remaining < k.remaining) {
            *kept = Some(decision);
        }
    }

    /// The tightest rate-limit decision taken for this request, if any was.
    pub fn rate(&self) -> Option<RateDecision> {
        *self.rate.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The port the use cases report [`Event`]s through. Publishing cannot fail and must not
/// block: an adapter that ships events elsewhere buffers them.
pub trait EventSink: Send + Sync + 'static {
    /// Reports `event`, which happened for a request from `client`.
    fn publish(&self, event: Event, client: &ClientContext);
}

/// Keeps every event (for tests and embedders that poll).
#[derive(Debug, Clone, Default)]
pub struct RecordedEvents(Arc<Mutex<Vec<Event>>>);

impl RecordedEvents {
    /// Every event so far, oldest first.
    pub fn all(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the events so far.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl EventSink for RecordedEvents {
    fn publish(&self, event: Event, _client: &ClientContext) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}
