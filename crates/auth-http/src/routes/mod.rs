//! One module per resource.

pub mod auth;
pub mod system;
pub mod users;
