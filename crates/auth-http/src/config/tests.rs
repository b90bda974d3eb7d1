use chrono::TimeDelta;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn no_configuration_at_all_gives_the_development_defaults() {
    let config = Config::from_vars(HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.port, 5000);
    assert_eq!(config.bcrypt_cost, 12);
    assert_eq!(config.access_ttl, TimeDelta::minutes(15));
    assert!(
        matches!(config.database(), Database::Sqlite(p) if p == std::path::Path::new("./data/auth.db"))
    );
}

#[test]
fn metrics_port_is_a_port_other_than_port_or_unset() {
    let unset = Config::from_vars(HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unset.metrics_port, None, "unset: /metrics on PORT");
    let set =
        Config::from_vars(vars(&[("METRICS_PORT", "9100")])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.metrics_port, Some(9100));
    for (value, port, why) in [
        ("0", "5000", "0 is no port to listen on"),
        ("metrics", "5000", "not a number"),
        ("5001", "5001", "the same as PORT"),
    ] {
        let problems = Config::from_vars(vars(&[("METRICS_PORT", value), ("PORT", port)]))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(
            problems.iter().any(|p| p.contains("METRICS_PORT")),
            "{why}: {problems:?}"
        );
    }
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let err = Config::from_vars(vars(&[
        ("PORT", "http"),
        ("BCRYPT_COST", "3"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, nope"),
    ]))
    .err()
    .map(|e| e.0)
    .unwrap_or_default();
    assert_eq!(err.len(), 3, "{err:?}");
}

#[test]
fn explicit_keys_must_be_32_bytes_of_base64_and_are_never_echoed() {
    let good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let config =
        Config::from_vars(vars(&[("ENCRYPTION_KEY", good)])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.explicit_keys.encryption.map(|k| k[31]), Some(31));
    assert!(!format!("{config:?}").contains(good));
    let err = Config::from_vars(vars(&[("BLIND_INDEX_KEY", "c2hvcnQ=")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("BLIND_INDEX_KEY") && !err.contains("c2hvcnQ="),
        "{err}"
    );
}

#[test]
fn database_url_chooses_the_adapter() {
    let pg = Config::from_vars(vars(&[("DATABASE_URL", "postgres://u:p@db/auth")]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(pg.database(), Database::Postgres(_)));
    assert!(
        !format!("{:?}", pg.database()).contains("u:p"),
        "the URL's password is secret"
    );
    let lite = Config::from_vars(vars(&[("DATABASE_URL", "sqlite:///tmp/x.db")]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(lite.database(), Database::Sqlite(p) if p == std::path::Path::new("/tmp/x.db"))
    );
    assert!(Config::from_vars(vars(&[("DATABASE_URL", "mysql://db")])).is_err());
}

#[test]
fn the_verify_cache_defaults_on_and_takes_zero_or_a_size() {
    let default = Config::from_vars(vars(&[])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(default.jwt_verify_cache, 10_000);
    let off =
        Config::from_vars(vars(&[("JWT_VERIFY_CACHE", "0")])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(off.jwt_verify_cache, 0);
    for bad in ["-1", "many", "1.5"] {
        let refused = Config::from_vars(vars(&[("JWT_VERIFY_CACHE", bad)]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("JWT_VERIFY_CACHE"), "{bad}: {refused}");
    }
}

#[test]
fn mail_settings_are_checked_together() {
    let both_tls = Config::from_vars(vars(&[
        ("MAIL_SERVER", "smtp.example.com"),
        ("MAIL_USE_TLS", "true"),
        ("MAIL_USE_SSL", "true"),
    ]));
    assert!(
        both_tls
            .err()
            .is_some_and(|e| e.to_string().contains("MAIL_USE_SSL"))
    );
    let ssl = Config::from_vars(vars(&[
        ("MAIL_SERVER", "smtp.example.com"),
        ("MAIL_USE_SSL", "yes"),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ssl.mail_use_ssl && ssl.mail_use_tls,
        "SSL wins over the default STARTTLS"
    );
    let errors = Config::from_vars(vars(&[
        ("MAIL_USERNAME", "apikey"),
        ("MAIL_PORT", "0"),
        ("MAIL_TIMEOUT", "9999"),
    ]))
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    for expected in [
        "MAIL_USERNAME is set but MAIL_SERVER is not",
        "MAIL_USERNAME is set without MAIL_PASSWORD",
        "MAIL_PORT",
        "MAIL_TIMEOUT",
    ] {
        assert!(
            errors.contains(expected),
            "{expected} missing from: {errors}"
        );
    }
    let secret = Config::from_vars(vars(&[
        ("MAIL_SERVER", "smtp.example.com"),
        ("MAIL_USERNAME", "token-user-123"),
        ("MAIL_PASSWORD", "token-pass-456"),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let shown = format!("{secret:?}");
    assert!(
        !shown.contains("token-user-123") && !shown.contains("token-pass-456"),
        "{shown}"
    );
}

#[test]
fn production_refuses_an_smtp_password_in_the_clear_except_to_localhost() {
    let base = [
        ("APP_ENV", "production"),
        ("SECRET_KEY", "a production secret of enough length"),
        (
            "JWT_SECRET_KEY",
            "a jwt secret of at least thirty-two bytes",
        ),
        ("DATABASE_URL", "postgres://db/auth"),
        ("MAIL_DEFAULT_SENDER", "Example <no-reply@example.com>"),
        ("MAIL_USERNAME", "user"),
        ("MAIL_PASSWORD", "pass"),
        ("MAIL_USE_TLS", "false"),
        ("METRICS_PORT", "9090"),
    ];
    let remote = [base.as_slice(), &[("MAIL_SERVER", "smtp.example.com")]].concat();
    let err = Config::from_vars(vars(&remote))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("in the clear"), "{err}");
    let local = [base.as_slice(), &[("MAIL_SERVER", "127.0.0.1")]].concat();
    assert!(Config::from_vars(vars(&local)).is_ok());
}

/// The value `describe` shows for `name`.
fn shown(config: &Config, name: &str) -> String {
    config
        .describe()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .unwrap_or_default()
}

#[test]
fn cors_origins_are_checked_as_the_server_will_use_them() {
    let star = Config::from_vars(vars(&[("CORS_ORIGINS", "*")]))
        .unwrap_or_else(|e| panic!("* is the original service's any-origin: {e}"));
    assert_eq!(
        shown(&star, "CORS_ORIGINS"),
        "* (any origin, without credentials)"
    );
    let listed = Config::from_vars(vars(&[(
        "CORS_ORIGINS",
        "https://App.Example.com/, http://localhost:3000",
    )]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        shown(&listed, "CORS_ORIGINS"),
        "https://app.example.com,http://localhost:3000",
        "in the form a browser sends"
    );
    for (value, why) in [
        ("*, https://app.example.com", "* mixed with a list"),
        (
            "app.example.com",
            "no scheme: never equal to an Origin header",
        ),
        ("https://app.example.com/login", "a path"),
        ("https://*.example.com", "a wildcard host"),
        (
            "https://exa mple.com",
            "not a URI: the middleware would refuse to start",
        ),
    ] {
        let err = Config::from_vars(vars(&[("CORS_ORIGINS", value)]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("CORS_ORIGINS"),
            "{why}: {value:?} gave {err:?}"
        );
    }
}

#[test]
fn any_origin_in_production_is_a_warning_not_a_problem() {
    let star = production_with(&[("CORS_ORIGINS", "*")]).unwrap_or_else(|e| panic!("{e:?}"));
    let warnings = star.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("CORS_ORIGINS=*"), "{warnings:?}");
    let listed = production_with(&[("CORS_ORIGINS", "https://app.example.com")])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(listed.warnings().is_empty());
    let development =
        Config::from_vars(vars(&[("CORS_ORIGINS", "*")])).unwrap_or_else(|e| panic!("{e}"));
    assert!(development.warnings().is_empty(), "development stays quiet");
}

/// A production environment that passes, with `changes` applied (an empty value unsets).
fn production_with(changes: &[(&str, &str)]) -> Result<Config, Vec<String>> {
    let mut map = vars(&[
        ("APP_ENV", "production"),
        ("SECRET_KEY", "a production secret of enough length"),
        (
            "JWT_SECRET_KEY",
            "a jwt secret of at least thirty-two bytes",
        ),
        ("DATABASE_URL", "postgres://db/auth"),
        ("MAIL_SERVER", "smtp.example.com"),
        ("MAIL_DEFAULT_SENDER", "Example <no-reply@example.com>"),
        ("METRICS_PORT", "9090"),
    ]);
    map.extend(vars(changes));
    Config::from_vars(map).map_err(|e| e.0)
}

#[test]
fn production_refuses_secrets_shorter_than_32_bytes_naming_them_but_not_their_values() {
    assert!(production_with(&[]).is_ok(), "the base passes");
    let exactly_32 = "0123456789abcdefghijklmnopqrstuv";
    assert_eq!(exactly_32.len(), 32);
    assert!(
        production_with(&[("SECRET_KEY", exactly_32)]).is_ok(),
        "32 bytes are enough"
    );
    for (name, value) in [
        ("SECRET_KEY", "x"),
        ("SECRET_KEY", "0123456789abcdefghijklmnopqrstu"),
        ("JWT_SECRET_KEY", "short-jwt-Zq2"),
    ] {
        let problems = production_with(&[(name, value)]).err().unwrap_or_default();
        assert_eq!(problems.len(), 1, "{name}={value:?}: {problems:?}");
        assert!(
            problems[0].contains(name) && problems[0].contains("32 bytes"),
            "{problems:?}"
        );
        assert!(
            !problems[0].contains(value),
            "the value shows: {problems:?}"
        );
    }
    assert!(
        Config::from_vars(vars(&[("SECRET_KEY", "x")])).is_ok(),
        "development takes any secret"
    );
}

#[test]
fn production_refuses_placeholder_keys_and_the_root_secret_reused_as_the_jwt_key() {
    let zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for (changes, named) in [
        (vec![("SECRET_KEY", "x".repeat(64))], "SECRET_KEY"),
        (vec![("JWT_SECRET_KEY", "=".repeat(48))], "JWT_SECRET_KEY"),
        (vec![("ENCRYPTION_KEY", zeros.to_owned())], "ENCRYPTION_KEY"),
        (
            vec![("PASSWORD_PEPPER", zeros.to_owned())],
            "PASSWORD_PEPPER",
        ),
        (
            vec![
                (
                    "SECRET_KEY",
                    "one secret for everything, long enough".to_owned(),
                ),
                (
                    "JWT_SECRET_KEY",
                    "one secret for everything, long enough".to_owned(),
                ),
            ],
            "SECRET_KEY and JWT_SECRET_KEY",
        ),
    ] {
        let changes: Vec<(&str, &str)> = changes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let problems = production_with(&changes).err().unwrap_or_default();
        assert_eq!(problems.len(), 1, "{named}: {problems:?}");
        assert!(problems[0].contains(named), "{named}: {problems:?}");
        for (_, value) in &changes {
            assert!(!problems[0].contains(value), "{problems:?}");
        }
    }
}

#[test]
fn production_refuses_an_open_metrics_endpoint_naming_both_ways_to_close_it() {
    let problems = production_with(&[("METRICS_PORT", "")])
        .err()
        .unwrap_or_default();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("METRICS_TOKEN") && problems[0].contains("METRICS_PORT"),
        "{problems:?}"
    );
    let token = "0123456789abcdef0123456789abcdef";
    let with_token = production_with(&[("METRICS_PORT", ""), ("METRICS_TOKEN", token)])
        .unwrap_or_else(|p| panic!("{p:?}"));
    assert!(with_token.metrics_port.is_none() && with_token.metrics_token.is_some());
    assert!(production_with(&[("METRICS_TOKEN", token)]).is_ok(), "both");
    assert!(
        Config::from_vars(HashMap::new()).is_ok_and(|c| c.metrics_token.is_none()),
        "development keeps /metrics open on PORT"
    );
}

#[test]
fn a_metrics_token_must_be_sendable_and_in_production_strong_and_its_own() {
    for bad in ["token with spaces", "tök", "=abc", "a,b"] {
        let err = Config::from_vars(vars(&[("METRICS_TOKEN", bad)]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("METRICS_TOKEN"), "{bad:?}: {err}");
        assert!(!err.contains(bad), "the value shows: {err}");
    }
    for good in ["abc", "AZaz09-._~+/==", "0123456789abcdef"] {
        assert!(
            Config::from_vars(vars(&[("METRICS_TOKEN", good)])).is_ok(),
            "{good:?}: development takes any sendable token"
        );
    }
    let root = "a-production-secret-of-enough-length";
    for (token, named) in [
        ("short-metrics-Zq5", "32 bytes"),
        (&"m".repeat(40)[..], "one byte repeated"),
        (root, "the value of SECRET_KEY"),
    ] {
        let problems = production_with(&[("SECRET_KEY", root), ("METRICS_TOKEN", token)])
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 1, "{token}: {problems:?}");
        assert!(
            problems[0].contains("METRICS_TOKEN") && problems[0].contains(named),
            "{problems:?}"
        );
        assert!(
            !problems[0].contains(token),
            "the value shows: {problems:?}"
        );
    }
}

#[test]
fn production_names_what_is_missing() {
    let err = Config::from_vars(vars(&[("APP_ENV", "production")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    for missing in [
        "SECRET_KEY",
        "JWT_PRIVATE_KEY",
        "MAIL_SERVER",
        "DATABASE_URL",
        "METRICS_TOKEN",
        "METRICS_PORT",
    ] {
        assert!(err.contains(missing), "{missing} missing from: {err}");
    }
}

#[test]
fn the_defaults_parse_and_every_variable_is_described_once_in_the_definitions_order() {
    let (config, problems) = Config::from_vars_with_problems(HashMap::new());
    assert!(problems.is_empty(), "{problems:?}");
    let described: Vec<&str> = config.describe().iter().map(|(n, _)| *n).collect();
    let defined: Vec<&str> = variables().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(described, defined);
    for (name, value) in config.describe() {
        // `[`: a type serialized as a sequence or a tuple (a duration without
        // `describe::seconds`), not as config check shows it.
        assert!(
            !value.contains("not shown") && !value.starts_with('['),
            "{name}={value}"
        );
    }
    assert_eq!(defined.len(), 71, "{defined:?}");
}

#[test]
fn the_defaults_are_described_as_config_check_shows_them() {
    let config = Config::from_vars(HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let described: HashMap<&str, String> = config.describe().into_iter().collect();
    let cores = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .to_string();
    for (name, expected) in [
        ("APP_ENV", "development"),
        ("HOST", "0.0.0.0"),
        ("PORT", "5000"),
        ("METRICS_PORT", "unset (/metrics on PORT)"),
        ("METRICS_TOKEN", "unset"),
        ("DATABASE_URL", "unset (SQLite file ./data/auth.db)"),
        ("DATABASE_POOL_SIZE", "10"),
        ("DATABASE_CONNECT_TIMEOUT", "5"),
        ("DATABASE_STATEMENT_TIMEOUT", "10"),
        ("AUTO_MIGRATE", "true"),
        ("CLEANUP_INTERVAL", "3600"),
        ("AUTH_DATA_DIR", "./data"),
        ("SECRET_KEY", "unset"),
        ("ENCRYPTION_KEY", "unset"),
        ("BLIND_INDEX_KEY", "unset"),
        ("PASSWORD_PEPPER", "unset"),
        ("JWT_SECRET_KEY", "unset"),
        ("JWT_PRIVATE_KEY", "unset"),
        ("JWT_PUBLIC_KEY", "unset"),
        ("JWT_ALGORITHM", "HS256 (JWT_PRIVATE_KEY is unset)"),
        ("JWT_ISSUER", "auth-service"),
        ("JWT_AUDIENCE", "auth-service"),
        ("JWT_VERIFY_CACHE", "10000"),
        ("JWT_ACCESS_TOKEN_EXPIRES", "900"),
        ("JWT_REFRESH_TOKEN_EXPIRES", "2592000"),
        ("REFRESH_REUSE_INTERVAL", "10"),
        ("BCRYPT_COST", "12"),
        ("HASH_CONCURRENCY", &cores),
        ("APP_URL", "http://localhost:3000"),
        ("PUBLIC_URL", "unset"),
        ("CORS_ORIGINS", "unset"),
        ("TRUSTED_PROXIES", "unset"),
        ("RATE_LIMIT_IP", "30"),
        ("RATE_LIMIT_IDENTIFIER", "10"),
        ("LOCKOUT_THRESHOLD", "5"),
        ("LOCKOUT_DURATION", "900"),
        ("MAX_BODY_BYTES", "65536"),
        ("WORKERS", &cores),
        ("SHUTDOWN_GRACE", "30"),
        ("LOG_FORMAT", "text"),
        ("DEBUG", "false"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "unset (traces off)"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "unset (traces off)"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "unset"),
        ("OTEL_SERVICE_NAME", "auth-service"),
        ("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
        (
            "OTEL_TRACES_SAMPLER_ARG",
            "1 (unused by parentbased_always_on)",
        ),
        ("REDIS_URL", "unset (in-process cache)"),
        ("REDIS_CLUSTER_NODES", "unset"),
        ("REDIS_KEY_PREFIX", "auth:"),
        ("REDIS_CA_CERT", "unset"),
        ("MAIL_SERVER", "unset (log mailer)"),
        ("MAIL_PORT", "587"),
        ("MAIL_USE_TLS", "true"),
        ("MAIL_USE_SSL", "false"),
        ("MAIL_USERNAME", "unset"),
        ("MAIL_PASSWORD", "unset"),
        ("MAIL_DEFAULT_SENDER", "Auth <no-reply@localhost>"),
        ("MAIL_TIMEOUT", "30"),
        ("MAIL_TEMPLATES_DIR", "unset (built-in templates)"),
        ("MAIL_PRODUCT_NAME", "Auth"),
        ("MAIL_MAX_ATTEMPTS", "16"),
        ("MAIL_RETRY_DELAY", "30"),
        ("MAIL_POLL_INTERVAL", "5"),
        ("MAIL_QUEUE_WARN_AGE", "600"),
    ] {
        assert_eq!(
            described.get(name).map(String::as_str),
            Some(expected),
            "{name}"
        );
    }
}

#[test]
fn set_values_are_described_normalized_and_secrets_masked() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let config = Config::from_vars(vars(&[
        ("APP_ENV", "PROD"),
        ("DEBUG", "yes"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"),
        ("MAIL_TEMPLATES_DIR", "/srv/templates"),
        ("PASSWORD_PEPPER", key),
        ("SECRET_KEY", "a production secret of enough length"),
        (
            "JWT_SECRET_KEY",
            "a jwt secret of at least thirty-two bytes",
        ),
        ("DATABASE_URL", "postgres://u:pw-Zq1@db/auth"),
        ("MAIL_SERVER", "smtp.example.com"),
        ("MAIL_DEFAULT_SENDER", "Example <no-reply@example.com>"),
        ("METRICS_PORT", "9090"),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    for (name, expected) in [
        ("APP_ENV", "production"),
        ("LOG_FORMAT", "json"),
        ("DEBUG", "true"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1/32"),
        ("MAIL_TEMPLATES_DIR", "/srv/templates"),
        ("PASSWORD_PEPPER", "set (masked)"),
        ("SECRET_KEY", "set (masked)"),
        ("DATABASE_URL", "postgres://u:***@db/auth"),
        ("METRICS_PORT", "9090"),
    ] {
        assert_eq!(shown(&config, name), expected, "{name}");
    }
    let all = format!("{:?}", config.describe());
    for secret in [key, "enough length", "thirty-two", "pw-Zq1"] {
        assert!(!all.contains(secret), "{secret} shows: {all}");
    }
}

#[test]
fn the_specially_shown_variables_are_defined() {
    for (name, _) in describe::SPECIAL {
        assert!(
            variables().iter().any(|v| v.name == name),
            "{name} is not a variable"
        );
    }
}

#[test]
fn a_boolean_typo_is_a_problem_never_true() {
    for name in ["AUTO_MIGRATE", "MAIL_USE_TLS", "MAIL_USE_SSL", "DEBUG"] {
        for typo in ["ture", "2", "enabled", "y"] {
            let (config, problems) = Config::from_vars_with_problems(vars(&[(name, typo)]));
            assert_eq!(
                problems,
                vec![format!(
                    "{name}={typo:?} is not valid: expected true or false"
                )],
                "{name}={typo}"
            );
            let shown = shown(&config, name);
            assert!(
                shown.starts_with(
                    &variables()
                        .iter()
                        .find(|v| v.name == name)
                        .and_then(|v| v.default.clone())
                        .unwrap_or_default()
                ),
                "{name}={typo} falls back to the default, shown as {shown}"
            );
        }
    }
    for (value, expected) in [
        ("TRUE", true),
        ("Yes", true),
        ("on", true),
        ("1", true),
        ("false", false),
        ("NO", false),
        ("off", false),
        ("0", false),
        (" ", true),
    ] {
        let config = Config::from_vars(vars(&[("AUTO_MIGRATE", value)]))
            .unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(config.auto_migrate, expected, "{value:?}");
    }
}

#[test]
fn several_bad_values_are_each_reported_once_naming_the_variable_but_not_a_secret() {
    let problems = Config::from_vars(vars(&[
        ("PORT", "http"),
        ("AUTO_MIGRATE", "ture"),
        ("JWT_ACCESS_TOKEN_EXPIRES", "0"),
        ("SHUTDOWN_GRACE", "99999999999999999999"),
        ("CORS_ORIGINS", "app.example.com, https://*.example.com"),
        ("ENCRYPTION_KEY", "c2VjcmV0LWtleS1aOTk="),
        ("REDIS_URL", "memcached://:pw-Zq7@cache"),
        ("LOG_FORMAT", "xml"),
        ("HOST", "localhost"),
    ]))
    .err()
    .map(|e| e.0)
    .unwrap_or_default();
    assert_eq!(problems.len(), 10, "{problems:#?}");
    for expected in [
        "PORT=\"http\" is not valid: expected a port number",
        "AUTO_MIGRATE=\"ture\" is not valid: expected true or false",
        "JWT_ACCESS_TOKEN_EXPIRES=\"0\" is not valid: expected whole seconds >= 1",
        "SHUTDOWN_GRACE=\"99999999999999999999\" is not valid: expected whole seconds from 0 to 3600",
        "CORS_ORIGINS entry \"app.example.com\"",
        "CORS_ORIGINS entry \"https://*.example.com\"",
        "ENCRYPTION_KEY is not valid: expected 32 bytes in base64",
        "REDIS_URL is not valid: expected redis://",
        "LOG_FORMAT=\"xml\" is not valid: expected json or text",
        "HOST=\"localhost\" is not valid: expected an IP address",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected} missing from {problems:#?}"
        );
    }
    let all = problems.join("\n");
    assert!(
        !all.contains("c2VjcmV0") && !all.contains("pw-Zq7"),
        "{all}"
    );
}

#[test]
fn traces_are_off_without_an_endpoint_and_the_traces_endpoint_wins_over_the_base() {
    let off = Config::from_vars(HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(off.traces_endpoint(), None);
    let base = Config::from_vars(vars(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://collector:4318/",
    )]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        base.traces_endpoint().as_deref(),
        Some("http://collector:4318/v1/traces"),
        "the signal path is appended to the base"
    );
    let both = Config::from_vars(vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://tempo:4318/otlp/traces",
        ),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        both.traces_endpoint().as_deref(),
        Some("https://tempo:4318/otlp/traces"),
        "the traces endpoint is used as given"
    );
}

#[test]
fn trace_samplers_of_the_specification_parse_and_others_are_clear_problems() {
    for (name, ratio_used) in [
        ("always_on", false),
        ("ALWAYS_OFF", false),
        ("traceidratio", true),
        ("parentbased_always_on", false),
        ("parentbased_always_off", false),
        ("parentbased_traceidratio", true),
    ] {
        let config = Config::from_vars(vars(&[
            ("OTEL_TRACES_SAMPLER", name),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ]))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            config.otel_traces_sampler.takes_ratio(),
            ratio_used,
            "{name}"
        );
        assert_eq!(config.otel_traces_sampler_arg, Some(0.25), "{name}");
        assert_eq!(
            config.warnings().len(),
            usize::from(!ratio_used),
            "{name}: an unused ratio is a warning"
        );
    }
    let problems = Config::from_vars(vars(&[
        ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key"),
    ]))
    .err()
    .map(|e| e.0)
    .unwrap_or_default();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for malformed in [
        "http://",
        "https://:4318/v1/traces",
        "http://exa mple:4318",
        "ftp://collector",
    ] {
        let problems = Config::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", malformed)]))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT=")),
            "{malformed}: {problems:?}"
        );
    }
    for expected in [
        "OTEL_TRACES_SAMPLER=\"jaeger_remote\" is not valid: expected always_on, always_off, traceidratio",
        "OTEL_TRACES_SAMPLER_ARG=\"1.5\" is not valid: expected a number from 0 to 1",
        "OTEL_EXPORTER_OTLP_ENDPOINT=\"collector:4317\" is not valid: expected an http:// or https:// URL",
        "OTEL_EXPORTER_OTLP_HEADERS is not valid: expected key=value pairs",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected} missing from {problems:#?}"
        );
    }
    assert!(!problems.join("\n").contains("api-key"), "{problems:?}");
}

#[test]
fn otlp_headers_are_decoded_and_masked_by_config_check() {
    let config = Config::from_vars(vars(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://user:pw-Zq7@otlp.example.com",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "api-key=s3cr%3Dt-Zq7, x-scope-orgid = tenant%201",
        ),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.otlp_headers(),
        [
            ("api-key".to_owned(), "s3cr=t-Zq7".to_owned()),
            ("x-scope-orgid".to_owned(), "tenant 1".to_owned())
        ]
    );
    let described: HashMap<&str, String> = config.describe().into_iter().collect();
    assert_eq!(described["OTEL_EXPORTER_OTLP_HEADERS"], "set (masked)");
    let shown = format!("{described:?}");
    assert!(!shown.contains("Zq7"), "{shown}");
}

#[test]
fn a_huge_duration_is_a_problem_not_a_panic() {
    let problems = Config::from_vars(vars(&[("LOCKOUT_DURATION", &i64::MAX.to_string())]))
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("LOCKOUT_DURATION="), "{problems:?}");
}

/// The variable names in the first column of the README's configuration table, in order.
fn readme_table() -> Vec<(String, String)> {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_default();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .flat_map(|row| {
            let mut cells = row.split(" | ");
            let names = cells.next().unwrap_or_default().to_owned();
            let default = cells.next().unwrap_or_default().to_owned();
            names
                .split(", ")
                .map(|n| (n.trim_matches('`').to_owned(), default.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_readme_table_lists_every_variable_of_the_definitions_in_order_and_nothing_else() {
    let table = readme_table();
    let listed: Vec<&str> = table.iter().map(|(n, _)| n.as_str()).collect();
    let defined: Vec<&str> = variables().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        listed, defined,
        "README.md's configuration table and the definitions in config/vars.rs differ"
    );
    for (var, (_, default)) in variables().iter().zip(&table) {
        if let Some(expected) = &var.default {
            assert!(
                default.contains(expected.as_str()),
                "{}: the README's default {default:?} does not say {expected:?}",
                var.name
            );
        }
    }
}

/// Variables `.env.example` names for docker-compose.yml or for the logging library,
/// which the configuration does not read.
const NOT_THE_CONFIGURATION: [&str; 13] = [
    "POSTGRES_PASSWORD",
    "POSTGRES_USER",
    "POSTGRES_DB",
    "AUTH_PORT",
    "MAILPIT_UI_PORT",
    "PGADMIN_PORT",
    "REDIS_COMMANDER_PORT",
    "PGADMIN_DEFAULT_EMAIL",
    "PGADMIN_DEFAULT_PASSWORD",
    "PROMETHEUS_PORT",
    "GRAFANA_PORT",
    "GRAFANA_ADMIN_PASSWORD",
    "RUST_LOG",
];

#[test]
fn env_example_lists_every_variable_once_with_its_default_and_nothing_else() {
    let example: Vec<(&str, &str)> = include_str!("../../../../.env.example")
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .filter_map(|line| line.split_once('='))
        .filter(|(name, _)| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    let mut listed: Vec<&str> = example
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !NOT_THE_CONFIGURATION.contains(n))
        .collect();
    let mut defined: Vec<&str> = variables().iter().map(|v| v.name.as_str()).collect();
    listed.sort_unstable();
    defined.sort_unstable();
    assert_eq!(
        listed, defined,
        ".env.example and the definitions in config/vars.rs differ"
    );
    for name in NOT_THE_CONFIGURATION {
        assert!(
            example.iter().any(|(n, _)| *n == name),
            "{name} is no longer in .env.example: drop it from NOT_THE_CONFIGURATION"
        );
    }
    for var in variables() {
        if let Some(default) = &var.default {
            let value = example
                .iter()
                .find(|(n, _)| *n == var.name)
                .map(|(_, v)| *v);
            assert_eq!(
                value,
                Some(default.as_str()),
                "{} in .env.example",
                var.name
            );
        }
    }
}

#[test]
fn parsing_reads_the_given_map_and_never_the_process_environment() {
    let command = parsing_command();
    let mut arguments = command.get_arguments().peekable();
    assert!(arguments.peek().is_some());
    for arg in arguments {
        assert_eq!(arg.get_env(), None, "{}", arg.get_id());
    }
}

#[test]
fn postgres_tls_settings_are_checked_without_echoing_the_url() {
    for (url, expected) in [
        (
            "postgres://auth:s3cret@db/auth?sslmode=verify-everything",
            "sslmode=\"verify-everything\"",
        ),
        (
            "postgres://auth:s3cret@db/auth?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
            "sslrootcert /nonexistent/ca.pem",
        ),
    ] {
        let problems = Config::from_vars(vars(&[("DATABASE_URL", url)]))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        let shown = problems.join("; ");
        assert!(shown.contains(expected), "{url}: {shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    for fine in ["sslmode=require", "sslmode=verify-full", "sslmode=disable"] {
        let url = format!("postgres://db/auth?{fine}");
        assert!(
            Config::from_vars(vars(&[("DATABASE_URL", url.as_str())])).is_ok(),
            "{fine}"
        );
    }
}

#[test]
fn redis_over_tls_takes_rediss_and_a_ca_file_that_holds_a_certificate()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello")?;
    let not_pem = not_pem.display().to_string();
    for (pairs, expected) in [
        (
            vec![
                ("REDIS_URL", "redis://cache:6379"),
                ("REDIS_CA_CERT", not_pem.as_str()),
            ],
            "REDIS_CA_CERT is set but REDIS_URL (or REDIS_CLUSTER_NODES) is not rediss://",
        ),
        (
            vec![
                ("REDIS_URL", "rediss://cache:6380"),
                ("REDIS_CA_CERT", not_pem.as_str()),
            ],
            "no PEM certificate in the file",
        ),
        (
            vec![
                ("REDIS_URL", "rediss://cache:6380"),
                ("REDIS_CA_CERT", "/nonexistent/ca.pem"),
            ],
            "REDIS_CA_CERT /nonexistent/ca.pem",
        ),
    ] {
        let problems = Config::from_vars(vars(&pairs))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(
            problems.join("; ").contains(expected),
            "{pairs:?}: {problems:?}"
        );
    }
    assert!(Config::from_vars(vars(&[("REDIS_URL", "rediss://:pw@cache:6380")])).is_ok());
    Ok(())
}

#[test]
fn a_redis_cluster_takes_seed_nodes_of_one_scheme_instead_of_redis_url()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )?;
    let ca = ca.display().to_string();
    let plain = "redis://:s3cret@10.0.0.1:6379, redis://:s3cret@10.0.0.2:6379";
    for (pairs, expected) in [
        (
            vec![
                ("REDIS_URL", "redis://:s3cret@cache:6379"),
                ("REDIS_CLUSTER_NODES", plain),
            ],
            "REDIS_URL and REDIS_CLUSTER_NODES are both set",
        ),
        (
            vec![(
                "REDIS_CLUSTER_NODES",
                "10.0.0.1:6379,redis://:s3cret@10.0.0.2:6379",
            )],
            "REDIS_CLUSTER_NODES is not valid: expected comma-separated redis://",
        ),
        (
            vec![("REDIS_CLUSTER_NODES", " , ")],
            "REDIS_CLUSTER_NODES is not valid",
        ),
        (
            vec![(
                "REDIS_CLUSTER_NODES",
                "redis://:s3cret@10.0.0.1:6379,rediss://:s3cret@10.0.0.2:6380",
            )],
            "REDIS_CLUSTER_NODES mixes redis:// and rediss://",
        ),
        (
            vec![
                ("REDIS_CLUSTER_NODES", plain),
                ("REDIS_CA_CERT", ca.as_str()),
            ],
            "REDIS_CA_CERT is set but REDIS_URL (or REDIS_CLUSTER_NODES) is not rediss://",
        ),
    ] {
        let problems = Config::from_vars(vars(&pairs))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        let shown = problems.join("; ");
        assert!(shown.contains(expected), "{pairs:?}: {shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    let config = Config::from_vars(vars(&[("REDIS_CLUSTER_NODES", plain)]))?;
    assert_eq!(
        shown(&config, "REDIS_CLUSTER_NODES"),
        "redis://:***@10.0.0.1:6379,redis://:***@10.0.0.2:6379"
    );
    let tls = "rediss://:s3cret@a.example:6380,rediss://:s3cret@b.example:6380,";
    assert!(
        Config::from_vars(vars(&[
            ("REDIS_CLUSTER_NODES", tls),
            ("REDIS_CA_CERT", ca.as_str())
        ]))
        .is_ok(),
        "rediss:// nodes with a CA (a trailing comma is no node)"
    );
    Ok(())
}

#[test]
fn pgbouncer_replica_and_direct_urls_are_checked_together_and_never_echoed() {
    let problems = |pairs: &[(&str, &str)]| {
        Config::from_vars(vars(pairs))
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    };
    let pooled = "postgres://u:s3cret@pool:6432/auth?pgbouncer=true";
    let direct = "postgres://u:s3cret@db:5432/auth";
    // Behind PgBouncer, migrations need a direct URL (or none at start).
    let found = problems(&[("DATABASE_URL", pooled)]);
    assert!(
        found
            .iter()
            .any(|p| p.contains("DATABASE_DIRECT_URL") && p.contains("pgbouncer=true")),
        "{found:?}"
    );
    assert!(problems(&[("DATABASE_URL", pooled), ("DATABASE_DIRECT_URL", direct)]).is_empty());
    assert!(problems(&[("DATABASE_URL", pooled), ("AUTO_MIGRATE", "false")]).is_empty());
    for (pairs, expected) in [
        (
            vec![("DATABASE_URL", pooled), ("DATABASE_DIRECT_URL", pooled)],
            "DATABASE_DIRECT_URL has pgbouncer=true",
        ),
        (
            vec![("DATABASE_DIRECT_URL", direct)],
            "DATABASE_URL is not PostgreSQL",
        ),
        (
            vec![(
                "DATABASE_URL",
                "postgres://u:s3cret@db/auth?pgbouncer=maybe",
            )],
            "pgbouncer=\"maybe\"",
        ),
        (
            vec![
                ("DATABASE_URL", direct),
                ("DATABASE_REPLICA_URL", "mysql://u:s3cret@r/auth"),
            ],
            "DATABASE_REPLICA_URL (URL 1) is not valid",
        ),
        (
            vec![
                ("DATABASE_URL", direct),
                (
                    "DATABASE_REPLICA_URL",
                    "postgres://r1/auth, postgres://r2/auth?sslmode=sometimes",
                ),
            ],
            "DATABASE_REPLICA_URL (URL 2): sslmode",
        ),
        (
            vec![("DATABASE_URL", direct), ("DATABASE_REPLICA_URL", " , ")],
            "DATABASE_REPLICA_URL is empty",
        ),
        (
            vec![("DATABASE_REPLICA_URL", "postgres://r1/auth")],
            "DATABASE_REPLICA_URL is set but DATABASE_URL is not PostgreSQL",
        ),
    ] {
        let found = problems(&pairs);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{expected}: {found:?}"
        );
        assert!(!found.iter().any(|p| p.contains("s3cret")), "{found:?}");
    }
    let replicas = Config::from_vars(vars(&[
        ("DATABASE_URL", direct),
        (
            "DATABASE_REPLICA_URL",
            "postgres://r1/auth,postgres://r2/auth",
        ),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        replicas.replica_urls(),
        ["postgres://r1/auth", "postgres://r2/auth"]
    );
    assert_eq!(replicas.database_replica_max_lag_ms, 1000);
}
