//! How library failures become the ports' errors.

use auth_domain::ports::{PortError, StoreError, Taken};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// A failed store operation, before it is turned into the error its port returns.
#[derive(Debug)]
pub(crate) enum DbError {
    /// No query ran: the pool, the runtime or the stored data failed.
    Port(PortError),
    /// The query failed.
    Query(DieselError),
}

impl From<DieselError> for DbError {
    fn from(err: DieselError) -> Self {
        Self::Query(err)
    }
}

impl From<PortError> for DbError {
    fn from(err: PortError) -> Self {
        Self::Port(err)
    }
}

impl From<DbError> for PortError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Port(err) => err,
            DbError::Query(err) => query_error(err),
        }
    }
}

/// Unique violations on the columns the contract names become `Taken`; the rest is a
/// [`PortError`].
impl From<DbError> for StoreError {
    fn from(err: DbError) -> Self {
        match taken(&err) {
            Some(which) => Self::Taken(which),
            None => Self::Port(err.into()),
        }
    }
}

/// A query error as a [`PortError`]: a lock held past the busy timeout is `Unavailable`
/// (retrying later may work), anything else `Unexpected`.
pub(crate) fn query_error(err: DieselError) -> PortError {
    if is_busy(&err) {
        tracing::warn!(error = %err, "sqlite: database busy");
        PortError::unavailable(err)
    } else {
        tracing::error!(error = %err, "sqlite: query failed");
        PortError::unexpected(err)
    }
}

/// SQLite names the failed unique index in its message:
/// `UNIQUE constraint failed: users.username_normalized`.
fn taken(err: &DbError) -> Option<Taken> {
    let DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) = err
    else {
        return None;
    };
    let message = info.message();
    if message.contains("users.username_normalized") {
        Some(Taken::Username)
    } else if message.contains("users.email_index") {
        Some(Taken::Email)
    } else {
        None
    }
}

/// `SQLITE_BUSY` ("database is locked") or `SQLITE_LOCKED` ("database table is locked").
fn is_busy(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("database is locked") || message.contains("database table is locked")
        }
        _ => false,
    }
}

/// Stored data that does not parse: a broken invariant.
#[derive(Debug, thiserror::Error)]
#[error("corrupt row in {table}: {what}")]
struct CorruptRow {
    table: &'static str,
    what: String,
}

/// A [`CorruptRow`] as the port's error.
pub(crate) fn corrupt(table: &'static str, what: impl Into<String>) -> PortError {
    PortError::unexpected(CorruptRow {
        table,
        what: what.into(),
    })
}
