//! The auth service's domain: newtypes parsed once, entities, policies, the ports it needs
//! from the outside world, and its use cases as one service generic over those ports.
//!
//! Pure: no I/O, no web framework, no database or cache client. Time and randomness come in
//! through ports, so every policy is tested without sleeping.
#![forbid(unsafe_code)]

pub mod error;
pub mod events;
pub mod model;
pub mod monitoring;
pub mod policy;
pub mod ports;
pub mod service;
pub mod types;

pub use error::{AuthError, FieldErrors};
pub use events::{ClientContext, Event, EventSink};
pub use service::{Action, Adapters, AuthService, Ports};
