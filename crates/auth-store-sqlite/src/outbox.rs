//! [`OutboxStore`] on SQLite: the durable mail outbox. One writer at a time (`BEGIN
//! IMMEDIATE`) is what keeps two claims from taking the same mail.

use auth_domain::model::{OutboxMail, OutboxStats, Outgoing};
use auth_domain::ports::{OutboxStore, PortError};
use auth_domain::types::Timestamp;
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use uuid::Uuid;

use auth_store_core::columns::{count, lease_end, stored_attempts, touched};

use crate::models::{OutboxRow, OutgoingRows, millis, readable, timestamp};
use crate::pool::SqliteStore;
use crate::schema::outbox;

/// Most ids one update of a claim binds (SQLite allows 32766 parameters per statement).
const CLAIM_CHUNK: usize = 500;

impl OutboxStore for SqliteStore {
    async fn enqueue_mail(&self, mail: &Outgoing) -> Result<(), PortError> {
        let rows = OutgoingRows::from_record(mail)?;
        self.run("enqueue_mail", move |conn| {
            conn.immediate_transaction(|conn| rows.insert(conn))
        })
        .await?;
        Ok(())
    }

    async fn claim_mail(
        &self,
        now: Timestamp,
        lease: chrono::TimeDelta,
        limit: u32,
    ) -> Result<Vec<OutboxMail>, PortError> {
        let until = lease_end(now, lease)?;
        let (now, until, limit) = (millis(now), millis(until), i64::from(limit));
        // Select, then update, inside one write transaction: `BEGIN IMMEDIATE` takes the
        // database's only write lock before the select, so no other claim runs between
        // the two and none can pick the same rows.
        let claimed: Vec<OutboxRow> = self
            .run("claim_mail", move |conn| {
                conn.immediate_transaction(|conn| {
                    let mut due: Vec<OutboxRow> = outbox::table
                        .filter(outbox::dead_at.is_null())
                        .filter(outbox::due_at.le(now))
                        // Ids are UUID v7: they break ties in creation order.
                        .order((outbox::due_at.asc(), outbox::id.asc()))
                        .limit(limit)
                        .select(OutboxRow::as_select())
                        .load(conn)?;
                    if due.is_empty() {
                        return Ok(due);
                    }
                    let ids: Vec<&str> = due.iter().map(|row| row.id.as_str()).collect();
                    // In chunks: SQLite limits the bind parameters of one statement.
                    for chunk in ids.chunks(CLAIM_CHUNK) {
                        diesel::update(outbox::table.filter(outbox::id.eq_any(chunk)))
                            .set((
                                outbox::attempts.eq(outbox::attempts + 1),
                                outbox::due_at.eq(until),
                                outbox::leased_until.eq(Some(until)),
                            ))
                            .execute(conn)?;
                    }
                    for row in &mut due {
                        row.attempts = row.attempts.saturating_add(1);
                        row.due_at = until;
                    }
                    Ok(due)
                })
            })
            .await?;
        Ok(readable(claimed))
    }

    async fn mail_sent(&self, id: Uuid) -> Result<(), PortError> {
        let id = id.to_string();
        self.run("mail_sent", move |conn| {
            diesel::delete(outbox::table.find(id)).execute(conn)
        })
        .await?;
        Ok(())
    }

    async fn mail_retry(
        &self,
        id: Uuid,
        attempts: u32,
        retry_at: Timestamp,
    ) -> Result<bool, PortError> {
        let Some(attempts) = stored_attempts(attempts) else {
            return Ok(false);
        };
        let (id, retry_at) = (id.to_string(), millis(retry_at));
        let changed = self
            .run("mail_retry", move |conn| {
                diesel::update(fenced(&id, attempts))
                    .set((
                        outbox::due_at.eq(retry_at),
                        outbox::leased_until.eq(None::<i64>),
                    ))
                    .execute(conn)
            })
            .await?;
        Ok(changed > 0)
    }

    async fn mail_dead(&self, id: Uuid, attempts: u32, now: Timestamp) -> Result<bool, PortError> {
        let Some(attempts) = stored_attempts(attempts) else {
            return Ok(false);
        };
        let (id, now) = (id.to_string(), millis(now));
        // The payload (recipient, name, link) is erased at once; what is left tells
        // operators what failed and when. Dead already, it is left as it is: the first
        // time of death stays.
        let changed = self
            .run("mail_dead", move |conn| {
                diesel::update(fenced(&id, attempts))
                    .set((
                        outbox::dead_at.eq(Some(now)),
                        outbox::payload.eq(None::<Vec<u8>>),
                        outbox::leased_until.eq(None::<i64>),
                    ))
                    .execute(conn)
            })
            .await?;
        Ok(changed > 0)
    }

    async fn mail_release(
        &self,
        id: Uuid,
        attempts: u32,
        now: Timestamp,
    ) -> Result<bool, PortError> {
        // A claim counts at least one attempt: with none, there is no claim to give back.
        let Some(attempts) = stored_attempts(attempts).filter(|&n| n > 0) else {
            return Ok(false);
        };
        let (id, now) = (id.to_string(), millis(now));
        let changed = self
            .run("mail_release", move |conn| {
                diesel::update(fenced(&id, attempts))
                    .set((
                        outbox::due_at.eq(now),
                        outbox::attempts.eq(attempts - 1),
                        outbox::leased_until.eq(None::<i64>),
                    ))
                    .execute(conn)
            })
            .await?;
        Ok(changed > 0)
    }

    async fn renew_mail_leases(
        &self,
        claims: &[(Uuid, u32)],
        now: Timestamp,
        lease: chrono::TimeDelta,
    ) -> Result<Vec<Uuid>, PortError> {
        let until = lease_end(now, lease)?;
        let until = millis(until);
        let claims: Vec<(Uuid, i32)> = claims
            .iter()
            .filter_map(|(id, attempts)| Some((*id, stored_attempts(*attempts)?)))
            .collect();
        // One write transaction for the batch (a few mails): one fenced update each.
        self.run("renew_mail_leases", move |conn| {
            conn.immediate_transaction(|conn| {
                let mut renewed = Vec::with_capacity(claims.len());
                for (id, attempts) in &claims {
                    let changed = diesel::update(
                        fenced(&id.to_string(), *attempts)
                            .filter(outbox::leased_until.is_not_null()),
                    )
                    .set((
                        outbox::due_at.eq(until),
                        outbox::leased_until.eq(Some(until)),
                    ))
                    .execute(conn)?;
                    if changed > 0 {
                        renewed.push(*id);
                    }
                }
                Ok(renewed)
            })
        })
        .await
        .map_err(Into::into)
    }

    async fn release_all_leases(&self, now: Timestamp) -> Result<u64, PortError> {
        let now = millis(now);
        let released = self
            .run("release_all_leases", move |conn| {
                diesel::update(
                    outbox::table
                        .filter(outbox::dead_at.is_null())
                        .filter(outbox::leased_until.is_not_null()),
                )
                .set((outbox::due_at.eq(now), outbox::leased_until.eq(None::<i64>)))
                .execute(conn)
            })
            .await?;
        touched(released)
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, PortError> {
        // One read transaction: both counts come from one snapshot.
        let ((queued, oldest), dead): ((i64, Option<i64>), i64) = self
            .run("outbox_stats", |conn| {
                conn.transaction(|conn| {
                    let queued = outbox::table
                        .filter(outbox::dead_at.is_null())
                        .select((count_star(), min(outbox::created_at)))
                        .first(conn)?;
                    let dead = outbox::table
                        .filter(outbox::dead_at.is_not_null())
                        .count()
                        .get_result(conn)?;
                    Ok((queued, dead))
                })
            })
            .await?;
        Ok(OutboxStats {
            queued: count(queued)?,
            oldest_queued_at: oldest.map(|ms| timestamp("outbox", ms)).transpose()?,
            dead: count(dead)?,
        })
    }
}

/// The mail of one id.
type ById<'a> = diesel::dsl::Find<outbox::table, &'a str>;
/// [`fenced`]: one queued mail at given attempts.
type Fenced<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<ById<'a>, diesel::dsl::Eq<outbox::attempts, i32>>,
    diesel::dsl::IsNull<outbox::dead_at>,
>;

/// The queued mail `id`, while its attempts are still `attempts`: the fence of
/// `mail_retry`, `mail_dead` and `mail_release` against a worker whose lease ran out.
fn fenced<'a>(id: &'a str, attempts: i32) -> Fenced<'a> {
    outbox::table
        .find(id)
        .filter(outbox::attempts.eq(attempts))
        .filter(outbox::dead_at.is_null())
}
