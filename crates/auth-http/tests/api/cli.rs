//! The binary itself: `migrate`, and refusing to start on a bad or unsafe configuration.

use std::process::Command;

use crate::helpers::TestResult;

fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth-http"));
    // A clean environment: nothing inherited from the machine running the tests.
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

#[test]
fn migrate_creates_the_database_and_exits_zero() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let out = binary()
        .arg("migrate")
        .env("AUTH_DATA_DIR", &data)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("auth.db").exists());
    let again = binary()
        .arg("migrate")
        .env("AUTH_DATA_DIR", &data)
        .output()?;
    assert!(again.status.success(), "migrating twice is a no-op");
    Ok(())
}

#[test]
fn production_refuses_development_defaults_and_names_each_missing_piece() -> TestResult {
    let out = binary().env("APP_ENV", "production").output()?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for missing in [
        "SECRET_KEY",
        "JWT_PRIVATE_KEY",
        "MAIL_SERVER",
        "DATABASE_URL",
    ] {
        assert!(stderr.contains(missing), "{missing} not named in: {stderr}");
    }
    Ok(())
}

#[test]
fn a_bad_value_stops_the_start_with_its_name() -> TestResult {
    let out = binary()
        .env("PORT", "not-a-port")
        .env("BCRYPT_COST", "99")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PORT") && stderr.contains("BCRYPT_COST"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn an_unusable_database_path_fails_with_a_clear_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory")?;
    let out = binary()
        .env("AUTH_DATA_DIR", dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/auth.db", file.display()),
        )
        .env("BCRYPT_COST", "4")
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database"), "{stderr}");
    Ok(())
}

#[test]
fn an_unreachable_postgresql_at_start_is_a_clear_error_and_exit_code() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = binary()
        .env("AUTH_DATA_DIR", dir.path())
        .env(
            "DATABASE_URL",
            "postgres://someone:hunter2@127.0.0.1:1/auth",
        )
        .env("DATABASE_CONNECT_TIMEOUT", "2")
        .env("BCRYPT_COST", "4")
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PostgreSQL at postgres://someone:***@127.0.0.1:1/auth"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the password never shows: {stderr}"
    );
    Ok(())
}
