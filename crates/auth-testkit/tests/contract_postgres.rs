//! The store contract against PostgreSQL: a fresh database per case, cloned from a migrated
//! template and dropped after the store. The server is `TEST_DATABASE_URL` (see
//! `auth_store_postgres::test_support`); when it is unreachable every case is skipped
//! after a loud line, except under CI, where they fail.

use auth_store_postgres::PgStore;
use auth_store_postgres::test_support::{TestDatabase, fresh_database};
use auth_testkit::contract::Fixture;

async fn postgres() -> Option<Fixture<PgStore, TestDatabase>> {
    let database = fresh_database().await?;
    let store = database.store().await;
    Some(Fixture::with_guard(store, database))
}

auth_testkit::store_contract_tests!(postgres().await);
