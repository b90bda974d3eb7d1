//! The events adapter: what the use cases report becomes audit lines, metrics, and a
//! wake-up of the outbox worker. The one place that decides which event is audited how
//! (docs/architecture.md, "Audit log", lists the audit events).

use std::sync::Arc;

use auth_domain::events::{ClientContext, Event, EventSink, Reauthentication};
use auth_domain::model::MfaMethod;
use tokio::sync::Notify;

use crate::audit::Audit;
use crate::telemetry;

/// Turns [`Event`]s into audit lines and metrics, and wakes the outbox worker when a mail
/// is queued.
#[derive(Debug, Clone, Default)]
pub struct AppEvents {
    mail_queued: Arc<Notify>,
}

impl AppEvents {
    /// Notified each time a use case queues a mail (the outbox worker waits on it).
    pub fn mail_queued(&self) -> Arc<Notify> {
        Arc::clone(&self.mail_queued)
    }
}

impl EventSink for AppEvents {
    fn publish(&self, event: Event, client: &ClientContext) {
        let ip = client.ip;
        match event {
            Event::MailQueued => self.mail_queued.notify_one(),
            Event::RateLimited { action } => telemetry::rate_limited(action),
            Event::TokensRefreshed => telemetry::tokens_refreshed(),
            Event::LoginSucceeded { user, session } => {
                telemetry::login("success");
                telemetry::tokens_issued();
                Audit::success("login.succeeded")
                    .user(user)
                    .session(session)
                    .ip(ip)
                    .emit();
            }
            Event::LoginFailed {
                reason,
                user,
                identifier_index,
            } => {
                telemetry::login(reason);
                if let Some(index) = &identifier_index {
                    telemetry::login_failed_for(index);
                }
                Audit::failure("login.failed")
                    .reason(reason)
                    .maybe_user(user)
                    .identifier_index(identifier_index)
                    .ip(ip)
                    .emit();
            }
            Event::AccountLocked {
                user,
                identifier_index,
            } => {
                telemetry::lockout();
                Audit::failure("account.locked")
                    .maybe_user(user)
                    .identifier_index(identifier_index)
                    .ip(ip)
                    .emit();
            }
            Event::RefreshReused { user, session } => {
                telemetry::refresh_reuse_detected();
                telemetry::tokens_revoked("reuse");
                let mut audit = Audit::failure("refresh.reuse_detected")
                    .reason("token_reused")
                    .maybe_user(user)
                    .ip(ip);
                if let Some(session) = session {
                    audit = audit.session(session);
                }
                audit.emit();
            }
            other if mfa_event(&other, client) => {}
            other => account_event(other, client),
        }
    }
}

/// The events of second factors; `false` when `event` is not one.
fn mfa_event(event: &Event, client: &ClientContext) -> bool {
    let ip = client.ip;
    let audit = match event {
        Event::MfaRequired { user } => {
            telemetry::mfa("none", "required");
            Audit::success("login.mfa_required").user(*user)
        }
        Event::MfaVerified { user, method } => {
            telemetry::mfa(method.as_str(), "success");
            Audit::success("mfa.verified")
                .user(*user)
                .method(Some(method.as_str()))
        }
        Event::MfaFailed {
            reason,
            user,
            method,
        } => {
            let name = method.map_or("none", MfaMethod::as_str);
            telemetry::mfa(name, reason);
            Audit::failure("mfa.failed")
                .reason(reason)
                .maybe_user(*user)
                .method(method.map(MfaMethod::as_str))
        }
        Event::FactorAdded { user, method } => {
            telemetry::mfa_factor_change(method.as_str(), "added");
            Audit::success("mfa.factor_added")
                .user(*user)
                .method(Some(method.as_str()))
        }
        Event::FactorRemoved { user, method } => {
            telemetry::mfa_factor_change(method.as_str(), "removed");
            Audit::success("mfa.factor_removed")
                .user(*user)
                .method(Some(method.as_str()))
        }
        Event::RecoveryCodeUsed { user } => {
            telemetry::mfa_factor_change("recovery_code", "used");
            Audit::success("mfa.recovery_code_used")
                .user(*user)
                .method(Some("recovery_code"))
        }
        Event::RecoveryCodesRenewed { user } => {
            telemetry::mfa_factor_change("recovery_code", "renewed");
            Audit::success("mfa.recovery_codes_renewed")
                .user(*user)
                .method(Some("recovery_code"))
        }
        _ => return false,
    };
    audit.ip(ip).emit();
    true
}

/// The events of the signed-in user's own account, and of mailed links.
// Long on purpose: one arm per event, the table of audit names and revocation reasons.
fn account_event(event: Event, client: &ClientContext) {
    let ip = client.ip;
    let (audit, revoked) = match event {
        Event::LoggedOut { user, session, all } => {
            let (name, reason) = if all {
                ("logout.all", "logout_all")
            } else {
                ("logout.session", "logout")
            };
            (
                Audit::success(name).user(user).session(session),
                Some(reason),
            )
        }
        Event::EmailVerified {
            user,
            email_changed,
        } => {
            let name = if email_changed {
                "email_change.confirmed"
            } else {
                "email.verified"
            };
            (Audit::success(name).user(user), None)
        }
        Event::PasswordReset { user } => (
            Audit::success("password.reset").user(user),
            Some("password_reset"),
        ),
        Event::PasswordChanged { user, session } => (
            Audit::success("password.changed")
                .user(user)
                .session(session),
            Some("password_change"),
        ),
        Event::EmailChangeRequested { user, session } => (
            Audit::success("email_change.requested")
                .user(user)
                .session(session),
            None,
        ),
        Event::ReauthenticationFailed {
            change,
            reason,
            user,
            session,
        } => {
            let name = match change {
                Reauthentication::ChangeEmail => "email_change.failed",
                Reauthentication::ChangePassword => "password.change_failed",
                Reauthentication::DeleteAccount => "account.delete_failed",
            };
            let audit = Audit::failure(name)
                .reason(reason)
                .user(user)
                .session(session);
            (audit, None)
        }
        Event::AccountDeleted { user, session } => (
            Audit::success("account.deleted")
                .user(user)
                .session(session),
            Some("account_deleted"),
        ),
        // The revoked session, which may be another one than the caller's.
        Event::SessionRevoked { user, session } => (
            Audit::success("session.revoked")
                .user(user)
                .session(session),
            Some("session"),
        ),
        // Handled by `AppEvents::publish`.
        Event::MailQueued
        | Event::RateLimited { .. }
        | Event::TokensRefreshed
        | Event::LoginSucceeded { .. }
        | Event::LoginFailed { .. }
        | Event::AccountLocked { .. }
        | Event::RefreshReused { .. }
        | Event::MfaRequired { .. }
        | Event::MfaVerified { .. }
        | Event::MfaFailed { .. }
        | Event::FactorAdded { .. }
        | Event::FactorRemoved { .. }
        | Event::RecoveryCodeUsed { .. }
        | Event::RecoveryCodesRenewed { .. } => return,
    };
    if let Some(reason) = revoked {
        telemetry::tokens_revoked(reason);
    }
    audit.ip(ip).emit();
}
