//! The shapes every write of an account takes on SQLite: a change with its mail in one
//! transaction, a compare-and-set that tells a lost race from a missing row, and killing
//! outstanding links.

use auth_domain::model::{OneTimeKind, UserRecord};
use auth_domain::ports::{PortError, StoreError};
use diesel::prelude::*;

use crate::error::DbError;
use crate::models::{OutgoingRows, UserRow};
use crate::pool::SqliteStore;
use crate::schema::{one_time_tokens, users};

impl SqliteStore {
    /// The one account matching `filter`, converted.
    pub(crate) async fn find_user<F>(
        &self,
        op: &'static str,
        filter: F,
    ) -> Result<Option<UserRecord>, PortError>
    where
        F: FnOnce(&mut SqliteConnection) -> QueryResult<Option<UserRow>> + Send + 'static,
    {
        self.run(op, filter)
            .await?
            .map(UserRow::into_record)
            .transpose()
    }

    /// Runs `change` and, if a mail goes with it and `applied` says the change took
    /// effect, writes the mail (token first, then the mail) in the same transaction: both
    /// are stored or neither is. Without a mail, `change` runs on its own.
    pub(crate) async fn change_with_mail<R, F>(
        &self,
        op: &'static str,
        mail: Option<OutgoingRows>,
        change: F,
        applied: fn(&R) -> bool,
    ) -> Result<R, DbError>
    where
        F: FnOnce(&mut SqliteConnection) -> QueryResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.run(op, move |conn| match mail {
            None => change(conn),
            Some(mail) => conn.immediate_transaction(|conn| {
                let result = change(conn)?;
                if applied(&result) {
                    mail.insert(conn)?;
                }
                Ok(result)
            }),
        })
        .await
    }

    /// Runs an update of one account, with its mail if it touched a row; `NotFound` (and
    /// no mail) when it touched none.
    pub(crate) async fn update_user<F>(
        &self,
        op: &'static str,
        mail: Option<OutgoingRows>,
        update: F,
    ) -> Result<(), StoreError>
    where
        F: FnOnce(&mut SqliteConnection) -> QueryResult<usize> + Send + 'static,
    {
        match self.change_with_mail(op, mail, update, |n| *n > 0).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

/// `Stale` if the account exists (so a compare-and-set lost), else `NotFound`.
pub(crate) fn missing_or_stale(conn: &mut SqliteConnection, id: &str) -> QueryResult<StoreError> {
    let exists: i64 = users::table.find(id).count().get_result(conn)?;
    Ok(if exists > 0 {
        StoreError::Stale
    } else {
        StoreError::NotFound
    })
}

/// Marks the user's unused single-use tokens of these kinds used at `now`.
pub(crate) fn kill_tokens(
    conn: &mut SqliteConnection,
    user: &str,
    kinds: &[OneTimeKind],
    now: i64,
) -> QueryResult<usize> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    diesel::update(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(user))
            .filter(one_time_tokens::kind.eq_any(kinds))
            .filter(one_time_tokens::used_at.is_null()),
    )
    .set(one_time_tokens::used_at.eq(Some(now)))
    .execute(conn)
}
