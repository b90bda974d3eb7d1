//! The process's life: SIGTERM stops it gracefully (in-flight requests finish, new
//! connections are refused, the outbox worker and pools are closed, exit status 0).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestResult;

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[test]
fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_zero() -> TestResult {
    graceful_stop("-TERM", false)
}

#[test]
fn sigint_is_as_graceful_also_with_a_separate_metrics_port() -> TestResult {
    graceful_stop("-INT", true)
}

fn graceful_stop(signal: &str, metrics_port: bool) -> TestResult {
    // Arrange: a server whose logins take long (bcrypt cost 14 on every login, also for an
    // unknown user).
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_auth-http"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AUTH_DATA_DIR", dir.path().join("data"))
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("BCRYPT_COST", "14")
        .env("WORKERS", "1")
        .env("SHUTDOWN_GRACE", "20")
        .env("LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let metrics = free_port()?;
    if metrics_port {
        command.env("METRICS_PORT", metrics.to_string());
    }
    let mut child = command.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/health/live").map_or(true, |a| !a.starts_with("HTTP/1.1 200")) {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Act: a login is in flight when SIGTERM arrives.
    let mut in_flight = TcpStream::connect(("127.0.0.1", port))?;
    in_flight.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = r#"{"username":"nobody","password":"Some-Password-123"}"#;
    write!(
        in_flight,
        "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    if metrics_port {
        assert!(get(metrics, "/metrics")?.starts_with("HTTP/1.1 200"));
    }
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()?;
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(300));
    let refused = TcpStream::connect(("127.0.0.1", port)).is_err();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer)?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(30),
            "still running 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut logs)?;
    }

    // Assert
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "the login in flight got its answer: {answer:?}"
    );
    assert!(refused, "no new connection is accepted once stopping");
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(
        logs.contains("stopping the outbox worker") && logs.contains("shutdown complete"),
        "{logs}"
    );
    Ok(())
}
