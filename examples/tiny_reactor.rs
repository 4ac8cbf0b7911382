//! The whole idea of frameloop in one file, to read before `src/`: the
//! notes' busy loop (`busy_loop.rs`), except that the thread sleeps in
//! `poll` until the kernel says which sockets are ready, and touches only
//! those. mio and slab only.
//!
//! ```sh
//! cargo run --release --example tiny_reactor -- --addr 127.0.0.1:9000
//! cargo run --release -- bench --addr 127.0.0.1:9000 --connections 1000
//! ```
//!
//! What to notice:
//! - One thread, one `poll`: idle, it sleeps (0% CPU, like `blocking.rs`);
//!   busy, each wake-up hands it only the sockets that have something, so a
//!   turn costs O(ready), not O(connected) as in the busy loop.
//! - A connection is a slab entry (a socket, two empty buffers, two flags),
//!   not a thread: an idle one costs the server well under a kilobyte.
//! - Frame reassembly: reads are arbitrary cuts of the byte stream, so the
//!   unfinished tail of a frame waits in `input` for the next read.
//! - Optimistic write: a reply is written at once; only what the kernel
//!   refuses waits in `output`, and only then does the connection ask for
//!   WRITABLE. Asking for it always would wake the loop for every socket
//!   with room in its send buffer, which is nearly all of them.
//! - mio is edge-triggered: an event says "something changed", once. So each
//!   event is read until `WouldBlock`, or bytes already there would never be
//!   announced again.
//!
//! What frameloop adds on top (see ARCHITECTURE.md and `src/reactor/`):
//! one read per connection per turn (here a client that never stops sending
//! starves the others), backpressure (here `output` grows without bound for
//! a client that sends and never reads), generations in tokens, timers,
//! handlers, authentication, limits, graceful shutdown, one loop per core.
//!
//! Wire format: a 4-byte big-endian length, then payload; each frame is
//! echoed back.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

/// The listener's token. Connections use their slab key, which never gets
/// this large.
const LISTENER: Token = Token(usize::MAX);

/// The largest payload accepted, as in `frameloop serve`.
const MAX_FRAME: usize = 1 << 20;

/// One connection: all the state a client costs when it is not a thread.
struct Conn {
    stream: TcpStream,
    /// Bytes read that do not yet make a whole frame.
    input: Vec<u8>,
    /// Replies the kernel has not taken yet.
    output: Vec<u8>,
    /// Registered for WRITABLE, which is true exactly while `output` is not empty.
    writable: bool,
    /// The client shut down its side: flush `output`, then close.
    eof: bool,
}

fn main() {
    let addr = addr_from_args();
    let mut listener = TcpListener::bind(addr).unwrap_or_else(|e| fail(&format!("{addr}: {e}")));
    let mut poll = Poll::new().unwrap_or_else(|e| fail(&e.to_string()));
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .unwrap_or_else(|e| fail(&e.to_string()));
    eprintln!("listening on {}", listener.local_addr().unwrap_or(addr));

    let mut conns: Slab<Conn> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // The only place this thread waits: until a socket is ready.
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            fail(&format!("poll: {e}"));
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => accept_all(&listener, &mut conns, poll.registry()),
                Token(key) => {
                    // A connection closed earlier in this batch has no entry;
                    // if its key was reused by a newcomer, the event is only
                    // a spurious wake-up for it (reads say `WouldBlock`).
                    let Some(conn) = conns.get_mut(key) else {
                        continue;
                    };
                    if !conn.on_ready(poll.registry(), Token(key), &mut buf) {
                        let mut conn = conns.remove(key);
                        let _ = poll.registry().deregister(&mut conn.stream);
                    }
                }
            }
        }
    }
}

/// Accepts until `WouldBlock`: one readiness event may stand for many clients.
fn accept_all(listener: &TcpListener, conns: &mut Slab<Conn>, registry: &Registry) {
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            // `WouldBlock`: nobody else is waiting. Anything else (out of
            // descriptors, say): try again when the next client knocks.
            Err(_) => return,
        };
        let _ = stream.set_nodelay(true);
        let entry = conns.vacant_entry();
        if registry
            .register(&mut stream, Token(entry.key()), Interest::READABLE)
            .is_ok()
        {
            entry.insert(Conn {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                writable: false,
                eof: false,
            });
        }
    }
}

impl Conn {
    /// Reads what is there, echoes every whole frame, writes what the kernel
    /// takes. False when the connection should close.
    fn on_ready(&mut self, registry: &Registry, token: Token, buf: &mut [u8]) -> bool {
        // Edge-triggered: read until `WouldBlock` (or the end of the stream).
        while !self.eof {
            match self.stream.read(buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        // Reassemble: move each whole frame (the reply is the same bytes) to
        // `output`; an unfinished one stays in `input`.
        let mut used = 0;
        while let Some(header) = self.input.get(used..used + 4) {
            let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if len > MAX_FRAME {
                return false;
            }
            let Some(frame) = self.input.get(used..used + 4 + len) else {
                break;
            };
            self.output.extend_from_slice(frame);
            used += 4 + len;
        }
        self.input.drain(..used);
        // Optimistic write: no need to wait for WRITABLE to try.
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(n) => drop(self.output.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        // Ask for WRITABLE only while the kernel has refused some output.
        let pending = !self.output.is_empty();
        if pending != self.writable {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if registry
                .reregister(&mut self.stream, token, interest)
                .is_err()
            {
                return false;
            }
            self.writable = pending;
        }
        // Stay open while the client may still send, or still has replies owed.
        !self.eof || pending
    }
}

/// `--addr HOST:PORT` (default 127.0.0.1:9000; port 0 picks a free port).
fn addr_from_args() -> SocketAddr {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match args.as_slice() {
        [] => "127.0.0.1:9000",
        [flag, addr] if flag == "--addr" => addr,
        _ => fail("usage: tiny_reactor [--addr HOST:PORT]"),
    };
    addr.parse()
        .unwrap_or_else(|_| fail(&format!("not an address: {addr:?} (want HOST:PORT)")))
}

/// One line on stderr, exit code 2: the server could not run.
fn fail(message: &str) -> ! {
    eprintln!("tiny_reactor: {message}");
    std::process::exit(2)
}
