//! [`SessionStore`] on SQLite: sessions and their refresh tokens, by hash only.

use auth_domain::model::{Rotation, SessionRecord};
use auth_domain::ports::{PortError, SessionStore, StoreError};
use auth_domain::types::{SessionId, Timestamp, TokenHash, UserId};
use auth_store_core::corrupt;
use diesel::prelude::*;

use crate::models::{
    NewRefreshToken, NewSession, RotationRow, SessionRow, hash_bytes, millis, session_id, timestamp,
};
use crate::pool::SqliteStore;
use crate::schema::{refresh_tokens, sessions, user_revocations, users};

impl NewSession {
    /// Inserts both (the caller holds the transaction).
    fn insert(&self, conn: &mut SqliteConnection) -> QueryResult<usize> {
        diesel::insert_into(sessions::table)
            .values(&self.session)
            .execute(conn)?;
        diesel::insert_into(refresh_tokens::table)
            .values(&self.token)
            .execute(conn)
    }
}

impl SessionStore for SqliteStore {
    async fn revoke_user_tokens(
        &self,
        user: UserId,
        not_before: Timestamp,
        until: Timestamp,
    ) -> Result<(), PortError> {
        let (user, not_before, until) = (user.to_string(), millis(not_before), millis(until));
        self.run("revoke_user_tokens", move |conn| {
            // An upsert that only ever moves the mark (and its expiry) forward.
            diesel::insert_into(user_revocations::table)
                .values((
                    user_revocations::user_id.eq(&user),
                    user_revocations::not_before.eq(not_before),
                    user_revocations::expires_at.eq(until),
                ))
                .on_conflict(user_revocations::user_id)
                .do_update()
                .set((
                    user_revocations::not_before.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                        "max(user_revocations.not_before, excluded.not_before)",
                    )),
                    user_revocations::expires_at.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                        "max(user_revocations.expires_at, excluded.expires_at)",
                    )),
                ))
                .execute(conn)
        })
        .await?;
        Ok(())
    }

    async fn user_revocations(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(UserId, Timestamp, Timestamp)>, PortError> {
        let now = millis(now);
        let rows: Vec<(String, i64, i64)> = self
            .run("user_revocations", move |conn| {
                user_revocations::table
                    .filter(user_revocations::expires_at.gt(now))
                    .select((
                        user_revocations::user_id,
                        user_revocations::not_before,
                        user_revocations::expires_at,
                    ))
                    .load(conn)
            })
            .await?;
        rows.into_iter()
            .map(|(user, not_before, until)| {
                let id = uuid::Uuid::parse_str(&user)
                    .map_err(|_| corrupt("user_revocations", "user_id is not a UUID"))?;
                Ok((
                    UserId(id),
                    timestamp("user_revocations", not_before)?,
                    timestamp("user_revocations", until)?,
                ))
            })
            .collect()
    }

    async fn create_session(
        &self,
        session: &SessionRecord,
        refresh: &TokenHash,
    ) -> Result<(), PortError> {
        let rows = NewSession::of(session, refresh);
        self.run("create_session", move |conn| {
            conn.immediate_transaction(|conn| rows.insert(conn))
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
        let rows = NewSession::of(session, refresh);
        self.run("create_login_session", move |conn| {
            conn.immediate_transaction(|conn| {
                // The compare-and-set comes first and takes the write lock: a reset either
                // committed before (the version moved on, nothing is stored) or waits for
                // this session and then revokes it.
                let recorded = diesel::update(
                    users::table
                        .find(&rows.session.user_id)
                        .filter(users::password_version.eq(password_version)),
                )
                .set(users::last_login_at.eq(Some(rows.session.created_at)))
                .execute(conn)?;
                if recorded == 0 {
                    return Ok(Err(crate::writes::missing_or_stale(
                        conn,
                        &rows.session.user_id,
                    )?));
                }
                rows.insert(conn)?;
                Ok(Ok(()))
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
        let (presented, successor, now) =
            (hash_bytes(presented), hash_bytes(successor), millis(now));
        let found = self
            .run("rotate_refresh", move |conn| {
                conn.immediate_transaction(|conn| {
                    // The conditional update decides: of concurrent calls with one token,
                    // exactly one matches a row whose rotated_at is still NULL.
                    let won: Option<String> = diesel::update(
                        refresh_tokens::table
                            .find(&presented)
                            .filter(refresh_tokens::rotated_at.is_null()),
                    )
                    .set(refresh_tokens::rotated_at.eq(Some(now)))
                    .returning(refresh_tokens::session_id)
                    .get_result(conn)
                    .optional()?;

                    if let Some(session) = won {
                        // Idempotent: a successor stored before is not an error.
                        diesel::insert_or_ignore_into(refresh_tokens::table)
                            .values(NewRefreshToken {
                                hash: successor,
                                session_id: session.clone(),
                                created_at: now,
                            })
                            .execute(conn)?;
                        let session = diesel::update(sessions::table.find(session))
                            .set(sessions::last_used_at.eq(now))
                            .returning(SessionRow::as_returning())
                            .get_result(conn)?;
                        return Ok(RotationRow::Rotated(session));
                    }

                    let Some((session, rotated_at)) = refresh_tokens::table
                        .find(&presented)
                        .select((refresh_tokens::session_id, refresh_tokens::rotated_at))
                        .first::<(String, Option<i64>)>(conn)
                        .optional()?
                    else {
                        return Ok(RotationRow::Unknown);
                    };
                    let session = sessions::table
                        .find(session)
                        .select(SessionRow::as_select())
                        .first(conn)?;
                    Ok(RotationRow::AlreadyRotated {
                        session,
                        rotated_at,
                    })
                })
            })
            .await?;

        found.into_rotation()
    }

    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, PortError> {
        let id = id.to_string();
        self.run("session", move |conn| {
            sessions::table
                .find(id)
                .select(SessionRow::as_select())
                .first(conn)
                .optional()
        })
        .await?
        .map(SessionRow::into_record)
        .transpose()
    }

    async fn active_sessions(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionRecord>, PortError> {
        let (user, now) = (user.to_string(), millis(now));
        self.run("active_sessions", move |conn| {
            sessions::table
                .filter(sessions::user_id.eq(user))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(now))
                // Ids are UUID v7: they break ties in creation order.
                .order((sessions::created_at.desc(), sessions::id.desc()))
                .select(SessionRow::as_select())
                .load(conn)
        })
        .await?
        .into_iter()
        .map(SessionRow::into_record)
        .collect()
    }

    async fn revoke_session(&self, id: SessionId, now: Timestamp) -> Result<bool, PortError> {
        let (id, now) = (id.to_string(), millis(now));
        let revoked = self
            .run("revoke_session", move |conn| {
                diesel::update(
                    sessions::table
                        .find(id)
                        .filter(sessions::revoked_at.is_null()),
                )
                .set(sessions::revoked_at.eq(Some(now)))
                .execute(conn)
            })
            .await?;
        Ok(revoked > 0)
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now: Timestamp,
    ) -> Result<Vec<SessionId>, PortError> {
        let (user, now) = (user.to_string(), millis(now));
        let except = except.map(|id| id.to_string());
        let ids: Vec<String> = self
            .run("revoke_user_sessions", move |conn| {
                let live = sessions::table
                    .filter(sessions::user_id.eq(user))
                    .filter(sessions::revoked_at.is_null());
                let set = sessions::revoked_at.eq(Some(now));
                // One statement: the ids returned are exactly the rows it revoked.
                match except {
                    Some(except) => diesel::update(live.filter(sessions::id.ne(except)))
                        .set(set)
                        .returning(sessions::id)
                        .get_results(conn),
                    None => diesel::update(live)
                        .set(set)
                        .returning(sessions::id)
                        .get_results(conn),
                }
            })
            .await?;
        ids.iter().map(|id| session_id(id)).collect()
    }

    async fn revoked_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(SessionId, Timestamp)>, PortError> {
        let since = millis(since);
        let rows: Vec<(String, Option<i64>)> = self
            .run("revoked_since", move |conn| {
                sessions::table
                    .filter(sessions::revoked_at.ge(since))
                    .order(sessions::revoked_at.asc())
                    .select((sessions::id, sessions::revoked_at))
                    .load(conn)
            })
            .await?;
        rows.into_iter()
            .map(|(id, revoked_at)| {
                // The filter matched, so revoked_at is set.
                let revoked_at =
                    revoked_at.ok_or_else(|| corrupt("sessions", "revoked_at vanished"))?;
                Ok((session_id(&id)?, timestamp("sessions", revoked_at)?))
            })
            .collect()
    }
}
