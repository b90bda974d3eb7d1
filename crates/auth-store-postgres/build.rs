//! Rebuilds the crate when a migration changes: `embed_migrations!` reads the migrations
//! directory at compile time, and Cargo does not watch it on its own.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/postgres");
}
