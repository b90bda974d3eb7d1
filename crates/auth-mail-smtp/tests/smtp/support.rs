//! A real SMTP server (mailin-embedded) started inside the test, a TCP relay in front of
//! it that can "restart" it, and a TLS front for implicit TLS.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use auth_domain::model::{Mail, MailKind};
use auth_domain::types::Email;
use auth_mail_smtp::{Security, SmtpConfig};
use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, OK};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};
use secrecy::SecretString;
use tokio::task::JoinHandle;

pub const SENDER: &str = "Example Auth <noreply@example.com>";
pub const SENDER_ADDRESS: &str = "noreply@example.com";
pub const RECIPIENT: &str = "ada.lovelace@example.org";
pub const LINK: &str = "https://app.example.com/verify-email?token=tok_4f9a2c";
pub const USER: &str = "mailer";
pub const PASSWORD: &str = "correct horse battery staple";

/// A mail as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("the server received a parseable message")
    }
}

/// How the server answers.
#[derive(Debug, Clone)]
pub struct Behavior {
    /// Refuse this recipient with this code; the reply echoes the address, as real
    /// servers do.
    pub refuse: Option<(u16, &'static str)>,
    /// Reply once the message is sent.
    pub data_end_code: u16,
    /// Whether STARTTLS is offered (with a self-signed certificate).
    pub starttls: bool,
    /// Mechanisms offered after STARTTLS; a login is then required.
    pub auth: Vec<AuthMechanism>,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            refuse: None,
            data_end_code: 250,
            starttls: false,
            auth: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Log {
    mails: Vec<Received>,
    helos: usize,
    logins: usize,
}

/// Cloned by mailin for each connection: `current` is that session's mail.
#[derive(Clone)]
struct Recorder {
    log: Arc<Mutex<Log>>,
    behavior: Arc<Behavior>,
    current: Option<Received>,
}

impl Recorder {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Handler for Recorder {
    fn helo(&mut self, _ip: std::net::IpAddr, _domain: &str) -> Response {
        self.log().helos += 1;
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        match self.behavior.refuse {
            Some((code, refused)) if to.eq_ignore_ascii_case(refused) => {
                Response::custom(code, format!("5.1.1 <{to}>: recipient refused"))
            }
            _ => OK,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            from: from.to_owned(),
            to: to.to_vec(),
            data: Vec::new(),
        });
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = &mut self.current {
            current.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = self.current.take();
        match self.behavior.data_end_code {
            250 => {
                if let Some(mail) = mail {
                    self.log().mails.push(mail);
                }
                OK
            }
            code => Response::custom(code, "message refused".to_owned()),
        }
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.login(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.login(user, password)
    }
}

impl Recorder {
    fn login(&mut self, user: &str, password: &str) -> Response {
        if user == USER && password == PASSWORD {
            self.log().logins += 1;
            AUTH_OK
        } else {
            INVALID_CREDENTIALS
        }
    }
}

/// A mailin-embedded server on a free port of 127.0.0.1. It runs until the test
/// process ends (mailin-embedded has no shutdown).
pub struct TestServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    _certs: Option<tempfile::TempDir>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::with(Behavior::default())
    }

    pub fn with(behavior: Behavior) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let addr = listener.local_addr().expect("local address");
        let log = Arc::new(Mutex::new(Log::default()));
        let recorder = Recorder {
            log: log.clone(),
            behavior: Arc::new(behavior.clone()),
            current: None,
        };
        let mut server = Server::new(recorder);
        let certs = behavior.starttls.then(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let cert = self_signed();
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
            std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
            (dir, cert_path, key_path)
        });
        let ssl = match &certs {
            Some((_, cert_path, key_path)) => SslConfig::SelfSigned {
                cert_path: path_string(cert_path),
                key_path: path_string(key_path),
            },
            None => SslConfig::None,
        };
        server
            .with_name("mx.test")
            .with_ssl(ssl)
            .expect("server TLS setup")
            .with_num_threads(4)
            .with_tcp_listener(listener);
        for mechanism in behavior.auth {
            server.with_auth(mechanism);
        }
        std::thread::spawn(move || {
            // Serves until the process ends; an error here shows as a failed test.
            let _ = server.serve();
        });
        Self {
            addr,
            log,
            _certs: certs.map(|(dir, _, _)| dir),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Mails accepted so far.
    pub fn mails(&self) -> Vec<Received> {
        self.log().mails.clone()
    }

    /// The only mail accepted so far.
    pub fn only_mail(&self) -> Received {
        let mails = self.mails();
        assert_eq!(mails.len(), 1, "expected exactly one mail");
        mails.into_iter().next().expect("one mail")
    }

    /// `HELO`/`EHLO` commands seen: one per plain connection.
    pub fn helos(&self) -> usize {
        self.log().helos
    }

    /// Successful logins.
    pub fn logins(&self) -> usize {
        self.log().logins
    }

    /// A configuration for this server (plain, no login, short timeouts).
    pub fn config(&self) -> SmtpConfig {
        config_for(self.addr, Security::None)
    }
}

pub fn config_for(addr: SocketAddr, security: Security) -> SmtpConfig {
    let mut config =
        SmtpConfig::new(addr.ip().to_string(), security, SENDER).expect("valid sender");
    config.port = addr.port();
    config.connect_timeout = Duration::from_secs(5);
    config.command_timeout = Duration::from_secs(5);
    config
}

pub fn with_login(config: SmtpConfig, password: &str) -> SmtpConfig {
    config.with_credentials(USER, SecretString::from(password.to_owned()))
}

fn path_string(path: &std::path::Path) -> String {
    path.to_str().expect("utf-8 temp path").to_owned()
}

pub fn self_signed() -> rcgen::CertifiedKey<rcgen::KeyPair> {
    rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("self-signed certificate")
}

/// A port nothing listens on.
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

pub fn mail(kind: MailKind, name: Option<&str>, link: Option<&str>) -> Mail {
    Mail {
        to: Email::parse(RECIPIENT).expect("valid recipient"),
        name: name.map(str::to_owned),
        kind,
        link: link.map(|l| SecretString::from(l.to_owned())),
    }
}

pub fn verify_mail() -> Mail {
    mail(MailKind::VerifyEmail, Some("Ada"), Some(LINK))
}

/// The error and every source under it, Display and Debug.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut shown = format!("{err} / {err:?}");
    let mut source = err.source();
    while let Some(cause) = source {
        shown.push_str(&format!(" / {cause} / {cause:?}"));
        source = cause.source();
    }
    shown
}

/// Forwards TCP connections to a backend; `restart` drops every open connection and
/// sends new ones to another backend, as a server restart looks to a client.
pub struct Relay {
    pub addr: SocketAddr,
    backend: Arc<Mutex<SocketAddr>>,
    open: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accepted: Arc<AtomicUsize>,
    accept_loop: JoinHandle<()>,
}

impl Relay {
    pub async fn start(backend: SocketAddr) -> Self {
        Self::start_with(backend, None).await
    }

    /// With `tls`, the relay is the TLS end (implicit TLS) and talks plain to the backend.
    pub async fn start_with(backend: SocketAddr, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let backend = Arc::new(Mutex::new(backend));
        let open = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let accept_loop = tokio::spawn({
            let (backend, open, accepted) = (backend.clone(), open.clone(), accepted.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let target = *backend.lock().unwrap_or_else(PoisonError::into_inner);
                    let tls = tls.clone();
                    let task = tokio::spawn(async move {
                        let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        match tls {
                            Some(acceptor) => {
                                if let Ok(mut client) = acceptor.accept(client).await {
                                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server)
                                        .await;
                                }
                            }
                            None => {
                                let mut client = client;
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        }
                    });
                    open.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(task);
                }
            }
        });
        Self {
            addr,
            backend,
            open,
            accepted,
            accept_loop,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes every open connection, and sends new ones to `backend`.
    pub fn restart(&self, backend: SocketAddr) {
        *self.backend.lock().unwrap_or_else(PoisonError::into_inner) = backend;
        for task in self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept_loop.abort();
        for task in self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

/// A TLS acceptor with a fresh self-signed certificate.
pub fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = self_signed();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server certificate");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Temp dir with template overrides.
pub fn templates_dir(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, source) in files {
        std::fs::write(dir.path().join(name), source).expect("write template");
    }
    let path = dir.path().to_owned();
    (dir, path)
}

/// `mail` sent to another address.
pub fn addressed_to(mut mail: Mail, to: &str) -> Mail {
    mail.to = Email::parse(to).expect("valid recipient");
    mail
}
