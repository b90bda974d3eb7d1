//! [`OutboxStore`] on PostgreSQL: the durable mail outbox, claimed by any number of
//! workers in any number of instances at once (`FOR UPDATE SKIP LOCKED`).

use auth_domain::model::{OutboxMail, OutboxStats, Outgoing};
use auth_domain::ports::{OutboxStore, PortError};
use auth_domain::types::Timestamp;
use diesel::dsl::{count, min};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel_async::methods::LoadQuery;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use auth_store_core::columns::{count as to_count, lease_end, stored_attempts, touched};

use crate::models::{OutboxRow, OutgoingRows, readable};
use crate::pool::PgStore;
use crate::schema::outbox;

impl OutboxStore for PgStore {
    async fn enqueue_mail(&self, mail: &Outgoing) -> Result<(), PortError> {
        let rows = OutgoingRows::from_record(mail)?;
        self.run("enqueue_mail", move |conn| {
            Box::pin(async move { conn.transaction(async |conn| rows.insert(conn).await).await })
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
        let mut claimed: Vec<OutboxRow> = self
            .run("claim_mail", move |conn| {
                Box::pin(async move { claim_statement(now, until, limit).get_results(conn).await })
            })
            .await?;
        // RETURNING follows no order: oldest mail first, as queued.
        claimed.sort_by_key(|row| (row.created_at, row.id));
        Ok(readable(claimed))
    }

    async fn mail_sent(&self, id: Uuid) -> Result<(), PortError> {
        self.run("mail_sent", move |conn| {
            Box::pin(async move { diesel::delete(outbox::table.find(id)).execute(conn).await })
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
        let changed = self
            .run("mail_retry", move |conn| {
                Box::pin(async move {
                    diesel::update(fenced(id, attempts))
                        .set((
                            outbox::due_at.eq(retry_at),
                            outbox::leased_until.eq(None::<Timestamp>),
                        ))
                        .execute(conn)
                        .await
                })
            })
            .await?;
        Ok(changed > 0)
    }

    async fn mail_dead(&self, id: Uuid, attempts: u32, now: Timestamp) -> Result<bool, PortError> {
        let Some(attempts) = stored_attempts(attempts) else {
            return Ok(false);
        };
        // The payload (recipient, name, link) is erased at once; what is left tells
        // operators what failed and when. Dead already, it is left as it is: the first
        // time of death stays.
        let changed = self
            .run("mail_dead", move |conn| {
                Box::pin(async move {
                    diesel::update(fenced(id, attempts))
                        .set((
                            outbox::dead_at.eq(Some(now)),
                            outbox::payload.eq(None::<Vec<u8>>),
                            outbox::leased_until.eq(None::<Timestamp>),
                        ))
                        .execute(conn)
                        .await
                })
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
        let changed = self
            .run("mail_release", move |conn| {
                Box::pin(async move {
                    diesel::update(fenced(id, attempts))
                        .set((
                            outbox::due_at.eq(now),
                            outbox::attempts.eq(attempts - 1),
                            outbox::leased_until.eq(None::<Timestamp>),
                        ))
                        .execute(conn)
                        .await
                })
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
        let claims: Vec<(Uuid, i32)> = claims
            .iter()
            .filter_map(|(id, attempts)| Some((*id, stored_attempts(*attempts)?)))
            .collect();
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        // One transaction for the batch (a few mails): one fenced update each.
        let renewed = self
            .run("renew_mail_leases", move |conn| {
                Box::pin(async move {
                    conn.transaction(async |conn| {
                        let mut renewed = Vec::with_capacity(claims.len());
                        for (id, attempts) in claims {
                            let changed = diesel::update(
                                fenced(id, attempts).filter(outbox::leased_until.is_not_null()),
                            )
                            .set((
                                outbox::due_at.eq(until),
                                outbox::leased_until.eq(Some(until)),
                            ))
                            .execute(conn)
                            .await?;
                            if changed > 0 {
                                renewed.push(id);
                            }
                        }
                        Ok::<_, diesel::result::Error>(renewed)
                    })
                    .await
                })
            })
            .await?;
        Ok(renewed)
    }

    async fn release_all_leases(&self, now: Timestamp) -> Result<u64, PortError> {
        let released = self
            .run("release_all_leases", move |conn| {
                Box::pin(async move {
                    diesel::update(
                        outbox::table
                            .filter(outbox::dead_at.is_null())
                            .filter(outbox::leased_until.is_not_null()),
                    )
                    .set((
                        outbox::due_at.eq(now),
                        outbox::leased_until.eq(None::<Timestamp>),
                    ))
                    .execute(conn)
                    .await
                })
            })
            .await?;
        touched(released)
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, PortError> {
        // One statement, so one snapshot:
        //   SELECT count(id) FILTER (WHERE dead_at IS NULL),
        //          min(created_at) FILTER (WHERE dead_at IS NULL),
        //          count(id) FILTER (WHERE dead_at IS NOT NULL) FROM outbox
        let (queued, oldest, dead): (i64, Option<Timestamp>, i64) = self
            .run("outbox_stats", |conn| {
                Box::pin(async move {
                    outbox::table
                        .select((
                            count(outbox::id).aggregate_filter(outbox::dead_at.is_null()),
                            min(outbox::created_at).aggregate_filter(outbox::dead_at.is_null()),
                            count(outbox::id).aggregate_filter(outbox::dead_at.is_not_null()),
                        ))
                        .get_result(conn)
                        .await
                })
            })
            .await?;
        Ok(OutboxStats {
            queued: to_count(queued)?,
            oldest_queued_at: oldest,
            dead: to_count(dead)?,
        })
    }
}

/// The claim, one statement:
///
/// ```sql
/// UPDATE outbox SET attempts = attempts + 1, due_at = $until
/// WHERE id IN (SELECT picked.id FROM outbox AS picked
///              WHERE picked.dead_at IS NULL AND picked.due_at <= $now
///              ORDER BY picked.due_at, picked.id LIMIT $limit FOR UPDATE SKIP LOCKED)
/// RETURNING ...
/// ```
///
/// (Diesel writes `id = ANY(SELECT ...)`, which PostgreSQL defines as the same thing as
/// `id IN (SELECT ...)`.) The sub-select locks what it picks and skips rows that a concurrent claim holds, so
/// claims never wait on each other nor return the same mail. A row that another claim has
/// just committed is re-checked against `due_at <= $now` on its new version and left out,
/// its due_at being in the future now. LIMIT counts rows after locking: skipped rows do not
/// shorten a batch while other due rows are free.
fn claim_statement(
    now: Timestamp,
    until: Timestamp,
    limit: u32,
) -> impl for<'q> LoadQuery<'q, AsyncPgConnection, OutboxRow> + QueryFragment<Pg> + Send + 'static {
    // The sub-select reads `outbox` under another name, so that its columns are not taken
    // for the outer statement's.
    let picked = diesel::alias!(outbox as picked);
    let due = picked
        .filter(picked.field(outbox::dead_at).is_null())
        .filter(picked.field(outbox::due_at).le(now))
        // Ids are UUID v7: they break ties in creation order.
        .order((
            picked.field(outbox::due_at).asc(),
            picked.field(outbox::id).asc(),
        ))
        .limit(i64::from(limit))
        .select(picked.field(outbox::id))
        .for_update()
        .skip_locked();
    diesel::update(outbox::table.filter(outbox::id.eq_any(due)))
        .set((
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::due_at.eq(until),
            outbox::leased_until.eq(Some(until)),
        ))
        .returning(OutboxRow::as_returning())
}

/// The mail of one id.
type ById = diesel::dsl::Find<outbox::table, Uuid>;
/// [`fenced`]: one queued mail at given attempts.
type Fenced = diesel::dsl::Filter<
    diesel::dsl::Filter<ById, diesel::dsl::Eq<outbox::attempts, i32>>,
    diesel::dsl::IsNull<outbox::dead_at>,
>;

/// The queued mail `id`, while its attempts are still `attempts`: the fence of
/// `mail_retry`, `mail_dead` and `mail_release` against a worker whose lease ran out.
fn fenced(id: Uuid, attempts: i32) -> Fenced {
    outbox::table
        .find(id)
        .filter(outbox::attempts.eq(attempts))
        .filter(outbox::dead_at.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim is the one statement the contract asks for: its sub-select picks due,
    /// live mails in due order and skips the rows other claims hold.
    #[test]
    fn a_claim_is_one_update_of_rows_picked_for_update_skip_locked() {
        let now = chrono::DateTime::UNIX_EPOCH;
        let sql = diesel::debug_query::<Pg, _>(&claim_statement(now, now, 3)).to_string();
        let expected = concat!(
            r#"UPDATE "outbox" SET "attempts" = ("outbox"."attempts" + $1), "due_at" = $2, "#,
            r#""leased_until" = $3 "#,
            r#"WHERE ("outbox"."id" = ANY(SELECT "picked"."id" FROM "outbox" AS "picked" "#,
            r#"WHERE (("picked"."dead_at" IS NULL) AND ("picked"."due_at" <= $4)) "#,
            r#"ORDER BY "picked"."due_at" ASC, "picked"."id" ASC LIMIT $5 "#,
            r#"FOR UPDATE SKIP LOCKED)) RETURNING"#,
        );
        assert!(sql.starts_with(expected), "{sql}");
    }
}
