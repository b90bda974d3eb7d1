//! [`UserStore`] on SQLite.

use auth_domain::model::{OneTimeKind, Outgoing, ProfileChanges, UserRecord};
use auth_domain::ports::{PortError, StoreError, UserStore};
use auth_domain::types::{BlindIndex, PasswordHash, Sealed, Timestamp, UserId};
use diesel::prelude::*;

use crate::models::{ProfileChangeset, UserRow, millis, outgoing_rows};
use crate::pool::SqliteStore;
use crate::schema::users;
use crate::writes::{kill_tokens, missing_or_stale};

impl UserStore for SqliteStore {
    async fn insert_user(
        &self,
        user: &UserRecord,
        mail: Option<&Outgoing>,
    ) -> Result<(), StoreError> {
        // Uniqueness is decided by the unique indexes, within the insert itself; the
        // violated index tells which value was taken. The user row comes before the mail's
        // token, which references it; a refused insert rolls the mail back with it.
        let row = UserRow::from_record(user);
        let mail = outgoing_rows(mail)?;
        self.change_with_mail(
            "insert_user",
            mail,
            move |conn| diesel::insert_into(users::table).values(&row).execute(conn),
            |_| true,
        )
        .await?;
        Ok(())
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, PortError> {
        let id = id.to_string();
        self.find_user("user_by_id", move |conn| {
            users::table
                .find(id)
                .select(UserRow::as_select())
                .first(conn)
                .optional()
        })
        .await
    }

    async fn user_by_email(&self, index: &BlindIndex) -> Result<Option<UserRecord>, PortError> {
        let index = index.0.clone();
        self.find_user("user_by_email", move |conn| {
            users::table
                .filter(users::email_index.eq(index))
                .select(UserRow::as_select())
                .first(conn)
                .optional()
        })
        .await
    }

    async fn user_by_username(&self, normalized: &str) -> Result<Option<UserRecord>, PortError> {
        let normalized = normalized.to_owned();
        self.find_user("user_by_username", move |conn| {
            users::table
                .filter(users::username_normalized.eq(normalized))
                .select(UserRow::as_select())
                .first(conn)
                .optional()
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
            users::table
                .filter(users::pending_for_email_index.eq(index))
                .filter(users::pending_password_tag.eq(tag))
                .order(users::created_at.desc())
                .select(UserRow::as_select())
                .first(conn)
                .optional()
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
        let changeset = ProfileChangeset::new(changes, now);
        let id = id.to_string();
        let expected = changes.expected_password_version;
        let mail = outgoing_rows(mail)?;
        // One statement: the change and the read-back of the row as stored are atomic.
        let row = self
            .change_with_mail(
                "update_profile",
                mail,
                move |conn| {
                    let updated = match expected {
                        None => diesel::update(users::table.find(&id))
                            .set(&changeset)
                            .returning(UserRow::as_returning())
                            .get_result(conn)
                            .optional()?,
                        Some(version) => diesel::update(
                            users::table
                                .find(&id)
                                .filter(users::password_version.eq(version)),
                        )
                        .set(&changeset)
                        .returning(UserRow::as_returning())
                        .get_result(conn)
                        .optional()?,
                    };
                    match updated {
                        Some(row) => Ok(Ok(row)),
                        None => Ok(Err(missing_or_stale(conn, &id)?)),
                    }
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
        let (id, hash, now) = (id.to_string(), hash.0.clone(), millis(now));
        let mail = outgoing_rows(mail)?;
        self.run("set_password", move |conn| {
            conn.immediate_transaction(|conn| {
                let changes = (
                    users::password_hash.eq(hash),
                    users::password_version.eq(users::password_version + 1),
                    users::pending_email_sealed.eq(None::<Vec<u8>>),
                    users::updated_at.eq(now),
                );
                let updated = match expected_version {
                    None => diesel::update(users::table.find(&id))
                        .set(changes)
                        .execute(conn)?,
                    Some(version) => diesel::update(
                        users::table
                            .find(&id)
                            .filter(users::password_version.eq(version)),
                    )
                    .set(changes)
                    .execute(conn)?,
                };
                if updated == 0 {
                    return Ok(Err(missing_or_stale(conn, &id)?));
                }
                // Whoever holds an outstanding reset or change-email link loses it with the
                // old password.
                kill_tokens(
                    conn,
                    &id,
                    &[OneTimeKind::ResetPassword, OneTimeKind::ChangeEmail],
                    now,
                )?;
                if let Some(mail) = mail {
                    mail.insert(conn)?;
                }
                Ok(Ok(()))
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
        let (id, hash) = (id.to_string(), hash.0.clone());
        self.run("rehash_password", move |conn| {
            let updated = diesel::update(
                users::table
                    .find(&id)
                    .filter(users::password_version.eq(expected_version)),
            )
            .set(users::password_hash.eq(hash))
            .execute(conn)?;
            if updated == 0 {
                return Ok(Err(missing_or_stale(conn, &id)?));
            }
            Ok(Ok(()))
        })
        .await?
    }

    async fn mark_email_verified(&self, id: UserId, now: Timestamp) -> Result<(), StoreError> {
        let (id, now) = (id.to_string(), millis(now));
        self.update_user("mark_email_verified", None, move |conn| {
            // Idempotent: the first verification time stays.
            // A pending registration for a taken email is never verified.
            let marked = diesel::update(
                users::table
                    .find(&id)
                    .filter(users::email_verified_at.is_null())
                    .filter(users::pending_for_email_index.is_null()),
            )
            .set((users::email_verified_at.eq(now), users::updated_at.eq(now)))
            .execute(conn)?;
            if marked > 0 {
                return Ok(marked);
            }
            let exists: i64 = users::table.find(&id).count().get_result(conn)?;
            Ok(usize::from(exists > 0))
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
        let (id, index, sealed, now) = (
            id.to_string(),
            index.0.clone(),
            sealed.0.clone(),
            millis(now),
        );
        let expected_pending = expected_pending.map(|p| p.0.clone());
        // The unique index on email_index decides a collision with another account. Every
        // link still outstanding was mailed to the old address: it dies with it.
        let mail = outgoing_rows(mail)?;
        self.run("apply_email_change", move |conn| {
            conn.immediate_transaction(|conn| {
                let changes = (
                    users::email_index.eq(index),
                    users::email_sealed.eq(sealed),
                    users::email_verified_at.eq(Some(now)),
                    users::pending_email_sealed.eq(None::<Vec<u8>>),
                    users::updated_at.eq(now),
                );
                let updated = match &expected_pending {
                    None => diesel::update(users::table.find(&id))
                        .set(changes)
                        .execute(conn)?,
                    Some(pending) => diesel::update(
                        users::table
                            .find(&id)
                            .filter(users::pending_email_sealed.eq(pending)),
                    )
                    .set(changes)
                    .execute(conn)?,
                };
                if updated == 0 {
                    return Ok(Err(missing_or_stale(conn, &id)?));
                }
                kill_tokens(conn, &id, &OneTimeKind::ALL, now)?;
                if let Some(mail) = mail {
                    mail.insert(conn)?;
                }
                Ok(Ok(()))
            })
        })
        .await
        .map_err(StoreError::from)?
    }

    async fn record_login(&self, id: UserId, now: Timestamp) -> Result<(), PortError> {
        let (id, now) = (id.to_string(), millis(now));
        self.run("record_login", move |conn| {
            diesel::update(users::table.find(id))
                .set(users::last_login_at.eq(Some(now)))
                .execute(conn)
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
        let id = id.to_string();
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
                    let deleted = match expected_password_version {
                        None => diesel::delete(users::table.find(&id)).execute(conn)?,
                        Some(version) => diesel::delete(
                            users::table
                                .find(&id)
                                .filter(users::password_version.eq(version)),
                        )
                        .execute(conn)?,
                    };
                    if deleted == 0 && expected_password_version.is_some() {
                        return match missing_or_stale(conn, &id)? {
                            StoreError::NotFound => Ok(Ok(false)),
                            stale => Ok(Err(stale)),
                        };
                    }
                    Ok(Ok(deleted > 0))
                },
                |deleted| matches!(deleted, Ok(true)),
            )
            .await??;
        Ok(deleted)
    }
}
