//! Records to store, at whole milliseconds (the stored precision).

use std::error::Error;
use std::path::PathBuf;

use auth_domain::model::{MailKind, OutboxMail, Outgoing, SessionRecord, UserRecord};
use auth_domain::types::{
    BlindIndex, PasswordHash, Sealed, SessionId, Timestamp, TokenHash, UserId,
};
use auth_store_sqlite::SqliteStore;
use chrono::DateTime;
use tempfile::TempDir;
use uuid::Uuid;

pub type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

/// A store in a fresh directory (kept as long as the `TempDir` lives).
pub async fn store() -> Result<(SqliteStore, TempDir, PathBuf), Box<dyn Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("nested").join("auth.db");
    let store = SqliteStore::open(&path, 4).await?;
    Ok((store, dir, path))
}

/// `ms` milliseconds after 2026-01-01T00:00:00Z.
pub fn at(ms: i64) -> Timestamp {
    DateTime::from_timestamp_millis(1_767_225_600_000 + ms).unwrap_or_default()
}

pub fn user(username: &str, email: &str) -> UserRecord {
    UserRecord {
        id: UserId(Uuid::now_v7()),
        username: username.to_owned(),
        username_normalized: username.to_ascii_lowercase(),
        email_index: index(email),
        email_sealed: Sealed(format!("sealed:{email}").into_bytes()),
        phone_index: None,
        phone_sealed: None,
        name_sealed: Sealed(b"sealed:name".to_vec()),
        surname_sealed: Sealed(b"sealed:surname".to_vec()),
        password_hash: PasswordHash("$2b$04$hash".to_owned()),
        email_verified_at: None,
        pending_email_sealed: None,
        created_at: at(0),
        updated_at: at(0),
        last_login_at: None,
        password_version: 0,
        pending_for: None,
    }
}

/// A stand-in blind index: distinct values give distinct indexes.
fn index(value: &str) -> BlindIndex {
    BlindIndex(format!("index:{value}").into_bytes())
}

pub fn session(user: UserId, created: i64) -> SessionRecord {
    SessionRecord {
        id: SessionId(Uuid::now_v7()),
        user_id: user,
        created_at: at(created),
        last_used_at: at(created),
        expires_at: at(created + 3_600_000),
        user_agent: Some("test-agent".to_owned()),
        ip_sealed: Some(Sealed(b"sealed:ip".to_vec())),
        revoked_at: None,
    }
}

pub fn token(byte: u8) -> TokenHash {
    TokenHash([byte; 32])
}

/// A mail without a link, created (and due) at `created`, never attempted.
pub fn mail(kind: MailKind, created: i64) -> Outgoing {
    Outgoing {
        mail: OutboxMail {
            id: Uuid::now_v7(),
            kind,
            payload: Sealed(format!("sealed:mail:{}", kind.as_str()).into_bytes()),
            created_at: at(created),
            attempts: 0,
        },
        token: None,
    }
}
