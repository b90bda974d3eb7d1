//! [`MfaStore`] on PostgreSQL: a TOTP authenticator, recovery codes (by keyed hash only)
//! and passkeys per account. Reads go to the primary: they decide logins.
//!
//! Single-statement races are decided by the statement: an upsert that refuses a confirmed
//! authenticator, conditional updates whose row count says who won (a recovery code, a
//! passkey's counter; a concurrent update of the row waits, then re-checks its condition on
//! the new row version), the unique index on credential ids, and the foreign key to the
//! account (`NotFound` when it is gone). Writes that replace the recovery codes or remove a
//! factor first lock the account's row (`FOR NO KEY UPDATE`), so that two of them for one
//! account run one after the other: two replacements never leave the union of their sets,
//! and two removals of the last factors never both keep the codes.

use auth_domain::model::{MfaRecord, Outgoing, PasskeyRecord, RecoveryCodeHash, TotpRecord};
use auth_domain::ports::{MfaStore, PortError, StoreError};
use auth_domain::types::{PasskeyId, Sealed, Timestamp, UserId};
use auth_store_core::account_gone;
use auth_store_core::columns::{codes_left, stored_sign_count};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::models::{PasskeyRow, RecoveryCodeRow, TotpRow, outgoing_rows, recovery_code_rows};
use crate::pool::PgStore;
use crate::schema::{passkeys, recovery_codes, totp_authenticators, users};

/// Locks the account's row until the transaction ends (the caller holds one); `false` if
/// there is no such account. `FOR NO KEY UPDATE`: inserts that reference the account (a
/// passkey, a session) do not wait for it.
async fn lock_account(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<bool> {
    let found: Option<Uuid> = users::table
        .find(user.0)
        .select(users::id)
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// Replaces every recovery code of `user` with `codes` (the caller holds the transaction
/// and the account's lock).
async fn replace_codes(
    conn: &mut AsyncPgConnection,
    user: UserId,
    codes: &[RecoveryCodeRow],
) -> QueryResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user.0)))
        .execute(conn)
        .await?;
    if !codes.is_empty() {
        diesel::insert_into(recovery_codes::table)
            .values(codes)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Deletes the recovery codes of `user` if no factor is left: no passkey, no confirmed
/// TOTP authenticator (the caller holds the transaction and the account's lock).
async fn drop_codes_without_factor(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<()> {
    let passkeys_left: i64 = passkeys::table
        .filter(passkeys::user_id.eq(user.0))
        .count()
        .get_result(conn)
        .await?;
    let totp_left: i64 = totp_authenticators::table
        .find(user.0)
        .filter(totp_authenticators::confirmed_at.is_not_null())
        .count()
        .get_result(conn)
        .await?;
    if passkeys_left == 0 && totp_left == 0 {
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user.0)))
            .execute(conn)
            .await?;
    }
    Ok(())
}

impl MfaStore for PgStore {
    async fn mfa(&self, user: UserId) -> Result<MfaRecord, PortError> {
        let (totp, left, rows) = self
            .run("mfa", move |conn| {
                Box::pin(async move {
                    let totp = totp_authenticators::table
                        .find(user.0)
                        .select(TotpRow::as_select())
                        .first(conn)
                        .await
                        .optional()?;
                    let left: i64 = recovery_codes::table
                        .filter(recovery_codes::user_id.eq(user.0))
                        .filter(recovery_codes::used_at.is_null())
                        .count()
                        .get_result(conn)
                        .await?;
                    let rows = passkeys::table
                        .filter(passkeys::user_id.eq(user.0))
                        .order((passkeys::created_at.asc(), passkeys::id.asc()))
                        .select(PasskeyRow::as_select())
                        .load(conn)
                        .await?;
                    Ok((totp, left, rows))
                })
            })
            .await?;
        Ok(MfaRecord {
            totp: totp.map(TotpRow::into_record).transpose()?,
            recovery_codes_left: codes_left(left)?,
            passkeys: rows
                .into_iter()
                .map(PasskeyRow::into_record)
                .collect::<Result<_, _>>()?,
        })
    }

    async fn second_factor_enabled(&self, user: UserId) -> Result<bool, PortError> {
        Ok(self
            .run("second_factor_enabled", move |conn| {
                Box::pin(async move {
                    diesel::select(
                        diesel::dsl::exists(passkeys::table.filter(passkeys::user_id.eq(user.0)))
                            .or(diesel::dsl::exists(
                                totp_authenticators::table
                                    .find(user.0)
                                    .filter(totp_authenticators::confirmed_at.is_not_null()),
                            )),
                    )
                    .get_result::<bool>(conn)
                    .await
                })
            })
            .await?)
    }

    async fn set_pending_totp(&self, totp: &TotpRecord) -> Result<(), StoreError> {
        let _written = self.writing(totp.user_id);
        let row = TotpRow {
            confirmed_at: None,
            ..TotpRow::from_record(totp)
        };
        // One statement: an upsert whose update applies only to a pending authenticator,
        // so the row count tells a refused replacement (a confirmed one is there); the
        // foreign key tells a missing account.
        let stored = self
            .run("set_pending_totp", move |conn| {
                Box::pin(async move {
                    let upsert = diesel::insert_into(totp_authenticators::table)
                        .values(&row)
                        .on_conflict(totp_authenticators::user_id)
                        .do_update()
                        .set((
                            totp_authenticators::secret_sealed
                                .eq(excluded(totp_authenticators::secret_sealed)),
                            totp_authenticators::created_at
                                .eq(excluded(totp_authenticators::created_at)),
                            totp_authenticators::confirmed_at.eq(None::<Timestamp>),
                        ));
                    // `ON CONFLICT ... DO UPDATE ... WHERE`: a confirmed one is left as it is.
                    diesel::query_dsl::methods::FilterDsl::filter(
                        upsert,
                        totp_authenticators::confirmed_at.is_null(),
                    )
                    .execute(conn)
                    .await
                })
            })
            .await
            .map_err(account_gone)?;
        if stored == 0 {
            return Err(StoreError::Stale);
        }
        Ok(())
    }

    async fn confirm_totp(
        &self,
        user: UserId,
        secret: &Sealed,
        codes: &[RecoveryCodeHash],
        now: Timestamp,
        mail: Option<&Outgoing>,
    ) -> Result<(), StoreError> {
        let _written = self.writing(user);
        let secret = secret.0.clone();
        let codes = recovery_code_rows(user, codes, now);
        let mail = outgoing_rows(mail)?;
        self.run("confirm_totp", move |conn| {
            Box::pin(async move {
                conn.transaction(async move |conn| {
                    if !lock_account(conn, user).await? {
                        return Ok(Err(StoreError::Stale));
                    }
                    let confirmed = diesel::update(
                        totp_authenticators::table
                            .find(user.0)
                            .filter(totp_authenticators::secret_sealed.eq(&secret))
                            .filter(totp_authenticators::confirmed_at.is_null()),
                    )
                    .set(totp_authenticators::confirmed_at.eq(Some(now)))
                    .execute(conn)
                    .await?;
                    if confirmed == 0 {
                        return Ok(Err(StoreError::Stale));
                    }
                    replace_codes(conn, user, &codes).await?;
                    if let Some(mail) = mail {
                        mail.insert(conn).await?;
                    }
                    Ok::<_, diesel::result::Error>(Ok(()))
                })
                .await
            })
        })
        .await
        .map_err(account_gone)?
    }

    async fn delete_totp(&self, user: UserId, mail: Option<&Outgoing>) -> Result<bool, PortError> {
        let _written = self.writing(user);
        let mail = outgoing_rows(mail)?;
        let removed = self
            .run("delete_totp", move |conn| {
                Box::pin(async move {
                    conn.transaction(async move |conn| {
                        lock_account(conn, user).await?;
                        let removed: Option<Option<Timestamp>> =
                            diesel::delete(totp_authenticators::table.find(user.0))
                                .returning(totp_authenticators::confirmed_at)
                                .get_result(conn)
                                .await
                                .optional()?;
                        let Some(confirmed_at) = removed else {
                            return Ok(false);
                        };
                        drop_codes_without_factor(conn, user).await?;
                        let confirmed = confirmed_at.is_some();
                        if confirmed && let Some(mail) = mail {
                            mail.insert(conn).await?;
                        }
                        Ok::<_, diesel::result::Error>(confirmed)
                    })
                    .await
                })
            })
            .await?;
        Ok(removed)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[RecoveryCodeHash],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let _written = self.writing(user);
        let codes = recovery_code_rows(user, codes, now);
        self.run("replace_recovery_codes", move |conn| {
            Box::pin(async move {
                conn.transaction(async move |conn| {
                    // Locked: the account cannot go, nor another set come, before this commits.
                    if !lock_account(conn, user).await? {
                        return Ok(Err(StoreError::NotFound));
                    }
                    replace_codes(conn, user, &codes).await?;
                    Ok::<_, diesel::result::Error>(Ok(()))
                })
                .await
            })
        })
        .await
        .map_err(account_gone)?
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &RecoveryCodeHash,
        now: Timestamp,
        mail: Option<&Outgoing>,
    ) -> Result<bool, PortError> {
        let _written = self.writing(user);
        let hash = code.0.0.clone();
        let mail = outgoing_rows(mail)?;
        // A conditional update: of concurrent calls with one code, one sees a row count
        // of 1 (the others wait for it, then find the code used).
        let used = self
            .change_with_mail(
                "use_recovery_code",
                mail,
                move |conn| {
                    Box::pin(async move {
                        diesel::update(
                            recovery_codes::table
                                .find((user.0, hash))
                                .filter(recovery_codes::used_at.is_null()),
                        )
                        .set(recovery_codes::used_at.eq(Some(now)))
                        .execute(conn)
                        .await
                    })
                },
                |n| *n > 0,
            )
            .await?;
        Ok(used > 0)
    }

    async fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        mail: Option<&Outgoing>,
    ) -> Result<(), StoreError> {
        let _written = self.writing(passkey.user_id);
        let row = PasskeyRow::from_record(passkey);
        let mail = outgoing_rows(mail)?;
        // The unique index on credential_id decides a credential registered already
        // (`Taken(Credential)`, also when two inserts race), the foreign key a missing
        // account (`NotFound`).
        self.change_with_mail(
            "insert_passkey",
            mail,
            move |conn| {
                Box::pin(async move {
                    diesel::insert_into(passkeys::table)
                        .values(&row)
                        .execute(conn)
                        .await
                })
            },
            |_| true,
        )
        .await
        .map_err(account_gone)?;
        Ok(())
    }

    async fn passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>, PortError> {
        let credential_id = credential_id.to_vec();
        self.run("passkey_by_credential", move |conn| {
            Box::pin(async move {
                passkeys::table
                    .filter(passkeys::credential_id.eq(credential_id))
                    .select(PasskeyRow::as_select())
                    .first(conn)
                    .await
                    .optional()
            })
        })
        .await?
        .map(PasskeyRow::into_record)
        .transpose()
    }

    async fn record_passkey_use(
        &self,
        id: PasskeyId,
        credential: &str,
        sign_count: u32,
        expected_count: u32,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let credential = credential.to_owned();
        let (new_count, expected) = (
            stored_sign_count(sign_count),
            stored_sign_count(expected_count),
        );
        self.run("record_passkey_use", move |conn| {
            Box::pin(async move {
                // A compare-and-set on the counter: of concurrent sign-ins checked against
                // one counter, one sees a row count of 1.
                let updated = diesel::update(
                    passkeys::table
                        .find(id.0)
                        .filter(passkeys::sign_count.eq(expected)),
                )
                .set((
                    passkeys::credential.eq(credential),
                    passkeys::sign_count.eq(new_count),
                    passkeys::last_used_at.eq(Some(now)),
                ))
                .execute(conn)
                .await?;
                if updated > 0 {
                    return Ok(Ok(()));
                }
                let exists: i64 = passkeys::table.find(id.0).count().get_result(conn).await?;
                Ok(Err(if exists > 0 {
                    StoreError::Stale
                } else {
                    StoreError::NotFound
                }))
            })
        })
        .await?
    }

    async fn delete_passkey(
        &self,
        user: UserId,
        id: PasskeyId,
        mail: Option<&Outgoing>,
    ) -> Result<bool, PortError> {
        let _written = self.writing(user);
        let mail = outgoing_rows(mail)?;
        let deleted = self
            .run("delete_passkey", move |conn| {
                Box::pin(async move {
                    conn.transaction(async move |conn| {
                        lock_account(conn, user).await?;
                        // Only the user's own: another user's id matches no row.
                        let deleted = diesel::delete(
                            passkeys::table
                                .find(id.0)
                                .filter(passkeys::user_id.eq(user.0)),
                        )
                        .execute(conn)
                        .await?;
                        if deleted == 0 {
                            return Ok(false);
                        }
                        drop_codes_without_factor(conn, user).await?;
                        if let Some(mail) = mail {
                            mail.insert(conn).await?;
                        }
                        Ok::<_, diesel::result::Error>(true)
                    })
                    .await
                })
            })
            .await?;
        Ok(deleted)
    }
}
