//! The process's life: SIGTERM stops it gracefully (in-flight requests finish, new
//! connections are refused, the outbox worker and pools are closed, exit status 0); after
//! SIGKILL, the restarted process sends the mail its dead worker had claimed at once.

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

fn post_json(port: u16, path: &str, body: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// The service on the SQLite file under `dir`, on `port`, sending mail to an SMTP server on
/// `smtp_port`; its log goes to `log`.
fn service_with_mail(
    dir: &std::path::Path,
    port: u16,
    smtp_port: u16,
    log: &std::path::Path,
) -> std::io::Result<std::process::Child> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auth-http"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AUTH_DATA_DIR", dir.join("data"))
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("BCRYPT_COST", "4")
        .env("WORKERS", "1")
        .env("LOG_FORMAT", "text")
        .env("MAIL_SERVER", "127.0.0.1")
        .env("MAIL_PORT", smtp_port.to_string())
        .env("MAIL_USE_TLS", "false")
        .env("MAIL_TIMEOUT", "30")
        .env("MAIL_DEFAULT_SENDER", "Auth Test <no-reply@auth.test>")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    let child = command.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/health/live").map_or(true, |a| !a.starts_with("HTTP/1.1 200")) {
        if Instant::now() > deadline {
            return Err(std::io::Error::other("the server did not start"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

#[test]
fn after_sigkill_the_restarted_service_sends_at_once_the_mail_its_worker_had_claimed() -> TestResult
{
    // Arrange: an SMTP server that accepts connections and never answers, so the worker
    // hangs in its first delivery with its batch claimed.
    let black_hole = TcpListener::bind("127.0.0.1:0")?;
    let hole_port = black_hole.local_addr()?.port();
    let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in black_hole.incoming().flatten() {
            held.push(conn);
            let _ = accepted_tx.send(());
        }
    });
    let dir = tempfile::tempdir()?;
    let (log, log2) = (dir.path().join("first.log"), dir.path().join("second.log"));
    let port = free_port()?;
    let mut first = service_with_mail(dir.path(), port, hole_port, &log)?;
    for user in ["killed1", "killed2"] {
        let body = format!(
            r#"{{"email":"{user}@example.com","username":"{user}","password":"SecurePass123!","name":"Test","surname":"User"}}"#
        );
        let answer = post_json(port, "/auth/register", &body)?;
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    }
    accepted_rx.recv_timeout(Duration::from_secs(30))?;

    // Act: the process is killed mid-delivery, and started again with a working server.
    first.kill()?;
    first.wait()?;
    let smtp = crate::smtp::SmtpServer::start();
    let mut second = service_with_mail(dir.path(), free_port()?, smtp.port, &log2)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while smtp.messages().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = second.kill();
    let _ = second.wait();

    // Assert
    for user in ["killed1", "killed2"] {
        assert_eq!(
            smtp.to(&format!("{user}@example.com")).len(),
            1,
            "{user}'s verification mail, within 20 s of the restart; log: {}",
            std::fs::read_to_string(&log2).unwrap_or_default()
        );
    }
    Ok(())
}

#[actix_web::test]
async fn the_application_does_not_build_on_a_port_already_taken_and_says_which() -> TestResult {
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port().to_string();
    let dir = tempfile::tempdir()?;
    let vars = [
        ("HOST", "127.0.0.1"),
        ("PORT", port.as_str()),
        ("AUTH_DATA_DIR", dir.path().to_str().unwrap_or_default()),
    ];
    let config = auth_http::config::Config::from_vars(
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )?;
    let built = auth_http::startup::Application::build(config).await;
    let err = built.err().ok_or("built on a taken port")?;
    let shown = auth_http::startup::error_chain(&err);
    assert!(
        shown.starts_with(&format!("cannot listen on 127.0.0.1:{port} (PORT)")),
        "{shown}"
    );
    Ok(())
}
