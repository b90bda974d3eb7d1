//! What the two storage adapters (`auth-store-sqlite`, `auth-store-postgres`) share, so
//! that it is written once:
//!
//! - [`error`]: a failed operation ([`DbError`]) and how a diesel error becomes the ports'
//!   [`PortError`](auth_domain::ports::PortError) or
//!   [`StoreError`](auth_domain::ports::StoreError). Each dialect says only what its
//!   server's errors mean ([`Dialect`]: which are transient, which unique index was hit).
//! - [`columns`]: how each dialect stores ids and times ([`Columns`]), and the value
//!   conversions every table needs (token hashes, kinds, counts, attempts).
//! - [`rows!`]: the row types of every table (second factors included) and their
//!   conversions to and from the domain's records, generated in each adapter for its
//!   backend and column types.
//!
//! The queries stay in the adapters: the dialects differ there (locking, `RETURNING`,
//! aggregate filters, blocking versus async connections), and the contract tests of
//! `auth-testkit`, which both adapters run, hold them to the same behaviour. Nothing
//! here logs an error it returns: the boundary logs it once (see docs/decisions/0010).
#![forbid(unsafe_code)]

pub mod columns;
pub mod error;
mod mail_rows;
mod mfa_rows;
mod rows;
mod span;

pub use columns::Columns;
pub use error::{DbError, Dialect, account_gone, corrupt};
pub use span::db_span;

/// Used by the code [`rows!`] generates.
#[doc(hidden)]
pub use tracing as __tracing;
