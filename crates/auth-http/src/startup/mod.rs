//! Building the service from its configuration, and running the HTTP server.
//!
//! Split by concern: [`wiring`] builds the state from the configuration, [`servers`] serves
//! it, [`lifecycle`] stops it, [`metrics`] keeps the process-wide recorder.

mod lifecycle;
mod metrics;
mod servers;
mod wiring;

pub use lifecycle::*;
pub use metrics::*;
pub use servers::*;
pub use wiring::*;
