//! A real SMTP server inside the test (mailin-embedded on its own threads), recording
//! every message it accepts.

use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailin_embedded::response::{OK, START_DATA};
use mailin_embedded::{Handler, Response, Server, SslConfig};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The message as sent (headers and MIME body).
    pub data: Vec<u8>,
}

impl Received {
    /// The parsed message.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .unwrap_or_else(|| panic!("unparsable message"))
    }

    /// The text part, decoded.
    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    /// The HTML part, decoded.
    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    /// The `token` of the first `…?token=` link in the text part.
    pub fn token(&self) -> String {
        let text = self.text();
        let start = text
            .find("token=")
            .unwrap_or_else(|| panic!("no link in: {text}"))
            + "token=".len();
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

#[derive(Clone)]
struct Recorder {
    shared: Arc<Mutex<Vec<Received>>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_owned();
        self.to.clear();
        self.data.clear();
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        self.to.push(to.to_owned());
        OK
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        START_DATA
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Received {
                from: std::mem::take(&mut self.from),
                to: std::mem::take(&mut self.to),
                data: std::mem::take(&mut self.data),
            });
        OK
    }
}

/// A running server. It runs until the test process ends (mailin-embedded has no stop).
#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    shared: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        Self::start_on(listener)
    }

    /// Starts a server on `listener`.
    pub fn start_on(listener: TcpListener) -> Self {
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let shared = Arc::new(Mutex::new(Vec::new()));
        let handler = Recorder {
            shared: Arc::clone(&shared),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        std::thread::spawn(move || {
            let mut server = Server::new(handler);
            server.with_name("smtp.test").with_tcp_listener(listener);
            if let Err(err) = server.with_ssl(SslConfig::None) {
                panic!("smtp ssl config: {err}");
            }
            if let Err(err) = server.serve() {
                panic!("smtp server: {err}");
            }
        });
        Self { port, shared }
    }

    /// A port where nothing listens (yet): bind, note the port, close.
    pub fn free_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Every message so far.
    pub fn messages(&self) -> Vec<Received> {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The messages to `to` (envelope recipient).
    pub fn to(&self, to: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|r| r.eq_ignore_ascii_case(to)))
            .collect()
    }

    /// Waits up to `timeout` until `n` messages in all have arrived; returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || std::time::Instant::now() >= deadline {
                return messages;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The variables that point a test app at this server (plain SMTP, no TLS).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        smtp_vars(self.port)
    }
}

/// Variables for a plain SMTP server on `port`, quick retries and polls.
pub fn smtp_vars(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("MAIL_SERVER", "127.0.0.1".to_owned()),
        ("MAIL_PORT", port.to_string()),
        ("MAIL_USE_TLS", "false".to_owned()),
        (
            "MAIL_DEFAULT_SENDER",
            "Auth Test <no-reply@auth.test>".to_owned(),
        ),
        ("MAIL_TIMEOUT", "5".to_owned()),
        ("MAIL_RETRY_DELAY", "1".to_owned()),
        ("MAIL_POLL_INTERVAL", "1".to_owned()),
    ]
}
