//! Small blocking clients: one TCP connection, one frame at a time; or UDP,
//! one datagram at a time.
//!
//! This module owns the client side of the wire format and of both
//! authentication protocols, for the command line, the tests and the
//! examples. It uses plain blocking `std::net` sockets on purpose: it is the
//! simplest correct peer, the Rust twin of the notes' Python clients. Every
//! wait is bounded (a read timeout, 5 s by default), and when a server
//! behaves as a keyed server would to a keyless client (or the reverse), the
//! error says so. It never runs inside the reactor (the load generator has
//! its own non-blocking client).

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use crate::auth::{self, Key, datagram};
use crate::config::{CHALLENGE_LEN, MAX_DATAGRAM};
use crate::error::Error;
use crate::frame::{self, DEFAULT_MAX_FRAME, FrameTooLarge};

/// How long a client waits for a reply (or a challenge) unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A blocking connection to a frameloop server.
///
/// # Examples
///
/// ```
/// use frameloop::{Client, Config, Upper};
///
/// let server = frameloop::spawn(Config::loopback(), Upper)?;
/// let mut client = Client::connect(server.addr())?;
/// assert_eq!(client.request(b"shout")?, b"SHOUT");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    /// A key was used: an EOF before the first reply means it was refused.
    keyed: bool,
    /// No reply has come yet (the first one tells the most about keys).
    first_reply: bool,
    /// Largest reply accepted.
    max_frame: usize,
}

impl Client {
    /// Connects to a server without authentication. `addr` may be a host
    /// name (`localhost:9000`): it is resolved once, each address tried in turn.
    pub fn connect(addr: impl ToSocketAddrs + std::fmt::Display) -> Result<Client, Error> {
        Client::connect_with(addr, None, DEFAULT_TIMEOUT)
    }

    /// Connects and answers the server's challenge with HMAC-SHA256(key, c).
    pub fn connect_with_key(
        addr: impl ToSocketAddrs + std::fmt::Display,
        key: &Key,
    ) -> Result<Client, Error> {
        Client::connect_with(addr, Some(key), DEFAULT_TIMEOUT)
    }

    /// Connects, authenticating with `key` if given; `timeout` bounds the
    /// connect, the wait for the challenge, and each later read.
    pub fn connect_with(
        addr: impl ToSocketAddrs + std::fmt::Display,
        key: Option<&Key>,
        timeout: Duration,
    ) -> Result<Client, Error> {
        let (mut stream, peer) = connect_any(&addr, timeout)?;
        let setup = |e: io::Error| Error::Connect(peer, e);
        stream.set_nodelay(true).map_err(setup)?;
        stream.set_read_timeout(Some(timeout)).map_err(setup)?;
        if let Some(key) = key {
            auth::answer_challenge(&mut stream, key.as_bytes()).map_err(|e| match e.kind() {
                // A server without a key sends no challenge: it times out.
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    Error::NoChallenge(peer, timeout)
                }
                _ => Error::AuthRejected(peer),
            })?;
        }
        Ok(Client {
            stream,
            peer,
            keyed: key.is_some(),
            first_reply: true,
            max_frame: DEFAULT_MAX_FRAME,
        })
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Sends one frame.
    pub fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        frame::write_frame(&mut self.stream, payload).map_err(|e| self.explain(e, 0))
    }

    /// Receives one frame (waiting at most the read timeout).
    pub fn recv(&mut self) -> io::Result<Vec<u8>> {
        let mut counted = Counted {
            inner: &mut self.stream,
            bytes: 0,
        };
        let result = frame::read_frame(&mut counted, self.max_frame);
        let received = counted.bytes;
        match result {
            Ok(payload) => {
                self.first_reply = false;
                Ok(payload)
            }
            Err(e) => Err(self.explain(e, received)),
        }
    }

    /// Sends one frame and waits for one reply.
    pub fn request(&mut self, payload: &[u8]) -> io::Result<Vec<u8>> {
        self.send(payload)?;
        self.recv()
    }

    /// Bounds how long `recv` waits (`None`: forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// Replies larger than this are refused as malformed (default 1 MiB).
    pub fn set_max_frame(&mut self, max: usize) {
        self.max_frame = max;
    }

    /// The underlying socket (to half-close it, say).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Turns what a failure looks like into what it most likely means.
    /// `received`: bytes of the failed reply that did arrive.
    fn explain(&self, e: io::Error, received: usize) -> io::Error {
        let closed = matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
        );
        let timed_out = matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        );
        let garbled = e
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<FrameTooLarge>().is_some());
        let message = if self.first_reply && self.keyed && closed {
            "server closed the connection during authentication: wrong key?".to_string()
        } else if self.first_reply
            && !self.keyed
            && (garbled || (closed && received == CHALLENGE_LEN))
        {
            // A keyed server's first 32 bytes are a challenge, not a frame.
            format!(
                "the server's first bytes are not a reply ({}): it probably requires \
                 a key (--key-file)",
                if garbled {
                    e.to_string()
                } else {
                    format!("{received} bytes, then closed")
                }
            )
        } else if timed_out {
            "no reply within the timeout (--timeout)".to_string()
        } else {
            return e;
        };
        io::Error::new(e.kind(), message)
    }
}

/// Resolves `addr` once and connects to the first address that answers.
fn connect_any(
    addr: &(impl ToSocketAddrs + std::fmt::Display),
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), Error> {
    let candidates = resolve(addr)?;
    let mut last = None;
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => return Ok((stream, candidate)),
            Err(e) => last = Some((candidate, e)),
        }
    }
    let (candidate, e) = last.unwrap_or_else(|| unreachable!("resolve returns an address"));
    Err(Error::Connect(candidate, e))
}

/// Every address `addr` names; at least one.
pub fn resolve(addr: &(impl ToSocketAddrs + std::fmt::Display)) -> Result<Vec<SocketAddr>, Error> {
    let found: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| Error::Resolve(addr.to_string(), e))?
        .collect();
    if found.is_empty() {
        return Err(Error::Resolve(
            addr.to_string(),
            io::Error::new(io::ErrorKind::NotFound, "no address"),
        ));
    }
    Ok(found)
}

/// Counts the bytes read through it.
struct Counted<'a, R> {
    inner: &'a mut R,
    bytes: usize,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n;
        Ok(n)
    }
}

/// A UDP client: one datagram out, one back. With a key, each request is
/// sealed and each reply checked ([`crate::auth::datagram`]).
///
/// It binds the unspecified address of the server's family (`0.0.0.0:0` or
/// `[::]:0`), so it reaches a server on any host, loopback included.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    server: SocketAddr,
    key: Option<Key>,
    timeout: Duration,
}

impl UdpClient {
    /// A client for the server at `addr` (resolved once).
    pub fn connect(
        addr: impl ToSocketAddrs + std::fmt::Display,
        key: Option<Key>,
        timeout: Duration,
    ) -> Result<UdpClient, Error> {
        let server = resolve(&addr)?[0];
        let any: SocketAddr = match server {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(any).map_err(|e| Error::Connect(server, e))?;
        Ok(UdpClient {
            socket,
            server,
            key,
            timeout,
        })
    }

    /// The address the client sends from.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends `payload` as one datagram and returns the reply's payload.
    pub fn request(&self, payload: &[u8]) -> io::Result<Vec<u8>> {
        let (datagram, nonce) = match &self.key {
            Some(key) => {
                let (sealed, nonce) = datagram::seal_request(key, payload)?;
                (sealed, Some(nonce))
            }
            None => (payload.to_vec(), None),
        };
        self.socket.send_to(&datagram, self.server)?;
        // A timeout too far to add to the clock is as good as none.
        let deadline = Instant::now().checked_add(self.timeout);
        let mut buf = vec![0u8; MAX_DATAGRAM + datagram::OVERHEAD];
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Err(self.no_reply());
            }
            self.socket.set_read_timeout(left)?;
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(received) => received,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(self.no_reply());
                }
                Err(e) => return Err(e),
            };
            if from != self.server {
                continue; // not the server's: ignore
            }
            let reply = &buf[..n];
            let (Some(key), Some(nonce)) = (&self.key, nonce) else {
                return Ok(reply.to_vec());
            };
            return match datagram::open_reply(key, reply, &nonce) {
                Ok(payload) => Ok(payload.to_vec()),
                Err(datagram::Rejected::WrongNonce) => continue, // an older reply
                Err(_) if reply == datagram.as_slice() => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server echoed the sealed datagram unchanged: it runs without \
                     --key-file (drop --key-file)",
                )),
                Err(why) => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the reply failed authentication ({why}): wrong key?"),
                )),
            };
        }
    }

    fn no_reply(&self) -> io::Error {
        let hint = match self.key {
            Some(_) => "wrong key, or nothing listening?",
            None => "the server may require --key-file, or nothing is listening",
        };
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no reply within {:?} ({hint})", self.timeout),
        )
    }
}
