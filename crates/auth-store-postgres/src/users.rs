//! [`UserStore`] on PostgreSQL.

use auth_domain::model::{OneTimeKind, Outgoing, ProfileChanges, UserRecord};
use auth_domain::ports::{PortError, StoreError, UserStore};
use auth_domain::types::{BlindIndex, PasswordHash, Sealed, Timestamp, UserId};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{ProfileChangeset, UserRow, outgoing_rows};
use crate::pool::PgStore;
use crate::schema::users;
use crate::writes::{kill_tokens, missing_or_stale};

impl UserStore for PgStore {
    async fn insert_user(
        &self,
        user: &UserRecord,
        mail: Option<&Outgoing>,
    ) -> Result<(), StoreError> {
        let _written = self.writing(user.id);
        // Uniqueness is decided by the unique indexes, within the insert itself; the
        // violated index tells which value was taken. The user row comes before the mail's
        // token, which references it; a refused insert rolls the mail back with it.
        let row = UserRow::from_record(user);
        let mail = outgoing_rows(mail)?;
        self.change_with_mail(
            "insert_user",
            mail,
            move |conn| {
                Box::pin(async move {
                    diesel::insert_into(users::table)
                        .values(&row)
                        .execute(conn)
                        .await
                })
            },
            |_| true,
        )
        .await?;
        Ok(())
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, PortError> {
        self.find_user("user_by_id", move |conn| {
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

    async fn user_for_display(&self, id: UserId) -> Result<Option<UserRecord>, PortError> {
        self.run_read("user_for_display", id, move |conn| {
            Box::pin(async move {
                users::table
                    .find(id.0)
                    .select(UserRow::as_select())
                    .first(conn)
                    .await
                    .optional()
            })
        })
        .await?
        .map(UserRow::into_record)
        .transpose()
    }

    async fn user_by_email(&self, index: &BlindIndex) -> Result<Option<UserRecord>, PortError> {
        let index = index.0.clone();
        self.find_user("user_by_email", move |conn| {
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
        self.find_user("user_by_username", move |conn| {
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

    async fn pending_registration(
        &self,
        email_index: &BlindIndex,
        password_tag: u16,
    ) -> Result<Option<UserRecord>, PortError> {
        let (index, tag) = (email_index.0.clone(), i32::from(password_tag));
        self.find_user("pending_registration", move |conn| {
            Box::pin(async move {
                users::table
                    .filter(users::pending_for_email_index.eq(index))
                    .filter(users::pending_password_tag.eq(tag))
                    .order(users::created_at.desc())
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
        mail: Option<&Outgoing>,
    ) -> Result<UserRecord, StoreError> {
        let _written = self.writing(id);
        let changeset = ProfileChangeset::new(changes, now);
        let expected = changes.expected_password_version;
        let mail = outgoing_rows(mail)?;
        // One statement: the change and the read-back of the row as stored are atomic.
        let row = self
            .change_with_mail(
                "update_profile",
                mail,
                move |conn| {
                    Box::pin(async move {
                        let updated = match expected {
                            None => {
                                diesel::update(users::table.find(id.0))
                                    .set(&changeset)
                                    .returning(UserRow::as_returning())
                                    .get_result(conn)
                                    .await
                            }
                            Some(version) => {
                                diesel::update(
                                    users::table
                                        .find(id.0)
                                        .filter(users::password_version.eq(version)),
                                )
                                .set(&changeset)
                                .returning(UserRow::as_returning())
                                .get_result(conn)
                                .await
                            }
                        }
                        .optional()?;
                        match updated {
                            Some(row) => Ok(Ok(row)),
                            None => Ok(Err(missing_or_stale(conn, id).await?)),
                        }
                    })
                },
                Result::is_ok,
            )
            .await??;
        Ok(row.into_record()?)
    }

    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: Timestamp,
        mail: Option<&Outgoing>,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let _written = self.writing(id);
        let hash = hash.0.clone();
        let mail = outgoing_rows(mail)?;
        self.run("set_password", move |conn| {
            Box::pin(async move {
                conn.transaction(async move |conn| {
                    let changes = (
                        users::password_hash.eq(hash),
                        users::password_version.eq(users::password_version + 1),
                        users::pending_email_sealed.eq(None::<Vec<u8>>),
                        users::updated_at.eq(now),
                    );
                    let updated = match expected_version {
                        None => {
                            diesel::update(users::table.find(id.0))
                                .set(changes)
                                .execute(conn)
                                .await?
                        }
                        Some(version) => {
                            diesel::update(
                                users::table
                                    .find(id.0)
                                    .filter(users::password_version.eq(version)),
                            )
                            .set(changes)
                            .execute(conn)
                            .await?
                        }
                    };
                    if updated == 0 {
                        return Ok(Err(missing_or_stale(conn, id).await?));
                    }
                    // Whoever holds an outstanding reset or change-email link loses it with
                    // the old password.
                    kill_tokens(
                        conn,
                        id,
                        &[OneTimeKind::ResetPassword, OneTimeKind::ChangeEmail],
                        now,
                    )
                    .await?;
                    if let Some(mail) = mail {
                        mail.insert(conn).await?;
                    }
                    Ok::<_, diesel::result::Error>(Ok(()))
                })
                .await
            })
        })
        .await?
    }

    async fn rehash_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let _written = self.writing(id);
        let hash = hash.0.clone();
        self.run("rehash_password", move |conn| {
            Box::pin(async move {
                let updated = diesel::update(
                    users::table
                        .find(id.0)
                        .filter(users::password_version.eq(expected_version)),
                )
                .set(users::password_hash.eq(hash))
                .execute(conn)
                .await?;
                if updated == 0 {
                    return Ok(Err(missing_or_stale(conn, id).await?));
                }
                Ok(Ok(()))
            })
        })
        .await?
    }

    async fn mark_email_verified(&self, id: UserId, now: Timestamp) -> Result<(), StoreError> {
        let _written = self.writing(id);
        self.update_user("mark_email_verified", None, move |conn| {
            Box::pin(async move {
                // Idempotent: the first verification time stays, and a row already verified
                // still counts as found.
                // A pending registration for a taken email is never verified.
                let marked = diesel::update(
                    users::table
                        .find(id.0)
                        .filter(users::email_verified_at.is_null())
                        .filter(users::pending_for_email_index.is_null()),
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
        mail: Option<&Outgoing>,
        expected_pending: Option<&Sealed>,
    ) -> Result<(), StoreError> {
        let _written = self.writing(id);
        let (index, sealed) = (index.0.clone(), sealed.0.clone());
        let expected_pending = expected_pending.map(|p| p.0.clone());
        let mail = outgoing_rows(mail)?;
        // The unique index on email_index decides a collision with another account. Every
        // link still outstanding was mailed to the old address: it dies with it.
        self.run("apply_email_change", move |conn| {
            Box::pin(async move {
                conn.transaction(async move |conn| {
                    let changes = (
                        users::email_index.eq(index),
                        users::email_sealed.eq(sealed),
                        users::email_verified_at.eq(Some(now)),
                        users::pending_email_sealed.eq(None::<Vec<u8>>),
                        users::updated_at.eq(now),
                    );
                    let updated = match &expected_pending {
                        None => {
                            diesel::update(users::table.find(id.0))
                                .set(changes)
                                .execute(conn)
                                .await?
                        }
                        Some(pending) => {
                            diesel::update(
                                users::table
                                    .find(id.0)
                                    .filter(users::pending_email_sealed.eq(pending)),
                            )
                            .set(changes)
                            .execute(conn)
                            .await?
                        }
                    };
                    if updated == 0 {
                        return Ok(Err(missing_or_stale(conn, id).await?));
                    }
                    kill_tokens(conn, id, &OneTimeKind::ALL, now).await?;
                    if let Some(mail) = mail {
                        mail.insert(conn).await?;
                    }
                    Ok::<_, diesel::result::Error>(Ok(()))
                })
                .await
            })
        })
        .await
        .map_err(StoreError::from)?
    }

    async fn record_login(&self, id: UserId, now: Timestamp) -> Result<(), PortError> {
        let _written = self.writing(id);
        self.run("record_login", move |conn| {
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

    async fn delete_user(
        &self,
        id: UserId,
        mail: Option<&Outgoing>,
        expected_password_version: Option<i64>,
    ) -> Result<bool, StoreError> {
        let _written = self.writing(id);
        let mail = outgoing_rows(mail)?;
        // One statement (in one transaction with the mail, if any): the foreign keys'
        // ON DELETE CASCADE removes the sessions (and with them their refresh tokens), the
        // one-time tokens and the second factors (TOTP authenticator, recovery codes,
        // passkeys). The mail, which has no foreign key, stays.
        let deleted = self
            .change_with_mail(
                "delete_user",
                mail,
                move |conn| {
                    Box::pin(async move {
                        let deleted = match expected_password_version {
                            None => {
                                diesel::delete(users::table.find(id.0))
                                    .execute(conn)
                                    .await?
                            }
                            Some(version) => {
                                diesel::delete(
                                    users::table
                                        .find(id.0)
                                        .filter(users::password_version.eq(version)),
                                )
                                .execute(conn)
                                .await?
                            }
                        };
                        if deleted == 0 && expected_password_version.is_some() {
                            return match missing_or_stale(conn, id).await? {
                                StoreError::NotFound => Ok(Ok(false)),
                                stale => Ok(Err(stale)),
                            };
                        }
                        Ok(Ok(deleted > 0))
                    })
                },
                |deleted| matches!(deleted, Ok(true)),
            )
            .await??;
        Ok(deleted)
    }
}
