//! How library failures become the ports' errors.
//!
//! The rule: whatever a retry later may cure (the server unreachable, restarting or
//! killing connections, a statement or lock timeout, a deadlock or serialization failure,
//! the pool exhausted) is [`PortError::Unavailable`], so the HTTP layer answers 503 and the
//! readiness check fails; anything else (a bug, bad data) is [`PortError::Unexpected`].

use auth_domain::ports::{PortError, StoreError, Taken};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// The unique index on `users.username_normalized` (see the migration).
const USERNAME_INDEX: &str = "users_username_normalized_key";
/// The unique index on `users.email_index`.
const EMAIL_INDEX: &str = "users_email_index_key";

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

/// Unique violations of the indexes the contract names become `Taken`; the rest is a
/// [`PortError`].
impl From<DbError> for StoreError {
    fn from(err: DbError) -> Self {
        match taken(&err) {
            Some(which) => Self::Taken(which),
            None => Self::Port(err.into()),
        }
    }
}

/// A query error as a [`PortError`].
pub(crate) fn query_error(err: DieselError) -> PortError {
    if is_transient(&err) {
        tracing::warn!(error = %err, "postgres: database unavailable");
        PortError::unavailable(err)
    } else {
        tracing::error!(error = %err, "postgres: query failed");
        PortError::unexpected(err)
    }
}

/// PostgreSQL names the violated unique index (`constraint_name`).
fn taken(err: &DbError) -> Option<Taken> {
    let DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) = err
    else {
        return None;
    };
    match info.constraint_name()? {
        USERNAME_INDEX => Some(Taken::Username),
        EMAIL_INDEX => Some(Taken::Email),
        _ => None,
    }
}

/// Starts of the server's messages for errors that a later retry may cure, for the
/// SQLSTATEs that diesel does not give a kind of their own (it reports them as `Unknown`
/// and keeps only the message): 57P01/57P02/57P05 ("terminating connection due to
/// administrator command" and others), 57P03 ("the database system is starting up",
/// "... shutting down", "... in recovery mode"), 57014 and 55P03 ("canceling statement
/// due to statement timeout" / "... lock timeout" / "... user request"), 40P01 ("deadlock
/// detected") and 53300 ("sorry, too many clients already"). These are PostgreSQL's
/// English texts: a server set to translate its messages (`lc_messages`) makes such
/// errors `Unexpected` until the connection is seen closed; the next operation then gets
/// a fresh connection anyway.
const TRANSIENT_MESSAGES: [&str; 5] = [
    "terminating connection",
    "the database system is",
    "canceling statement due to",
    "deadlock detected",
    "sorry, too many clients",
];

/// Whether a retry later may succeed.
fn is_transient(err: &DieselError) -> bool {
    match err {
        // The connection is gone ("connection closed", an I/O error), or a serializable
        // transaction lost a race.
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::SerializationFailure,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            TRANSIENT_MESSAGES.iter().any(|m| message.starts_with(m))
        }
        // A connection left in a broken transaction state: the pool drops it, and the next
        // operation gets another one.
        DieselError::BrokenTransactionManager => true,
        _ => false,
    }
}

/// Stored data that does not convert: a broken invariant.
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
