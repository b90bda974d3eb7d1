//! SMTP mailer: the [`MailTransport`](auth_domain::ports::MailTransport) that sends the
//! service's mails through a real mail server.
//!
//! ```no_run
//! use auth_mail_smtp::{Security, SmtpConfig, SmtpMailer};
//! use secrecy::SecretString;
//!
//! # async fn run() -> Result<(), auth_mail_smtp::SmtpError> {
//! let sender = "Example <noreply@example.com>";
//! let config = SmtpConfig::new("smtp.example.com", Security::StartTls, sender)?
//!     .with_credentials("mailer", SecretString::from("password".to_owned()));
//! let mailer = SmtpMailer::new(config)?; // loads and checks the templates
//! mailer.check().await?; // connects, logs in, quits: for readiness
//! // Hand `mailer` to the outbox worker: it calls `MailTransport::send` for each mail.
//! # Ok(()) }
//! ```
//!
//! - **Messages**: `multipart/alternative` with a text and an HTML part, `From` the
//!   configured sender, `To` the recipient (with their name when known), `Subject`,
//!   `Date`, `Message-ID` (at the sender's domain), `Auto-Submitted: auto-generated`.
//!   Nothing is loaded from elsewhere when the mail is read: no images, no remote CSS, no
//!   tracking.
//! - **Templates**: built in (`templates/` in this crate) and overridable one file at a
//!   time through [`SmtpConfig::templates_dir`]; see [`MailTemplates`] for the names and
//!   variables. Every template is checked when the mailer is built.
//! - **Connection**: one kept connection, reused by the next mail, replaced after
//!   [`SmtpConfig::max_idle`] or when found dead. [`Security`] chooses plain, STARTTLS or
//!   implicit TLS; with a username the best mechanism the server offers is used.
//! - **Errors**: a permanent refusal (550–554) of the recipient or the message is
//!   [`DeliveryError::Permanent`](auth_domain::ports::DeliveryError::Permanent); anything
//!   else (network, TLS, timeouts, 4xx, a refused login) is `Transient`. The error inside
//!   is an [`SmtpError`], which holds the step and the reply code only: never the
//!   recipient, the name, the link or the server's text, so it can be logged.
#![forbid(unsafe_code)]

mod config;
mod error;
mod mailer;
mod templates;
mod tls;

pub use config::{Security, Sender, SmtpConfig};
pub use error::{SmtpError, Stage};
pub use mailer::SmtpMailer;
pub use templates::{MailTemplates, RenderedMail, template_names};
