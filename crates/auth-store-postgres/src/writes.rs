//! The shapes every write of an account takes on PostgreSQL: a change with its mail in one
//! transaction, a compare-and-set that tells a lost race from a missing row, and killing
//! outstanding links.

use auth_domain::model::{OneTimeKind, UserRecord};
use auth_domain::ports::{PortError, StoreError};
use auth_domain::types::{Timestamp, UserId};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::error::DbError;
use crate::models::{OutgoingRows, UserRow};
use crate::pool::{BoxFuture, PgStore};
use crate::schema::{one_time_tokens, users};

impl PgStore {
    /// The one account matching `filter`, converted.
    pub(crate) async fn find_user<F>(
        &self,
        op: &'static str,
        filter: F,
    ) -> Result<Option<UserRecord>, PortError>
    where
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<Option<UserRow>>>
            + Send
            + 'static,
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
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<R>>
            + Send
            + 'static,
        R: Send + 'static,
    {
        self.run(op, move |conn| {
            Box::pin(async move {
                let Some(mail) = mail else {
                    return change(conn).await;
                };
                conn.transaction(async move |conn| {
                    let result = change(conn).await?;
                    if applied(&result) {
                        mail.insert(conn).await?;
                    }
                    Ok::<_, diesel::result::Error>(result)
                })
                .await
            })
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
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<usize>>
            + Send
            + 'static,
    {
        match self.change_with_mail(op, mail, update, |n| *n > 0).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

/// `Stale` if the account exists (so a compare-and-set lost), else `NotFound`.
pub(crate) async fn missing_or_stale(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> QueryResult<StoreError> {
    let exists: i64 = users::table.find(id.0).count().get_result(conn).await?;
    Ok(if exists > 0 {
        StoreError::Stale
    } else {
        StoreError::NotFound
    })
}

/// Marks the user's unused single-use tokens of these kinds used at `now`.
pub(crate) async fn kill_tokens(
    conn: &mut AsyncPgConnection,
    user: UserId,
    kinds: &[OneTimeKind],
    now: Timestamp,
) -> QueryResult<usize> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    diesel::update(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(user.0))
            .filter(one_time_tokens::kind.eq_any(kinds))
            .filter(one_time_tokens::used_at.is_null()),
    )
    .set(one_time_tokens::used_at.eq(Some(now)))
    .execute(conn)
    .await
}
