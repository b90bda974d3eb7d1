//! The offline commands of the binary: `keys generate` (a new JWT signing key pair) and
//! `config check` (the configuration `serve` would load, secrets masked, and every problem
//! that can be found without connecting anywhere).

mod config;
mod keys;

pub use config::{ConfigCommand, ConfigReport, check_config, config, render};
pub use keys::{GenerateArgs, KeyAlg, KeysCommand, keys, write_key_pair};
