//! Errors a person can act on.
//!
//! This module owns the error type of the library's set-up paths (checking
//! the configuration, binding, reading a key file, connecting a client) and
//! the wording of each message. It never decides what to do about an error:
//! the reactor logs per-connection faults and goes on, and the command line
//! prints these messages as one line and exits with code 2.
//!
//! As Rust errors should, a message never repeats its cause: the cause is
//! the error's `source()`, and `{:#}` (anyhow) or a loop over `source()`
//! prints the whole chain on one line.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;

/// Why a server (or client) could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value was refused by [`crate::Config::validate`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listening address is taken by another process.
    #[error("cannot listen on {0}: address already in use")]
    AddrInUse(SocketAddr),
    /// The OS refused the bind (ports below 1024 need root).
    #[error("cannot listen on {0}: permission denied (ports below 1024 need root)")]
    PermissionDenied(SocketAddr),
    /// Any other failure to bind or register the listening sockets.
    #[error("cannot listen on {0}")]
    Bind(SocketAddr, #[source] io::Error),
    /// The key file could not be read.
    #[error("cannot read key file {}", .0.display())]
    KeyFile(PathBuf, #[source] io::Error),
    /// The key is shorter than the 32-byte HMAC-SHA256 output.
    #[error(
        "{origin} holds {len} bytes; an HMAC-SHA256 key needs at least 32 \
         (make one with `frameloop keygen > key`)"
    )]
    KeyTooShort {
        /// Where the key came from ("key file PATH").
        origin: String,
        /// Its length.
        len: usize,
    },
    /// A host name did not resolve, or resolved to no address.
    #[error("cannot resolve {0}")]
    Resolve(String, #[source] io::Error),
    /// Connecting to a server failed.
    #[error("cannot connect to {0}")]
    Connect(SocketAddr, #[source] io::Error),
    /// The server closed the connection before the handshake completed.
    #[error("server {0} closed the connection during authentication: wrong key?")]
    AuthRejected(SocketAddr),
    /// The server sent no challenge: it does not use a key.
    #[error(
        "server {0} sent no authentication challenge within {1:?}: \
         it probably runs without --key-file"
    )]
    NoChallenge(SocketAddr, std::time::Duration),
    /// Creating the poller, a thread or another OS resource failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// Classifies a bind failure so the message names the real cause.
    pub(crate) fn bind(addr: SocketAddr, err: io::Error) -> Error {
        match err.kind() {
            io::ErrorKind::AddrInUse => Error::AddrInUse(addr),
            io::ErrorKind::PermissionDenied => Error::PermissionDenied(addr),
            _ => Error::Bind(addr, err),
        }
    }
}
