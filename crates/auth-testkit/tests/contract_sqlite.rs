//! The store contract against SQLite: a fresh database file in a throwaway directory per
//! case (the directory lives as long as the store).

use auth_store_sqlite::SqliteStore;
use auth_testkit::contract::Fixture;
use tempfile::TempDir;

async fn sqlite() -> Option<Fixture<SqliteStore, TempDir>> {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("temporary directory: {err}"));
    let store = SqliteStore::open(&dir.path().join("auth.db"), 4)
        .await
        .unwrap_or_else(|err| panic!("sqlite store: {err:?}"));
    Some(Fixture::with_guard(store, dir))
}

auth_testkit::store_contract_tests!(sqlite().await);
