//! Revocations survive what Redis can lose: a revocation whose write to Redis failed after
//! storage recorded it, Redis losing every key, and a Redis restart that kept nothing. In
//! each case the revoked token is never accepted again: it is refused (503, fail closed)
//! until the revocation list is warmed again from storage, then refused as revoked (401).
//!
//! These run on a real Redis whatever `AUTH_TEST_CACHE` says: `TEST_REDIS_URL` (skipped
//! loudly when unreachable, except under CI) and, for the restart, a `redis-server` of the
//! test's own on a free port.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auth_domain::model::MailKind;
use awc::http::StatusCode;
use deadpool_redis::redis::{self, Commands as _};
use serde_json::json;

use crate::helpers::{Backing, Response, TestApp, TestResult, spawn_on, test_redis_url};
use crate::proxy::{Proxy, through};

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| !ci.is_empty())
}

/// `host:port` of `TEST_REDIS_URL`, or `None` (said on stderr) when it is unreachable
/// outside CI.
fn reachable_redis() -> Option<String> {
    let placeholder = SocketAddr::from(([127, 0, 0, 1], 1));
    let (upstream, _) = through(&test_redis_url(), placeholder)?;
    if TcpStream::connect(&upstream).is_err() {
        assert!(!under_ci(), "Redis unreachable at {upstream} under CI");
        eprintln!("SKIPPED: Redis unreachable at {upstream} (set TEST_REDIS_URL; CI fails here)");
        return None;
    }
    Some(upstream)
}

/// Asks `app` to verify `token` until it answers something else than 503 (the revocation
/// list not warmed yet: fail closed), for up to 15 s, and returns that answer. Accepting
/// the token at any point fails the test.
async fn answer_once_warmed(app: &TestApp, token: &str, who: &str) -> Response {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let verify = app.get_auth("/auth/verify-token", token).await;
        assert_ne!(
            verify.status,
            StatusCode::OK,
            "{who} accepted a revoked token: {}",
            verify.body
        );
        if verify.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            return verify;
        }
        assert_eq!(verify.body["valid"], false, "{}", verify.body);
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[track_caller]
fn assert_revoked(verify: &Response, who: &str) {
    assert_eq!(
        (verify.status, verify.code()),
        (StatusCode::UNAUTHORIZED, "token_revoked"),
        "{who}: {}",
        verify.body
    );
}

#[actix_web::test]
async fn a_logout_whose_redis_write_failed_is_refused_everywhere_once_redis_is_back() -> TestResult
{
    // Arrange: instance `a` reaches Redis through a proxy, instance `b` directly; one
    // database, one key prefix.
    let Some(upstream) = reachable_redis() else {
        return Ok(());
    };
    let proxy = Proxy::start(upstream).await?;
    let redis = test_redis_url();
    let (_, proxied) = through(&redis, proxy.addr).ok_or("unparsable TEST_REDIS_URL")?;
    let backing = Backing::fresh().await;
    let prefix = backing.redis_prefix.clone();
    let a = spawn_on(
        &backing,
        &[("REDIS_URL", &proxied), ("REDIS_KEY_PREFIX", &prefix)],
    )
    .await;
    let b = spawn_on(
        &backing,
        &[("REDIS_URL", &redis), ("REDIS_KEY_PREFIX", &prefix)],
    )
    .await;
    let (access, _) = a.signed_in("lostwrite@example.com", "lostwrite").await;

    // Act: the logout reaches storage, but Redis goes away as it writes the revocation.
    proxy.cut_revocation_writes();
    let logout = a
        .call("POST", "/auth/logout", Some(&access), None, &[])
        .await;
    assert_eq!(
        logout.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        logout.body
    );
    proxy.restore();

    // Assert: once Redis is back, neither instance accepts the token.
    assert_revoked(&answer_once_warmed(&a, &access, "a").await, "a");
    assert_revoked(&answer_once_warmed(&b, &access, "b").await, "b");
    Ok(())
}

/// Deletes every key under `prefix` in the Redis at `url`, as a `FLUSHALL` would.
fn flush_prefix(url: &str, prefix: &str) -> TestResult {
    let mut conn = redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(2))?;
    let keys: Vec<String> = conn
        .scan_match::<_, String>(format!("{prefix}*"))?
        .filter_map(Result::ok)
        .collect();
    assert!(!keys.is_empty(), "the test has keys to lose");
    let _: i64 = conn.del(keys)?;
    Ok(())
}

#[actix_web::test]
async fn revoked_tokens_stay_refused_after_redis_loses_every_key() -> TestResult {
    // Arrange: three sessions of one user; the first logged out, the other two ended by a
    // logout everywhere (session marks and the user's "not before" mark).
    if reachable_redis().is_none() {
        return Ok(());
    }
    let redis = test_redis_url();
    let backing = Backing::fresh().await;
    let prefix = backing.redis_prefix.clone();
    let app = spawn_on(
        &backing,
        &[("REDIS_URL", &redis), ("REDIS_KEY_PREFIX", &prefix)],
    )
    .await;
    let (first, _) = app.signed_in("flushed@example.com", "flushed").await;
    let second = app.login("flushed").await.str("access_token");
    let third = app.login("flushed").await.str("access_token");
    let one = app
        .call("POST", "/auth/logout", Some(&first), None, &[])
        .await;
    let all = app
        .call(
            "POST",
            "/auth/logout",
            Some(&second),
            Some(&json!({"all": true})),
            &[],
        )
        .await;
    assert_eq!(
        (one.status, all.status),
        (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT)
    );

    // Act
    flush_prefix(&redis, &prefix)?;

    // Assert
    for (token, which) in [(&first, "first"), (&second, "second"), (&third, "third")] {
        assert_revoked(&answer_once_warmed(&app, token, which).await, which);
    }
    Ok(())
}

/// A `redis-server` of the test's own, on a free port, keeping nothing on disk.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    /// Started, or `None` (said on stderr) when there is no `redis-server` outside CI.
    fn start() -> Result<Option<Self>, Box<dyn std::error::Error>> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut redis = Self {
            port,
            dir: tempfile::tempdir()?,
            child: None,
        };
        match redis.launch() {
            Ok(()) => Ok(Some(redis)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !under_ci() => {
                eprintln!("SKIPPED: no redis-server on PATH to restart ({err})");
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its port and waits (up to 10 s) until it answers.
    fn launch(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answered = redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            match answered {
                Ok(_) => return Ok(()),
                Err(err) if Instant::now() > deadline => {
                    return Err(std::io::Error::other(format!("redis-server: {err}")));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[actix_web::test]
async fn a_password_reset_while_redis_is_down_ends_the_sessions_after_a_restart_that_kept_nothing()
-> TestResult {
    // Arrange: a signed-in user who asked for a reset link.
    let Some(mut redis) = OwnRedis::start()? else {
        return Ok(());
    };
    let url = redis.url();
    let app = spawn_on(&Backing::fresh().await, &[("REDIS_URL", &url)]).await;
    let (access, _) = app.signed_in("restart@example.com", "restart").await;
    let asked = app
        .post(
            "/auth/forgot-password",
            &json!({"email": "restart@example.com"}),
        )
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED);
    let token = app
        .mailed_token("restart@example.com", MailKind::ResetPassword)
        .await;

    // Act: the reset reaches storage while Redis is down; Redis restarts empty.
    redis.stop();
    let reset = app
        .post(
            "/auth/reset-password",
            &json!({"token": token, "new_password": "Brand-New-Passphrase-42"}),
        )
        .await;
    redis.launch()?;

    // Assert
    // The reset reached storage (the sessions are revoked there); Redis could not be told.
    assert!(
        [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(&reset.status),
        "{}",
        reset.body
    );
    assert_revoked(
        &answer_once_warmed(&app, &access, "the app").await,
        "after the restart",
    );
    Ok(())
}
