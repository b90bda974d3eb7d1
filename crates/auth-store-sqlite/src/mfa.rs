//! [`MfaStore`] on SQLite: a TOTP authenticator, recovery codes (by keyed hash only) and
//! passkeys per account.
//!
//! Every write of more than one statement is one `BEGIN IMMEDIATE` transaction: it holds
//! the write lock from its first statement, so what it reads (is a factor left?) stays
//! true until it commits. Single-statement races are decided by the statement itself: an
//! upsert that refuses a confirmed authenticator, conditional updates whose row count
//! says who won (a recovery code, a passkey's counter), the unique index on credential
//! ids, and the foreign key to the account (`NotFound` when it is gone).

use auth_domain::model::{MfaRecord, Outgoing, PasskeyRecord, RecoveryCodeHash, TotpRecord};
use auth_domain::ports::{MfaStore, PortError, StoreError};
use auth_domain::types::{PasskeyId, Sealed, Timestamp, UserId};
use auth_store_core::account_gone;
use auth_store_core::columns::{codes_left, stored_sign_count};
use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::models::{
    PasskeyRow, RecoveryCodeRow, TotpRow, millis, outgoing_rows, recovery_code_rows,
};
use crate::pool::SqliteStore;
use crate::schema::{passkeys, recovery_codes, totp_authenticators, users};

/// Replaces every recovery code of `user` with `codes` (the caller holds the transaction).
fn replace_codes(
    conn: &mut SqliteConnection,
    user: &str,
    codes: &[RecoveryCodeRow],
) -> QueryResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user))).execute(conn)?;
    if !codes.is_empty() {
        diesel::insert_into(recovery_codes::table)
            .values(codes)
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes the recovery codes of `user` if no factor is left: no passkey, no confirmed
/// TOTP authenticator (the caller holds the transaction).
fn drop_codes_without_factor(conn: &mut SqliteConnection, user: &str) -> QueryResult<()> {
    let passkeys_left: i64 = passkeys::table
        .filter(passkeys::user_id.eq(user))
        .count()
        .get_result(conn)?;
    let totp_left: i64 = totp_authenticators::table
        .find(user)
        .filter(totp_authenticators::confirmed_at.is_not_null())
        .count()
        .get_result(conn)?;
    if passkeys_left == 0 && totp_left == 0 {
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user)))
            .execute(conn)?;
    }
    Ok(())
}

impl MfaStore for SqliteStore {
    async fn mfa(&self, user: UserId) -> Result<MfaRecord, PortError> {
        let id = user.to_string();
        // One (deferred) read transaction: in WAL mode its reads see one state of the file.
        let (totp, left, rows) = self
            .run("mfa", move |conn| {
                conn.transaction(|conn| {
                    let totp = totp_authenticators::table
                        .find(&id)
                        .select(TotpRow::as_select())
                        .first(conn)
                        .optional()?;
                    let left: i64 = recovery_codes::table
                        .filter(recovery_codes::user_id.eq(&id))
                        .filter(recovery_codes::used_at.is_null())
                        .count()
                        .get_result(conn)?;
                    let rows = passkeys::table
                        .filter(passkeys::user_id.eq(&id))
                        .order((passkeys::created_at.asc(), passkeys::id.asc()))
                        .select(PasskeyRow::as_select())
                        .load(conn)?;
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
        let id = user.to_string();
        Ok(self
            .run("second_factor_enabled", move |conn| {
                diesel::select(
                    diesel::dsl::exists(passkeys::table.filter(passkeys::user_id.eq(&id))).or(
                        diesel::dsl::exists(
                            totp_authenticators::table
                                .find(&id)
                                .filter(totp_authenticators::confirmed_at.is_not_null()),
                        ),
                    ),
                )
                .get_result::<bool>(conn)
            })
            .await?)
    }

    async fn set_pending_totp(&self, totp: &TotpRecord) -> Result<(), StoreError> {
        let row = TotpRow {
            confirmed_at: None,
            ..TotpRow::from_record(totp)
        };
        // One statement: an upsert whose update applies only to a pending authenticator,
        // so the row count tells a refused replacement (a confirmed one is there); the
        // foreign key tells a missing account.
        let stored = self
            .run("set_pending_totp", move |conn| {
                let upsert = diesel::insert_into(totp_authenticators::table)
                    .values(&row)
                    .on_conflict(totp_authenticators::user_id)
                    .do_update()
                    .set((
                        totp_authenticators::secret_sealed
                            .eq(excluded(totp_authenticators::secret_sealed)),
                        totp_authenticators::created_at
                            .eq(excluded(totp_authenticators::created_at)),
                        totp_authenticators::confirmed_at.eq(None::<i64>),
                    ));
                // `ON CONFLICT ... DO UPDATE ... WHERE`: a confirmed one is left as it is.
                diesel::query_dsl::methods::FilterDsl::filter(
                    upsert,
                    totp_authenticators::confirmed_at.is_null(),
                )
                .execute(conn)
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
        let (id, secret) = (user.to_string(), secret.0.clone());
        let codes = recovery_code_rows(user, codes, now);
        let now = millis(now);
        let mail = outgoing_rows(mail)?;
        self.run("confirm_totp", move |conn| {
            conn.immediate_transaction(|conn| {
                let confirmed = diesel::update(
                    totp_authenticators::table
                        .find(&id)
                        .filter(totp_authenticators::secret_sealed.eq(&secret))
                        .filter(totp_authenticators::confirmed_at.is_null()),
                )
                .set(totp_authenticators::confirmed_at.eq(Some(now)))
                .execute(conn)?;
                if confirmed == 0 {
                    return Ok(Err(StoreError::Stale));
                }
                replace_codes(conn, &id, &codes)?;
                if let Some(mail) = mail {
                    mail.insert(conn)?;
                }
                Ok(Ok(()))
            })
        })
        .await
        .map_err(account_gone)?
    }

    async fn delete_totp(&self, user: UserId, mail: Option<&Outgoing>) -> Result<bool, PortError> {
        let id = user.to_string();
        let mail = outgoing_rows(mail)?;
        let removed = self
            .run("delete_totp", move |conn| {
                conn.immediate_transaction(|conn| {
                    let removed: Option<Option<i64>> =
                        diesel::delete(totp_authenticators::table.find(&id))
                            .returning(totp_authenticators::confirmed_at)
                            .get_result(conn)
                            .optional()?;
                    let Some(confirmed_at) = removed else {
                        return Ok(false);
                    };
                    drop_codes_without_factor(conn, &id)?;
                    let confirmed = confirmed_at.is_some();
                    if confirmed && let Some(mail) = mail {
                        mail.insert(conn)?;
                    }
                    Ok(confirmed)
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
        let id = user.to_string();
        let codes = recovery_code_rows(user, codes, now);
        self.run("replace_recovery_codes", move |conn| {
            conn.immediate_transaction(|conn| {
                // Under the write lock: the account cannot go before this commits.
                let exists: i64 = users::table.find(&id).count().get_result(conn)?;
                if exists == 0 {
                    return Ok(Err(StoreError::NotFound));
                }
                replace_codes(conn, &id, &codes)?;
                Ok(Ok(()))
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
        let (id, hash, now) = (user.to_string(), code.0.0.clone(), millis(now));
        let mail = outgoing_rows(mail)?;
        // A conditional update: of concurrent calls with one code, one sees a row count
        // of 1.
        let used = self
            .change_with_mail(
                "use_recovery_code",
                mail,
                move |conn| {
                    diesel::update(
                        recovery_codes::table
                            .find((&id, &hash))
                            .filter(recovery_codes::used_at.is_null()),
                    )
                    .set(recovery_codes::used_at.eq(Some(now)))
                    .execute(conn)
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
        let row = PasskeyRow::from_record(passkey);
        let mail = outgoing_rows(mail)?;
        // The unique index on credential_id decides a credential registered already
        // (`Taken(Credential)`), the foreign key a missing account (`NotFound`).
        self.change_with_mail(
            "insert_passkey",
            mail,
            move |conn| {
                diesel::insert_into(passkeys::table)
                    .values(&row)
                    .execute(conn)
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
            passkeys::table
                .filter(passkeys::credential_id.eq(credential_id))
                .select(PasskeyRow::as_select())
                .first(conn)
                .optional()
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
        let (id, credential, now) = (id.0.to_string(), credential.to_owned(), millis(now));
        let (new_count, expected) = (
            stored_sign_count(sign_count),
            stored_sign_count(expected_count),
        );
        self.run("record_passkey_use", move |conn| {
            // A compare-and-set on the counter: of concurrent sign-ins checked against one
            // counter, one sees a row count of 1.
            let updated = diesel::update(
                passkeys::table
                    .find(&id)
                    .filter(passkeys::sign_count.eq(expected)),
            )
            .set((
                passkeys::credential.eq(credential),
                passkeys::sign_count.eq(new_count),
                passkeys::last_used_at.eq(Some(now)),
            ))
            .execute(conn)?;
            if updated > 0 {
                return Ok(Ok(()));
            }
            let exists: i64 = passkeys::table.find(&id).count().get_result(conn)?;
            Ok(Err(if exists > 0 {
                StoreError::Stale
            } else {
                StoreError::NotFound
            }))
        })
        .await?
    }

    async fn delete_passkey(
        &self,
        user: UserId,
        id: PasskeyId,
        mail: Option<&Outgoing>,
    ) -> Result<bool, PortError> {
        let (user, id) = (user.to_string(), id.0.to_string());
        let mail = outgoing_rows(mail)?;
        let deleted = self
            .run("delete_passkey", move |conn| {
                conn.immediate_transaction(|conn| {
                    // Only the user's own: another user's id matches no row.
                    let deleted = diesel::delete(
                        passkeys::table
                            .find(&id)
                            .filter(passkeys::user_id.eq(&user)),
                    )
                    .execute(conn)?;
                    if deleted == 0 {
                        return Ok(false);
                    }
                    drop_codes_without_factor(conn, &user)?;
                    if let Some(mail) = mail {
                        mail.insert(conn)?;
                    }
                    Ok(true)
                })
            })
            .await?;
        Ok(deleted)
    }
}
