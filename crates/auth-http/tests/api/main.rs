//! HTTP tests: the real app on port 0, a fresh SQLite file per test, one scenario each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod cli;
mod errors;
mod helpers;
mod instances;
mod lifecycle;
mod login;
mod mail;
mod observability;
mod openapi;
mod outage;
mod outbox_crash;
mod pgbouncer;
mod postgres_tls;
mod privacy;
mod proxy;
mod redis_cluster;
mod redis_tls;
mod registration;
mod replicas;
mod revocation_cache;
mod security;
mod smtp;
mod system;
mod tokens;
