//! [`OneTimeTokenStore`] on PostgreSQL (tokens by hash only), and [`Store`] itself.

use auth_domain::model::{OneTimeKind, OneTimeTokenRecord};
use auth_domain::ports::{CleanupReport, OneTimeTokenStore, PortError, Store};
use auth_domain::types::{Timestamp, TokenHash};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::models::{OneTimeRow, hash_bytes};
use crate::pool::PgStore;
use crate::schema::{one_time_tokens, outbox, sessions, user_revocations, users};

impl OneTimeTokenStore for PgStore {
    async fn insert_one_time(&self, token: &OneTimeTokenRecord) -> Result<(), PortError> {
        let row = OneTimeRow::from_record(token);
        self.run("insert_one_time", move |conn| {
            Box::pin(async move {
                diesel::insert_into(one_time_tokens::table)
                    .values(&row)
                    .execute(conn)
                    .await
            })
        })
        .await?;
        Ok(())
    }

    async fn find_one_time(
        &self,
        hash: &TokenHash,
        kind: OneTimeKind,
    ) -> Result<Option<OneTimeTokenRecord>, PortError> {
        let hash = hash_bytes(hash);
        self.run("find_one_time", move |conn| {
            Box::pin(async move {
                one_time_tokens::table
                    .find(hash)
                    .filter(one_time_tokens::kind.eq(kind.as_str()))
                    .select(OneTimeRow::as_select())
                    .first(conn)
                    .await
                    .optional()
            })
        })
        .await?
        .map(OneTimeRow::into_record)
        .transpose()
    }

    async fn consume_one_time(
        &self,
        hash: &TokenHash,
        kind: OneTimeKind,
        now: Timestamp,
    ) -> Result<Option<OneTimeTokenRecord>, PortError> {
        let hash = hash_bytes(hash);
        // A conditional update: of concurrent calls at most one matches a row that is
        // still unused (the others wait for its commit, re-check and match nothing), and
        // RETURNING gives back exactly the row it changed (if any).
        self.run("consume_one_time", move |conn| {
            Box::pin(async move {
                diesel::update(
                    one_time_tokens::table
                        .find(hash)
                        .filter(one_time_tokens::kind.eq(kind.as_str()))
                        .filter(one_time_tokens::used_at.is_null())
                        .filter(one_time_tokens::expires_at.gt(now)),
                )
                .set(one_time_tokens::used_at.eq(Some(now)))
                .returning(OneTimeRow::as_returning())
                .get_result(conn)
                .await
                .optional()
            })
        })
        .await?
        .map(OneTimeRow::into_record)
        .transpose()
    }
}

impl Store for PgStore {
    async fn ping(&self) -> Result<(), PortError> {
        self.run("ping", |conn| Box::pin(conn.batch_execute("SELECT 1")))
            .await?;
        Ok(())
    }

    // Long by design: every delete of a cleanup is one statement in one transaction, and
    // reading them together shows what a cleanup removes and in which order.
    async fn cleanup(
        &self,
        now: Timestamp,
        revoked_before: Timestamp,
        unverified_before: Timestamp,
    ) -> Result<CleanupReport, PortError> {
        let dead_before = auth_store_core::columns::dead_mail_cutoff(now)?;
        let report = self
            .run("cleanup", move |conn| {
                Box::pin(async move {
                    conn.transaction(async |conn| {
                        // Accounts never verified expire (their tokens go with them, ON
                        // DELETE CASCADE), freeing their username and email.
                        let unverified_users = diesel::delete(
                            users::table
                                .filter(users::email_verified_at.is_null())
                                .filter(users::created_at.lt(unverified_before)),
                        )
                        .execute(conn)
                        .await?;
                        // Refresh tokens go with their session (ON DELETE CASCADE).
                        let sessions = diesel::delete(
                            sessions::table.filter(
                                sessions::expires_at
                                    .le(now)
                                    .or(sessions::revoked_at.lt(revoked_before)),
                            ),
                        )
                        .execute(conn)
                        .await?;
                        let one_time_tokens = diesel::delete(
                            one_time_tokens::table.filter(
                                one_time_tokens::expires_at
                                    .le(now)
                                    .or(one_time_tokens::used_at.is_not_null()),
                            ),
                        )
                        .execute(conn)
                        .await?;
                        let user_revocations = diesel::delete(
                            user_revocations::table.filter(user_revocations::expires_at.le(now)),
                        )
                        .execute(conn)
                        .await?;
                        let dead_mails =
                            diesel::delete(outbox::table.filter(outbox::dead_at.lt(dead_before)))
                                .execute(conn)
                                .await?;
                        Ok::<_, diesel::result::Error>(CleanupReport {
                            sessions: sessions as u64,
                            one_time_tokens: one_time_tokens as u64,
                            user_revocations: user_revocations as u64,
                            dead_mails: dead_mails as u64,
                            unverified_users: unverified_users as u64,
                        })
                    })
                    .await
                })
            })
            .await?;
        Ok(report)
    }
}
