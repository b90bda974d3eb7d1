//! Network storage adapter: the domain's [`Store`](auth_domain::ports::Store) on
//! PostgreSQL, through Diesel and diesel-async (tokio-postgres underneath, no libpq) with
//! a deadpool pool.
//!
//! - [`migrate`] applies the embedded [`MIGRATIONS`] under an advisory lock (safe when
//!   several instances start at once); [`PgStore::connect`] builds the pool and checks one
//!   connection.
//! - Races are decided by the database: unique indexes for usernames and emails,
//!   conditional updates for refresh-token rotation and one-time tokens, row locks
//!   skipped by concurrent outbox claims (`FOR UPDATE SKIP LOCKED`).
//! - Failures a retry may cure (server down or restarting, timeouts, pool exhausted) are
//!   [`PortError::Unavailable`](auth_domain::ports::PortError::Unavailable); the pool
//!   drops dead connections and recovers by itself when the server is back.
//! - With the `test-support` feature, [`test_support`] gives throw-away databases.
#![forbid(unsafe_code)]

mod error;
mod mfa;
mod migrate;
mod models;
mod one_time;
mod outbox;
mod pool;
mod replicas;
mod schema;
mod sessions;
#[cfg(feature = "test-support")]
pub mod test_pgbouncer;
#[cfg(feature = "test-support")]
pub mod test_replica;
#[cfg(feature = "test-support")]
pub mod test_support;
#[cfg(feature = "test-support")]
pub mod test_tls;
pub mod tls;
pub mod url;
mod users;
mod writes;

pub use migrate::{MIGRATIONS, migrate};
pub use pool::{PgOptions, PgStore};
pub use replicas::{PrimaryReads, ReplicaStatus};
