//! What the mailer needs to know: the server, how to secure and authenticate the
//! connection, who sends, and where the templates are.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use auth_domain::types::Email;
use secrecy::SecretString;

use crate::error::SmtpError;

/// How the connection to the server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Plain text, no TLS at all. Only for a relay on the same host or in tests:
    /// credentials, if any, cross the network in the clear.
    None,
    /// Plain connection upgraded with `STARTTLS` before anything else is said
    /// (`MAIL_USE_TLS`); fails if the server does not offer it. Usually port 587.
    #[default]
    StartTls,
    /// TLS from the first byte (`MAIL_USE_SSL`, "SMTPS"). Usually port 465.
    ImplicitTls,
}

impl Security {
    /// The usual port: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::StartTls => 587,
            Self::ImplicitTls => 465,
        }
    }
}

/// The `From` of every mail: a bare address or `Name <address>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sender {
    name: Option<String>,
    address: String,
}

impl Sender {
    /// Parses `user@example.com` or `Example <user@example.com>` (the name may be quoted).
    /// The address must be a valid email address; the name must not contain control
    /// characters or angle brackets.
    pub fn parse(raw: &str) -> Result<Self, SmtpError> {
        let raw = raw.trim();
        let (name, address) = match raw.split_once('<') {
            Some((name, rest)) => {
                let address = rest
                    .strip_suffix('>')
                    .ok_or(SmtpError::InvalidSender("expected `Name <address>`"))?;
                let name = name.trim();
                let name = name
                    .strip_prefix('"')
                    .and_then(|n| n.strip_suffix('"'))
                    .unwrap_or(name)
                    .trim();
                (Some(name), address.trim())
            }
            None => (None, raw),
        };
        if address.is_empty() {
            return Err(SmtpError::InvalidSender("the address is missing"));
        }
        if address.contains(['<', '>', '"']) || address.chars().any(char::is_whitespace) {
            return Err(SmtpError::InvalidSender("the address is not valid"));
        }
        Email::parse(address).map_err(|_| SmtpError::InvalidSender("the address is not valid"))?;
        let name = match name {
            Some("") | None => None,
            Some(name) if name.contains(['<', '>', '"']) || name.chars().any(char::is_control) => {
                return Err(SmtpError::InvalidSender(
                    "the name must not contain quotes, angle brackets or control characters",
                ));
            }
            Some(name) => Some(name.to_owned()),
        };
        Ok(Self {
            name,
            address: address.to_owned(),
        })
    }

    /// The display name, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The address, as given (also the envelope sender, `MAIL FROM`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The part of the address after the `@`.
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map_or(self.address.as_str(), |(_, domain)| domain)
    }
}

impl FromStr for Sender {
    type Err = SmtpError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} <{}>", self.address),
            None => f.write_str(&self.address),
        }
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sender({self})")
    }
}

/// Everything [`crate::SmtpMailer`] needs. Build it with [`SmtpConfig::new`] and adjust
/// the public fields; the `Debug` form never shows the password.
#[derive(Clone)]
pub struct SmtpConfig {
    /// Server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Server port; [`SmtpConfig::new`] picks [`Security::default_port`].
    pub port: u16,
    /// How the connection is secured.
    pub security: Security,
    /// Login; when `None` the mailer does not authenticate. With a login, the mailer uses
    /// the best mechanism the server offers among CRAM-MD5, DIGEST-MD5, LOGIN and PLAIN.
    pub username: Option<String>,
    /// Password for `username` (ignored without one).
    pub password: SecretString,
    /// `From` header and envelope sender.
    pub sender: Sender,
    /// Name announced in `EHLO`; defaults to the sender's domain.
    pub helo: String,
    /// Limit for connecting: TCP, greeting, `EHLO`, TLS and authentication together.
    pub connect_timeout: Duration,
    /// Limit for each command's reply once connected (and for sending the message).
    pub command_timeout: Duration,
    /// A kept connection unused for this long is closed and a new one opened; servers
    /// drop idle clients on their own (often after 30 s to 5 min). Zero: a new
    /// connection for every mail.
    pub max_idle: Duration,
    /// Accept any certificate. For tests and development only: it disables the
    /// protection TLS gives the password and the mails' links.
    pub allow_invalid_certs: bool,
    /// A directory whose files override the built-in templates of the same name.
    pub templates_dir: Option<PathBuf>,
    /// The product's name, as the mails call it (`product` in templates).
    pub product_name: String,
}

impl SmtpConfig {
    /// A configuration for `host` with `security`'s usual port, no login, and defaults
    /// for the rest: 10 s to connect, 30 s per command, 30 s idle, product "Auth".
    /// Fails if `sender` is not an address or `Name <address>`.
    pub fn new(
        host: impl Into<String>,
        security: Security,
        sender: &str,
    ) -> Result<Self, SmtpError> {
        let sender = Sender::parse(sender)?;
        Ok(Self {
            host: host.into(),
            port: security.default_port(),
            security,
            username: None,
            password: SecretString::from(String::new()),
            helo: sender.domain().to_owned(),
            sender,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            max_idle: Duration::from_secs(30),
            allow_invalid_certs: false,
            templates_dir: None,
            product_name: "Auth".to_owned(),
        })
    }

    /// Sets the login.
    pub fn with_credentials(mut self, username: impl Into<String>, password: SecretString) -> Self {
        self.username = Some(username.into());
        self.password = password;
        self
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("sender", &self.sender)
            .field("helo", &self.helo)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("max_idle", &self.max_idle)
            .field("allow_invalid_certs", &self.allow_invalid_certs)
            .field("templates_dir", &self.templates_dir)
            .field("product_name", &self.product_name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_is_a_bare_address_or_a_named_one() {
        let cases = [
            ("noreply@example.com", None, "noreply@example.com"),
            (
                "Example <noreply@example.com>",
                Some("Example"),
                "noreply@example.com",
            ),
            (
                "\"Example Inc\" <noreply@example.com>",
                Some("Example Inc"),
                "noreply@example.com",
            ),
            ("  <noreply@example.com>  ", None, "noreply@example.com"),
        ];
        for (raw, name, address) in cases {
            let sender = Sender::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(sender.name(), name, "{raw}");
            assert_eq!(sender.address(), address, "{raw}");
            assert_eq!(sender.domain(), "example.com", "{raw}");
        }
        let local = Sender::parse("Auth <no-reply@localhost>").unwrap();
        assert_eq!(local.domain(), "localhost", "a development default");
    }

    #[test]
    fn a_bad_sender_is_refused() {
        for raw in [
            "",
            "not an address",
            "Example <noreply@example.com",
            "Example <>",
            "Exa<mple <noreply@example.com>",
            "Example\r\nBcc: x@example.com <noreply@example.com>",
            "noreply@",
        ] {
            assert!(Sender::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn defaults_follow_the_security() {
        let cases = [
            (Security::None, 25),
            (Security::StartTls, 587),
            (Security::ImplicitTls, 465),
        ];
        for (security, port) in cases {
            let config = SmtpConfig::new("mail.example.com", security, "a@example.com").unwrap();
            assert_eq!(config.port, port, "{security:?}");
            assert_eq!(config.helo, "example.com");
            assert_eq!(config.product_name, "Auth");
            assert!(!config.allow_invalid_certs);
        }
    }

    #[test]
    fn debug_masks_the_password() {
        let config = SmtpConfig::new("mail.example.com", Security::StartTls, "a@example.com")
            .unwrap()
            .with_credentials("user", SecretString::from("hunter2-very-secret".to_owned()));
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user"), "{shown}");
    }
}
