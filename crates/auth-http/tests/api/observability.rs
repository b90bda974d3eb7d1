//! Observability: after one full flow every metric family is on `/metrics` (in this process,
//! and with exact counts in a process of its own), the real binary's JSON logs hold the
//! flow's audit events and no personal data, `METRICS_PORT` moves `/metrics` to a port of
//! its own, and `METRICS_TOKEN` closes it, on either port, to requests without the token.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use auth_domain::model::MailKind;
use auth_domain::types::Email;
use awc::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Response, TestApp, TestResult, on_redis, spawn_with};

const EMAIL: &str = "obs.person@example.com";
const NEW_EMAIL: &str = "renamed.person@example.net";
const USERNAME: &str = "observer";
const NAME: &str = "Zebedeewhisker";
const SURNAME: &str = "Quillfeatherton";
const PHONE: &str = "+4915123456789";
const PASSWORD_1: &str = "Observe-Passphrase-41";
const PASSWORD_2: &str = "Second-Observe-Phrase-52";
const PASSWORD_3: &str = "Third-Observe-Phrase-63";
const WRONG_PASSWORD: &str = "Wrong-Observe-Guess-99";

/// What the flow needs: a rotated refresh token is reuse at once, three failures lock, and
/// the seventh request per minute for one address is refused.
pub const FLOW_VARS: &[(&str, &str)] = &[
    ("REFRESH_REUSE_INTERVAL", "0"),
    ("LOCKOUT_THRESHOLD", "3"),
    ("RATE_LIMIT_IDENTIFIER", "6"),
];

/// The audit events of [`full_flow`], in order.
const FLOW_EVENTS: &[&str] = &[
    "email.verified",
    "login.failed",
    "login.failed",
    "login.succeeded",
    "login.failed",
    "login.failed",
    "login.failed",
    "account.locked",
    "login.failed",
    "refresh.reuse_detected",
    "login.succeeded",
    "login.succeeded",
    "session.revoked",
    "password.change_failed",
    "password.changed",
    "email_change.requested",
    "email_change.confirmed",
    "logout.session",
    "login.succeeded",
    "logout.all",
    "password.reset",
    "login.succeeded",
    "account.delete_failed",
    "account.deleted",
];

/// Where the flow runs: an app in this process, or the binary in its own.
pub trait Driver {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response;

    /// The token of the newest mail of `kind` to `email`.
    async fn token_mailed(&self, email: &str, kind: MailKind) -> String;
}

impl Driver for TestApp {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        self.call(method, path, token, body.as_ref(), &[]).await
    }

    async fn token_mailed(&self, email: &str, kind: MailKind) -> String {
        self.mailed_token(email, kind).await
    }
}

/// What the flow leaves behind.
pub struct Trace {
    user_id: String,
    /// The session revoked by `DELETE /users/sessions/{id}`.
    revoked_session: String,
    /// Every token the flow was handed or mailed.
    secrets: Vec<String>,
}

fn expect(res: Response, status: StatusCode, step: &str) -> Response {
    assert_eq!(res.status, status, "{step}: {}", res.body);
    res
}

async fn login(d: &impl Driver, who: (&str, &str), password: &str) -> Response {
    d.send(
        "POST",
        "/auth/login",
        None,
        Some(json!({ who.0: who.1, "password": password })),
    )
    .await
}

/// Register, verify, log in, fail until locked, refresh, reuse, revoke a session, change
/// the password and the email, log out (one, all), reset the password, delete the account,
/// and be rate limited: each outcome a metric family or an audit event counts.
pub async fn full_flow(d: &impl Driver) -> Trace {
    let mut secrets = Vec::new();
    let registration = json!({"email": EMAIL, "username": USERNAME, "password": PASSWORD_1,
        "name": NAME, "surname": SURNAME, "phone_number": PHONE});
    let res = d
        .send("POST", "/auth/register", None, Some(registration))
        .await;
    let user_id = expect(res, StatusCode::CREATED, "register").body["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let token = d.token_mailed(EMAIL, MailKind::VerifyEmail).await;
    let res = d
        .send(
            "POST",
            "/auth/verify-email",
            None,
            Some(json!({ "token": token })),
        )
        .await;
    expect(res, StatusCode::OK, "verify");
    secrets.push(token);

    // A body the JSON extractor refuses (a number for the username) is a failed login too.
    let res = d
        .send(
            "POST",
            "/auth/login",
            None,
            Some(json!({ "username": 5, "password": PASSWORD_1 })),
        )
        .await;
    expect(res, StatusCode::BAD_REQUEST, "malformed login");
    // So is a body that is not an object at all (serde would take an array field by field).
    let res = d
        .send(
            "POST",
            "/auth/login",
            None,
            Some(json!([USERNAME, PASSWORD_1])),
        )
        .await;
    expect(res, StatusCode::BAD_REQUEST, "login body as an array");
    let by_name = ("username", USERNAME);
    let first = expect(login(d, by_name, PASSWORD_1).await, StatusCode::OK, "login");
    let (access, refresh) = (first.str("access_token"), first.str("refresh_token"));
    secrets.extend([access.clone(), refresh.clone(), first.str("device_token")]);
    let res = d
        .send("GET", "/auth/verify-token", Some(&access), None)
        .await;
    expect(res, StatusCode::OK, "verify-token");
    for attempt in 1..=3 {
        let res = login(d, by_name, WRONG_PASSWORD).await;
        expect(
            res,
            StatusCode::UNAUTHORIZED,
            &format!("wrong password {attempt}"),
        );
    }
    expect(
        login(d, by_name, PASSWORD_1).await,
        StatusCode::LOCKED,
        "locked",
    );

    let body = json!({ "refresh_token": refresh });
    let res = d
        .send("POST", "/auth/refresh-token", None, Some(body.clone()))
        .await;
    let pair = expect(res, StatusCode::OK, "refresh");
    secrets.extend([pair.str("access_token"), pair.str("refresh_token")]);
    // Past the reuse interval of 0 s (times are kept to the millisecond).
    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    let res = d
        .send("POST", "/auth/refresh-token", None, Some(body))
        .await;
    assert_eq!(
        expect(res, StatusCode::UNAUTHORIZED, "reuse").code(),
        "token_reused"
    );

    let by_email = ("email", EMAIL);
    let second = expect(
        login(d, by_email, PASSWORD_1).await,
        StatusCode::OK,
        "login 2",
    );
    let third = expect(
        login(d, by_email, PASSWORD_1).await,
        StatusCode::OK,
        "login 3",
    );
    let access = second.str("access_token");
    secrets.extend([
        access.clone(),
        second.str("refresh_token"),
        third.str("access_token"),
        third.str("refresh_token"),
    ]);
    let res = d.send("GET", "/users/sessions", Some(&access), None).await;
    let sessions = expect(res, StatusCode::OK, "sessions").body["active_sessions"].clone();
    let revoked_session = sessions
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["current"] == json!(false))
        .and_then(|s| s["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    let path = format!("/users/sessions/{revoked_session}");
    let res = d.send("DELETE", &path, Some(&access), None).await;
    expect(res, StatusCode::NO_CONTENT, "revoke a session");

    let change = |current: &str| json!({"current_password": current, "new_password": PASSWORD_2});
    let res = d
        .send(
            "POST",
            "/users/change-password",
            Some(&access),
            Some(change(WRONG_PASSWORD)),
        )
        .await;
    expect(res, StatusCode::FORBIDDEN, "change password, wrong");
    let res = d
        .send(
            "POST",
            "/users/change-password",
            Some(&access),
            Some(change(PASSWORD_1)),
        )
        .await;
    expect(res, StatusCode::OK, "change password");
    let res = d
        .send(
            "PUT",
            "/users/profile",
            Some(&access),
            Some(json!({ "email": NEW_EMAIL, "current_password": PASSWORD_2 })),
        )
        .await;
    expect(res, StatusCode::OK, "change email");
    let token = d.token_mailed(NEW_EMAIL, MailKind::ChangeEmail).await;
    let res = d
        .send(
            "POST",
            "/auth/verify-email",
            None,
            Some(json!({ "token": token })),
        )
        .await;
    expect(res, StatusCode::OK, "confirm email");
    secrets.push(token);
    let res = d.send("POST", "/auth/logout", Some(&access), None).await;
    expect(res, StatusCode::NO_CONTENT, "logout");

    let by_new_email = ("email", NEW_EMAIL);
    let fourth = expect(
        login(d, by_new_email, PASSWORD_2).await,
        StatusCode::OK,
        "login 4",
    );
    let access = fourth.str("access_token");
    secrets.extend([access.clone(), fourth.str("refresh_token")]);
    let res = d
        .send(
            "POST",
            "/auth/logout",
            Some(&access),
            Some(json!({ "all": true })),
        )
        .await;
    expect(res, StatusCode::NO_CONTENT, "logout all");

    let res = d
        .send(
            "POST",
            "/auth/forgot-password",
            None,
            Some(json!({ "email": NEW_EMAIL })),
        )
        .await;
    expect(res, StatusCode::ACCEPTED, "forgot password");
    let token = d.token_mailed(NEW_EMAIL, MailKind::ResetPassword).await;
    let reset = json!({ "token": token, "new_password": PASSWORD_3 });
    let res = d
        .send("POST", "/auth/reset-password", None, Some(reset))
        .await;
    expect(res, StatusCode::OK, "reset password");
    secrets.push(token);

    let fifth = expect(
        login(d, by_new_email, PASSWORD_3).await,
        StatusCode::OK,
        "login 5",
    );
    let access = fifth.str("access_token");
    secrets.extend([access.clone(), fifth.str("refresh_token")]);
    for (password, status) in [
        (WRONG_PASSWORD, StatusCode::FORBIDDEN),
        (PASSWORD_3, StatusCode::NO_CONTENT),
    ] {
        let res = d
            .send(
                "DELETE",
                "/users/delete-account",
                Some(&access),
                Some(json!({ "password": password })),
            )
            .await;
        expect(res, status, "delete account");
    }

    // The seventh request within a minute for one address is refused.
    let flood = json!({ "email": "flood@example.org" });
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let res = d
            .send(
                "POST",
                "/auth/resend-verification",
                None,
                Some(flood.clone()),
            )
            .await;
        statuses.push(res.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(statuses[..6].iter().all(|s| *s == StatusCode::ACCEPTED));

    Trace {
        user_id,
        revoked_session,
        secrets,
    }
}

/// The sum of the samples of `name` whose labels include `labels`; `None` without any.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let matches = metric == name
            && labels.iter().all(|(k, v)| {
                label_text
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            });
        if matches {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(f64::NAN);
        }
    }
    found
}

/// Label names and values a sample must have.
type Labels = &'static [(&'static str, &'static str)];

/// Counters of the flow, with how many times it counts each (the same in every process).
const FLOW_COUNTS: &[(&str, Labels, f64)] = &[
    ("auth_logins_total", &[("outcome", "success")], 5.0),
    (
        "auth_logins_total",
        &[("outcome", "invalid_credentials")],
        3.0,
    ),
    ("auth_logins_total", &[("outcome", "account_locked")], 1.0),
    (
        "auth_logins_total",
        &[("outcome", "validation_failed")],
        2.0,
    ),
    ("auth_lockouts_total", &[], 1.0),
    (
        "auth_rate_limited_total",
        &[("action", "resend_verification")],
        1.0,
    ),
    ("auth_tokens_issued_total", &[], 5.0),
    ("auth_tokens_refreshed_total", &[], 1.0),
    ("auth_refresh_reuse_detected_total", &[], 1.0),
    ("auth_tokens_revoked_total", &[("reason", "reuse")], 1.0),
    ("auth_tokens_revoked_total", &[("reason", "session")], 1.0),
    (
        "auth_tokens_revoked_total",
        &[("reason", "password_change")],
        1.0,
    ),
    ("auth_tokens_revoked_total", &[("reason", "logout")], 1.0),
    (
        "auth_tokens_revoked_total",
        &[("reason", "logout_all")],
        1.0,
    ),
    (
        "auth_tokens_revoked_total",
        &[("reason", "password_reset")],
        1.0,
    ),
    (
        "auth_tokens_revoked_total",
        &[("reason", "account_deleted")],
        1.0,
    ),
    ("auth_verify_token_total", &[("outcome", "valid")], 1.0),
];

/// Families read when scraped: present, whatever their value.
const GAUGES: &[(&str, Labels)] = &[
    ("auth_db_pool_connections", &[("state", "in_use")]),
    ("auth_db_pool_connections", &[("state", "idle")]),
    ("auth_db_pool_waiting", &[]),
    ("auth_db_pool_max_connections", &[]),
    ("auth_password_hash_waiting", &[]),
    ("auth_password_hash_in_flight", &[]),
    ("auth_password_hash_seconds_bucket", &[("le", "+Inf")]),
    ("auth_password_hash_wait_seconds_bucket", &[("le", "+Inf")]),
    ("auth_mail_sent_total", &[]),
];

/// Neither an email, an IP nor an id as a label value, and the build named.
fn assert_no_personal_labels(text: &str, trace: &Trace) {
    for needle in [
        EMAIL,
        NEW_EMAIL,
        "@",
        "127.0.0.1",
        trace.user_id.as_str(),
        trace.revoked_session.as_str(),
    ] {
        assert!(!text.contains(needle), "{needle:?} in /metrics");
    }
    assert_eq!(
        sample(
            text,
            "auth_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
}

#[actix_web::test]
async fn after_a_full_flow_every_metric_family_shows_its_label_values() -> TestResult {
    let app = spawn_with(FLOW_VARS).await;
    let trace = full_flow(&app).await;

    let res = app.get("/metrics").await;
    let text = res.body.as_str().unwrap_or_default();

    // Tests in this process share one recorder: at least the flow's own counts.
    for (name, labels, count) in FLOW_COUNTS {
        let value = sample(text, name, labels);
        assert!(
            value.is_some_and(|v| v >= *count),
            "{name}{labels:?}: {value:?}, want at least {count}"
        );
    }
    for (name, labels) in GAUGES {
        assert!(sample(text, name, labels).is_some(), "{name}{labels:?}");
    }
    assert!(sample(text, "auth_db_pool_max_connections", &[]).is_some_and(|n| n >= 1.0));
    assert!(sample(text, "auth_password_hash_seconds_count", &[]).is_some_and(|n| n >= 10.0));
    if on_redis() {
        for state in ["in_use", "idle"] {
            let value = sample(text, "auth_redis_pool_connections", &[("state", state)]);
            assert!(value.is_some(), "redis {state}");
        }
        assert!(sample(text, "auth_redis_pool_waiting", &[]).is_some());
    }
    assert_no_personal_labels(text, &trace);
    Ok(())
}

/// The real binary, with JSON logs on stderr collected line by line.
pub(crate) struct Binary {
    child: Child,
    pub(crate) base: String,
    pub(crate) client: awc::Client,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    pub(crate) async fn start(vars: &[(&str, &str)]) -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth-http"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AUTH_DATA_DIR", dir.path().join("data"))
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("LOG_FORMAT", "json")
            .env("BCRYPT_COST", "4")
            .env("WORKERS", "1")
            .env("HASH_CONCURRENCY", "2")
            .env("RATE_LIMIT_IP", "10000")
            .env("APP_URL", "http://app.test");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        let stderr = child.stderr.take().ok_or("stderr is piped")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        let binary = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
            lines,
            reader: Some(reader),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let live = binary
                .client
                .get(format!("{}/health/live", binary.base))
                .send()
                .await;
            if live.is_ok_and(|r| r.status() == StatusCode::OK) {
                return Ok(binary);
            }
            assert!(
                Instant::now() < deadline,
                "the binary did not start: {:?}",
                binary.lines()
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the process with SIGTERM and returns every line it wrote.
    pub(crate) fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.lines()
    }
}

impl Driver for Binary {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let method =
            awc::http::Method::from_bytes(method.as_bytes()).unwrap_or(awc::http::Method::GET);
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let sent = match &body {
            Some(body) => req.send_json(body).await,
            None => req.send().await,
        };
        let mut res = sent.unwrap_or_else(|e| panic!("request {path}: {e}"));
        let bytes = res.body().limit(4 << 20).await.unwrap_or_default();
        Response {
            status: res.status(),
            headers: res.headers().clone(),
            body: serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        }
    }

    /// From the development mailer's log line (target `auth_mail`, recipient masked).
    async fn token_mailed(&self, email: &str, kind: MailKind) -> String {
        let to = Email::parse(email)
            .map(|e| e.masked())
            .unwrap_or_else(|_| panic!("{email} is an email"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let token = self
                .lines()
                .iter()
                .rev()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|v| {
                    v["target"] == "auth_mail"
                        && v["to"] == to.as_str()
                        && v["kind"] == kind.as_str()
                })
                .filter_map(|v| {
                    let link = v["link"].as_str()?;
                    Some(link.split_once("token=")?.1.to_owned())
                })
                .next();
            if let Some(token) = token {
                return token;
            }
            assert!(Instant::now() < deadline, "no {kind:?} mail to {to}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[actix_web::test]
async fn the_binary_counts_the_flow_exactly_and_its_json_logs_hold_the_audit_events_without_personal_data()
-> TestResult {
    let binary = Binary::start(FLOW_VARS).await?;
    let trace = full_flow(&binary).await;
    let metrics = binary.send("GET", "/metrics", None, None).await;
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    let lines = binary.stop();

    // Metrics: a process of its own, so exactly the flow's counts.
    for (name, labels, count) in FLOW_COUNTS {
        assert_eq!(
            sample(&text, name, labels),
            Some(*count),
            "{name}{labels:?}"
        );
    }
    for (name, labels) in GAUGES {
        assert!(sample(&text, name, labels).is_some(), "{name}{labels:?}");
    }
    assert_no_personal_labels(&text, &trace);

    // Logs: every line is JSON.
    let events: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let audit: Vec<&Value> = events.iter().filter(|v| v["target"] == "audit").collect();
    let names: Vec<&str> = audit
        .iter()
        .map(|v| v["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, FLOW_EVENTS, "the flow's audit events, in order");
    for event in &audit {
        let name = event["event"].as_str().unwrap_or_default();
        assert_eq!(event["message"], "audit", "{event}");
        assert_eq!(event["level"], "INFO", "{event}");
        let failure = name.ends_with("_failed")
            || name.ends_with(".failed")
            || name == "account.locked"
            || name == "refresh.reuse_detected";
        let outcome = if failure { "failure" } else { "success" };
        assert_eq!(event["outcome"], outcome, "{event}");
        assert_eq!(event["ip"], "127.0.0.1", "{event}");
        let request_id = event["span"]["request_id"].as_str().unwrap_or_default();
        assert!(!request_id.is_empty(), "request id from the span: {event}");
        if event["reason"] == "validation_failed" {
            // The malformed login: refused before anyone is known.
            assert!(
                event["user_id"].is_null() && event["identifier_index"].is_null(),
                "{event}"
            );
            continue;
        }
        assert_eq!(event["user_id"], trace.user_id.as_str(), "{event}");
        if name.starts_with("login.") || name == "account.locked" {
            let index = event["identifier_index"].as_str().unwrap_or_default();
            let wanted = name != "login.succeeded";
            assert_eq!(
                index.len() == 64 && index.bytes().all(|b| b.is_ascii_hexdigit()),
                wanted,
                "identifier index on failures only: {event}"
            );
        }
        if name.starts_with("logout.")
            || name == "login.succeeded"
            || name.starts_with("password.change")
        {
            assert!(event["session_id"].is_string(), "{event}");
        }
        if name == "session.revoked" {
            assert_eq!(event["session_id"], trace.revoked_session.as_str());
        }
        assert!(
            !event.to_string().contains('@'),
            "no email, even masked: {event}"
        );
    }
    let failed = audit.iter().filter(|v| v["event"] == "login.failed");
    let reasons: Vec<&str> = failed
        .map(|v| v["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons,
        [
            "validation_failed",
            "validation_failed",
            "invalid_credentials",
            "invalid_credentials",
            "invalid_credentials",
            "account_locked"
        ]
    );

    // No personal data, password or token in any line but the development mailer's (the one
    // documented place a mailed link is logged).
    let mut forbidden = vec![
        EMAIL,
        NEW_EMAIL,
        NAME,
        SURNAME,
        PHONE,
        PASSWORD_1,
        PASSWORD_2,
        PASSWORD_3,
        WRONG_PASSWORD,
    ];
    forbidden.extend(trace.secrets.iter().map(String::as_str));
    assert!(trace.secrets.iter().all(|s| s.len() >= 20), "real tokens");
    for (line, event) in lines.iter().zip(&events) {
        if event["target"] == "auth_mail" {
            continue;
        }
        for needle in &forbidden {
            assert!(!line.contains(needle), "{needle:?} logged: {line}");
        }
    }
    // Traces are off without an endpoint: no ids in the logs.
    assert!(
        events.iter().all(|e| e.get("trace_id").is_none()),
        "trace ids without traces"
    );
    Ok(())
}

#[actix_web::test]
async fn with_metrics_port_set_metrics_are_served_on_that_port_only() -> TestResult {
    // The value only has to differ from PORT: the test app listens on a free port instead.
    let app = spawn_with(&[("METRICS_PORT", "9464")]).await;
    let metrics = app.metrics_base.clone().ok_or("no metrics listener")?;

    let main = app.get("/metrics").await;
    assert_eq!(main.status, StatusCode::NOT_FOUND, "not on the main port");
    assert_eq!(main.code(), "not_found");

    let mut res = app.client.get(format!("{metrics}/metrics")).send().await?;
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let body = String::from_utf8(res.body().limit(4 << 20).await?.to_vec())?;
    assert!(body.contains("auth_build_info"), "{body}");
    assert!(body.contains("auth_db_pool_connections"), "{body}");

    let other = app.client.get(format!("{metrics}/health")).send().await?;
    assert_eq!(
        other.status(),
        StatusCode::NOT_FOUND,
        "nothing else on the metrics port"
    );
    app.stop().await;
    Ok(())
}

/// A token as `openssl rand -hex 32` would make it (unique to this file's tests).
const METRICS_TOKEN: &str = "6d657472696373-746f6b656e-Zq7-0123456789abcdef0123456789abcdef";

/// `GET {base}/metrics` with an optional `Authorization` header value.
async fn scrape(app: &TestApp, base: &str, authorization: Option<&str>) -> Response {
    let mut req = app.client.get(format!("{base}/metrics"));
    if let Some(value) = authorization {
        req = req.insert_header(("Authorization", value));
    }
    let mut res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}/metrics: {e}"));
    let bytes = res.body().limit(4 << 20).await.unwrap_or_default();
    Response {
        status: res.status(),
        headers: res.headers().clone(),
        body: serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    }
}

/// Asserts a 401 problem with the metrics realm's challenge, and no metric in the body.
fn assert_refused(res: &Response, challenge: &str, why: &str) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{why}: {}", res.body);
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/problem+json"),
        "{why}"
    );
    assert_eq!(res.code(), "invalid_token", "{why}");
    assert_eq!(
        res.header("www-authenticate").as_deref(),
        Some(challenge),
        "{why}"
    );
    assert!(
        !res.body.to_string().contains("auth_"),
        "{why}: {}",
        res.body
    );
}

#[actix_web::test]
async fn with_metrics_token_set_metrics_answer_401_without_it_and_200_with_it() -> TestResult {
    let app = spawn_with(&[("METRICS_TOKEN", METRICS_TOKEN)]).await;
    let base = app.base.clone();
    let missing = scrape(&app, &base, None).await;
    assert_refused(&missing, "Bearer realm=\"metrics\"", "no token");
    let wrong = format!("Bearer {}", &METRICS_TOKEN[..METRICS_TOKEN.len() - 1]);
    for (authorization, why) in [
        (wrong.as_str(), "a prefix of the token"),
        ("Bearer not-the-metrics-token", "another token"),
    ] {
        let res = scrape(&app, &base, Some(authorization)).await;
        assert_refused(
            &res,
            "Bearer realm=\"metrics\", error=\"invalid_token\"",
            why,
        );
    }
    let basic = scrape(&app, &base, Some(&format!("Basic {METRICS_TOKEN}"))).await;
    assert_refused(&basic, "Bearer realm=\"metrics\"", "not as a Bearer token");

    let granted = scrape(&app, &base, Some(&format!("Bearer {METRICS_TOKEN}"))).await;
    assert_eq!(granted.status, StatusCode::OK);
    let text = granted.body.as_str().unwrap_or_default();
    assert!(text.contains("auth_build_info"), "{text}");
    assert!(
        text.contains("route=\"/metrics\",status=\"401\""),
        "refusals are counted: {text}"
    );

    let logs = crate::helpers::captured_logs();
    let logs =
        String::from_utf8_lossy(&logs.lock().unwrap_or_else(PoisonError::into_inner)).into_owned();
    assert!(!logs.contains(METRICS_TOKEN), "the token is never logged");
    Ok(())
}

#[actix_web::test]
async fn with_metrics_port_and_token_set_the_metrics_port_asks_for_the_token_too() -> TestResult {
    let app = spawn_with(&[("METRICS_PORT", "9464"), ("METRICS_TOKEN", METRICS_TOKEN)]).await;
    let base = app.metrics_base.clone().ok_or("no metrics listener")?;

    let missing = scrape(&app, &base, None).await;
    assert_refused(
        &missing,
        "Bearer realm=\"metrics\"",
        "no token on METRICS_PORT",
    );
    let granted = scrape(&app, &base, Some(&format!("bearer {METRICS_TOKEN}"))).await;
    assert_eq!(
        granted.status,
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
    let main = scrape(&app, &app.base, Some(&format!("Bearer {METRICS_TOKEN}"))).await;
    assert_eq!(
        main.status,
        StatusCode::NOT_FOUND,
        "the main port has no /metrics, token or not"
    );
    app.stop().await;
    Ok(())
}
