//! frameloop: a single-threaded event-loop reactor, written by hand on `mio`.
//!
//! One thread and one `mio::Poll` serve a listener and thousands of TCP
//! connections (and, optionally, a UDP socket). Each connection's byte stream
//! is cut into frames by a 4-byte big-endian length prefix, and each frame
//! goes to a [`Handler`], the extension point, whose replies are written back
//! without blocking. Clients can be made to prove they know a shared key
//! (HMAC-SHA256) before the handler sees a byte from them. For more cores,
//! a [`Server`] runs several such loops side by side, sharing nothing.
//!
//! It is the production version of a course chapter on Python sockets: the
//! busy loop over `setblocking(False)` sockets becomes readiness-based `poll`
//! ([`reactor`]), the "sticky packet" fix becomes [`frame`], `hmac` client
//! checks become [`auth`], and `socketserver`'s handler classes become
//! [`Handler`]. Read the [`architecture`] page for the map of the code, the
//! life of one frame, and the rules the loop keeps.
//!
//! ```
//! use frameloop::{Client, Config, Ctx, Handler};
//!
//! /// Replies to every frame with its length, as text.
//! struct Length;
//!
//! impl Handler for Length {
//!     type Conn = ();
//!     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
//!         ctx.send(payload.len().to_string().as_bytes());
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = frameloop::spawn(Config::loopback(), Length)?;
//!     let mut client = Client::connect(server.addr())?;
//!     assert_eq!(client.request(b"hello")?, b"5");
//!     server.stop()?;
//!     Ok(())
//! }
//! ```
//!
//! Platform: Linux. The loop relies on epoll's edge-triggered semantics as
//! mio exposes them (a short read means the socket is drained), and on
//! Linux's `SO_REUSEPORT` to spread connections over several reactors.
//!
//! Cargo features: `cli` (on by default) adds the `frameloop` command, the
//! [`cli`] module (your own binary with every `serve` flag) and the load
//! generator. A handler author who wants the library alone depends on
//! `frameloop` with `default-features = false`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
#[cfg(feature = "cli")]
pub mod bench;
mod chat;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod config;
pub mod connection;
pub mod error;
pub mod frame;
pub mod handler;
pub mod mailbox;
pub mod reactor;
pub mod server;
pub mod stats;
pub mod timer;
pub mod trace;

#[doc = include_str!("../ARCHITECTURE.md")]
pub mod architecture {}

/// The README's Rust snippets, compiled (and run where they can be) as
/// doctests, so that they cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use auth::Key;
pub use chat::{Chat, ChatRoom};
pub use client::Client;
pub use config::{Codec, Config};
pub use connection::ConnId;
pub use error::Error;
pub use handler::{Ctx, DatagramCtx, Echo, Handler, LoopCtx, Upper};
pub use mailbox::{Mailbox, PostError, Refused};
pub use server::{RunningServer, Server, ServerHandle, spawn};
pub use stats::{CloseReason, Stats};
pub use timer::TimerId;
