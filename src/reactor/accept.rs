//! Accepting: from the listener into the slab, and the connection limit.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use log::{debug, trace, warn};
use mio::Interest;
use mio::net::TcpStream;

use super::{Accepting, Due, Reactor};
use crate::auth::handshake::Handshake;
use crate::config::{ACCEPT_RETRY, LISTEN_BACKLOG};
use crate::connection::{ConnId, Connection};
use crate::handler::Handler;
use crate::stats::CloseReason;
use crate::timer::Stamp;
use crate::trace::SpanKind;

/// Connections accepted per listener event before others get a turn.
const ACCEPT_BATCH: usize = 256;

impl<H: Handler> Reactor<H> {
    /// Accepts until the kernel has no more (or a batch is done: the rest
    /// waits a turn, so a flood of connects cannot starve the connections).
    pub(super) fn accept_all(&mut self) {
        self.spanning(SpanKind::Accept, Self::accept_batch);
    }

    fn accept_batch(&mut self) {
        match self.accepting {
            Accepting::Yes => {}
            Accepting::PausedUntil(at) if at <= self.now => self.accepting = Accepting::Yes,
            Accepting::PausedUntil(_) => return,
        }
        for _ in 0..ACCEPT_BATCH {
            let accepted = match &self.listener {
                Some(listener) => listener.accept(),
                None => return, // closed: shutting down
            };
            match accepted {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // EMFILE/ENFILE above all: the pending connection stays in
                    // the backlog and no new edge will come for it, so retry on
                    // a timer (or sooner, when a connection closes). Meanwhile
                    // every existing connection is served as usual.
                    if self.warning_due() {
                        warn!("accept failed: {e}; pausing accepts for {ACCEPT_RETRY:?}");
                    }
                    self.pause_accepting(self.now.after(ACCEPT_RETRY));
                    self.counters.accept_paused();
                    return;
                }
            }
        }
        self.accept_backlog = true; // batch spent: the rest next turn
    }

    /// Accepts what is already in the listen queue, then closes the listener.
    /// The kernel completed those connects before shutdown began: their
    /// clients may have sent frames, and closing the listener over them would
    /// reset them. Once it is closed, later connects are refused at once
    /// (instead of completing, only to be reset when the process exits).
    pub(super) fn close_listener(&mut self) {
        // Bounded: the queue holds at most the backlog, plus what arrives
        // while it is drained.
        for _ in 0..=(LISTEN_BACKLOG as usize).div_ceil(ACCEPT_BATCH) {
            self.accept_backlog = false;
            self.accept_batch();
            if !self.accept_backlog {
                break;
            }
        }
        self.accept_backlog = false;
        self.listener = None;
    }

    /// Stops accepting until `at` (a retry timer is set for it).
    fn pause_accepting(&mut self, at: Stamp) {
        self.accepting = Accepting::PausedUntil(at);
        self.timers.schedule(at, Due::AcceptRetry);
    }

    /// A descriptor was freed: if accepting paused for lack of them, try now.
    pub(super) fn descriptor_freed(&mut self) {
        if let Accepting::PausedUntil(at) = self.accepting
            && at > self.now
        {
            self.pause_accepting(self.now);
        }
    }

    /// Takes a new connection in: limit, register, challenge or open.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        self.counters.accepted();
        let open = self.shared.open.fetch_add(1, Ordering::Relaxed);
        if open >= self.config.max_connections {
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
            self.counters.closed(CloseReason::Limit);
            if self.warning_due() {
                warn!(
                    "{peer}: over the limit of {} connections; closing",
                    self.config.max_connections
                );
            }
            return; // dropping the stream closes it
        }
        if let Err(e) = stream.set_nodelay(true) {
            debug!("{peer}: cannot set TCP_NODELAY: {e}");
        }
        let entry = self.conns.vacant_entry();
        let id = ConnId::new(self.index, entry.key(), self.next_generation);
        self.next_generation = self.next_generation.wrapping_add(1);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, id.token(), Interest::READABLE)
        {
            warn!("{peer}: cannot register with the poller: {e}");
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
            self.counters.closed(CloseReason::Reset);
            return;
        }
        let mut conn = Connection::new(id, stream, peer, self.now);
        if self.auth.is_some() {
            match Handshake::new(self.now.after(self.config.handshake_timeout)) {
                Ok(handshake) => {
                    self.reply.extend_from_slice(handshake.challenge());
                    conn.await_answer(handshake);
                }
                Err(e) => {
                    warn!("{peer}: cannot draw a challenge: {e}");
                    let _ = self.poll.registry().deregister(&mut conn.stream);
                    self.shared.open.fetch_sub(1, Ordering::Relaxed);
                    self.counters.closed(CloseReason::Reset);
                    return;
                }
            }
        }
        let open = conn.is_open();
        entry.insert(conn);
        trace!("{peer}: accepted as {id}");
        self.arm(id);
        if open {
            self.open(id);
        }
        self.settle(id);
    }
}
