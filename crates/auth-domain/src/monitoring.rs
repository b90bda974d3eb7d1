//! What adapters report about themselves to operators, the same way for every adapter:
//! the load of their connection pool, and the address they talk to without its password.
//!
//! Plain values and a pure string function: no I/O. They live in the domain because it is
//! the one crate every adapter and the HTTP binary already depend on.

/// A connection pool at one moment, for monitoring (`/metrics`, `/health` details). The
/// same shape for every pooled adapter (SQLite, PostgreSQL, Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStatus {
    /// Most connections the pool opens.
    pub max_size: usize,
    /// Connections handed out to operations.
    pub in_use: usize,
    /// Open connections resting in the pool.
    pub idle: usize,
    /// Operations waiting for a connection.
    pub waiting: usize,
}

impl PoolStatus {
    /// From the counts a pool keeps (deadpool's `Status`): `size` connections open, of
    /// which `available` rest in the pool.
    pub fn from_counts(max_size: usize, size: usize, available: usize, waiting: usize) -> Self {
        Self {
            max_size,
            in_use: size.saturating_sub(available),
            idle: available,
            waiting,
        }
    }
}

/// A connection URL for messages and logs: the password goes, wherever it is
/// (`postgres://user:secret@host/db` → `postgres://user:***@host/db`; a query parameter
/// whose name contains `pass` → `password=***`); the user name, hosts, path and other
/// parameters stay. Text that is not a URL (a `key=value` connection string) is hidden
/// whole: `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    // The credentials end at the last `@` of the authority (a password may hold `@`).
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let mut shown = match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        None => format!("{scheme}://{rest}"),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("pass") => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&params.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_wherever_they_are() {
        let cases = [
            (
                "postgres://auth:s3cret@db:5432/auth",
                "postgres://auth:***@db:5432/auth",
                "password in the authority",
            ),
            (
                "postgres://db/auth?sslmode=disable&password=s3cret",
                "postgres://db/auth?sslmode=disable&password=***",
                "password as a parameter",
            ),
            (
                "redis://:p@ss@host/1?x=y",
                "redis://:***@host/1?x=y",
                "a password holding @",
            ),
            (
                "redis://redis:6379/0",
                "redis://redis:6379/0",
                "nothing to hide",
            ),
            ("host=db password=s3cret", "***", "not a URL"),
        ];
        for (url, shown, why) in cases {
            assert_eq!(redact_url(url), shown, "{why}");
        }
    }

    #[test]
    fn a_pool_counts_what_is_in_use_from_what_rests() {
        let status = PoolStatus::from_counts(10, 4, 1, 2);
        assert_eq!(
            (status.in_use, status.idle, status.waiting),
            (3, 1, 2),
            "open minus resting is in use"
        );
        assert_eq!(
            PoolStatus::from_counts(1, 0, 3, 0).in_use,
            0,
            "never negative"
        );
    }
}
