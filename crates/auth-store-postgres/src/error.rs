//! What PostgreSQL's errors mean for the ports (the mapping itself is
//! [`auth_store_core::error`]).
//!
//! The rule: whatever a retry later may cure (the server unreachable, restarting or
//! killing connections, a statement or lock timeout, a deadlock or serialization failure,
//! the pool exhausted) is [`PortError::Unavailable`](auth_domain::ports::PortError::Unavailable), so the HTTP layer answers 503 and the
//! readiness check fails; anything else (a bug, bad data) is [`PortError::Unexpected`](auth_domain::ports::PortError::Unexpected).

use auth_domain::ports::Taken;
use auth_store_core::Dialect;
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};

/// The unique index on `users.username_normalized` (see the migration).
const USERNAME_INDEX: &str = "users_username_normalized_key";
/// The unique index on `users.email_index`.
const EMAIL_INDEX: &str = "users_email_index_key";
/// The unique index on `passkeys.credential_id`.
const CREDENTIAL_INDEX: &str = "passkeys_credential_id_key";

/// A failed operation of this store.
pub(crate) type DbError = auth_store_core::DbError<Postgres>;

/// A query error as the port's error.
pub(crate) fn query_error(err: DieselError) -> auth_domain::ports::PortError {
    auth_store_core::error::query_error::<Postgres>(err)
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

/// The PostgreSQL dialect.
pub(crate) struct Postgres;

impl Dialect for Postgres {
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

    /// PostgreSQL names the violated unique index (`constraint_name`).
    fn taken(info: &dyn DatabaseErrorInformation) -> Option<Taken> {
        match info.constraint_name()? {
            USERNAME_INDEX => Some(Taken::Username),
            EMAIL_INDEX => Some(Taken::Email),
            CREDENTIAL_INDEX => Some(Taken::Credential),
            _ => None,
        }
    }
}
