//! The store contract through a real PgBouncer in transaction mode (`pgbouncer=true`), with
//! two server connections shared by the store's five: each case gets a fresh database (as
//! `contract_postgres`) and a PgBouncer of its own in front of it. Skipped loudly where
//! PostgreSQL or pgbouncer is missing, except under CI, where they fail.

use auth_store_postgres::test_pgbouncer::PgBouncer;
use auth_store_postgres::test_support::{TestDatabase, fresh_database};
use auth_store_postgres::{PgOptions, PgStore};
use auth_testkit::contract::Fixture;

async fn through_pgbouncer() -> Option<Fixture<PgStore, (PgBouncer, TestDatabase)>> {
    let database = fresh_database().await?;
    let bouncer = PgBouncer::start(database.url(), 2)?;
    let options = PgOptions {
        pool_size: 5,
        ..PgOptions::default()
    };
    let store = match PgStore::connect(&bouncer.url(database.url()), options).await {
        Ok(store) => store,
        Err(err) => panic!(
            "cannot connect through PgBouncer: {err:?}\n{}",
            bouncer.log()
        ),
    };
    Some(Fixture::with_guard(store, (bouncer, database)))
}

auth_testkit::store_contract_tests!(through_pgbouncer().await);
