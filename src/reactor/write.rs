//! Writing and closing: replies to the socket, backpressure, and the ways a
//! connection ends.
//!
//! After every hook, [`Reactor::settle`] writes the hook's replies at once
//! (an *optimistic write*: no WRITABLE interest is needed for the common
//! case) and decides what follows: pause or resume reading, watch for
//! WRITABLE, shut the write side of a closing connection, or close it.
//!
//! A connection ends one of two ways:
//! - **gracefully** ([`Reactor::begin_close`]: the peer's EOF, the handler's
//!   `close()`, an oversized header, an idle or frame timeout, shutdown): it
//!   stops processing input, flushes every reply, shuts its write side,
//!   reads and discards until the peer's EOF or the linger deadline, and only
//!   then closes (see `connection.rs` for why: a close with unread input
//!   sends a reset that destroys the replies in flight);
//! - **at once** ([`Reactor::abort`]: a reset, a wrong or late answer to the
//!   challenge, the output cap, the memory budget, the shutdown deadline):
//!   what it had not sent is dropped. Each of these is a documented limit.

use std::sync::atomic::Ordering;

use log::{debug, warn};

use super::{Reactor, lookup};
use crate::connection::{ConnId, Pause, State};
use crate::handler::Handler;
use crate::stats::CloseReason;

impl<H: Handler> Reactor<H> {
    /// Writes what `id` has to say; closes the connections hooks asked to
    /// close; writes every connection a hook sent to. A sender whose
    /// receivers are left over high-water stops being read until they drain.
    pub(super) fn settle(&mut self, id: ConnId) {
        self.settle_one(id);
        // Echo's path ends here: no hook sent to others or closed anything.
        if self.closes.is_empty() && self.touched.is_empty() && !self.held_back {
            return;
        }
        self.close_requested();
        let held_back = std::mem::take(&mut self.held_back);
        if self.settle_touched() || held_back {
            self.block_sender(id);
        }
    }

    /// Writes the reply buffer (or flushes the queue), then decides: close,
    /// linger, pause or resume reading, and whether to watch for WRITABLE.
    pub(super) fn settle_one(&mut self, id: ConnId) {
        let now = self.now;
        let Some(conn) = lookup(&mut self.conns, id) else {
            self.reply.clear();
            return;
        };
        let written = match self.reply.is_empty() {
            true => conn.flush(),
            false => conn.write_or_queue(&self.reply),
        };
        self.reply.clear();
        match written {
            Ok(0) => {}
            Ok(n) => {
                self.counters.bytes_out(n);
                conn.last_active = now;
            }
            Err(e) => {
                debug!("{}: write failed: {e}", conn.peer);
                return self.abort(id, CloseReason::Reset);
            }
        }
        let pending = conn.pending_output();

        // Closing: once flushed, close (the peer's EOF was read), or shut the
        // write side and linger until it comes.
        let mut lingers = false;
        if conn.closing().is_some() && pending == 0 {
            if conn.can_close_now() {
                return self.finish(id);
            }
            if let State::Draining { .. } = conn.state() {
                if let Err(e) = conn.linger(now.after(self.config.linger)) {
                    debug!("{}: shutdown failed: {e}", conn.peer);
                    return self.abort(id, CloseReason::Reset);
                }
                lingers = true;
            }
        }

        // Backpressure: a peer that does not read its replies stops being
        // read (except during shutdown, when what arrived is taken in).
        let mut resume = false;
        match conn.paused() {
            None if conn.is_open()
                && pending > self.config.high_water
                && self.shutdown.is_none() =>
            {
                debug!("{}: {pending} bytes unsent; pausing reads", conn.peer);
                conn.pause(now, Pause::OwnOutput);
                self.counters.read_paused();
            }
            Some(Pause::OwnOutput) if pending <= self.config.low_water => {
                debug!(
                    "{}: output down to {pending} bytes; resuming reads",
                    conn.peer
                );
                conn.resume(now);
                resume = true; // input may be waiting, and no new edge will come
            }
            _ => {}
        }
        if let Err(e) = conn.sync_interest(self.poll.registry()) {
            debug!("{}: reregister failed: {e}", conn.peer);
            return self.abort(id, CloseReason::Reset);
        }
        // A receiver back under high-water lets its senders go on. (Not at
        // low-water, as a connection's own backpressure does: hysteresis
        // would keep senders waiting on a receiver that others still feed.)
        let relieved = conn.congested_since.is_some() && pending <= self.config.high_water;
        if relieved {
            conn.congested_since = None;
        }
        // The server-wide budget: what this connection holds now replaces
        // what it held when last counted.
        let holds = conn.buffered();
        self.buffered = self.buffered + holds - conn.accounted;
        conn.accounted = holds;

        if lingers {
            self.arm(id); // the linger deadline
        }
        if self.buffered > self.budget {
            self.over_budget();
        }
        if resume {
            self.mark_ready(id);
        }
        if relieved {
            self.congestion_changed(-1);
            self.unblock_senders();
        }
    }

    /// Writes every connection a hook sent to ([`crate::LoopCtx::send_to`]).
    /// Returns whether one of them is left with more than high-water unsent.
    ///
    /// Output others piled on a connection is capped only after the kernel
    /// took what it would, so a reader that keeps up is never cut off.
    pub(super) fn settle_touched(&mut self) -> bool {
        let mut congested = false;
        while let Some(other) = self.touched.pop() {
            if let Some(conn) = self.lookup(other) {
                conn.touched = false;
            }
            self.settle_one(other);
            let now = self.now;
            let Some(conn) = lookup(&mut self.conns, other) else {
                continue;
            };
            let pending = conn.pending_output();
            if pending > self.config.max_output {
                warn!(
                    "{}: {pending} bytes of output waiting, over the {}-byte cap; disconnecting",
                    conn.peer, self.config.max_output
                );
                self.abort(other, CloseReason::OutputCap);
            } else if pending > self.config.high_water && conn.is_open() {
                congested = true;
                if conn.congested_since.is_none() {
                    conn.congested_since = Some(now);
                    self.arm(other);
                    self.congestion_changed(1);
                }
            }
        }
        congested
    }

    /// Stops reading a connection that sent to a congested receiver.
    fn block_sender(&mut self, id: ConnId) {
        let now = self.now;
        if self.shutdown.is_some() {
            return;
        }
        if let Some(conn) = self.lookup(id)
            && conn.is_open()
            && conn.paused().is_none()
        {
            debug!(
                "{}: a receiver is over high-water; pausing reads",
                conn.peer
            );
            conn.pause(now, Pause::Receivers);
            self.counters.read_paused();
            self.blocked.push(id);
        }
    }

    /// One more (`1`) or one fewer (`-1`) connection over high-water with
    /// output from others. The other reactors see whether there is any: when
    /// the first appears, their hooks posting here hold their senders back;
    /// when the last drains, they are woken to let them go, and this
    /// reactor takes its mailbox again.
    fn congestion_changed(&mut self, delta: isize) {
        let before = self.congested_receivers;
        self.congested_receivers = before.saturating_add_signed(delta);
        match (before, self.congested_receivers) {
            (0, 1) => self.shared.congested[self.index].store(true, Ordering::SeqCst),
            (1, 0) => {
                self.shared.congested[self.index].store(false, Ordering::SeqCst);
                if self.peers.len() > 1 {
                    self.shared.relief.fetch_add(1, Ordering::SeqCst);
                    for (i, peer) in self.peers.iter().enumerate() {
                        if i != self.index {
                            let _ = peer.waker().wake();
                        }
                    }
                }
                if std::mem::take(&mut self.inbox_stalled) {
                    self.inbox_backlog = true; // take the mailbox again, next turn
                }
            }
            _ => {}
        }
    }

    /// A congested receiver drained or left: its senders may go on (those
    /// that still send to a congested one will pause again).
    pub(super) fn unblock_senders(&mut self) {
        let mut blocked = std::mem::take(&mut self.blocked);
        for &id in &blocked {
            let now = self.now;
            if let Some(conn) = self.lookup(id)
                && conn.paused() == Some(Pause::Receivers)
            {
                conn.resume(now);
                self.mark_ready(id);
            }
        }
        blocked.clear();
        self.blocked = blocked;
    }

    /// After hooks that were not about one connection (messages, ticks,
    /// datagrams): closes what they asked to close, writes what they sent.
    pub(super) fn settle_others(&mut self) {
        self.held_back = false; // no sender to hold back
        self.close_requested();
        self.settle_touched();
    }

    /// Closes the connections hooks asked to close with `LoopCtx::close_conn`.
    pub(super) fn close_requested(&mut self) {
        while let Some(id) = self.closes.pop() {
            self.begin_close(id, CloseReason::Handler);
            self.settle_one(id);
        }
    }

    /// Starts closing gracefully: no more input is processed, the handler is
    /// told, and what was sent is flushed before the connection closes.
    pub(super) fn begin_close(&mut self, id: ConnId, reason: CloseReason) {
        let Some(conn) = self.lookup(id) else {
            return;
        };
        match conn.state() {
            State::Open(_) => {
                conn.drain(reason);
                self.arm(id);
                self.notify_close(id, reason);
            }
            State::Handshake(_) => self.abort(id, reason),
            State::Draining { .. } | State::Lingering { .. } => {}
        }
    }

    /// Closes a connection at once, dropping what it had not sent.
    pub(super) fn abort(&mut self, id: ConnId, reason: CloseReason) {
        let Some(conn) = self.lookup(id) else {
            return;
        };
        if conn.is_open() {
            self.notify_close(id, reason);
            self.reply.clear(); // nobody left to read it
        }
        if let Some(conn) = self.lookup(id) {
            conn.discard_output();
        }
        self.remove(id, reason);
    }

    /// A graceful close is complete.
    fn finish(&mut self, id: ConnId) {
        let reason = self
            .lookup(id)
            .and_then(|conn| conn.closing())
            .unwrap_or(CloseReason::Eof);
        self.remove(id, reason);
    }

    /// Takes a connection out of the loop; dropping it closes the socket.
    fn remove(&mut self, id: ConnId, reason: CloseReason) {
        if self.lookup(id).is_none() {
            return;
        }
        let mut conn = self.conns.remove(id.index());
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.buffered -= conn.accounted;
        self.handler_timers.orphaned(conn.timers as usize);
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
        self.counters.closed(reason);
        debug!("{} ({id}): closed: {reason}", conn.peer);
        if conn.congested_since.is_some() {
            self.congestion_changed(-1);
            self.unblock_senders();
        }
        self.descriptor_freed();
        self.compact_timers();
    }

    /// Buffers hold more than the budget: disconnect the connections holding
    /// the most until the total is back under it.
    fn over_budget(&mut self) {
        let before = self.buffered;
        let mut holders: Vec<(usize, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.accounted > 0)
            .map(|(_, c)| (c.accounted, c.id))
            .collect();
        holders.sort_unstable_by_key(|&(held, _)| std::cmp::Reverse(held));
        let mut cut = 0;
        for (_, id) in holders {
            if self.buffered <= self.budget {
                break;
            }
            self.abort(id, CloseReason::Budget);
            cut += 1;
        }
        if self.warning_due() {
            warn!(
                "buffers held {before} bytes, over the budget of {} (--max-buffered); \
                 disconnected the {cut} connection(s) holding the most",
                self.budget
            );
        }
    }
}
