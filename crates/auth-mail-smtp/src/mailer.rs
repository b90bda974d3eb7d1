//! [`SmtpMailer`]: renders a mail and delivers it over one kept SMTP connection.

use std::time::Instant;

use auth_domain::model::Mail;
use auth_domain::ports::{DeliveryError, MailTransport};
use mail_send::mail_builder::MessageBuilder;
use mail_send::mail_builder::headers::address::Address;
use mail_send::mail_builder::headers::message_id::{MessageId, generate_message_id_header};
use mail_send::mail_builder::headers::raw::Raw;
use mail_send::smtp::AssertReply;
use mail_send::smtp::message::Parameters;
use mail_send::{Credentials, SmtpClient, SmtpClientBuilder};
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::config::{Security, SmtpConfig};
use crate::error::{SmtpError, Stage};
use crate::templates::{MailTemplates, RenderedMail, one_line};

/// A plain or TLS stream, so one connection type serves every [`Security`].
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

type Client = SmtpClient<Box<dyn Stream>>;

struct Connection {
    client: Client,
    last_used: Instant,
}

/// Delivers the service's mails through an SMTP server.
///
/// One connection is opened on first use and kept for the next mails; mails sent from
/// several tasks take turns on it. A kept connection idle longer than
/// [`SmtpConfig::max_idle`] is replaced. If a kept connection turns out to be dead before
/// the message was transferred, the mail is tried once more on a new connection; a
/// failure during the transfer itself is not retried here (the server may have taken
/// the mail), the outbox retries it later.
pub struct SmtpMailer {
    config: SmtpConfig,
    templates: MailTemplates,
    tls: TlsConnector,
    connection: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Checks the configuration, loads and checks the templates and sets up TLS. Does not
    /// connect: see [`Self::check`].
    pub fn new(config: SmtpConfig) -> Result<Self, SmtpError> {
        if config.host.trim().is_empty() {
            return Err(SmtpError::InvalidConfig("the host is empty"));
        }
        if config.port == 0 {
            return Err(SmtpError::InvalidConfig("the port is 0"));
        }
        if config.connect_timeout.is_zero() || config.command_timeout.is_zero() {
            return Err(SmtpError::InvalidConfig("a timeout is zero"));
        }
        if config.helo.trim().is_empty() || config.helo.chars().any(char::is_whitespace) {
            return Err(SmtpError::InvalidConfig(
                "the EHLO name is empty or has spaces",
            ));
        }
        if config.username.is_some() && config.security == Security::None {
            tracing::warn!(
                host = %config.host,
                "SMTP login without TLS: the password crosses the network in the clear"
            );
        }
        if config.allow_invalid_certs && config.security != Security::None {
            tracing::warn!(
                host = %config.host,
                "SMTP TLS accepts any certificate: for development only"
            );
        }
        let templates = MailTemplates::load(config.templates_dir.as_deref(), &config.product_name)?;
        // Without TLS the connector is never used; skip loading the system's roots.
        let tls =
            crate::tls::connector(config.allow_invalid_certs || config.security == Security::None)?;
        Ok(Self {
            config,
            templates,
            tls,
            connection: Mutex::new(None),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    /// Renders `mail` as it would be sent, without sending it.
    pub fn render(&self, mail: &Mail) -> Result<RenderedMail, SmtpError> {
        self.templates.render(mail)
    }

    /// Connects, authenticates if a login is configured, and says `QUIT`: a readiness
    /// check. Leaves the kept connection alone.
    pub async fn check(&self) -> Result<(), SmtpError> {
        let client = self.connect().await?;
        client
            .quit()
            .await
            .map_err(|err| SmtpError::from_smtp(err, Stage::Quit))
    }

    /// Says `QUIT` on the kept connection, if any (at shutdown).
    pub async fn close(&self) {
        let kept = self.connection.lock().await.take();
        if let Some(conn) = kept {
            // Best effort: the server closes a silent connection by itself anyway.
            let _ = conn.client.quit().await;
        }
    }

    /// Renders and delivers one mail, with the detailed error.
    #[tracing::instrument(name = "smtp_send", skip_all, fields(kind = mail.kind.as_str()))]
    pub async fn send_mail(&self, mail: &Mail) -> Result<(), SmtpError> {
        let rendered = self.templates.render(mail)?;
        let message = self.build_message(mail, rendered)?;
        self.deliver(mail.to.as_str(), &message).await
    }

    fn build_message(&self, mail: &Mail, rendered: RenderedMail) -> Result<Vec<u8>, SmtpError> {
        let sender = &self.config.sender;
        let from = Address::new_address(sender.name(), sender.address());
        let to_name = mail
            .name
            .as_deref()
            .map(one_line)
            .filter(|name| !name.is_empty());
        let to = Address::new_address(to_name, mail.to.as_str());
        let mut id = Vec::new();
        generate_message_id_header(&mut id, sender.domain());
        let id = String::from_utf8_lossy(&id);
        let id = id.trim_start_matches('<').trim_end_matches('>').to_owned();
        MessageBuilder::new()
            .from(from)
            .to(to)
            .subject(rendered.subject)
            .message_id(MessageId::new(id))
            .header("Auto-Submitted", Raw::new("auto-generated"))
            // Asks Exchange and Outlook not to answer with out-of-office replies.
            .header("X-Auto-Response-Suppress", Raw::new("All"))
            .text_body(rendered.text)
            .html_body(rendered.html)
            .write_to_vec()
            .map_err(|err| SmtpError::Build(err.kind()))
    }

    async fn deliver(&self, to: &str, message: &[u8]) -> Result<(), SmtpError> {
        let from = self.config.sender.address();
        let mut slot = self.connection.lock().await;
        // Taken out while in use: if this future is dropped half-way, so is the
        // connection, and no later mail inherits a half-finished exchange.
        let kept = match slot.take() {
            Some(conn) if conn.last_used.elapsed() >= self.config.max_idle => {
                // The server may have closed it already; if not, say goodbye.
                quit_in_background(conn);
                None
            }
            kept => kept,
        };

        let mut reused = kept.is_some();
        let mut conn = match kept {
            Some(conn) => conn,
            None => self.fresh().await?,
        };
        loop {
            match transfer(&mut conn.client, from, to, message).await {
                Ok(()) => {
                    conn.last_used = Instant::now();
                    *slot = Some(conn);
                    return Ok(());
                }
                // A kept connection found dead before the message went out: nothing was
                // delivered, so one more try on a new connection cannot duplicate it.
                Err(err)
                    if reused
                        && err.is_broken_connection()
                        && err.stage() != Some(Stage::Message) =>
                {
                    tracing::debug!(error = %err, "kept SMTP connection is dead; reconnecting");
                    reused = false;
                    conn = self.fresh().await?;
                }
                Err(err) => {
                    discard(conn, &err);
                    return Err(err);
                }
            }
        }
    }

    async fn fresh(&self) -> Result<Connection, SmtpError> {
        Ok(Connection {
            client: self.connect().await?,
            last_used: Instant::now(),
        })
    }

    async fn connect(&self) -> Result<Client, SmtpError> {
        let config = &self.config;
        let mut builder = SmtpClientBuilder::new_with_tls_connector(
            config.host.clone(),
            config.port,
            self.tls.clone(),
        )
        .helo_host(config.helo.clone())
        .timeout(config.connect_timeout)
        .implicit_tls(config.security == Security::ImplicitTls);
        if let Some(username) = &config.username {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                config.password.expose_secret().to_owned(),
            ));
        }
        let attempt = async {
            // Without TCP_NODELAY each command's last small write waits for the server's
            // delayed ACK (40 ms on Linux): 23 mails/s instead of hundreds.
            match config.security {
                Security::None => builder.connect_plain().await.map(|client| {
                    let _ = client.stream.set_nodelay(true);
                    boxed(client)
                }),
                Security::StartTls | Security::ImplicitTls => {
                    builder.connect().await.map(|client| {
                        let _ = client.stream.get_ref().0.set_nodelay(true);
                        boxed(client)
                    })
                }
            }
        };
        // mail-send bounds each step, but not the greeting of a plain connection: bound
        // the whole.
        let mut client = tokio::time::timeout(config.connect_timeout, attempt)
            .await
            .map_err(|_| SmtpError::Timeout {
                stage: Stage::Connect,
            })?
            .map_err(|err| SmtpError::from_smtp(err, Stage::Connect))?;
        client.timeout = config.command_timeout;
        Ok(client)
    }
}

impl MailTransport for SmtpMailer {
    /// A permanent refusal of the recipient or message (550–554) is
    /// [`DeliveryError::Permanent`]; anything else is [`DeliveryError::Transient`]. The
    /// error inside is an [`SmtpError`]: no recipient, name, link or server text.
    async fn send(&self, mail: &Mail) -> Result<(), DeliveryError> {
        self.send_mail(mail).await.map_err(|err| {
            if err.is_permanent() {
                DeliveryError::Permanent(Box::new(err))
            } else {
                DeliveryError::Transient(Box::new(err))
            }
        })
    }
}

fn boxed<S: Stream + 'static>(client: SmtpClient<S>) -> Client {
    SmtpClient {
        stream: Box::new(client.stream),
        timeout: client.timeout,
    }
}

/// One mail transaction: `MAIL FROM`, `RCPT TO`, `DATA`, the message.
async fn transfer(
    client: &mut Client,
    from: &str,
    to: &str,
    message: &[u8],
) -> Result<(), SmtpError> {
    let no_parameters = Parameters::default();
    client
        .mail_from(from, &no_parameters)
        .await
        .map_err(|err| SmtpError::from_smtp(err, Stage::MailFrom))?;
    client
        .rcpt_to(to, &no_parameters)
        .await
        .map_err(|err| SmtpError::from_smtp(err, Stage::RcptTo))?;
    client
        .cmd(b"DATA\r\n")
        .await
        .and_then(|reply| reply.assert_code(354))
        .map_err(|err| SmtpError::from_smtp(err, Stage::Data))?;
    // Done by hand rather than with `data()` so a failure here is told apart from one
    // before any of the message was sent.
    let limit = client.timeout;
    let reply = tokio::time::timeout(limit, async {
        client.write_message(message).await?;
        client.read().await
    })
    .await
    .map_err(|_| SmtpError::Timeout {
        stage: Stage::Message,
    })?
    .map_err(|err| SmtpError::from_smtp(err, Stage::Message))?;
    reply
        .assert_positive_completion()
        .map_err(|err| SmtpError::from_smtp(err, Stage::Message))
}

/// Drops a connection after a failed transaction. One that still talks gets a `QUIT`
/// rather than a `RSET` (failures are rare, and some servers forget the login on
/// `RSET`), in the background: a server confused by the failure may not answer it, and
/// the caller should not wait for that.
fn discard(conn: Connection, err: &SmtpError) {
    if !err.is_broken_connection() {
        quit_in_background(conn);
    }
}

fn quit_in_background(conn: Connection) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = conn.client.quit().await;
        });
    }
}
