//! frameloop: a single-threaded event-loop reactor, written by hand on `mio`.
//!
//! One thread and one `mio::Poll` serve a listener and thousands of TCP
//! connections (and, optionally, a UDP socket). Each connection's byte stream
//! is cut into frames by a 4-byte big-endian length prefix, and each frame
//! goes to a [`Handler`], the extension point, whose replies are written back
//! without blocking. Clients can be made to prove they know a shared key
//! (HMAC-SHA256 challenge-response) before the handler sees them.
//!
//! It is the production version of a course chapter on Python sockets: the
//! busy loop over `setblocking(False)` sockets becomes readiness-based `poll`,
//! the "sticky packet" fix becomes [`frame`], `hmac` client checks become
//! [`auth`], and `socketserver`'s handler classes become [`Handler`].
//!
//! ```no_run
//! use frameloop::{Client, Config, Ctx, Handler};
//!
//! /// Replies to every frame with its length, as text.
//! struct Length;
//!
//! impl Handler for Length {
//!     fn on_frame(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]) {
//!         ctx.send(payload.len().to_string().as_bytes());
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = Config { addr: "127.0.0.1:0".parse()?, ..Config::default() };
//!     let server = frameloop::spawn(config, Length)?;
//!     let mut client = Client::connect(server.addr())?;
//!     assert_eq!(client.request(b"hello")?, b"5");
//!     server.stop()?;
//!     Ok(())
//! }
//! ```
//!
//! Read `ARCHITECTURE.md` for the map of the code and the life of one frame.

pub mod auth;
#[cfg(feature = "cli")]
pub mod bench;
mod chat;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod config;
mod connection;
pub mod error;
pub mod frame;
mod handler;
mod reactor;
mod stats;
mod timer;

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

pub use chat::Chat;
pub use client::Client;
pub use config::{Codec, Config};
pub use connection::ConnId;
pub use error::Error;
pub use handler::{Ctx, Echo, Handler, Upper};
pub use reactor::{Server, ServerHandle};
pub use stats::{CloseReason, Stats};

/// A server running on a thread of its own (tests, benchmarks, embedding).
pub struct RunningServer {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<io::Result<Stats>>>,
}

/// Binds a server on the calling thread (so bind errors come back here), then
/// runs it on a new thread.
pub fn spawn<H: Handler + Send + 'static>(
    config: Config,
    handler: H,
) -> Result<RunningServer, Error> {
    let server = Server::bind(config, handler)?;
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::Builder::new()
        .name("frameloop".into())
        .spawn(move || server.run())?;
    Ok(RunningServer {
        addr,
        handle,
        thread: Some(thread),
    })
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its handle: counters, shutdown.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Shuts it down gracefully and waits; returns the final counters.
    pub fn stop(mut self) -> io::Result<Stats> {
        self.handle.shutdown();
        self.join()
    }

    /// Waits for the loop to end (after a shutdown from elsewhere).
    pub fn join(&mut self) -> io::Result<Stats> {
        match self.thread.take() {
            None => Ok(self.handle.stats()),
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the server thread panicked"))),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.handle.shutdown();
            let _ = self.join();
        }
    }
}
