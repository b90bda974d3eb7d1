//! [`UserStore`] on PostgreSQL.

use auth_domain::model::{ProfileChanges, UserRecord};
use auth_domain::ports::{PortError, StoreError, UserStore};
use auth_domain::types::{BlindIndex, PasswordHash, Sealed, Timestamp, UserId};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::models::{ProfileChangeset, UserRow};
use crate::pool::{BoxFuture, PgStore};
use crate::schema::users;

impl PgStore {
    /// The one account matching `filter`, converted.
    async fn find_user<F>(&self, filter: F) -> Result<Option<UserRecord>, PortError>
    where
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<Option<UserRow>>>
            + Send
            + 'static,
    {
        Ok(self.run(filter).await?.map(UserRow::into_record))
    }

    /// Runs an update of one account; `NotFound` when it touched no row.
    async fn update_user<F>(&self, update: F) -> Result<(), StoreError>
    where
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<usize>>
            + Send
            + 'static,
    {
        match self.run(update).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

impl UserStore for PgStore {
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        // Uniqueness is decided by the unique indexes, within the insert itself; the
        // violated index tells which value was taken.
        let row = UserRow::from_record(user);
        self.run(move |conn| {
            Box::pin(async move {
                diesel::insert_into(users::table)
                    .values(&row)
                    .execute(conn)
                    .await
            })
        })
        .await?;
        Ok(())
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, PortError> {
        self.find_user(move |conn| {
            Box::pin(async move {
                users::table
                    .find(id.0)
                    .select(UserRow::as_select())
                    .first(conn)
                    .await
                    .optional()
            })
        })
        .await
    }

    async fn user_by_email(&self, index: &BlindIndex) -> Result<Option<UserRecord>, PortError> {
        let index = index.0.clone();
        self.find_user(move |conn| {
            Box::pin(async move {
                users::table
                    .filter(users::email_index.eq(index))
                    .select(UserRow::as_select())
                    .first(conn)
                    .await
                    .optional()
            })
        })
        .await
    }

    async fn user_by_username(&self, normalized: &str) -> Result<Option<UserRecord>, PortError> {
        let normalized = normalized.to_owned();
        self.find_user(move |conn| {
            Box::pin(async move {
                users::table
                    .filter(users::username_normalized.eq(normalized))
                    .select(UserRow::as_select())
                    .first(conn)
                    .await
                    .optional()
            })
        })
        .await
    }

    async fn update_profile(
        &self,
        id: UserId,
        changes: &ProfileChanges,
        now: Timestamp,
    ) -> Result<UserRecord, StoreError> {
        let (username, username_normalized) = changes.username.clone().unzip();
        let (phone_index, phone_sealed) = match &changes.phone {
            None => (None, None),
            Some(None) => (Some(None), Some(None)),
            Some(Some((index, sealed))) => {
                (Some(Some(index.0.clone())), Some(Some(sealed.0.clone())))
            }
        };
        let changeset = ProfileChangeset {
            username,
            username_normalized,
            name_sealed: changes.name_sealed.as_ref().map(|s| s.0.clone()),
            surname_sealed: changes.surname_sealed.as_ref().map(|s| s.0.clone()),
            phone_index,
            phone_sealed,
            pending_email_sealed: changes
                .pending_email_sealed
                .as_ref()
                .map(|s| Some(s.0.clone())),
            updated_at: now,
        };
        // One statement: the change and the read-back of the row as stored are atomic.
        let row = self
            .run(move |conn| {
                Box::pin(async move {
                    diesel::update(users::table.find(id.0))
                        .set(&changeset)
                        .returning(UserRow::as_returning())
                        .get_result(conn)
                        .await
                        .optional()
                })
            })
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.into_record())
    }

    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let hash = hash.0.clone();
        self.update_user(move |conn| {
            Box::pin(async move {
                diesel::update(users::table.find(id.0))
                    .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
                    .execute(conn)
                    .await
            })
        })
        .await
    }

    async fn mark_email_verified(&self, id: UserId, now: Timestamp) -> Result<(), StoreError> {
        self.update_user(move |conn| {
            Box::pin(async move {
                // Idempotent: the first verification time stays, and a row already verified
                // still counts as found.
                let marked = diesel::update(
                    users::table
                        .find(id.0)
                        .filter(users::email_verified_at.is_null()),
                )
                .set((users::email_verified_at.eq(now), users::updated_at.eq(now)))
                .execute(conn)
                .await?;
                if marked > 0 {
                    return Ok(marked);
                }
                let exists: i64 = users::table.find(id.0).count().get_result(conn).await?;
                Ok(usize::from(exists > 0))
            })
        })
        .await
    }

    async fn apply_email_change(
        &self,
        id: UserId,
        index: &BlindIndex,
        sealed: &Sealed,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (index, sealed) = (index.0.clone(), sealed.0.clone());
        // The unique index on email_index decides a collision with another account.
        self.update_user(move |conn| {
            Box::pin(async move {
                diesel::update(users::table.find(id.0))
                    .set((
                        users::email_index.eq(index),
                        users::email_sealed.eq(sealed),
                        users::email_verified_at.eq(Some(now)),
                        users::pending_email_sealed.eq(None::<Vec<u8>>),
                        users::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await
            })
        })
        .await
    }

    async fn record_login(&self, id: UserId, now: Timestamp) -> Result<(), PortError> {
        self.run(move |conn| {
            Box::pin(async move {
                diesel::update(users::table.find(id.0))
                    .set(users::last_login_at.eq(Some(now)))
                    .execute(conn)
                    .await
            })
        })
        .await?;
        Ok(())
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, PortError> {
        // One statement, so one transaction: the foreign keys' ON DELETE CASCADE removes
        // the sessions (and with them their refresh tokens) and the one-time tokens.
        let deleted = self
            .run(move |conn| {
                Box::pin(async move { diesel::delete(users::table.find(id.0)).execute(conn).await })
            })
            .await?;
        Ok(deleted > 0)
    }
}
