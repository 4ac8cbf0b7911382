//! A small blocking client: one connection, one frame at a time.
//!
//! This module owns the client side of the wire format and the handshake, for
//! the CLI, the tests and the examples. It uses plain blocking `std::net`
//! sockets on purpose: it is the simplest correct peer, the Rust twin of the
//! notes' Python clients. It never runs inside the reactor (the benchmark has
//! its own non-blocking client in `bench.rs`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a client waits for the server's challenge.
const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(5);

use crate::auth;
use crate::config::CHALLENGE_LEN;
use crate::error::Error;
use crate::frame::{self, HEADER_LEN};

/// A blocking connection to a frameloop server.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    /// After a handshake, until the first reply: an EOF then means the
    /// server refused the answer.
    unconfirmed_auth: bool,
}

impl Client {
    /// Connects to a server without authentication.
    pub fn connect(addr: SocketAddr) -> Result<Client, Error> {
        let stream = TcpStream::connect(addr).map_err(|e| Error::Connect(addr, e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::Connect(addr, e))?;
        Ok(Client {
            stream,
            unconfirmed_auth: false,
        })
    }

    /// Connects and answers the server's challenge with HMAC-SHA256(key, c).
    pub fn connect_with_key(addr: SocketAddr, key: &[u8]) -> Result<Client, Error> {
        let mut client = Client::connect(addr)?;
        let mut challenge = [0u8; CHALLENGE_LEN];
        // A server without a key sends no challenge: do not wait forever.
        let no_challenge = |e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Connect(
                addr,
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no authentication challenge within 5 s: does the server use --key-file?",
                ),
            ),
            _ => Error::AuthRejected(addr),
        };
        client
            .stream
            .set_read_timeout(Some(CHALLENGE_TIMEOUT))
            .map_err(|e| Error::Connect(addr, e))?;
        client
            .stream
            .read_exact(&mut challenge)
            .map_err(no_challenge)?;
        client
            .stream
            .set_read_timeout(None)
            .map_err(|e| Error::Connect(addr, e))?;
        client
            .stream
            .write_all(&auth::answer(key, &challenge))
            .map_err(|e| Error::Connect(addr, e))?;
        client.unconfirmed_auth = true;
        Ok(client)
    }

    /// Sends one frame.
    pub fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        // One write for header and payload: two would cost a packet each.
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        frame::encode_into(&mut frame, payload)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.stream.write_all(&frame).map_err(|e| self.explain(e))
    }

    /// Receives one frame. The payload buffer grows as bytes arrive, so a
    /// lying header cannot make the client allocate 4 GiB up front.
    pub fn recv(&mut self) -> io::Result<Vec<u8>> {
        let mut header = [0u8; HEADER_LEN];
        self.stream
            .read_exact(&mut header)
            .map_err(|e| self.explain(e))?;
        let len = u32::from_be_bytes(header) as u64;
        let mut payload = Vec::new();
        (&mut self.stream).take(len).read_to_end(&mut payload)?;
        if payload.len() as u64 != len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.unconfirmed_auth = false;
        Ok(payload)
    }

    /// Sends one frame and waits for one reply.
    pub fn request(&mut self, payload: &[u8]) -> io::Result<Vec<u8>> {
        self.send(payload)?;
        self.recv()
    }

    /// Bounds how long `recv` waits.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// The underlying socket (to half-close it, say).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Turns "connection closed" right after a handshake into what it means.
    fn explain(&self, e: io::Error) -> io::Error {
        let closed = matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
        );
        if self.unconfirmed_auth && closed {
            // The caller names the address; the cause is the key.
            io::Error::new(
                e.kind(),
                "server closed the connection during authentication: wrong key?",
            )
        } else {
            e
        }
    }
}
