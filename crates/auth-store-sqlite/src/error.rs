//! What SQLite's errors mean for the ports (the mapping itself is
//! [`auth_store_core::error`]).

use auth_domain::ports::Taken;
use auth_store_core::Dialect;
use diesel::result::{DatabaseErrorInformation, Error as DieselError};

/// A failed operation of this store.
pub(crate) type DbError = auth_store_core::DbError<Sqlite>;

/// The SQLite dialect.
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    /// `SQLITE_BUSY` ("database is locked") or `SQLITE_LOCKED` ("database table is
    /// locked"): a lock held past the busy timeout; retrying later may work.
    fn is_transient(err: &DieselError) -> bool {
        match err {
            DieselError::DatabaseError(_, info) => {
                let message = info.message();
                message.contains("database is locked")
                    || message.contains("database table is locked")
            }
            _ => false,
        }
    }

    /// SQLite names the failed unique index in its message:
    /// `UNIQUE constraint failed: users.username_normalized`.
    /// (`passkeys.credential_id` is a passkey's credential id.)
    fn taken(info: &dyn DatabaseErrorInformation) -> Option<Taken> {
        let message = info.message();
        if message.contains("users.username_normalized") {
            Some(Taken::Username)
        } else if message.contains("users.email_index") {
            Some(Taken::Email)
        } else if message.contains("passkeys.credential_id") {
            Some(Taken::Credential)
        } else {
            None
        }
    }
}
