//! One TCP connection: its socket, its buffers, and where it is in its life.
//!
//! This module owns per-connection state and the two socket operations on it:
//! writing replies (directly, or queued when the kernel pushes back) and
//! flushing the queue. It never decides *when* to read, close or pause: the
//! reactor does, from readiness events, timers and limits. It never calls the
//! handler.
//!
//! Memory: a connection holds only what is in flight. Its queued output
//! exists only while the kernel refuses bytes, and the frame decoder holds
//! only an unfinished frame; both own no allocation when empty. Reads go
//! through the reactor's single read buffer, replies through its single reply
//! buffer, so an idle connection costs the `Connection` struct and no more.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::auth::Handshake;
use crate::frame::FrameDecoder;
use crate::stats::CloseReason;

/// Tokens below this are the reactor's own sources (listener, UDP, waker).
pub(crate) const FIRST_CONNECTION_TOKEN: usize = 16;

/// Names one connection for its whole life, and never another one.
///
/// It is the connection's slab key plus a generation number, so an id kept
/// after its connection closed (by a handler, a timer, or an event still in
/// the batch) cannot reach the next connection stored in that slab slot.
/// The connection's mio `Token` is the same two numbers packed into 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

#[cfg(not(target_pointer_width = "64"))]
compile_error!("frameloop packs a slab key and a generation into a 64-bit mio Token");

impl ConnId {
    pub(crate) fn new(index: usize, generation: u32) -> ConnId {
        ConnId {
            index: index as u32,
            generation,
        }
    }

    /// The slab key.
    pub(crate) fn index(self) -> usize {
        self.index as usize
    }

    pub(crate) fn token(self) -> Token {
        Token(((self.generation as usize) << 32) | (self.index as usize + FIRST_CONNECTION_TOKEN))
    }

    pub(crate) fn from_token(token: Token) -> ConnId {
        ConnId {
            index: ((token.0 & 0xFFFF_FFFF) - FIRST_CONNECTION_TOKEN) as u32,
            generation: (token.0 >> 32) as u32,
        }
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.index, self.generation)
    }
}

/// Where a connection is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Challenge sent; waiting for the answer. The handler has not seen it.
    Handshake(Box<Handshake>),
    /// Authenticated (or no authentication): frames go to the handler.
    Open,
}

/// A connection and everything the reactor keeps for it.
#[derive(Debug)]
pub(crate) struct Connection {
    pub id: ConnId,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub phase: Phase,
    pub decoder: FrameDecoder,
    /// Output the kernel has not taken yet; `out[sent..]` is unsent.
    out: Vec<u8>,
    sent: usize,
    /// Registered for WRITABLE too (only while output is queued).
    writable_interest: bool,
    /// No more reading: close with this reason once the output is flushed
    /// (the peer half-closed, the handler asked, or the server shuts down).
    pub finish: Option<CloseReason>,
    /// Close at once, dropping unsent output.
    pub doomed: Option<CloseReason>,
    /// Reading paused: unsent output is over the high-water mark.
    pub paused: bool,
    /// In the reactor's ready list (has unread input to come back for).
    pub in_ready_list: bool,
    /// In the reactor's list of connections given output by others.
    pub touched: bool,
    /// The poller reported the peer's FIN (read side closed).
    pub peer_closed: bool,
    /// Last time any byte arrived (idle timeout).
    pub last_read: Instant,
    /// When the first byte of the unfinished frame arrived (frame timeout).
    pub frame_started: Option<Instant>,
    /// A frame-timeout entry is in the timer heap.
    pub frame_timer_armed: bool,
}

impl Connection {
    pub fn new(id: ConnId, stream: TcpStream, peer: SocketAddr, now: Instant) -> Connection {
        Connection {
            id,
            stream,
            peer,
            phase: Phase::Open,
            decoder: FrameDecoder::new(),
            out: Vec::new(),
            sent: 0,
            writable_interest: false,
            finish: None,
            doomed: None,
            paused: false,
            in_ready_list: false,
            touched: false,
            peer_closed: false,
            last_read: now,
            frame_started: None,
            frame_timer_armed: false,
        }
    }

    /// Whether the reactor should read from it now.
    pub fn wants_read(&self) -> bool {
        self.finish.is_none() && self.doomed.is_none() && !self.paused
    }

    /// Whether the handler may still see it and others may still send to it.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open) && self.doomed.is_none()
    }

    /// Bytes written by the server but not yet taken by the kernel.
    pub fn pending_output(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Appends output behind what is already queued (no syscall).
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Lets `write` append output behind what is queued (no syscall).
    pub fn queue_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.out);
    }

    /// Drops unsent output (the connection is closing at once).
    pub fn discard_output(&mut self) {
        self.out = Vec::new();
        self.sent = 0;
    }

    /// Sends `bytes` after any queued output: written at once if nothing is
    /// queued (the common case: no copy), the rest queued. Returns bytes written.
    pub fn write_or_queue(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.pending_output() > 0 {
            self.queue(bytes);
            return self.flush();
        }
        let written = write_until_blocked(&mut self.stream, bytes)?;
        self.queue(&bytes[written..]);
        Ok(written)
    }

    /// Writes queued output until done or the kernel pushes back. Returns
    /// bytes written. Fully flushed output releases its memory.
    pub fn flush(&mut self) -> io::Result<usize> {
        let written = write_until_blocked(&mut self.stream, &self.out[self.sent..])?;
        self.sent += written;
        if self.sent == self.out.len() {
            self.discard_output();
        } else if self.sent >= 64 * 1024 && self.sent * 2 >= self.out.len() {
            // Reclaim the sent half so a slow reader's queue cannot creep.
            self.out.drain(..self.sent);
            self.sent = 0;
        }
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
        let id = ConnId::new(12345, 0xDEAD_BEEF);
        assert_eq!(ConnId::from_token(id.token()), id);
        assert!(id.token().0 >= FIRST_CONNECTION_TOKEN);
        assert_ne!(ConnId::new(5, 1).token(), ConnId::new(5, 2).token());
    }
}
