//! One TCP connection: its socket, its buffers, and where it is in its life.
//!
//! This module owns per-connection state and the socket operations on it:
//! writing replies (directly, or queued when the kernel pushes back),
//! flushing the queue, shutting the write side. Where a connection is in its
//! life is a type, `State`, changed only through the methods that name the
//! transitions:
//!
//! ```text
//!            accept
//!              |  (key set)         (no key)
//!              v                        |
//!        +-----------+  right answer    v        output over high-water
//!        | Handshake |---------------> Open ------------------------+
//!        +-----------+                 | ^ (Active)                 v
//!          | wrong/late answer         | |              Open (Paused: not read)
//!          v                           | +--- output down to low-water ---+
//!        closed at once                |
//!                 peer's EOF, handler close(), bad header, idle or frame
//!                 timeout, shutdown    v
//!                               +-----------+   input is read and thrown away;
//!                               | Draining  |   queued replies are flushed
//!                               +-----------+
//!                     flushed, peer's |      | flushed, peer still sending
//!                     EOF already seen|      v
//!                                     |  +-----------+  write side shut (FIN);
//!                                     |  | Lingering |  read and discard until
//!                                     |  +-----------+  the peer's EOF or the
//!                                     v        |        linger deadline
//!                                   closed <---+
//! ```
//!
//! Why `Lingering` (nginx's "lingering close"): Linux answers a `close` on a
//! socket with unread input by a reset, and a reset makes the peer's kernel
//! throw away every reply still in flight. Shutting the write side first and
//! reading until the peer's EOF means the replies arrive, then the EOF.
//!
//! It never decides *when* to read, pause or close (the reactor does, from
//! readiness events, timers and limits) and never calls the handler.
//!
//! Memory: a connection holds only what is in flight. Its queued output
//! exists only while the kernel refuses bytes, and the frame decoder holds
//! only an unfinished frame; both own no allocation when empty. Reads go
//! through the reactor's single read buffer, replies through its single reply
//! buffer, so an idle connection costs this struct and no more.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::auth::handshake::Handshake;
use crate::frame::FrameDecoder;
use crate::stats::CloseReason;
use crate::timer::Stamp;

/// Tokens below this are the reactor's own sources (listener, UDP, waker).
pub(crate) const FIRST_CONNECTION_TOKEN: usize = 16;

/// Names one connection for its whole life, and never another one.
///
/// It is the connection's reactor, its slab key and a generation number, so
/// an id kept after its connection closed (by a handler, a timer, a message
/// from another thread, or an event still in the batch) cannot reach the next
/// connection stored in that slab slot. Within its reactor, the connection's
/// mio `Token` is the key and the generation packed into 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    reactor: u16,
    index: u32,
    generation: u32,
}

#[cfg(not(target_pointer_width = "64"))]
compile_error!("frameloop packs a slab key and a generation into a 64-bit mio Token");

impl ConnId {
    pub(crate) fn new(reactor: usize, index: usize, generation: u32) -> ConnId {
        ConnId {
            reactor: reactor as u16,
            index: index as u32,
            generation,
        }
    }

    /// The reactor (thread) that serves this connection: 0 with one reactor.
    pub fn reactor(self) -> usize {
        self.reactor as usize
    }

    /// The slab key.
    pub(crate) fn index(self) -> usize {
        self.index as usize
    }

    pub(crate) fn token(self) -> Token {
        Token(((self.generation as usize) << 32) | (self.index as usize + FIRST_CONNECTION_TOKEN))
    }

    pub(crate) fn from_token(reactor: usize, token: Token) -> ConnId {
        ConnId::new(
            reactor,
            (token.0 & 0xFFFF_FFFF) - FIRST_CONNECTION_TOKEN,
            (token.0 >> 32) as u32,
        )
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}.{}", self.reactor, self.index, self.generation)
    }
}

/// Where a connection is in its life (see the diagram in the module docs).
#[derive(Debug)]
pub(crate) enum State {
    /// Challenge sent; waiting for the answer. The handler has not seen it.
    Handshake(Box<Handshake>),
    /// Authenticated (or no authentication): frames go to the handler.
    Open(Reading),
    /// Closing: no more input is processed (what arrives is read and
    /// discarded), queued replies are flushed.
    Draining {
        reason: CloseReason,
        /// The peer's EOF was read: once flushed, close at once.
        input_ended: bool,
    },
    /// Flushed, write side shut: reading and discarding until the peer's EOF
    /// or `until`, then closed.
    Lingering { reason: CloseReason, until: Stamp },
}

/// Whether an open connection is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    Active,
    /// Not read since `since`: its own unsent replies passed high-water, or
    /// a connection it sends to did (`Pause::Receivers`).
    Paused {
        since: Stamp,
        cause: Pause,
    },
}

/// Why reading an open connection paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// Its own unsent output is over high-water: resumes at low-water.
    OwnOutput,
    /// It sent to a connection whose unsent output is over high-water:
    /// resumes when that one drains (senders must feel their receivers).
    Receivers,
}

/// A connection and everything the reactor keeps for it. `S` is what the
/// handler keeps for it ([`crate::Handler::Conn`]).
#[derive(Debug)]
pub(crate) struct Connection<S> {
    pub id: ConnId,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    state: State,
    pub decoder: FrameDecoder,
    out: Output,
    /// Registered for WRITABLE too (only while output is queued).
    writable_interest: bool,
    /// In the reactor's ready list (has unread input to come back for).
    pub in_ready_list: bool,
    /// In the reactor's list of connections given output by others.
    pub touched: bool,
    /// The poller reported the peer's FIN: the next short read does not mean
    /// "drained", so come back for the 0 that ends the stream.
    pub fin_seen: bool,
    /// Last time a byte went either way (idle timeout).
    pub last_active: Stamp,
    /// When the first byte of the unfinished frame arrived, moved forward by
    /// the time reading was paused (frame timeout: a frame stuck behind the
    /// server's own backpressure is not slowloris).
    pub frame_started: Option<Stamp>,
    /// Since when output sent by others is over high-water (slow reader).
    pub congested_since: Option<Stamp>,
    /// The deadline this connection has in the reactor's timer heap.
    pub deadline: Option<Stamp>,
    /// Handler timers set for it and not yet fired or cancelled.
    pub timers: u32,
    /// Bytes of this connection in the reactor's buffered total.
    pub accounted: usize,
    /// What the handler keeps for this connection.
    pub handler: S,
}

impl<S: Default> Connection<S> {
    pub fn new(id: ConnId, stream: TcpStream, peer: SocketAddr, now: Stamp) -> Connection<S> {
        Connection {
            id,
            stream,
            peer,
            state: State::Open(Reading::Active),
            decoder: FrameDecoder::new(),
            out: Output::default(),
            writable_interest: false,
            in_ready_list: false,
            touched: false,
            fin_seen: false,
            last_active: now,
            frame_started: None,
            congested_since: None,
            deadline: None,
            timers: 0,
            accounted: 0,
            handler: S::default(),
        }
    }
}

impl<S> Connection<S> {
    // ----- where it is ---------------------------------------------------------

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn handshake(&mut self) -> Option<&mut Handshake> {
        match &mut self.state {
            State::Handshake(handshake) => Some(handshake),
            _ => None,
        }
    }

    /// Whether the handler sees it: open, not yet closing.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Whether the reactor should read from it now (to process or to discard).
    pub fn wants_read(&self) -> bool {
        match self.state {
            State::Handshake(_) | State::Open(Reading::Active) | State::Lingering { .. } => true,
            State::Open(Reading::Paused { .. }) => false,
            State::Draining { input_ended, .. } => !input_ended,
        }
    }

    /// Whether input read now goes to the handshake or the handler (if not,
    /// it is discarded).
    pub fn processes_input(&self) -> bool {
        matches!(self.state, State::Handshake(_) | State::Open(_))
    }

    /// The reason it is closing, once it is.
    pub fn closing(&self) -> Option<CloseReason> {
        match self.state {
            State::Draining { reason, .. } | State::Lingering { reason, .. } => Some(reason),
            _ => None,
        }
    }

    // ----- transitions ----------------------------------------------------------

    /// A key is set: wait for the answer to `handshake`'s challenge.
    pub fn await_answer(&mut self, handshake: Handshake) {
        self.state = State::Handshake(Box::new(handshake));
    }

    /// The challenge was answered right: frames go to the handler now.
    pub fn authenticated(&mut self) {
        self.state = State::Open(Reading::Active);
    }

    /// Stops reading an open connection.
    pub fn pause(&mut self, now: Stamp, cause: Pause) {
        if let State::Open(Reading::Active) = self.state {
            self.state = State::Open(Reading::Paused { since: now, cause });
        }
    }

    /// Why reading is paused, if it is.
    pub fn paused(&self) -> Option<Pause> {
        match self.state {
            State::Open(Reading::Paused { cause, .. }) => Some(cause),
            _ => None,
        }
    }

    /// Reads an open connection again. The time it was paused does not count
    /// against its frame or idle timeout.
    pub fn resume(&mut self, now: Stamp) {
        if let State::Open(Reading::Paused { since, .. }) = self.state {
            let paused = now.since(since);
            if let Some(started) = &mut self.frame_started {
                *started = started.after(paused);
            }
            self.last_active = self.last_active.max(now);
            self.state = State::Open(Reading::Active);
        }
    }

    /// Starts closing gracefully: process no more input, flush the replies
    /// queued so far. A connection already closing keeps its first reason.
    pub fn drain(&mut self, reason: CloseReason) {
        if matches!(self.state, State::Handshake(_) | State::Open(_)) {
            self.state = State::Draining {
                reason,
                input_ended: false,
            };
        }
    }

    /// The peer's EOF was read: nothing more will come. A lingering
    /// connection is done; others close once their output is flushed.
    pub fn input_ended(&mut self) {
        match &mut self.state {
            State::Handshake(_) | State::Open(_) => {
                self.state = State::Draining {
                    reason: CloseReason::Eof,
                    input_ended: true,
                }
            }
            State::Draining { input_ended, .. } => *input_ended = true,
            State::Lingering { reason, .. } => {
                self.state = State::Draining {
                    reason: *reason,
                    input_ended: true,
                }
            }
        }
    }

    /// Whether a closing connection is done: flushed, and either the peer's
    /// EOF was read or the write side was shut and the EOF arrived since.
    pub fn can_close_now(&self) -> bool {
        matches!(
            self.state,
            State::Draining {
                input_ended: true,
                ..
            }
        ) && self.pending_output() == 0
    }

    /// Flushed and the peer may still send: shut the write side (the peer
    /// reads our replies, then EOF) and read until its EOF or `until`.
    pub fn linger(&mut self, until: Stamp) -> io::Result<()> {
        if let State::Draining {
            reason,
            input_ended: false,
        } = self.state
        {
            self.stream.shutdown(Shutdown::Write)?;
            self.state = State::Lingering { reason, until };
        }
        Ok(())
    }

    // ----- output ---------------------------------------------------------------

    /// Bytes written by the server but not yet taken by the kernel.
    pub fn pending_output(&self) -> usize {
        self.out.pending()
    }

    /// Bytes this connection holds in buffers: queued output and an
    /// unfinished frame (the server-wide budget counts these).
    pub fn buffered(&self) -> usize {
        self.out.pending() + self.decoder.buffered()
    }

    /// Appends output behind what is queued (no syscall).
    pub fn queue(&mut self) -> &mut Vec<u8> {
        &mut self.out.buf
    }

    /// Drops unsent output (the connection is closing at once).
    pub fn discard_output(&mut self) {
        self.out = Output::default();
    }

    /// Sends `bytes` after any queued output: written at once if nothing is
    /// queued (the common case: no copy), the rest queued. Returns bytes written.
    pub fn write_or_queue(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.out.pending() > 0 {
            self.out.buf.extend_from_slice(bytes);
            return self.flush();
        }
        let written = write_until_blocked(&mut self.stream, bytes)?;
        self.out.buf.extend_from_slice(&bytes[written..]);
        Ok(written)
    }

    /// Writes queued output until done or the kernel pushes back. Returns
    /// bytes written. Fully flushed output releases its memory.
    pub fn flush(&mut self) -> io::Result<usize> {
        let written = write_until_blocked(&mut self.stream, self.out.unsent())?;
        self.out.advance(written);
        Ok(written)
    }

    /// Asks for WRITABLE events exactly while output is queued. In steady
    /// state (replies written at once) this makes no `epoll_ctl` call.
    pub fn sync_interest(&mut self, registry: &Registry) -> io::Result<()> {
        let want = self.pending_output() > 0;
        if want != self.writable_interest {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, self.id.token(), interest)?;
            self.writable_interest = want;
        }
        Ok(())
    }
}

/// Output the kernel has not taken yet: `buf[sent..]` is unsent.
#[derive(Debug, Default)]
struct Output {
    buf: Vec<u8>,
    sent: usize,
}

impl Output {
    fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    fn unsent(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    fn advance(&mut self, written: usize) {
        self.sent += written;
        if self.sent == self.buf.len() {
            *self = Output::default(); // an empty queue owns no memory
        } else if self.sent >= 64 * 1024 && self.sent * 2 >= self.buf.len() {
            // Reclaim the sent half so a slow reader's queue cannot creep.
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }
}

/// `write` until all is written or it would block; retries `Interrupted`.
fn write_until_blocked(stream: &mut TcpStream, mut bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n;
                bytes = &bytes[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_index_and_generation() {
        let id = ConnId::new(3, 12345, 0xDEAD_BEEF);
        assert_eq!(ConnId::from_token(3, id.token()), id);
        assert!(id.token().0 >= FIRST_CONNECTION_TOKEN);
        assert_ne!(ConnId::new(0, 5, 1).token(), ConnId::new(0, 5, 2).token());
    }
}
