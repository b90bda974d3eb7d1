//! How library failures become the ports' errors.
//!
//! The rule: whatever a retry later may cure (the server unreachable or restarting, a
//! lock or statement timeout, the pool exhausted) is [`PortError::Unavailable`], so the
//! HTTP layer answers 503 and the readiness check fails; anything else (a bug, bad data)
//! is [`PortError::Unexpected`]. What counts as transient is the dialect's to say.
//!
//! Errors are returned, not logged: the HTTP boundary logs the cause of a 5xx once.

use std::fmt;
use std::marker::PhantomData;

use auth_domain::ports::{PortError, StoreError, Taken};
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};

/// What one SQL dialect's errors mean.
pub trait Dialect {
    /// Whether a retry later may cure `err` (it becomes [`PortError::Unavailable`]).
    fn is_transient(err: &DieselError) -> bool;

    /// Which value the contract names a unique violation took, from the index the server
    /// reports; `None` for any other index.
    fn taken(info: &dyn DatabaseErrorInformation) -> Option<Taken>;
}

/// A failed store operation, before it is turned into the error its port returns.
pub enum DbError<D> {
    /// No query ran: the pool, the runtime or the stored data failed.
    Port(PortError),
    /// The query failed.
    Query(DieselError, PhantomData<fn() -> D>),
}

impl<D> fmt::Debug for DbError<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Port(err) => f.debug_tuple("Port").field(err).finish(),
            Self::Query(err, _) => f.debug_tuple("Query").field(err).finish(),
        }
    }
}

impl<D> From<DieselError> for DbError<D> {
    fn from(err: DieselError) -> Self {
        Self::Query(err, PhantomData)
    }
}

impl<D> From<PortError> for DbError<D> {
    fn from(err: PortError) -> Self {
        Self::Port(err)
    }
}

impl<D: Dialect> From<DbError<D>> for PortError {
    fn from(err: DbError<D>) -> Self {
        match err {
            DbError::Port(err) => err,
            DbError::Query(err, _) => query_error::<D>(err),
        }
    }
}

/// Unique violations of the indexes the contract names become `Taken`; the rest is a
/// [`PortError`].
impl<D: Dialect> From<DbError<D>> for StoreError {
    fn from(err: DbError<D>) -> Self {
        if let DbError::Query(
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info),
            _,
        ) = &err
            && let Some(which) = D::taken(info.as_ref())
        {
            return Self::Taken(which);
        }
        Self::Port(err.into())
    }
}

/// [`StoreError::from`], except that a foreign-key violation is `NotFound`: for a write
/// of rows that reference an account (second factors, a mail's token), the account is
/// gone, deleted before or while the write ran; the reference decides, not a read before
/// the write.
pub fn account_gone<D: Dialect>(err: DbError<D>) -> StoreError {
    if let DbError::Query(
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _),
        _,
    ) = &err
    {
        return StoreError::NotFound;
    }
    err.into()
}

/// A query error as a [`PortError`]: `Unavailable` when the dialect calls it transient,
/// else `Unexpected`.
pub fn query_error<D: Dialect>(err: DieselError) -> PortError {
    if D::is_transient(&err) {
        PortError::unavailable(err)
    } else {
        PortError::unexpected(err)
    }
}

/// Stored data that does not convert: a broken invariant.
#[derive(Debug, thiserror::Error)]
#[error("corrupt row in {table}: {what}")]
struct CorruptRow {
    table: &'static str,
    what: String,
}

/// A row of `table` that does not convert, as the port's error.
pub fn corrupt(table: &'static str, what: impl Into<String>) -> PortError {
    PortError::unexpected(CorruptRow {
        table,
        what: what.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Strict;
    impl Dialect for Strict {
        fn is_transient(err: &DieselError) -> bool {
            matches!(err, DieselError::BrokenTransactionManager)
        }
        fn taken(info: &dyn DatabaseErrorInformation) -> Option<Taken> {
            (info.message() == "username").then_some(Taken::Username)
        }
    }

    fn unique(message: &str) -> DbError<Strict> {
        DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(message.to_owned()),
        )
        .into()
    }

    #[test]
    fn the_dialect_decides_what_is_taken_transient_or_unexpected() {
        assert!(
            matches!(
                StoreError::from(unique("username")),
                StoreError::Taken(Taken::Username)
            ),
            "a named index is Taken"
        );
        assert!(
            matches!(
                StoreError::from(unique("other")),
                StoreError::Port(PortError::Unexpected(_))
            ),
            "another index is unexpected"
        );
        let gone: DbError<Strict> = DieselError::DatabaseError(
            DatabaseErrorKind::ForeignKeyViolation,
            Box::new("fk".to_owned()),
        )
        .into();
        assert!(
            matches!(account_gone(gone), StoreError::NotFound),
            "a foreign-key violation is NotFound"
        );
        assert!(
            matches!(
                account_gone(unique("username")),
                StoreError::Taken(Taken::Username)
            ),
            "account_gone keeps Taken"
        );
        let broken = DbError::<Strict>::from(DieselError::BrokenTransactionManager);
        assert!(
            matches!(PortError::from(broken), PortError::Unavailable(_)),
            "transient is Unavailable"
        );
        let port = DbError::<Strict>::from(PortError::unavailable("pool"));
        assert!(
            matches!(PortError::from(port), PortError::Unavailable(_)),
            "a port error passes through"
        );
    }
}
