//! Rows as Diesel reads and writes them, and their conversions to and from the domain's
//! records. Reading never panics on bad data: a row that does not parse is a
//! [`PortError::Unexpected`].

use auth_domain::model::{
    MailKind, OneTimeKind, OneTimeTokenRecord, OutboxMail, Outgoing, PendingFor, SessionRecord,
    UserRecord,
};
use auth_domain::ports::PortError;
use auth_domain::types::{
    BlindIndex, PasswordHash, Sealed, SessionId, Timestamp, TokenHash, UserId,
};
use chrono::DateTime;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use uuid::Uuid;

use crate::error::corrupt;
use crate::schema::{one_time_tokens, outbox, refresh_tokens, sessions, users};

/// Unix milliseconds, the stored form of a time.
pub(crate) fn millis(at: Timestamp) -> i64 {
    at.timestamp_millis()
}

/// The time stored as `ms`.
pub(crate) fn timestamp(table: &'static str, ms: i64) -> Result<Timestamp, PortError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| corrupt(table, format!("timestamp {ms} out of range")))
}

fn opt_timestamp(table: &'static str, ms: Option<i64>) -> Result<Option<Timestamp>, PortError> {
    ms.map(|ms| timestamp(table, ms)).transpose()
}

fn uuid(table: &'static str, raw: &str) -> Result<Uuid, PortError> {
    Uuid::parse_str(raw).map_err(|_| corrupt(table, "id is not a UUID"))
}

/// The stored form of a token hash.
pub(crate) fn hash_bytes(hash: &TokenHash) -> Vec<u8> {
    hash.0.to_vec()
}

fn token_hash(table: &'static str, raw: &[u8]) -> Result<TokenHash, PortError> {
    <[u8; 32]>::try_from(raw)
        .map(TokenHash)
        .map_err(|_| corrupt(table, format!("token hash of {} bytes", raw.len())))
}

/// A row of `users`.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(Sqlite))]
pub(crate) struct UserRow {
    pub id: String,
    pub username: String,
    pub username_normalized: String,
    pub email_index: Vec<u8>,
    pub email_sealed: Vec<u8>,
    pub phone_index: Option<Vec<u8>>,
    pub phone_sealed: Option<Vec<u8>>,
    pub name_sealed: Vec<u8>,
    pub surname_sealed: Vec<u8>,
    pub password_hash: String,
    pub email_verified_at: Option<i64>,
    pub pending_email_sealed: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
    pub password_version: i64,
    pub pending_for_email_index: Option<Vec<u8>>,
    pub pending_password_tag: Option<i32>,
}

impl UserRow {
    pub(crate) fn from_record(user: &UserRecord) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username.clone(),
            username_normalized: user.username_normalized.clone(),
            email_index: user.email_index.0.clone(),
            email_sealed: user.email_sealed.0.clone(),
            phone_index: user.phone_index.as_ref().map(|i| i.0.clone()),
            phone_sealed: user.phone_sealed.as_ref().map(|s| s.0.clone()),
            name_sealed: user.name_sealed.0.clone(),
            surname_sealed: user.surname_sealed.0.clone(),
            password_hash: user.password_hash.0.clone(),
            email_verified_at: user.email_verified_at.map(millis),
            pending_email_sealed: user.pending_email_sealed.as_ref().map(|s| s.0.clone()),
            created_at: millis(user.created_at),
            updated_at: millis(user.updated_at),
            last_login_at: user.last_login_at.map(millis),
            password_version: user.password_version,
            pending_for_email_index: user.pending_for.as_ref().map(|p| p.email_index.0.clone()),
            pending_password_tag: user.pending_for.as_ref().map(|p| i32::from(p.password_tag)),
        }
    }

    pub(crate) fn into_record(self) -> Result<UserRecord, PortError> {
        const T: &str = "users";
        Ok(UserRecord {
            id: UserId(uuid(T, &self.id)?),
            username: self.username,
            username_normalized: self.username_normalized,
            email_index: BlindIndex(self.email_index),
            email_sealed: Sealed(self.email_sealed),
            phone_index: self.phone_index.map(BlindIndex),
            phone_sealed: self.phone_sealed.map(Sealed),
            name_sealed: Sealed(self.name_sealed),
            surname_sealed: Sealed(self.surname_sealed),
            password_hash: PasswordHash(self.password_hash),
            email_verified_at: opt_timestamp(T, self.email_verified_at)?,
            pending_email_sealed: self.pending_email_sealed.map(Sealed),
            created_at: timestamp(T, self.created_at)?,
            updated_at: timestamp(T, self.updated_at)?,
            last_login_at: opt_timestamp(T, self.last_login_at)?,
            password_version: self.password_version,
            pending_for: match (self.pending_for_email_index, self.pending_password_tag) {
                (Some(index), Some(tag)) => Some(PendingFor {
                    email_index: BlindIndex(index),
                    password_tag: u16::try_from(tag)
                        .map_err(|_| corrupt(T, "pending_password_tag out of range"))?,
                }),
                (None, None) => None,
                _ => {
                    return Err(corrupt(
                        T,
                        "a pending registration without its index or tag",
                    ));
                }
            },
        })
    }
}

/// The columns a profile change sets; `None` leaves a column as it is, `Some(None)` sets
/// it to NULL.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = users, check_for_backend(Sqlite))]
pub(crate) struct ProfileChangeset {
    pub username: Option<String>,
    pub username_normalized: Option<String>,
    pub name_sealed: Option<Vec<u8>>,
    pub surname_sealed: Option<Vec<u8>>,
    pub phone_index: Option<Option<Vec<u8>>>,
    pub phone_sealed: Option<Option<Vec<u8>>>,
    pub pending_email_sealed: Option<Option<Vec<u8>>>,
    pub updated_at: i64,
}

/// A row of `sessions`.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(Sqlite))]
pub(crate) struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
    pub ip_sealed: Option<Vec<u8>>,
    pub revoked_at: Option<i64>,
}

impl SessionRow {
    pub(crate) fn from_record(session: &SessionRecord) -> Self {
        Self {
            id: session.id.to_string(),
            user_id: session.user_id.to_string(),
            created_at: millis(session.created_at),
            last_used_at: millis(session.last_used_at),
            expires_at: millis(session.expires_at),
            user_agent: session.user_agent.clone(),
            ip_sealed: session.ip_sealed.as_ref().map(|s| s.0.clone()),
            revoked_at: session.revoked_at.map(millis),
        }
    }

    pub(crate) fn into_record(self) -> Result<SessionRecord, PortError> {
        const T: &str = "sessions";
        Ok(SessionRecord {
            id: SessionId(uuid(T, &self.id)?),
            user_id: UserId(uuid(T, &self.user_id)?),
            created_at: timestamp(T, self.created_at)?,
            last_used_at: timestamp(T, self.last_used_at)?,
            expires_at: timestamp(T, self.expires_at)?,
            user_agent: self.user_agent,
            ip_sealed: self.ip_sealed.map(Sealed),
            revoked_at: opt_timestamp(T, self.revoked_at)?,
        })
    }
}

/// The id column of a session, parsed.
pub(crate) fn session_id(raw: &str) -> Result<SessionId, PortError> {
    uuid("sessions", raw).map(SessionId)
}

/// A new row of `refresh_tokens` (never rotated yet).
#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens, check_for_backend(Sqlite))]
pub(crate) struct NewRefreshToken {
    pub hash: Vec<u8>,
    pub session_id: String,
    pub created_at: i64,
}

/// A row of `one_time_tokens`.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = one_time_tokens, check_for_backend(Sqlite))]
pub(crate) struct OneTimeRow {
    pub hash: Vec<u8>,
    pub kind: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub email_index: Option<Vec<u8>>,
}

impl OneTimeRow {
    pub(crate) fn from_record(token: &OneTimeTokenRecord) -> Self {
        Self {
            hash: hash_bytes(&token.hash),
            kind: token.kind.as_str().to_owned(),
            user_id: token.user_id.to_string(),
            created_at: millis(token.created_at),
            expires_at: millis(token.expires_at),
            used_at: token.used_at.map(millis),
            email_index: token.email_index.as_ref().map(|i| i.0.clone()),
        }
    }

    pub(crate) fn into_record(self) -> Result<OneTimeTokenRecord, PortError> {
        const T: &str = "one_time_tokens";
        Ok(OneTimeTokenRecord {
            hash: token_hash(T, &self.hash)?,
            kind: OneTimeKind::parse(&self.kind)
                .ok_or_else(|| corrupt(T, format!("unknown kind {:?}", self.kind)))?,
            user_id: UserId(uuid(T, &self.user_id)?),
            created_at: timestamp(T, self.created_at)?,
            expires_at: timestamp(T, self.expires_at)?,
            used_at: opt_timestamp(T, self.used_at)?,
            email_index: self.email_index.map(BlindIndex),
        })
    }
}

/// A row of `outbox`. `payload` is NULL only once the mail is dead.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox, check_for_backend(Sqlite))]
pub(crate) struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub payload: Option<Vec<u8>>,
    pub created_at: i64,
    pub due_at: i64,
    pub attempts: i32,
    pub dead_at: Option<i64>,
}

impl OutboxRow {
    /// A newly queued mail: due at once (when it was created), not dead.
    pub(crate) fn from_record(mail: &OutboxMail) -> Result<Self, PortError> {
        Ok(Self {
            id: mail.id.to_string(),
            kind: mail.kind.as_str().to_owned(),
            payload: Some(mail.payload.0.clone()),
            created_at: millis(mail.created_at),
            due_at: millis(mail.created_at),
            attempts: i32::try_from(mail.attempts)
                .map_err(|_| PortError::unexpected("outbox attempts out of range"))?,
            dead_at: None,
        })
    }

    /// The mail of a queued row (a dead one has no payload left to give).
    pub(crate) fn into_record(self) -> Result<OutboxMail, PortError> {
        const T: &str = "outbox";
        Ok(OutboxMail {
            id: uuid(T, &self.id)?,
            kind: MailKind::parse(&self.kind)
                .ok_or_else(|| corrupt(T, format!("unknown kind {:?}", self.kind)))?,
            payload: Sealed(
                self.payload
                    .ok_or_else(|| corrupt(T, "queued mail without a payload"))?,
            ),
            created_at: timestamp(T, self.created_at)?,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt(T, format!("attempts {}", self.attempts)))?,
        })
    }
}

/// The rows an [`Outgoing`] writes: its link's token (if any) and the mail.
#[derive(Debug)]
pub(crate) struct OutgoingRows {
    pub token: Option<OneTimeRow>,
    pub mail: OutboxRow,
}

impl OutgoingRows {
    pub(crate) fn from_record(outgoing: &Outgoing) -> Result<Self, PortError> {
        Ok(Self {
            token: outgoing.token.as_ref().map(OneTimeRow::from_record),
            mail: OutboxRow::from_record(&outgoing.mail)?,
        })
    }

    /// Inserts the token, then the mail, on `conn`: inside the caller's transaction.
    pub(crate) fn insert(&self, conn: &mut SqliteConnection) -> QueryResult<()> {
        if let Some(token) = &self.token {
            diesel::insert_into(one_time_tokens::table)
                .values(token)
                .execute(conn)?;
        }
        diesel::insert_into(outbox::table)
            .values(&self.mail)
            .execute(conn)?;
        Ok(())
    }
}

/// [`OutgoingRows::from_record`] of an optional mail.
pub(crate) fn outgoing_rows(mail: Option<&Outgoing>) -> Result<Option<OutgoingRows>, PortError> {
    mail.map(OutgoingRows::from_record).transpose()
}
