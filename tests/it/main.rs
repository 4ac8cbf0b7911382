//! The integration tests, as one binary (one link, one process): each module
//! is grouped by what it proves. `tests/alloc.rs` stays a binary of its own
//! because it installs a counting global allocator, and `tests/isolated`
//! because its tests measure the whole process or take timings.

mod common;

mod auth;
mod bench;
mod bench_numbers;
mod chat;
mod cli;
mod closing;
mod examples;
mod limits;
mod memory;
mod notes_servers;
mod observe;
mod process;
mod python_clients;
mod reactors;
mod server;
mod timers;
mod udp;
mod udp_auth;
