//! [`SessionStore`] on PostgreSQL: sessions and their refresh tokens, by hash only.

use auth_domain::model::{Rotation, SessionRecord};
use auth_domain::ports::{PortError, SessionStore, StoreError};
use auth_domain::types::{SessionId, Timestamp, TokenHash, UserId};
use auth_store_core::corrupt;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::models::{NewRefreshToken, NewSession, RotationRow, SessionRow, hash_bytes};
use crate::pool::PgStore;
use crate::schema::{refresh_tokens, sessions, user_revocations, users};

impl NewSession {
    /// Inserts both (the caller holds the transaction).
    async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<usize> {
        diesel::insert_into(sessions::table)
            .values(&self.session)
            .execute(conn)
            .await?;
        diesel::insert_into(refresh_tokens::table)
            .values(&self.token)
            .execute(conn)
            .await
    }
}

impl SessionStore for PgStore {
    async fn create_session(
        &self,
        session: &SessionRecord,
        refresh: &TokenHash,
    ) -> Result<(), PortError> {
        let _written = self.writing(session.user_id);
        let rows = NewSession::of(session, refresh);
        self.run("create_session", move |conn| {
            Box::pin(async move { conn.transaction(async |conn| rows.insert(conn).await).await })
        })
        .await?;
        Ok(())
    }

    async fn create_login_session(
        &self,
        session: &SessionRecord,
        refresh: &TokenHash,
        password_version: i64,
    ) -> Result<(), StoreError> {
        let _written = self.writing(session.user_id);
        let rows = NewSession::of(session, refresh);
        let user = UserId(rows.session.user_id);
        self.run("create_login_session", move |conn| {
            Box::pin(async move {
                conn.transaction(async move |conn| {
                    // The compare-and-set comes first and locks the user's row: a reset
                    // either committed before (the version moved on, nothing is stored) or
                    // waits for this session and then revokes it.
                    let recorded = diesel::update(
                        users::table
                            .find(user.0)
                            .filter(users::password_version.eq(password_version)),
                    )
                    .set(users::last_login_at.eq(Some(rows.session.created_at)))
                    .execute(conn)
                    .await?;
                    if recorded == 0 {
                        return Ok(Err(crate::writes::missing_or_stale(conn, user).await?));
                    }
                    rows.insert(conn).await?;
                    Ok::<_, diesel::result::Error>(Ok(()))
                })
                .await
            })
        })
        .await?
    }

    // Long by design: the conditional update that decides the race and the reads that
    // explain a lost one run in one transaction, and are clearest read in one place.
    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        successor: &TokenHash,
        now: Timestamp,
    ) -> Result<Rotation, PortError> {
        let (presented, successor) = (hash_bytes(presented), hash_bytes(successor));
        let found = self
            .run("rotate_refresh", move |conn| {
                Box::pin(async move {
                    conn.transaction(async |conn| {
                        // The conditional update decides: a concurrent update of the same
                        // row waits for this one to commit, then re-checks rotated_at on
                        // the new row version and matches nothing. Exactly one call wins.
                        let won: Option<Uuid> = diesel::update(
                            refresh_tokens::table
                                .find(&presented)
                                .filter(refresh_tokens::rotated_at.is_null()),
                        )
                        .set(refresh_tokens::rotated_at.eq(Some(now)))
                        .returning(refresh_tokens::session_id)
                        .get_result(conn)
                        .await
                        .optional()?;

                        if let Some(session) = won {
                            // Idempotent: a successor stored before is not an error.
                            diesel::insert_into(refresh_tokens::table)
                                .values(NewRefreshToken {
                                    hash: successor,
                                    session_id: session,
                                    created_at: now,
                                })
                                .on_conflict_do_nothing()
                                .execute(conn)
                                .await?;
                            let session = diesel::update(sessions::table.find(session))
                                .set(sessions::last_used_at.eq(now))
                                .returning(SessionRow::as_returning())
                                .get_result(conn)
                                .await?;
                            return Ok(RotationRow::Rotated(session));
                        }

                        let Some((session, rotated_at)) = refresh_tokens::table
                            .find(&presented)
                            .select((refresh_tokens::session_id, refresh_tokens::rotated_at))
                            .first::<(Uuid, Option<Timestamp>)>(conn)
                            .await
                            .optional()?
                        else {
                            return Ok(RotationRow::Unknown);
                        };
                        let session = sessions::table
                            .find(session)
                            .select(SessionRow::as_select())
                            .first(conn)
                            .await?;
                        Ok(RotationRow::AlreadyRotated {
                            session,
                            rotated_at,
                        })
                    })
                    .await
                })
            })
            .await?;

        let rotation = found.into_rotation()?;
        if let Rotation::Rotated(session) = &rotation {
            // The session's last use moved: the sessions list shows it.
            self.wrote(session.user_id);
        }
        Ok(rotation)
    }

    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, PortError> {
        let row = self
            .run("session", move |conn| {
                Box::pin(async move {
                    sessions::table
                        .find(id.0)
                        .select(SessionRow::as_select())
                        .first(conn)
                        .await
                        .optional()
                })
            })
            .await?;
        row.map(SessionRow::into_record).transpose()
    }

    async fn active_sessions(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionRecord>, PortError> {
        // Shown to the user: a read replica may answer (see `PgStore::with_replicas`).
        let rows: Vec<SessionRow> = self
            .run_read("active_sessions", user, move |conn| {
                Box::pin(async move {
                    sessions::table
                        .filter(sessions::user_id.eq(user.0))
                        .filter(sessions::revoked_at.is_null())
                        .filter(sessions::expires_at.gt(now))
                        // Ids are UUID v7: they break ties in creation order.
                        .order((sessions::created_at.desc(), sessions::id.desc()))
                        .select(SessionRow::as_select())
                        .load(conn)
                        .await
                })
            })
            .await?;
        rows.into_iter().map(SessionRow::into_record).collect()
    }

    async fn revoke_session(&self, id: SessionId, now: Timestamp) -> Result<bool, PortError> {
        let revoked: Vec<Uuid> = self
            .run("revoke_session", move |conn| {
                Box::pin(async move {
                    diesel::update(
                        sessions::table
                            .find(id.0)
                            .filter(sessions::revoked_at.is_null()),
                    )
                    .set(sessions::revoked_at.eq(Some(now)))
                    .returning(sessions::user_id)
                    .get_results(conn)
                    .await
                })
            })
            .await?;
        for user in &revoked {
            self.wrote(UserId(*user));
        }
        Ok(!revoked.is_empty())
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now: Timestamp,
    ) -> Result<Vec<SessionId>, PortError> {
        let _written = self.writing(user);
        let ids: Vec<Uuid> = self
            .run("revoke_user_sessions", move |conn| {
                Box::pin(async move {
                    let live = sessions::table
                        .filter(sessions::user_id.eq(user.0))
                        .filter(sessions::revoked_at.is_null());
                    let set = sessions::revoked_at.eq(Some(now));
                    // One statement: the ids returned are exactly the rows it revoked.
                    match except {
                        Some(except) => {
                            diesel::update(live.filter(sessions::id.ne(except.0)))
                                .set(set)
                                .returning(sessions::id)
                                .get_results(conn)
                                .await
                        }
                        None => {
                            diesel::update(live)
                                .set(set)
                                .returning(sessions::id)
                                .get_results(conn)
                                .await
                        }
                    }
                })
            })
            .await?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    async fn revoke_user_tokens(
        &self,
        user: UserId,
        not_before: Timestamp,
        until: Timestamp,
    ) -> Result<(), PortError> {
        let _written = self.writing(user);
        self.run("revoke_user_tokens", move |conn| {
            Box::pin(async move {
                // An upsert that only ever moves the mark (and its expiry) forward, in one
                // statement: concurrent calls cannot move it back either.
                diesel::insert_into(user_revocations::table)
                    .values((
                        user_revocations::user_id.eq(user.0),
                        user_revocations::not_before.eq(not_before),
                        user_revocations::expires_at.eq(until),
                    ))
                    .on_conflict(user_revocations::user_id)
                    .do_update()
                    .set((
                        user_revocations::not_before.eq(diesel::dsl::sql::<Timestamptz>(
                            "GREATEST(user_revocations.not_before, excluded.not_before)",
                        )),
                        user_revocations::expires_at.eq(diesel::dsl::sql::<Timestamptz>(
                            "GREATEST(user_revocations.expires_at, excluded.expires_at)",
                        )),
                    ))
                    .execute(conn)
                    .await
            })
        })
        .await?;
        Ok(())
    }

    async fn user_revocations(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(UserId, Timestamp, Timestamp)>, PortError> {
        let rows: Vec<(Uuid, Timestamp, Timestamp)> = self
            .run("user_revocations", move |conn| {
                Box::pin(async move {
                    user_revocations::table
                        .filter(user_revocations::expires_at.gt(now))
                        .select((
                            user_revocations::user_id,
                            user_revocations::not_before,
                            user_revocations::expires_at,
                        ))
                        .load(conn)
                        .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(user, not_before, until)| (UserId(user), not_before, until))
            .collect())
    }

    async fn revoked_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(SessionId, Timestamp)>, PortError> {
        let rows: Vec<(Uuid, Option<Timestamp>)> = self
            .run("revoked_since", move |conn| {
                Box::pin(async move {
                    sessions::table
                        .filter(sessions::revoked_at.ge(since))
                        .order(sessions::revoked_at.asc())
                        .select((sessions::id, sessions::revoked_at))
                        .load(conn)
                        .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(id, revoked_at)| {
                // The filter matched, so revoked_at is set.
                let revoked_at =
                    revoked_at.ok_or_else(|| corrupt("sessions", "revoked_at vanished"))?;
                Ok((SessionId(id), revoked_at))
            })
            .collect()
    }
}
