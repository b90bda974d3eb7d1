//! Traces: the real binary exports its spans over OTLP/HTTP to a receiver inside the test
//! (on PostgreSQL and Redis when the suite runs on them).
//! A login that carries a W3C `traceparent` continues the caller's trace (the request's
//! span is a child of the caller's span), with spans for the use case, the database, Redis
//! (on a Redis suite) and password hashing (waiting and hashing apart); no span holds an
//! email, a username, a password, an IP or a token; the JSON log lines of the request
//! carry the trace and span ids; and stopping the process flushes the exporter.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

use auth_domain::model::MailKind;
use awc::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};

use crate::helpers::{Backing, TestResult, on_postgres, on_redis, test_redis_url};
use crate::observability::{Binary, Driver};

const EMAIL: &str = "traced.person@example.com";
const USERNAME: &str = "tracedperson";
const PASSWORD: &str = "Traced-Passphrase-73";
/// The caller's trace and span, as its `traceparent` names them.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP receiver: accepts `POST /v1/traces` (protobuf) on a free port, keeps each
/// body, and answers 200 with an empty `ExportTraceServiceResponse`.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (b, p) = (Arc::clone(&bodies), Arc::clone(&paths));
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (b, p) = (Arc::clone(&b), Arc::clone(&p));
                std::thread::spawn(move || serve(stream, &b, &p));
            }
        });
        Ok(Self {
            port,
            bodies,
            paths,
        })
    }

    /// Every span received, decoded.
    fn spans(&self) -> Vec<Span> {
        self.bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|body| {
                ExportTraceServiceRequest::decode(body.as_slice())
                    .unwrap_or_else(|e| panic!("not an OTLP trace export: {e}"))
            })
            .flat_map(|export| export.resource_spans)
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans)
            .collect()
    }
}

/// One connection: HTTP/1.1 requests with a `Content-Length` body, kept alive.
fn serve(stream: TcpStream, bodies: &Mutex<Vec<Vec<u8>>>, paths: &Mutex<Vec<String>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        paths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(path);
        bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(body);
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A span's attributes, their values as text.
fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

#[actix_web::test]
async fn a_traced_login_continues_the_callers_trace_with_spans_that_hold_no_personal_data()
-> TestResult {
    let receiver = Receiver::start()?;
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let redis_url = test_redis_url();
    let backing = Backing::fresh().await;
    let database_url = backing
        .postgres
        .as_ref()
        .map(|db| db.url().to_owned())
        .unwrap_or_default();
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "auth-traces-test"),
    ];
    if on_postgres() {
        vars.push(("DATABASE_URL", database_url.as_str()));
    }
    if on_redis() {
        vars.push(("REDIS_URL", redis_url.as_str()));
        vars.push(("REDIS_KEY_PREFIX", "traces-test:"));
    }
    let binary = Binary::start(&vars).await?;

    let registration = json!({"email": EMAIL, "username": USERNAME, "password": PASSWORD,
        "name": "Traced", "surname": "Person"});
    let res = binary
        .send("POST", "/auth/register", None, Some(registration))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "register: {}", res.body);
    let verification = binary.token_mailed(EMAIL, MailKind::VerifyEmail).await;
    let res = binary
        .send(
            "POST",
            "/auth/verify-email",
            None,
            Some(json!({ "token": verification })),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "verify: {}", res.body);

    let mut login = binary
        .client
        .post(format!("{}/auth/login", binary.base))
        .insert_header(("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")))
        .insert_header(("tracestate", "vendor=opaque"))
        .send_json(&json!({"username": USERNAME, "password": PASSWORD}))
        .await?;
    assert_eq!(login.status(), StatusCode::OK);
    let tokens: Value = login.json().await?;
    let access = tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(access.len() > 20 && refresh.len() > 20, "{tokens}");

    let lines = binary.stop();
    let spans = receiver.spans();
    assert!(
        receiver
            .paths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .all(|p| p == "/v1/traces"),
        "exports go to {{endpoint}}/v1/traces"
    );

    // The login's spans: in the caller's trace.
    let traced: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == TRACE_ID)
        .collect();
    let named = |name: &str| traced.iter().filter(|s| s.name == name).count();
    let request = traced
        .iter()
        .find(|s| attributes(s).get("http.route").map(String::as_str) == Some("/auth/login"))
        .unwrap_or_else(|| panic!("no request span in the caller's trace: {spans:#?}"));
    assert_eq!(
        hex(&request.parent_span_id),
        PARENT_SPAN_ID,
        "the request's span is a child of the caller's"
    );
    assert_eq!(request.name, "POST /auth/login");
    let request_attributes = attributes(request);
    assert_eq!(request_attributes["http.response.status_code"], "200");
    let use_case = traced
        .iter()
        .find(|s| s.name == "login")
        .unwrap_or_else(|| panic!("no use case span: {traced:#?}"));
    assert_eq!(attributes(use_case)["use_case"], "login");
    assert_eq!(
        use_case.parent_span_id, request.span_id,
        "use case under request"
    );
    let db: Vec<HashMap<String, String>> = traced
        .iter()
        .filter(|s| s.name == "db")
        .map(|s| attributes(s))
        .collect();
    let system = if on_postgres() {
        "postgresql"
    } else {
        "sqlite"
    };
    assert!(
        db.iter()
            .any(|a| a["db.system"] == system && a["db.operation"] == "user_by_username"),
        "database spans: {db:?}"
    );
    assert_eq!(named("password.wait"), 1, "waiting for a permit");
    assert_eq!(named("password.hash"), 1, "hashing");
    if on_redis() {
        let redis: Vec<HashMap<String, String>> = traced
            .iter()
            .filter(|s| s.name == "redis")
            .map(|s| attributes(s))
            .collect();
        assert!(
            redis.iter().any(|a| a["db.system"] == "redis"),
            "redis spans: {redis:?}"
        );
    }
    // The earlier requests had no traceparent: traces of their own.
    assert!(
        spans
            .iter()
            .any(|s| s.name == "register" && hex(&s.trace_id) != TRACE_ID),
        "the registration's own trace"
    );

    // Nothing personal or secret in any span, of any trace.
    let forbidden = [
        EMAIL,
        USERNAME,
        PASSWORD,
        "127.0.0.1",
        &verification,
        &access,
        &refresh,
    ];
    for span in &spans {
        let mut shown = span.name.clone();
        for (key, value) in attributes(span) {
            shown.push_str(&format!(" {key}={value}"));
        }
        for event in &span.events {
            shown.push_str(&format!(" {}", event.name));
        }
        for needle in forbidden {
            assert!(!shown.contains(needle), "{needle:?} in a span: {shown}");
        }
    }

    // The request's log lines carry the trace and their span's id.
    let events: Vec<Value> = lines
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let login_lines: Vec<&Value> = events
        .iter()
        .filter(|e| e["trace_id"] == TRACE_ID)
        .collect();
    let access_log = login_lines
        .iter()
        .find(|e| e["message"] == "request")
        .unwrap_or_else(|| panic!("no access log line with the trace id: {lines:#?}"));
    assert_eq!(access_log["span_id"], hex(&request.span_id), "{access_log}");
    assert_eq!(access_log["path"], "/auth/login", "{access_log}");
    assert!(
        login_lines
            .iter()
            .any(|e| e["target"] == "audit" && e["event"] == "login.succeeded"),
        "the audit line of the login: {login_lines:#?}"
    );
    Ok(())
}
