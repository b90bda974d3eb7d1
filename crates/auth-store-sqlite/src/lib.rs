//! Embedded storage adapter: the domain's [`Store`](auth_domain::ports::Store) on SQLite,
//! through Diesel with diesel-async's `SyncConnectionWrapper` and its deadpool pool
//! (libsqlite3 bundled).
//!
//! - [`SqliteStore::open`] creates the file (mode 0600), applies the embedded
//!   [`MIGRATIONS`] and builds the pool; [`migrate`] does the first two for a CLI.
//! - Every connection runs in WAL mode with foreign keys on and a busy timeout;
//!   multi-statement writes take the write lock up front (`BEGIN IMMEDIATE`).
//! - Races are decided by the database: unique indexes for usernames and emails,
//!   conditional updates for refresh-token rotation and one-time tokens, and the write
//!   lock for outbox claims.
#![forbid(unsafe_code)]

mod error;
mod mfa;
mod models;
mod one_time;
mod outbox;
mod pool;
mod schema;
mod sessions;
mod users;
mod writes;

pub use pool::{MIGRATIONS, SqliteStore, migrate};
