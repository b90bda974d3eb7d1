//! One module per resource.

pub mod auth;
pub mod mfa;
pub mod system;
pub mod users;
