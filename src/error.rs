//! Errors a person can act on.
//!
//! This module owns the one error type of the library's set-up paths (binding,
//! reading a key file) and the wording of each message. It never decides what
//! to do about an error: the reactor logs per-connection faults and goes on,
//! and the CLI prints these messages as one line and exits with code 2.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a server (or client) could not be set up.
#[derive(Debug)]
pub enum Error {
    /// The listening address is taken by another process.
    AddrInUse(SocketAddr),
    /// The OS refused the bind (ports below 1024 need root).
    PermissionDenied(SocketAddr),
    /// Any other failure to bind or register the listening sockets.
    Bind(SocketAddr, io::Error),
    /// The key file could not be read.
    KeyFile(PathBuf, io::Error),
    /// The key is shorter than the 32-byte HMAC-SHA256 output.
    KeyTooShort(PathBuf, usize),
    /// Connecting to a server failed.
    Connect(SocketAddr, io::Error),
    /// The server closed the connection before the handshake completed.
    AuthRejected(SocketAddr),
    /// Creating the poller or another OS resource failed.
    Io(io::Error),
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AddrInUse(a) => write!(f, "cannot listen on {a}: address already in use"),
            Error::PermissionDenied(a) => write!(
                f,
                "cannot listen on {a}: permission denied (ports below 1024 need root)"
            ),
            Error::Bind(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Error::KeyFile(p, e) => write!(f, "cannot read key file {}: {e}", p.display()),
            Error::KeyTooShort(p, n) => write!(
                f,
                "key file {} holds {n} bytes; an HMAC-SHA256 key needs at least 32 \
                 (make one with `frameloop keygen > key`)",
                p.display()
            ),
            Error::Connect(a, e) => write!(f, "cannot connect to {a}: {e}"),
            Error::AuthRejected(a) => write!(
                f,
                "server {a} closed the connection during authentication: wrong key?"
            ),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind(_, e) | Error::KeyFile(_, e) | Error::Connect(_, e) | Error::Io(e) => {
                Some(e)
            }
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}
