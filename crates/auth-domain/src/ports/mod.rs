//! The ports: what the domain needs from the outside world, with the contract every
//! adapter MUST keep. Adapters turn library errors into [`PortError`] (or a business
//! variant where the contract names one); they never panic on I/O.
//!
//! Async methods return `impl Future + Send` so a service generic over its ports runs on a
//! multi-threaded runtime; adapters implement them with plain `async fn`.

mod cache;
mod platform;
mod store;

pub use cache::*;
pub use platform::*;
pub use store::*;

use std::error::Error as StdError;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failure of an adapter that is not a business outcome.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The backing service cannot be reached or is overloaded: retrying later may work.
    #[error("dependency unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else: a bug, corrupt data, a broken invariant.
    #[error("unexpected adapter failure")]
    Unexpected(#[source] BoxError),
}

impl PortError {
    /// Wraps an error as [`PortError::Unexpected`].
    pub fn unexpected(err: impl Into<BoxError>) -> Self {
        Self::Unexpected(err.into())
    }

    /// Wraps an error as [`PortError::Unavailable`].
    pub fn unavailable(err: impl Into<BoxError>) -> Self {
        Self::Unavailable(err.into())
    }
}

/// Which unique value a new or changed account collided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The normalized username.
    Username,
    /// The email blind index.
    Email,
    /// A passkey's credential id.
    Credential,
}

/// Storage failures that the use cases handle.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is already used by another account.
    #[error("{0:?} already taken")]
    Taken(Taken),
    /// The row to change does not exist (any more).
    #[error("not found")]
    NotFound,
    /// A compare-and-set lost: the row changed since it was read (e.g. the password version
    /// moved on), so nothing was written.
    #[error("changed since read")]
    Stale,
    /// Any other failure.
    #[error(transparent)]
    Port(#[from] PortError),
}
