//! How values are stored, and the conversions every table needs.
//!
//! Stored data that does not convert is a [`PortError::Unexpected`] naming the table
//! ([`corrupt`]): reading never panics on bad data.

use auth_domain::model::PendingFor;
use auth_domain::ports::PortError;
use auth_domain::types::{BlindIndex, Timestamp, TokenHash};
use uuid::Uuid;

use crate::error::corrupt;

/// How one dialect stores ids and times. SQLite has neither type: ids are text, times
/// Unix milliseconds. PostgreSQL has both (UUID, TIMESTAMPTZ), so reading cannot fail.
pub trait Columns {
    /// An id as stored.
    type Id;
    /// A time as stored.
    type Time;

    /// The stored form of `id`.
    fn id(id: Uuid) -> Self::Id;
    /// The stored form of `at`.
    fn time(at: Timestamp) -> Self::Time;
    /// The id stored in a row of `table`.
    fn read_id(table: &'static str, raw: Self::Id) -> Result<Uuid, PortError>;
    /// The time stored in a row of `table`.
    fn read_time(table: &'static str, raw: Self::Time) -> Result<Timestamp, PortError>;

    /// [`Columns::read_time`] of a nullable column.
    fn read_opt_time(
        table: &'static str,
        raw: Option<Self::Time>,
    ) -> Result<Option<Timestamp>, PortError> {
        raw.map(|raw| Self::read_time(table, raw)).transpose()
    }
}

/// The stored form of a token hash.
pub fn hash_bytes(hash: &TokenHash) -> Vec<u8> {
    hash.0.to_vec()
}

/// The token hash stored in a row of `table`.
pub fn token_hash(table: &'static str, raw: &[u8]) -> Result<TokenHash, PortError> {
    <[u8; 32]>::try_from(raw)
        .map(TokenHash)
        .map_err(|_| corrupt(table, format!("token hash of {} bytes", raw.len())))
}

/// A kind stored as text, parsed by `parse` (`OneTimeKind::parse`, `MailKind::parse`).
pub fn kind<K>(
    table: &'static str,
    raw: &str,
    parse: impl FnOnce(&str) -> Option<K>,
) -> Result<K, PortError> {
    parse(raw).ok_or_else(|| corrupt(table, format!("unknown kind {raw:?}")))
}

/// A pending registration's columns as the record's `pending_for`. A row with an index is
/// pending whatever its tag: a tag this service never writes (out of range or missing)
/// only means that no login finds the row by email; it never turns the row into an
/// ordinary account.
pub fn pending_for(index: Option<Vec<u8>>, tag: Option<i32>) -> Option<PendingFor> {
    index.map(|index| PendingFor {
        email_index: BlindIndex(index),
        password_tag: tag
            .and_then(|tag| u16::try_from(tag).ok())
            .unwrap_or_default(),
    })
}

/// An outbox mail's attempts as stored; `None` when no row can hold it (so none matches).
pub fn stored_attempts(attempts: u32) -> Option<i32> {
    i32::try_from(attempts).ok()
}

/// The attempts stored in an outbox row.
pub fn read_attempts(raw: i32) -> Result<u32, PortError> {
    u32::try_from(raw).map_err(|_| corrupt("outbox", format!("attempts {raw}")))
}

/// A passkey's signature counter as stored (BIGINT holding a u32).
pub fn read_sign_count(raw: i64) -> Result<u32, PortError> {
    u32::try_from(raw).map_err(|_| corrupt("passkeys", format!("sign_count {raw}")))
}

/// A passkey's signature counter as a row matches it.
pub fn stored_sign_count(count: u32) -> i64 {
    i64::from(count)
}

/// A count of a user's unused recovery codes, as [`MfaRecord`] holds it.
///
/// [`MfaRecord`]: auth_domain::model::MfaRecord
pub fn codes_left(n: i64) -> Result<u32, PortError> {
    u32::try_from(n).map_err(|_| PortError::unexpected(format!("recovery code count {n}")))
}

/// When a lease of `lease` taken at `now` ends.
pub fn lease_end(now: Timestamp, lease: chrono::TimeDelta) -> Result<Timestamp, PortError> {
    now.checked_add_signed(lease)
        .ok_or_else(|| PortError::unexpected("outbox lease out of range"))
}

/// Before when a dead mail is old enough for cleanup to delete it
/// ([`DEAD_MAIL_RETENTION`](auth_domain::ports::DEAD_MAIL_RETENTION) ago); queued mails are
/// never deleted by cleanup.
pub fn dead_mail_cutoff(now: Timestamp) -> Result<Timestamp, PortError> {
    now.checked_sub_signed(auth_domain::ports::DEAD_MAIL_RETENTION)
        .ok_or_else(|| PortError::unexpected("cleanup time out of range"))
}

/// A `count()` as the unsigned count it is.
pub fn count(n: i64) -> Result<u64, PortError> {
    u64::try_from(n).map_err(|_| PortError::unexpected(format!("negative count {n}")))
}

/// A number of rows a statement touched, as the ports count them.
pub fn touched(n: usize) -> Result<u64, PortError> {
    u64::try_from(n).map_err(PortError::unexpected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_row_stays_pending_whatever_its_tag() {
        let index = Some(vec![1, 2]);
        let cases = [
            (Some(7), Some(7), "a tag it wrote"),
            (Some(-1), Some(0), "a tag out of range"),
            (None, Some(0), "no tag"),
        ];
        for (tag, expected, why) in cases {
            let pending = pending_for(index.clone(), tag);
            assert_eq!(pending.map(|p| p.password_tag), expected, "{why}");
        }
        assert!(
            pending_for(None, Some(3)).is_none(),
            "no index: not pending"
        );
    }

    #[test]
    fn bad_stored_values_are_errors_not_panics() {
        assert!(token_hash("t", &[0; 31]).is_err());
        assert!(read_attempts(-1).is_err());
        assert!(count(-1).is_err());
        assert!(read_sign_count(-1).is_err());
        assert!(codes_left(-1).is_err());
        assert!(read_sign_count(i64::from(u32::MAX) + 1).is_err());
        assert_eq!(read_sign_count(i64::from(u32::MAX)).ok(), Some(u32::MAX));
        assert_eq!(stored_attempts(u32::MAX), None);
    }
}
