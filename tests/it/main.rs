//! The integration tests, as one binary (one link, one process): each module
//! is grouped by what it proves. `tests/alloc.rs` stays a binary of its own
//! because it installs a counting global allocator.

mod common;

mod auth;
mod bench;
mod chat;
mod cli;
mod decoder_props;
mod examples;
mod limits;
mod notes_servers;
mod process;
mod python_clients;
mod server;
mod soak;
mod udp;
