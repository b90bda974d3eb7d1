//! The auth service over HTTP: configuration, wiring, routes, extractors, the single
//! error mapping to problem+json, and middleware.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cache;
pub mod cli;
pub mod config;
pub mod cors;
pub mod dto;
pub mod dto_mfa;
pub mod error;
pub mod events;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod outbox;
pub mod passkeys;
pub mod ratelimit;
pub mod revocations;
pub mod routes;
pub mod schema;
pub mod secrets;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod traces;
