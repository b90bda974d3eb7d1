//! The contract of [`Cache`](auth_domain::ports::Cache): the access-token revocation list
//! ([`revocations`], and [`warming`] it again), the rate limiter ([`rate`]), the lockout
//! attempt counters ([`attempts`]), short-lived values ([`ephemeral`]) and [`health`]. Every case uses fresh ids and keys, so a
//! cache shared with other tests does no harm. Revocations are given `until`s a quarter of an hour after the
//! real current time: an in-process cache may judge them against the system clock.

pub mod attempts;
pub mod ephemeral;
pub mod health;
pub mod rate;
pub mod revocations;
pub mod warming;
