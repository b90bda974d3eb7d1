//! The SMTP mailer against a real SMTP server (mailin-embedded) started in each test.
//! One test binary for the crate keeps link times down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth_and_tls;
mod connection;
mod delivery;
mod failures;
mod templates;
