//! `config check`: the configuration `serve` would load, secrets masked, and every problem
//! that can be found without connecting anywhere.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use secrecy::ExposeSecret;

use crate::config::{Config, Database, JwtAlgorithm};
use crate::startup;

/// `auth-http config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration from the environment as `serve` would, without connecting
    /// anywhere; print every setting (secrets masked) and every problem found. Exit status
    /// 0 when there is none, 2 otherwise.
    Check,
}

/// What `config check` found.
#[derive(Debug)]
pub struct ConfigReport {
    /// Every variable with its effective value (secrets masked), in the definitions' order
    /// (the README's).
    pub settings: Vec<(&'static str, String)>,
    /// Every problem; the service refuses to start while there is one.
    pub problems: Vec<String>,
    /// What the service would log as a warning at start ([`Config::warnings`]).
    pub warnings: Vec<String>,
}

/// Runs `config …` on the process environment: prints the report; exit 0 when there is
/// no problem, 2 otherwise (the status of a configuration error at start).
pub fn config(command: &ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Check => {
            // Warnings of the checks (an unknown file among the mail templates) on stderr.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
                .with_writer(std::io::stderr)
                .without_time()
                .try_init();
            let report = check_config(crate::config::environment());
            let text = render(&report);
            if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
                eprintln!("auth-http: cannot write to stdout: {e}");
                return ExitCode::FAILURE;
            }
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// Loads the configuration from `vars` as `serve` would and checks what can be checked
/// without a network: the configuration's own rules, the JWT keys (the codec is built),
/// the SMTP settings and templates when `MAIL_SERVER` is set, and that the directories
/// the service writes to (the SQLite file's, and `AUTH_DATA_DIR` for generated secrets)
/// are writable or can be created. Writes nothing but a probe file it removes at once.
pub fn check_config(vars: HashMap<String, String>) -> ConfigReport {
    let (config, mut problems) = Config::from_vars_with_problems(vars);
    let mut settings = config.describe();
    let warnings = config.warnings();
    let kids = check_jwt(&config, &mut problems);
    check_mail(&config, &mut problems);
    if let Err(e) = startup::relying_party(&config) {
        problems.push(format!("passkeys (WEBAUTHN_RP_ID, WEBAUTHN_ORIGIN): {e}"));
    }
    check_directories(&config, &mut problems);
    for (name, value) in &mut settings {
        if let Some(note) = kids.get(name) {
            value.push_str(note);
        }
    }
    ConfigReport {
        settings,
        problems,
        warnings,
    }
}

/// Builds the token codec `serve` would; returns the notes (kids) to add to settings.
fn check_jwt(config: &Config, problems: &mut Vec<String>) -> HashMap<&'static str, String> {
    let mut notes = HashMap::new();
    let secret = match (&config.jwt_private_key, &config.jwt_secret_key) {
        // HS256 with a private key is already a problem of the configuration.
        (Some(_), _) if config.jwt_algorithm == JwtAlgorithm::Hs256 => return notes,
        (Some(_), _) => Vec::new(),
        (None, Some(secret)) => secret.expose_secret().as_bytes().to_vec(),
        // A secret generated into AUTH_DATA_DIR: nothing to check but the directory.
        (None, None) => return notes,
    };
    let codec = crate::startup::token_codec(config, &secret).map(|(codec, source)| {
        let name = match source {
            crate::startup::KeySource::PrivateKey => "JWT_PRIVATE_KEY",
            crate::startup::KeySource::Secret => "JWT_SECRET_KEY",
        };
        (name, codec)
    });
    match codec {
        Ok((name, codec)) => {
            notes.insert(name, format!(", kid {}", codec.key_id()));
            let extra: Vec<String> = codec.jwks()["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k["kid"].as_str())
                .filter(|kid| *kid != codec.key_id())
                .map(str::to_owned)
                .collect();
            if !extra.is_empty() {
                notes.insert(
                    "JWT_PUBLIC_KEY",
                    format!(", also accepted: kid {}", extra.join(", kid ")),
                );
            }
        }
        Err(e) => problems.push(format!("JWT keys: {e}")),
    }
    notes
}

/// Builds the SMTP mailer `serve` would (sender, templates, TLS set-up), without
/// connecting.
fn check_mail(config: &Config, problems: &mut Vec<String>) {
    let Some(host) = &config.mail_server else {
        return;
    };
    match startup::smtp_config(config, host) {
        Ok(smtp) => {
            if let Err(e) = auth_mail_smtp::SmtpMailer::new(smtp) {
                problems.push(format!("mail: {}", crate::startup::error_chain(&e)));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
}

/// The directories the service will write to at start.
fn check_directories(config: &Config, problems: &mut Vec<String>) {
    let mut checked = Vec::new();
    if let Database::Sqlite(file) = config.database() {
        let variable = if config.database_url.is_some() {
            "DATABASE_URL"
        } else {
            "AUTH_DATA_DIR"
        };
        let dir = parent_dir(&file);
        if let Err(why) = writable_or_creatable(&dir) {
            problems.push(format!(
                "{variable}: the SQLite file {} cannot be created: {why}",
                file.display()
            ));
        } else if file.exists()
            && let Err(e) = fs::OpenOptions::new().read(true).write(true).open(&file)
        {
            problems.push(format!(
                "{variable}: the SQLite file {} is not writable: {e}",
                file.display()
            ));
        }
        checked.push(dir);
    }
    // Without SECRET_KEY or JWT_SECRET_KEY, the service keeps generated ones in
    // AUTH_DATA_DIR/secrets.json: it reads the file, and writes it when a secret is missing.
    if config.secret_key.is_none() || config.jwt_secret_key.is_none() {
        let file = config.data_dir.join("secrets.json");
        match fs::read(&file) {
            Ok(raw) => {
                if !serde_json::from_slice::<serde_json::Value>(&raw).is_ok_and(|v| v.is_object()) {
                    problems.push(format!(
                        "AUTH_DATA_DIR: {} is not a valid secrets file (delete it to generate new secrets, which logs everyone out)",
                        file.display()
                    ));
                }
            }
            // Not there (or under a file: the directory check says so once).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                if !checked.contains(&config.data_dir)
                    && let Err(why) = writable_or_creatable(&config.data_dir)
                {
                    problems.push(format!(
                        "AUTH_DATA_DIR: generated secrets cannot be kept in {}: {why} (or set SECRET_KEY and JWT_SECRET_KEY)",
                        config.data_dir.display()
                    ));
                }
            }
            Err(e) => problems.push(format!(
                "AUTH_DATA_DIR: cannot read {}: {e}",
                file.display()
            )),
        }
    }
}

fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `Ok` when `dir` is a writable directory, or does not exist and its nearest existing
/// ancestor is one (so `create_dir_all` will succeed); otherwise why not.
fn writable_or_creatable(dir: &Path) -> Result<(), String> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    // Permission bits do not tell the whole story (read-only mounts, ACLs, root): try.
    let probe = existing.join(format!(".auth-http-config-check-{}", std::process::id()));
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("{} is not writable: {e}", existing.display())),
    }
}

/// The report as printed: a header, `NAME=value` lines, then the problems.
pub fn render(report: &ConfigReport) -> String {
    let mut out = format!(
        "auth-http {} configuration check: effective values from the environment (invalid values replaced by their default), secrets masked, nothing connected to\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in &report.settings {
        // One line per setting, whatever the value holds.
        let value = if value.chars().any(char::is_control) {
            value.escape_debug().to_string()
        } else {
            value.clone()
        };
        out.push_str(&format!("{name}={value}\n"));
    }
    if !report.warnings.is_empty() {
        out.push_str("warnings (the service starts, and logs each):\n");
        for warning in &report.warnings {
            out.push_str(&format!("  - {warning}\n"));
        }
    }
    if report.problems.is_empty() {
        out.push_str("no problems found\n");
    } else {
        out.push_str("problems:\n");
        for problem in &report.problems {
            out.push_str(&format!("  - {problem}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn setting<'a>(report: &'a ConfigReport, name: &str) -> &'a str {
        report
            .settings
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("(missing)", |(_, v)| v.as_str())
    }

    #[test]
    fn a_missing_directory_under_a_writable_one_can_be_created() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        writable_or_creatable(&dir.path().join("a/b/c"))?;
        assert_eq!(
            fs::read_dir(dir.path()).map(Iterator::count).ok(),
            Some(0),
            "the probe is removed and nothing is created"
        );
        Ok(())
    }

    #[test]
    fn a_directory_under_a_file_cannot_be_created() -> Result<(), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("file");
        fs::write(&file, "x")?;
        let why = writable_or_creatable(&file.join("data"))
            .err()
            .unwrap_or_default();
        assert!(why.contains("is not a directory"), "{why}");
        Ok(())
    }

    #[test]
    fn every_variable_of_the_table_is_described_once() -> Result<(), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().display().to_string();
        let report = check_config(vars(&[("AUTH_DATA_DIR", &data)]));
        let names: Vec<&str> = report.settings.iter().map(|(n, _)| *n).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for name in [
            "APP_ENV",
            "SECRET_KEY",
            "JWT_PRIVATE_KEY",
            "MAIL_QUEUE_WARN_AGE",
        ] {
            assert!(names.contains(&name), "{name} missing");
        }
        assert_eq!(setting(&report, "MAIL_PORT"), "587");
        assert_eq!(setting(&report, "SECRET_KEY"), "unset");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        Ok(())
    }

    #[test]
    fn a_sqlite_url_is_shown_but_a_stray_password_is_not() {
        let shown = |url: &str| {
            let (config, _) = Config::from_vars_with_problems(vars(&[("DATABASE_URL", url)]));
            config
                .describe()
                .into_iter()
                .find(|(name, _)| *name == "DATABASE_URL")
                .map(|(_, value)| value)
        };
        assert_eq!(
            shown("mysql://u:pw@db/auth").as_deref(),
            Some("mysql://u:***@db/auth")
        );
        assert_eq!(shown("/tmp/x.db").as_deref(), Some("/tmp/x.db"));
    }

    #[test]
    fn a_short_jwt_secret_is_a_problem_and_a_good_one_shows_its_kid() -> Result<(), std::io::Error>
    {
        let dir = tempfile::tempdir()?;
        let data = dir.path().display().to_string();
        let short = check_config(vars(&[
            ("AUTH_DATA_DIR", &data),
            ("JWT_SECRET_KEY", "too short"),
            ("SECRET_KEY", "x"),
        ]));
        assert!(
            short.problems.iter().any(|p| p.contains("32 bytes")),
            "{:?}",
            short.problems
        );
        let good = check_config(vars(&[
            ("AUTH_DATA_DIR", &data),
            ("JWT_SECRET_KEY", &"k".repeat(32)),
            ("SECRET_KEY", "x"),
        ]));
        assert!(
            setting(&good, "JWT_SECRET_KEY").starts_with("set (masked), kid hs-"),
            "{}",
            setting(&good, "JWT_SECRET_KEY")
        );
        assert!(good.problems.is_empty(), "{:?}", good.problems);
        Ok(())
    }

    #[test]
    fn rendering_keeps_one_line_per_setting() {
        let report = ConfigReport {
            settings: vec![("MAIL_PRODUCT_NAME", "two\nlines".to_owned())],
            problems: vec![],
            warnings: vec![],
        };
        assert_eq!(
            render(&report).lines().nth(1),
            Some("MAIL_PRODUCT_NAME=two\\nlines")
        );
    }
}
