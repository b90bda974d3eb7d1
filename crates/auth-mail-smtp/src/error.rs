//! The mailer's errors. None of them holds a recipient, a name, a link or a server's reply
//! text (servers echo addresses): only the step, the reply code and a fixed reason, so
//! they can be logged as they are.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The step of an SMTP exchange an error happened at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Connecting: TCP, greeting, `EHLO`, TLS, authentication.
    Connect,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO`.
    RcptTo,
    /// The `DATA` command.
    Data,
    /// Sending the message and waiting for the server to take it.
    Message,
    /// `QUIT`.
    Quit,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::MailFrom => "MAIL FROM",
            Self::RcptTo => "RCPT TO",
            Self::Data => "DATA",
            Self::Message => "message transfer",
            Self::Quit => "QUIT",
        })
    }
}

/// Why the mailer could not be built, or a mail not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// The configured sender is not an address or `Name <address>`.
    #[error("invalid sender: {0}")]
    InvalidSender(&'static str),
    /// The configuration cannot work.
    #[error("invalid SMTP configuration: {0}")]
    InvalidConfig(&'static str),
    /// The templates directory or one of its files cannot be read.
    #[error("cannot read mail templates at {path}")]
    TemplateFile {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A template does not parse, or fails to render with sample values.
    #[error("invalid mail template `{name}`")]
    Template {
        /// The template's file name.
        name: String,
        /// What is wrong, with the line.
        #[source]
        source: minijinja::Error,
    },
    /// A template failed while rendering a real mail. Only the kind of failure and the
    /// line are kept: the engine's message could quote the mail's values.
    #[error("mail template `{name}` failed to render: {kind} (line {line:?})")]
    Render {
        /// The template's file name.
        name: String,
        /// What went wrong.
        kind: minijinja::ErrorKind,
        /// Where.
        line: Option<usize>,
    },
    /// The message could not be assembled.
    #[error("cannot assemble the message ({0})")]
    Build(io::ErrorKind),
    /// The TLS client could not be set up (no usable root certificates, for instance).
    #[error("cannot set up TLS")]
    TlsSetup(#[source] rustls::Error),
    /// The server answered with a failure code.
    #[error("SMTP server answered {code} to {stage}")]
    Reply {
        /// The command answered.
        stage: Stage,
        /// The reply code.
        code: u16,
    },
    /// The server refused the login.
    #[error("SMTP authentication refused (reply {code})")]
    AuthRejected {
        /// The reply code, usually 535.
        code: u16,
    },
    /// A login is configured but the server offers none of the mechanisms the mailer
    /// supports (PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5), or offers none before TLS.
    #[error("the SMTP server offers no supported authentication mechanism")]
    NoAuthMechanism,
    /// STARTTLS is configured but the server does not offer it.
    #[error("the SMTP server does not offer STARTTLS")]
    NoStartTls,
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS handshake failed")]
    Tls(#[source] BoxError),
    /// The server's host name is not valid for TLS.
    #[error("the SMTP host name is not valid for TLS")]
    InvalidTlsName,
    /// A network failure.
    #[error("SMTP {stage} failed: {kind}")]
    Io {
        /// Where.
        stage: Stage,
        /// The I/O error's kind ("connection refused", "connection reset"…).
        kind: io::ErrorKind,
    },
    /// The server closed the connection, or said something that is not SMTP.
    #[error("SMTP {stage} failed: connection closed or unreadable reply")]
    Protocol {
        /// Where.
        stage: Stage,
    },
    /// No answer in time.
    #[error("SMTP {stage} timed out")]
    Timeout {
        /// Where.
        stage: Stage,
    },
}

impl SmtpError {
    /// Whether retrying this mail cannot help: a permanent refusal (550–554) of the
    /// recipient or of the message (but 552 to `RCPT TO`, which RFC 5321 §4.5.3.1.10 says
    /// to treat as the temporary 452), or a mail that cannot be rendered or assembled
    /// (the same input fails the same way). A refused login, a full queue (4xx), a refused
    /// sender or any network failure is not permanent: an operator or time fixes them.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Reply {
                stage: Stage::RcptTo,
                code: 552,
            } => false,
            Self::Reply {
                stage: Stage::RcptTo | Stage::Data | Stage::Message,
                code: 550..=554,
            }
            | Self::Render { .. }
            | Self::Build(_) => true,
            _ => false,
        }
    }

    /// Whether the connection is unusable (closed, reset, silent, or the server said
    /// 421 "closing"): a mail not yet transferred may be tried again on a new one.
    pub(crate) fn is_broken_connection(&self) -> bool {
        matches!(
            self,
            Self::Io { .. }
                | Self::Protocol { .. }
                | Self::Timeout { .. }
                | Self::Reply { code: 421, .. }
        )
    }

    /// The step this error happened at, for errors of an exchange.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Self::Reply { stage, .. }
            | Self::Io { stage, .. }
            | Self::Protocol { stage }
            | Self::Timeout { stage } => Some(*stage),
            Self::AuthRejected { .. }
            | Self::NoAuthMechanism
            | Self::NoStartTls
            | Self::Tls(_)
            | Self::InvalidTlsName => Some(Stage::Connect),
            _ => None,
        }
    }

    /// Translates a mail-send error at `stage`, keeping nothing of the server's words.
    pub(crate) fn from_smtp(err: mail_send::Error, stage: Stage) -> Self {
        use mail_send::Error as E;
        match err {
            E::Io(err) => Self::Io {
                stage,
                kind: err.kind(),
            },
            E::Tls(err) => Self::Tls(err),
            E::UnexpectedReply(reply) => Self::Reply {
                stage,
                code: reply.code,
            },
            E::AuthenticationFailed(reply) => Self::AuthRejected { code: reply.code },
            E::UnsupportedAuthMechanism | E::MissingCredentials => Self::NoAuthMechanism,
            E::MissingStartTls => Self::NoStartTls,
            E::InvalidTLSName => Self::InvalidTlsName,
            E::Timeout => Self::Timeout { stage },
            // A bad challenge during authentication, an unparseable or missing reply.
            E::Auth(_) | E::Base64(_) | E::UnparseableReply => Self::Protocol { stage },
            // The envelope is built here and always has both.
            E::MissingMailFrom | E::MissingRcptTo => Self::Protocol { stage },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_5xx_refusal_of_the_recipient_or_message_is_permanent() {
        let cases = [
            (Stage::RcptTo, 550, true, "unknown mailbox"),
            (Stage::RcptTo, 551, true, "user not local"),
            (Stage::RcptTo, 553, true, "mailbox name not allowed"),
            (Stage::Data, 554, true, "no valid recipients"),
            (Stage::Message, 552, true, "message too big"),
            (Stage::Message, 554, true, "message refused as spam"),
            (Stage::RcptTo, 451, false, "greylisting"),
            (Stage::RcptTo, 452, false, "too many recipients for now"),
            (Stage::RcptTo, 552, false, "RFC 5321: treat as 452"),
            (
                Stage::MailFrom,
                550,
                false,
                "our sender refused: fix the config",
            ),
            (Stage::Connect, 554, false, "server refuses us: retry later"),
            (
                Stage::RcptTo,
                530,
                false,
                "authentication required: fix the config",
            ),
            (Stage::RcptTo, 555, false, "parameters not recognised"),
        ];
        assert!(SmtpError::Build(io::ErrorKind::InvalidData).is_permanent());
        for (stage, code, permanent, why) in cases {
            assert_eq!(
                SmtpError::Reply { stage, code }.is_permanent(),
                permanent,
                "{code} to {stage}: {why}"
            );
        }
        assert!(!SmtpError::AuthRejected { code: 535 }.is_permanent());
        assert!(
            !SmtpError::Timeout {
                stage: Stage::Message
            }
            .is_permanent()
        );
    }
}
