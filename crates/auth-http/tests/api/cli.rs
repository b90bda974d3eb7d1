//! The binary itself: `migrate`, refusing to start on a bad or unsafe configuration,
//! `keys generate` and `config check`.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use josekit::jwk::KeyPair;
use josekit::jws::{ES256, EdDSA, JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};

use crate::helpers::{TestResult, spawn_with};

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
        "METRICS_TOKEN",
        "METRICS_PORT",
    ] {
        assert!(stderr.contains(missing), "{missing} not named in: {stderr}");
    }
    Ok(())
}

#[test]
fn production_refuses_a_weak_secret_key_in_config_check_and_at_start_without_showing_it()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data").display().to_string();
    let vars = [
        ("AUTH_DATA_DIR", data.as_str()),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("APP_ENV", "production"),
        ("SECRET_KEY", "weak-Zq9"),
        (
            "JWT_SECRET_KEY",
            "a jwt secret of at least thirty-two bytes",
        ),
        // Nothing listens there: the old service got this far and failed to connect.
        ("DATABASE_URL", "postgres://127.0.0.1:1/auth"),
        ("MAIL_SERVER", "smtp.example.com"),
        ("MAIL_DEFAULT_SENDER", "Example <no-reply@example.com>"),
        ("METRICS_PORT", "9090"),
    ];
    let checked = check(&vars)?;
    let shown = stdout(&checked);
    assert_eq!(checked.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("refuses SECRET_KEY shorter than 32 bytes"),
        "{shown}"
    );
    let mut serve = binary();
    serve.envs(vars);
    let start = serve.output()?;
    let refused = stderr(&start);
    assert_eq!(start.status.code(), Some(2), "{refused}");
    assert!(
        refused.contains("refuses SECRET_KEY shorter than 32 bytes"),
        "{refused}"
    );
    for out in [&shown, &refused] {
        assert!(!out.contains("weak-Zq9"), "the value shows: {out}");
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

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `keys generate --alg <alg>` without `--out`: (private PEM, public PEM, kid).
fn generate(alg: &str) -> Result<(String, String, String), Box<dyn std::error::Error>> {
    let out = binary().args(["keys", "generate", "--alg", alg]).output()?;
    assert!(out.status.success(), "{alg}: {}", stderr(&out));
    let pems = stdout(&out);
    let split = pems
        .find("-----BEGIN PUBLIC KEY-----")
        .ok_or("no public key on stdout")?;
    let (private, public) = pems.split_at(split);
    let kid = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("kid: "))
        .ok_or("no kid on stderr")?
        .to_owned();
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{alg}: {private}"
    );
    assert!(
        !stderr(&out).contains("PRIVATE KEY-----"),
        "{alg}: the private key never goes to stderr"
    );
    Ok((private.to_owned(), public.to_owned(), kid))
}

fn check(vars: &[(&str, &str)]) -> Result<Output, std::io::Error> {
    let mut cmd = binary();
    cmd.args(["config", "check"]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output()
}

#[actix_web::test]
async fn generated_keys_load_and_carry_the_kid_the_service_publishes() -> TestResult {
    for (alg, env_alg) in [("rs256", "RS256"), ("es256", "ES256"), ("eddsa", "EdDSA")] {
        let (private, public, kid) = generate(alg)?;

        // The two PEMs are one pair: what the private key signs, the public one verifies.
        let payload = JwtPayload::new();
        let header = JwsHeader::new();
        let (token, verified) = match alg {
            "rs256" => {
                let t =
                    jwt::encode_with_signer(&payload, &header, &RS256.signer_from_pem(&private)?)?;
                let ok = jwt::decode_with_verifier(&t, &RS256.verifier_from_pem(&public)?).is_ok();
                (t, ok)
            }
            "es256" => {
                let t =
                    jwt::encode_with_signer(&payload, &header, &ES256.signer_from_pem(&private)?)?;
                let ok = jwt::decode_with_verifier(&t, &ES256.verifier_from_pem(&public)?).is_ok();
                (t, ok)
            }
            _ => {
                let t =
                    jwt::encode_with_signer(&payload, &header, &EdDSA.signer_from_pem(&private)?)?;
                let ok = jwt::decode_with_verifier(&t, &EdDSA.verifier_from_pem(&public)?).is_ok();
                (t, ok)
            }
        };
        assert!(verified, "{alg}: the public PEM verifies {token}");

        // `config check` accepts the key under that algorithm, and computes the same kid.
        let dir = tempfile::tempdir()?;
        let data = dir.path().display().to_string();
        let out = check(&[
            ("AUTH_DATA_DIR", &data),
            ("JWT_ALGORITHM", env_alg),
            ("JWT_PRIVATE_KEY", &private),
            ("JWT_PUBLIC_KEY", &public),
        ])?;
        let shown = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{alg}: {shown}");
        assert!(shown.contains("no problems found"), "{alg}: {shown}");
        assert!(
            shown.contains(&format!("JWT_PRIVATE_KEY=set (masked), kid {kid}\n")),
            "{alg}: {shown}"
        );
        assert!(
            !shown.contains("also accepted"),
            "{alg}: the public PEM is the private key's own, not a second key: {shown}"
        );
        let private_body = private.lines().nth(1).unwrap_or("?");
        assert!(
            !shown.contains(private_body) && !stderr(&out).contains(private_body),
            "{alg}: the private key is never shown"
        );

        // The running service publishes the key under that kid and names it in its tokens.
        let app = spawn_with(&[("JWT_ALGORITHM", env_alg), ("JWT_PRIVATE_KEY", &private)]).await;
        let jwks = app
            .call("GET", "/.well-known/jwks.json", None, None, &[])
            .await;
        assert_eq!(jwks.body["keys"][0]["kid"], kid.as_str(), "{alg}");
        assert_eq!(jwks.body["keys"][0]["alg"], env_alg, "{alg}");
        let (access, _) = app
            .signed_in(&format!("{alg}@example.com"), &format!("user{alg}"))
            .await;
        let header = access.split('.').next().unwrap_or_default();
        let header: serde_json::Value = serde_json::from_slice(&base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            header,
        )?)?;
        assert_eq!(header["kid"], kid.as_str(), "{alg}: tokens name the key");
        app.stop().await;
    }
    Ok(())
}

#[test]
fn keys_generate_out_writes_an_owner_only_private_key_and_never_overwrites() -> TestResult {
    let dir = tempfile::tempdir()?;
    let keys = dir.path().join("keys");
    let out = binary()
        .args(["keys", "generate", "--alg", "ES256", "--out"])
        .arg(&keys)
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(!printed.contains("PRIVATE KEY-----"), "{printed}");
    let kid = printed
        .lines()
        .find_map(|l| l.strip_prefix("kid: "))
        .ok_or("no kid")?;
    let private = keys.join(format!("jwt-es256-{kid}.key.pem"));
    let public = keys.join(format!("jwt-es256-{kid}.pub.pem"));
    let mode = |p: &std::path::Path| -> std::io::Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    assert_eq!(mode(&private)?, 0o600, "{printed}");
    assert_eq!(mode(&public)?, 0o644, "{printed}");
    assert!(
        printed.contains(&private.display().to_string()),
        "{printed}"
    );
    let pem = std::fs::read_to_string(&private)?;
    assert!(ES256.key_pair_from_pem(&pem).is_ok());
    assert!(ES256.verifier_from_pem(std::fs::read(&public)?).is_ok());

    // A kid is a fresh key's thumbprint, so the binary cannot be made to collide: the
    // writer it uses is driven directly with one key twice.
    let key = auth_crypto::generate_key_pair(auth_crypto::Asymmetric::EdDsa)?;
    let (first, _) = auth_http::cli::write_key_pair(&keys, &key)?;
    let before = std::fs::read(&first)?;
    let again = auth_http::cli::write_key_pair(&keys, &key)
        .err()
        .unwrap_or_default();
    assert!(again.contains("already exists"), "{again}");
    assert_eq!(std::fs::read(&first)?, before, "the key is untouched");

    // An existing public file alone also refuses, and leaves no orphan private key.
    let other = auth_crypto::generate_key_pair(auth_crypto::Asymmetric::EdDsa)?;
    let orphan = keys.join(format!("jwt-eddsa-{}.key.pem", other.kid));
    std::fs::write(
        keys.join(format!("jwt-eddsa-{}.pub.pem", other.kid)),
        "mine",
    )?;
    assert!(auth_http::cli::write_key_pair(&keys, &other).is_err());
    assert!(!orphan.exists());
    Ok(())
}

#[test]
fn keys_generate_fails_with_exit_one_when_it_cannot_write() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory")?;
    let out = binary()
        .args(["keys", "generate", "--alg", "eddsa", "--out"])
        .arg(&file)
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "no key is printed instead");
    Ok(())
}

#[test]
fn config_check_of_a_development_environment_shows_every_setting_with_secrets_masked() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data").display().to_string();
    let out = check(&[("AUTH_DATA_DIR", &data)])?;
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}{}", stderr(&out));
    assert!(shown.ends_with("no problems found\n"), "{shown}");
    // Every variable of the definitions (which the README's table is checked against).
    let variables: Vec<&str> = auth_http::config::variables()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert!(variables.len() > 40, "{variables:?}");
    for name in &variables {
        assert!(
            shown.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name} missing from: {shown}"
        );
    }
    assert!(shown.contains("\nPORT=5000\n"), "{shown}");
    assert!(shown.contains("\nSECRET_KEY=unset\n"), "{shown}");
    assert!(
        std::fs::read_dir(dir.path())?.next().is_none(),
        "checking creates nothing (no data directory, no secrets)"
    );

    let secrets = [
        ("SECRET_KEY", "root-secret-value-Zq81"),
        ("JWT_SECRET_KEY", "jwt-secret-value-of-32-bytes-Zq82"),
        ("MAIL_USERNAME", "user-token-Zq83"),
        ("MAIL_PASSWORD", "mail-password-Zq84"),
        ("METRICS_TOKEN", "metrics-token-Zq88"),
        (
            "ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ];
    let mut vars = secrets.to_vec();
    vars.extend([
        ("AUTH_DATA_DIR", data.as_str()),
        (
            "DATABASE_URL",
            "postgres://someone:pg-password-Zq85@db.internal:5432/auth",
        ),
        ("REDIS_URL", "redis://:redis-password-Zq86@cache:6379/0"),
        ("MAIL_SERVER", "smtp.example.com"),
        ("MAIL_DEFAULT_SENDER", "Example <no-reply@example.com>"),
    ]);
    let out = check(&vars)?;
    let (shown, errors) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{shown}{errors}");
    for (name, value) in secrets {
        assert!(
            shown.contains(&format!("\n{name}=set (masked)")),
            "{name}: {shown}"
        );
        assert!(
            !shown.contains(value) && !errors.contains(value),
            "{name}'s value shows"
        );
    }
    for password in ["pg-password-Zq85", "redis-password-Zq86"] {
        assert!(!shown.contains(password) && !errors.contains(password));
    }
    assert!(
        shown.contains("\nDATABASE_URL=postgres://someone:***@db.internal:5432/auth\n"),
        "{shown}"
    );
    assert!(
        shown.contains("\nREDIS_URL=redis://:***@cache:6379/0\n"),
        "{shown}"
    );
    Ok(())
}

#[test]
fn config_check_names_every_problem_and_exits_two_like_the_start() -> TestResult {
    let rsa = String::from_utf8(RS256.generate_key_pair(2048)?.to_pem_private_key())?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().display().to_string();
    let vars = [
        ("AUTH_DATA_DIR", data.as_str()),
        ("PORT", "http"),
        ("JWT_ALGORITHM", "ES256"),
        ("JWT_PRIVATE_KEY", rsa.as_str()),
        ("MAIL_SERVER", "smtp.example.com"),
        ("MAIL_DEFAULT_SENDER", "not an address"),
    ];
    let out = check(&vars)?;
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("\nAPP_ENV=development\n"),
        "the settings still show: {shown}"
    );
    let problems: Vec<&str> = shown
        .split("\nproblems:\n")
        .nth(1)
        .ok_or("no problems section")?
        .lines()
        .collect();
    for (expected, why) in [
        ("PORT=\"http\"", "a value that is not a port"),
        ("JWT_PRIVATE_KEY (ES256)", "an RSA key under ES256"),
        ("MAIL_DEFAULT_SENDER", "a sender that is not an address"),
    ] {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("  - ") && p.contains(expected)),
            "{why}: {expected} not named in {problems:?}"
        );
    }
    assert_eq!(problems.len(), 3, "{problems:?}");
    let rsa_body = rsa.lines().nth(1).unwrap_or("?");
    assert!(!shown.contains(rsa_body) && !stderr(&out).contains(rsa_body));

    // The start refuses the same configuration with the same status, and every problem
    // it names, `config check` named too.
    let mut serve = binary();
    for (k, v) in vars {
        serve.env(k, v);
    }
    let start = serve.output()?;
    assert_eq!(start.status.code(), Some(2));
    let refused = stderr(&start);
    for line in refused.lines().filter_map(|l| l.trim().strip_prefix("- ")) {
        assert!(shown.contains(line), "{line} not in: {shown}");
    }
    Ok(())
}

#[test]
fn config_check_and_the_start_agree_on_cors_origins() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data").display().to_string();
    // Not a URI: the CORS middleware would refuse to start the server's workers, after the
    // port is bound. Both must refuse it as configuration instead, naming it.
    let bad = [
        ("AUTH_DATA_DIR", data.as_str()),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        (
            "CORS_ORIGINS",
            "https://app.example.com, https://exa mple.com",
        ),
    ];
    let checked = check(&bad)?;
    assert_eq!(checked.status.code(), Some(2), "{}", stdout(&checked));
    assert!(
        stdout(&checked).contains("CORS_ORIGINS entry \"https://exa mple.com\""),
        "{}",
        stdout(&checked)
    );
    let mut serve = binary();
    serve.envs(bad);
    let start = serve.output()?;
    assert_eq!(start.status.code(), Some(2), "{}", stderr(&start));
    assert!(
        stderr(&start).contains("CORS_ORIGINS entry"),
        "{}",
        stderr(&start)
    );

    // `*`: any origin, accepted by both; in production, a warning.
    let star = check(&[
        ("AUTH_DATA_DIR", data.as_str()),
        ("APP_ENV", "production"),
        ("SECRET_KEY", "a production secret of enough length"),
        (
            "JWT_SECRET_KEY",
            "a jwt secret of at least thirty-two bytes",
        ),
        ("DATABASE_URL", "postgres://db.internal/auth"),
        ("MAIL_SERVER", "smtp.example.com"),
        ("MAIL_DEFAULT_SENDER", "Example <no-reply@example.com>"),
        ("METRICS_PORT", "9090"),
        ("CORS_ORIGINS", "*"),
    ])?;
    let shown = stdout(&star);
    assert_eq!(star.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("\nCORS_ORIGINS=* (any origin, without credentials)\n"),
        "{shown}"
    );
    assert!(
        shown.contains("warnings (the service starts, and logs each):\n  - CORS_ORIGINS=*"),
        "{shown}"
    );
    Ok(())
}

#[test]
fn config_check_finds_an_unusable_database_path_without_touching_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory")?;
    let url = format!("sqlite://{}/auth.db", file.display());
    let out = check(&[
        ("AUTH_DATA_DIR", &dir.path().display().to_string()),
        ("DATABASE_URL", &url),
    ])?;
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "  - DATABASE_URL: the SQLite file {}/auth.db cannot be created",
            file.display()
        )),
        "{shown}"
    );
    assert_eq!(std::fs::read_to_string(&file)?, "not a directory");
    Ok(())
}

#[test]
fn serve_help_lists_every_variable_with_its_default_but_no_value_from_the_environment() -> TestResult
{
    let out = binary()
        .args(["serve", "--help"])
        .env("SECRET_KEY", "root-secret-value-Zq91")
        .env("DATABASE_URL", "postgres://u:pg-password-Zq92@db/auth")
        .output()?;
    let help = stdout(&out);
    assert!(out.status.success(), "{help}{}", stderr(&out));
    for var in auth_http::config::variables() {
        let line = match &var.default {
            Some(default) => format!("\n  {} [default: {default}]\n", var.name),
            None => format!("\n  {}\n", var.name),
        };
        assert!(help.contains(&line), "{line:?} missing from: {help}");
    }
    assert!(help.contains("STARTTLS, required once asked for"), "{help}");
    for value in ["Zq91", "Zq92"] {
        assert!(
            !help.contains(value),
            "a value from the environment shows: {help}"
        );
    }
    Ok(())
}
