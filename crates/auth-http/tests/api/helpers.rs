//! `spawn_app`: the real service on port 0 with a fresh SQLite file, and typed helpers.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::dev::ServerHandle;
use actix_web::web;
use auth_domain::model::MailKind;
use auth_http::config::Config;
use auth_http::outbox::{OutboxWorker, spawn_outbox_worker};
use auth_http::startup;
use auth_http::state::AppState;
use auth_mail_log::MemoryMailbox;
use awc::http::StatusCode;
use serde_json::{Value, json};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every log line every test app wrote, for the leak scan.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("debug,awc=info,actix_http=info,h2=info,mio=info")
            .with_ansi(false)
            .with_writer(move || SharedWriter(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct TestApp {
    pub base: String,
    /// Where the outbox worker delivers (unless the app sends over SMTP).
    pub inbox: MemoryMailbox,
    pub client: awc::Client,
    pub state: web::Data<AppState>,
    /// `http://127.0.0.1:{port}` of the metrics listener, when `METRICS_PORT` is set.
    pub metrics_base: Option<String>,
    worker: Mutex<Option<OutboxWorker>>,
    handle: ServerHandle,
    running: Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
    _backing: Backing,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn str(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_default().to_owned()
    }
}

/// Variables every test app gets: a low bcrypt cost and limits high enough not to interfere.
fn base_vars(dir: &std::path::Path) -> HashMap<String, String> {
    [
        ("AUTH_DATA_DIR", dir.to_str().unwrap_or_default()),
        ("BCRYPT_COST", "4"),
        ("WORKERS", "1"),
        ("HASH_CONCURRENCY", "2"),
        ("RATE_LIMIT_IP", "10000"),
        ("RATE_LIMIT_IDENTIFIER", "10000"),
        ("APP_URL", "http://app.test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub async fn spawn_app() -> TestApp {
    spawn_with(&[]).await
}

pub async fn spawn_with(vars: &[(&str, &str)]) -> TestApp {
    spawn_on(&Backing::fresh().await, vars).await
}

/// Where a test app keeps its data: a temporary data directory (secrets, and the SQLite
/// file) and, when `AUTH_TEST_STORAGE=postgres`, a fresh PostgreSQL database cloned from a
/// migrated template. Two apps on one backing share their data (a restart).
#[derive(Clone)]
pub struct Backing {
    dir: Arc<tempfile::TempDir>,
    pub postgres: Option<Arc<auth_store_postgres::test_support::TestDatabase>>,
    /// Key prefix in Redis (shared by apps on this backing, like a restart would).
    pub redis_prefix: String,
}

/// Whether this run of the suite uses Redis as its cache (`AUTH_TEST_CACHE=redis`).
pub fn on_redis() -> bool {
    std::env::var("AUTH_TEST_CACHE").is_ok_and(|s| s.eq_ignore_ascii_case("redis"))
}

/// `TEST_REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// Whether this run of the suite is on PostgreSQL (`AUTH_TEST_STORAGE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("AUTH_TEST_STORAGE").is_ok_and(|s| s.eq_ignore_ascii_case("postgres"))
}

impl Backing {
    pub async fn fresh() -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")));
        let postgres = if on_postgres() {
            let db = auth_store_postgres::test_support::fresh_database()
                .await
                .unwrap_or_else(|| panic!("AUTH_TEST_STORAGE=postgres but PostgreSQL is unreachable (TEST_DATABASE_URL)"));
            Some(Arc::new(db))
        } else {
            None
        };
        let redis_prefix = format!("authtest:{}:", uuid::Uuid::new_v4().simple());
        Self {
            dir,
            postgres,
            redis_prefix,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// Starts the service on `backing` (which may hold an earlier instance's data), with its
/// outbox worker delivering to a memory mailbox, or over SMTP when `MAIL_SERVER` is set.
pub async fn spawn_on(backing: &Backing, vars: &[(&str, &str)]) -> TestApp {
    captured_logs();
    let mut map = base_vars(&backing.data_dir());
    if let Some(db) = &backing.postgres {
        map.insert("DATABASE_URL".to_owned(), db.url().to_owned());
    }
    if on_redis() {
        // A key prefix of its own: tests share one Redis and run in parallel.
        map.insert("REDIS_URL".to_owned(), test_redis_url());
        map.insert("REDIS_KEY_PREFIX".to_owned(), backing.redis_prefix.clone());
    }
    for (k, v) in vars {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    let metrics_listener = map
        .contains_key("METRICS_PORT")
        .then(|| TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}")));
    let config = Config::from_vars(map).unwrap_or_else(|e| panic!("config: {e}"));
    let inbox = MemoryMailbox::new();
    let overrides = startup::Overrides {
        listener: Some(TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"))),
        metrics_listener,
        mailbox: Some(inbox.clone()),
    };
    let mut app = startup::Application::build_with(config, overrides)
        .await
        .unwrap_or_else(|e| panic!("build: {}", startup::error_chain(&e)));
    let worker = app.take_worker();
    let port = app.port();
    let metrics_port = app.metrics_port();
    let state = app.state();
    let handle = app.handle();
    let running = actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        metrics_base: metrics_port.map(|port| format!("http://127.0.0.1:{port}")),
        inbox,
        client: awc::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .finish(),
        state,
        worker: Mutex::new(worker),
        handle,
        running: Mutex::new(Some(running)),
        _backing: backing.clone(),
    }
}

pub const PASSWORD: &str = "SecurePass123!";

pub fn registration(email: &str, username: &str) -> Value {
    json!({"email": email, "username": username, "password": PASSWORD, "name": "Test", "surname": "User"})
}

impl TestApp {
    /// Stops the app: the outbox worker this test holds (between mails), then the server,
    /// which then closes the pools as a signal would.
    pub async fn stop(&self) {
        self.stop_worker().await;
        self.handle.stop(true).await;
        let running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(running) = running {
            let _ = running.await;
        }
    }

    /// Stops the outbox worker (between mails), as a shutdown does.
    pub async fn stop_worker(&self) {
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            worker.stop().await;
        }
    }

    /// Starts a new outbox worker (after [`Self::stop_worker`]).
    pub fn restart_worker(&self) {
        let worker = spawn_outbox_worker(self.state.clone());
        *self
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(worker);
    }

    /// Waits (up to 10 s) until the outbox holds no mail due now, then returns the
    /// mailbox the worker delivered to.
    pub async fn mailbox(&self) -> &MemoryMailbox {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            match self.state.service.outbox_stats().await {
                Ok(stats) if stats.queued == 0 => break,
                _ => actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
        &self.inbox
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional bearer token, JSON body and extra headers.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let method =
            awc::http::Method::from_bytes(method.as_bytes()).unwrap_or(awc::http::Method::GET);
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let sent = match body {
            Some(body) => req.send_json(body).await,
            None => req.send().await,
        };
        let mut res = sent.unwrap_or_else(|e| panic!("request {path}: {e}"));
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.body().limit(4 << 20).await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Response {
            status,
            headers,
            body,
        }
    }

    /// Sends raw bytes with a given content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        let method =
            awc::http::Method::from_bytes(method.as_bytes()).unwrap_or(awc::http::Method::GET);
        let mut res = self
            .client
            .request(method, self.url(path))
            .insert_header(("Content-Type", content_type))
            .send_body(body)
            .await
            .unwrap_or_else(|e| panic!("request {path}: {e}"));
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.body().limit(4 << 20).await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.call("GET", path, None, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.call("POST", path, None, Some(body), &[]).await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.call("GET", path, Some(token), None, &[]).await
    }

    pub async fn register(&self, email: &str, username: &str) -> Response {
        self.post("/auth/register", &registration(email, username))
            .await
    }

    /// The token of the newest mail of `kind` to `email`.
    pub async fn mailed_token(&self, email: &str, kind: MailKind) -> String {
        self.mailbox()
            .await
            .last(email, kind)
            .and_then(|m| m.token().map(str::to_owned))
            .unwrap_or_else(|| panic!("no {kind:?} mail with a token to {email}"))
    }

    /// Registers and verifies an account.
    pub async fn verified_user(&self, email: &str, username: &str) {
        let res = self.register(email, username).await;
        assert_eq!(res.status, StatusCode::CREATED, "register: {}", res.body);
        let token = self.mailed_token(email, MailKind::VerifyEmail).await;
        let res = self
            .post("/auth/verify-email", &json!({ "token": token }))
            .await;
        assert_eq!(res.status, StatusCode::OK, "verify: {}", res.body);
    }

    /// Logs in by username with the standard password; panics unless 200.
    pub async fn login(&self, username: &str) -> Response {
        let res = self
            .post(
                "/auth/login",
                &json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "login: {}", res.body);
        res
    }

    /// A verified user, logged in: (access token, refresh token).
    pub async fn signed_in(&self, email: &str, username: &str) -> (String, String) {
        self.verified_user(email, username).await;
        let res = self.login(username).await;
        (res.str("access_token"), res.str("refresh_token"))
    }
}

impl TestApp {
    /// Two tabs present one refresh token at once: both answers are 200 and carry the same
    /// successor (one rotation). Returns one of them.
    pub async fn refresh_race_has_one_successor(&self, refresh: &str) -> Response {
        let body = json!({"refresh_token": refresh});
        let (one, two) = tokio::join!(
            self.post("/auth/refresh-token", &body),
            self.post("/auth/refresh-token", &body)
        );
        assert_eq!(one.status, StatusCode::OK, "{}", one.body);
        assert_eq!(two.status, StatusCode::OK, "{}", two.body);
        assert_eq!(one.str("refresh_token"), two.str("refresh_token"));
        one
    }

    /// With the database cut (`cut`), a read that needs it answers 503
    /// `service_unavailable`; once `restore` ran, the same read answers 200 within 10 s,
    /// on new connections, without a restart.
    pub async fn database_outage_is_a_503_and_recovers(
        &self,
        access: &str,
        cut: impl FnOnce(),
        restore: impl FnOnce(),
    ) {
        cut();
        let profile = self.get_auth("/users/profile", access).await;
        assert_eq!(
            profile.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            profile.body
        );
        assert_eq!(profile.code(), "service_unavailable");
        restore();
        for _ in 0..40 {
            if self.get_auth("/users/profile", access).await.status == StatusCode::OK {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        panic!("no new database connection within 10 s of the database returning");
    }
}
