//! The operators' files against the service itself (issue 18): every metric a shipped alert
//! rule or dashboard panel names is served, and a real Prometheus (Debian's `prometheus`,
//! started here on a free port, scraping every second) with the shipped rules sees
//! `AuthCredentialStuffing` fire when the test provokes it, and answers every dashboard
//! query with data. Both run the service on PostgreSQL and Redis, with a read replica that
//! cannot be reached (its metrics exist, it is skipped), so that every family exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResult, on_postgres, on_redis, spawn_with, test_redis_url};
use crate::observability::{FLOW_VARS, full_flow};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The queries of the shipped rules and dashboard: (where, PromQL).
fn shipped_queries() -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let mut queries = Vec::new();
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/auth-rules.yml"))?;
    // `expr:` values, on one line or as a `|` block (the lines indented deeper).
    let lines: Vec<&str> = rules.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        let Some((indent, rest)) = line.split_once("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest == "|" {
            let depth = indent.len();
            let block: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.len() - l.trim_start().len() > depth || l.trim().is_empty())
                .copied()
                .collect();
            queries.push((format!("auth-rules.yml:{}", n + 1), block.join("\n")));
        } else {
            queries.push((format!("auth-rules.yml:{}", n + 1), rest.to_owned()));
        }
    }
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(
        repo().join("deploy/grafana/auth-service.json"),
    )?)?;
    for panel in dashboard["panels"].as_array().ok_or("panels")? {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().ok_or("expr")?;
            let title = panel["title"].as_str().unwrap_or_default();
            queries.push((format!("panel {title:?}"), expr.to_owned()));
        }
    }
    Ok(queries)
}

/// The service's metric families a query names (`auth_…`, `http_…`; histogram series map to
/// their family).
fn families(query: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = (query[i..].starts_with("auth_") || query[i..].starts_with("http_"))
            && (i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'_'
                    || bytes[i - 1] == b':'));
        if starts {
            let end = query[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(query.len(), |e| i + e);
            let name = &query[i..end];
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            found.insert(family.to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// The families `/metrics` serves (its `# TYPE` lines).
fn served(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The service on PostgreSQL and Redis, a replica that does not answer, the flow's limits;
/// `None` (after a loud line) where PostgreSQL or Redis is missing, outside CI.
async fn production_shaped(
    extra: &[(&str, &str)],
) -> Option<(TestApp, auth_store_postgres::test_support::TestDatabase)> {
    // These tests choose their own storage and cache: the suite's other passes
    // (AUTH_TEST_STORAGE=postgres, AUTH_TEST_CACHE=redis) would repeat them unchanged.
    if on_postgres() || on_redis() {
        return None;
    }
    let db = auth_store_postgres::test_support::fresh_database().await?;
    let redis = test_redis_url();
    if deadpool_redis::redis::Client::open(redis.as_str())
        .ok()?
        .get_multiplexed_async_connection()
        .await
        .is_err()
    {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set and Redis ({redis}) is unreachable");
        }
        eprintln!("SKIPPED: Prometheus tests need Redis at {redis}");
        return None;
    }
    let prefix = format!("authprom:{}:", uuid::Uuid::new_v4().simple());
    let mut vars: Vec<(&str, &str)> = FLOW_VARS.to_vec();
    vars.extend([
        ("DATABASE_URL", db.url()),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        // Port 1 on loopback refuses at once: the replica's families exist, it is skipped.
        (
            "DATABASE_REPLICA_URL",
            "postgres://postgres@127.0.0.1:1/none?sslmode=disable",
        ),
    ]);
    vars.extend_from_slice(extra);
    Some((spawn_with(&vars).await, db))
}

#[actix_web::test]
async fn every_metric_the_alert_rules_and_the_dashboard_name_is_served() -> TestResult {
    let Some((app, _db)) = production_shaped(&[]).await else {
        return Ok(());
    };
    full_flow(&app).await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let served = served(metrics.body.as_str().unwrap_or_default());
    let mut missing = Vec::new();
    let queries = shipped_queries()?;
    assert!(queries.len() > 40, "{} queries", queries.len());
    for (place, query) in &queries {
        for family in families(query) {
            if !served.contains(&family) {
                missing.push(format!("{family} ({place})"));
            }
        }
    }
    assert!(missing.is_empty(), "not served by /metrics: {missing:#?}");
    app.stop().await;
    Ok(())
}

/// A Prometheus on a free port with the shipped rules, scraping `target` every second.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Result<Option<Self>, Box<dyn std::error::Error>> {
        let Some(binary) = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        else {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set and prometheus is not installed (Debian package prometheus)");
            }
            eprintln!("SKIPPED: the Prometheus test needs Debian's prometheus package");
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let rules = repo()
            .join("deploy/prometheus/auth-rules.yml")
            .canonicalize()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: auth\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules.display()
            ),
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Some(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }))
    }

    async fn get(&self, client: &awc::Client, path: &str) -> Option<Value> {
        let mut res = client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?;
        res.json::<Value>().limit(16 << 20).await.ok()
    }

    /// `/api/v1/query` of `query`: its result vector.
    async fn query(&self, client: &awc::Client, query: &str) -> Vec<Value> {
        let mut res = match client
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", query)])
        {
            Ok(req) => match req.send().await {
                Ok(res) => res,
                Err(_) => return Vec::new(),
            },
            Err(_) => return Vec::new(),
        };
        let body: Value = res.json().limit(16 << 20).await.unwrap_or_default();
        assert_eq!(body["status"], "success", "{query}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn a_real_prometheus_fires_credential_stuffing_and_answers_every_dashboard_query()
-> TestResult {
    // Per-IP limits out of reach: the surge comes from one address here.
    let Some((app, _db)) = production_shaped(&[("RATE_LIMIT_IP", "100000")]).await else {
        return Ok(());
    };
    let target = app.base.trim_start_matches("http://").to_owned();
    let Some(prometheus) = Prometheus::start(&target)? else {
        return Ok(());
    };
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let until = |limit: Duration| Instant::now() + limit;

    // Up and scraping.
    let deadline = until(Duration::from_secs(30));
    while prometheus
        .query(&client, "up{job=\"auth\"} == 1")
        .await
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the service"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The flow makes every family move (logins, lockout, limits, reuse, revocations, mail).
    full_flow(&app).await;
    let verified = app.get("/health/ready").await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Credential stuffing: wrong passwords for 80 identifiers, from one client.
    let guesses = (0..80).map(|n| {
        let app = &app;
        async move {
            app.post(
                "/auth/login",
                &json!({"email": format!("leaked{n}@example.org"), "password": "Hunter2-from-a-leak"}),
            )
            .await
            .status
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );

    // Pending, then firing after the rule's `for` (1 minute).
    let deadline = until(Duration::from_secs(150));
    let mut state = String::new();
    while state != "firing" {
        assert!(
            Instant::now() < deadline,
            "AuthCredentialStuffing never fired (last state {state:?})"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let alerts = prometheus
            .get(&client, "/api/v1/alerts")
            .await
            .unwrap_or_default();
        state = alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == "AuthCredentialStuffing")
            .and_then(|a| a["state"].as_str())
            .unwrap_or_default()
            .to_owned();
    }

    // Every dashboard query answers with data (Grafana's $__rate_interval as 1 minute).
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(
        repo().join("deploy/grafana/auth-service.json"),
    )?)?;
    let mut empty = Vec::new();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().ok_or("panels")? {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .ok_or("expr")?
                .replace("$__rate_interval", "1m");
            asked += 1;
            if prometheus.query(&client, &expr).await.is_empty() {
                empty.push(format!("{}: {expr}", panel["title"]));
            }
        }
    }
    assert!(asked > 30, "{asked} queries");
    assert!(
        empty.is_empty(),
        "dashboard queries without data: {empty:#?}"
    );
    app.stop().await;
    Ok(())
}

#[test]
fn families_are_read_from_queries_without_recording_rules_or_functions() {
    let found = families(
        "sum(rate(http_request_duration_seconds_bucket{job=\"auth\"}[5m])) / auth:http_errors:ratio_rate5m + max(auth_db_pool_waiting)",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["auth_db_pool_waiting", "http_request_duration_seconds"]
    );
}
