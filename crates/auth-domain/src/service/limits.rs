//! Rate limits: which actions are limited, and how a request is counted.

use std::net::IpAddr;

use crate::error::AuthError;
use crate::events::{ClientContext, Event};
use crate::policy::RateDecision;
use crate::ports::{IndexPurpose, Keyring, RateLimiter};

use super::{Adapters, AuthService};

/// Actions that are rate limited, named in keys and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// POST /auth/register
    Register,
    /// POST /auth/login
    Login,
    /// POST /auth/verify-email
    VerifyEmail,
    /// POST /auth/resend-verification
    ResendVerification,
    /// POST /auth/refresh-token
    Refresh,
    /// POST /auth/logout
    Logout,
    /// POST /auth/forgot-password
    ForgotPassword,
    /// POST /auth/reset-password
    ResetPassword,
    /// POST /auth/mfa/verify
    MfaVerify,
    /// POST /auth/passkey/start and /auth/passkey/finish
    Passkey,
}

impl Action {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::VerifyEmail => "verify_email",
            Self::ResendVerification => "resend_verification",
            Self::Refresh => "refresh",
            Self::Logout => "logout",
            Self::ForgotPassword => "forgot_password",
            Self::ResetPassword => "reset_password",
            Self::MfaVerify => "mfa_verify",
            Self::Passkey => "passkey",
        }
    }
}

impl<A: Adapters> AuthService<A> {
    /// Counts a request to `action` against the per-IP and per-identifier limits. Returns
    /// the tighter decision (for `RateLimit` headers), or `RateLimited`.
    ///
    /// The per-IP limit counts an IPv4 address (IPv4-mapped IPv6 included) by itself, and an
    /// IPv6 address by its /64 prefix: that is the smallest block a network hands out (one
    /// LAN, one customer), so one holder has 2^64 addresses to rotate through. Two addresses
    /// of one /64 share the limit; neighbouring /64s do not.
    #[tracing::instrument(
        target = "auth_trace",
        name = "throttle",
        skip_all,
        fields(use_case = "throttle")
    )]
    pub async fn throttle(
        &self,
        action: Action,
        ip: Option<IpAddr>,
        identifier: Option<&str>,
    ) -> Result<RateDecision, AuthError> {
        let now = self.now();
        let mut tightest: Option<RateDecision> = None;
        let mut keys = Vec::with_capacity(2);
        if let Some(ip) = ip {
            let subject = match ip.to_canonical() {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => {
                    let prefix = u128::from(v6) & (u128::MAX << 64);
                    format!("{}/64", std::net::Ipv6Addr::from(prefix))
                }
            };
            keys.push((
                format!("rl:{}:ip:{subject}", action.as_str()),
                self.policy.rate.per_ip,
            ));
        }
        if let Some(id) = identifier
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
        {
            let index = self.ports.keys.blind_index(IndexPurpose::Identifier, &id);
            keys.push((
                format!("rl:{}:id:{}", action.as_str(), index.to_hex()),
                self.policy.rate.per_identifier,
            ));
        }
        for (key, limit) in keys {
            let decision = self.ports.cache.hit(&key, limit, now).await?;
            if !decision.allowed {
                return Err(AuthError::RateLimited(decision));
            }
            if tightest.is_none_or(|t| decision.remaining < t.remaining) {
                tightest = Some(decision);
            }
        }
        Ok(tightest.unwrap_or(crate::policy::gcra(self.policy.rate.per_ip, None, now).1))
    }

    /// [`Self::throttle`] for a request of `client`: keeps the decision in the context (for
    /// the answer's `RateLimit` headers) and reports a refusal.
    pub(crate) async fn throttle_client(
        &self,
        action: Action,
        client: &ClientContext,
        identifier: Option<&str>,
    ) -> Result<(), AuthError> {
        match self.throttle(action, client.ip, identifier).await {
            Ok(decision) => {
                client.tighten(decision);
                Ok(())
            }
            Err(err) => {
                if matches!(err, AuthError::RateLimited(_)) {
                    self.publish(
                        Event::RateLimited {
                            action: action.as_str(),
                        },
                        client,
                    );
                }
                Err(err)
            }
        }
    }
}
