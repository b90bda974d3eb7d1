//! Building the service from its configuration, and running the HTTP server.
//!
//! [`Application`] is the whole of it: built from the configuration, run until stopped.
//! Split by concern: [`wiring`] builds the state from the configuration, [`servers`] serves
//! it, [`lifecycle`] stops it, [`metrics`] keeps the process-wide recorder.

mod adapters;
mod app;
mod lifecycle;
mod metrics;
mod servers;
mod wiring;

pub use adapters::*;
pub use app::{Application, Overrides};
pub use lifecycle::*;
pub use metrics::*;
pub use servers::*;
pub use wiring::*;
