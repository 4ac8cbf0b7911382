//! Deadlines: what each one is for, and what happens when it passes.
//!
//! Every deadline is an entry in the one heap (`timer.rs`). A connection has
//! one entry at a time, for the nearest of its own deadlines ([`deadline`]):
//! the handshake, idle, frame and slow-reader timeouts, or the end of its
//! linger. The hot path only stores timestamps (`last_active`,
//! `frame_started`); when the entry comes due, the deadline is computed anew
//! from them, and either the connection closes or the entry moves later.

use log::{info, warn};

use super::{Reactor, lookup, timer_is_live};
use crate::config::Config;
use crate::connection::{ConnId, Connection, Reading, State};
use crate::handler::Handler;
use crate::stats::CloseReason;
use crate::timer::{Stamp, TimerId};
use crate::trace::SpanKind;

/// What a deadline in the reactor's heap is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The connection's nearest deadline. Stale once the connection closed
    /// or a nearer deadline was scheduled (its `deadline` differs).
    Conn(ConnId),
    /// A timer a handler set. Stale once it fired or was cancelled.
    Timer(TimerId),
    /// Accept again after running out of descriptors (or a batch ran out).
    AcceptRetry,
    /// Log the counters (`Config::stats_interval`).
    Stats,
    /// Close whatever is left of a graceful shutdown.
    Shutdown,
}

/// What happens when a connection's deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Close gracefully, for this reason: replies so far are delivered.
    Drain(CloseReason),
    /// Close at once, for this reason.
    Abort(CloseReason),
    /// Lingering is over: close.
    Finish,
}

/// A connection's nearest deadline and what it means, from its state and
/// timestamps. (`Config::validate` keeps every timeout under a year, so no
/// addition here can overflow.)
fn deadline<S>(conn: &Connection<S>, config: &Config) -> Option<(Stamp, Expiry)> {
    let idle = config.idle_timeout.map(|t| conn.last_active.after(t));
    let slow = conn.congested_since.map(|since| {
        (
            since.after(config.slow_reader_timeout),
            Expiry::Abort(CloseReason::SlowReader),
        )
    });
    let candidates = match conn.state() {
        State::Handshake(handshake) => [
            Some((
                handshake.deadline(),
                Expiry::Abort(CloseReason::HandshakeTimeout),
            )),
            idle.map(|at| (at, Expiry::Abort(CloseReason::Idle))),
            None,
        ],
        State::Open(Reading::Active) => [
            idle.map(|at| (at, Expiry::Drain(CloseReason::Idle))),
            conn.frame_started
                .zip(config.frame_timeout)
                .map(|(started, t)| (started.after(t), Expiry::Drain(CloseReason::FrameTimeout))),
            slow,
        ],
        // Paused or closing, the server is not taking input: only the peer's
        // reading counts (no progress either way for the idle timeout).
        State::Open(Reading::Paused { .. }) | State::Draining { .. } => [
            idle.map(|at| (at, Expiry::Abort(CloseReason::Idle))),
            slow,
            None,
        ],
        State::Lingering { until, .. } => [Some((*until, Expiry::Finish)), None, None],
    };
    candidates.into_iter().flatten().min_by_key(|(at, _)| *at)
}

impl<H: Handler> Reactor<H> {
    /// Schedules connection `id`'s nearest deadline, unless one at least as
    /// near is already in the heap (a later one there is found stale later).
    pub(super) fn arm(&mut self, id: ConnId) {
        let Some(conn) = lookup(&mut self.conns, id) else {
            return;
        };
        let Some((at, _)) = deadline(conn, &self.config) else {
            return;
        };
        if conn.deadline.is_none_or(|scheduled| at < scheduled) {
            conn.deadline = Some(at);
            self.timers.schedule(at, Due::Conn(id));
        }
    }

    pub(super) fn fire_due_timers(&mut self) {
        if self.timers.next_deadline().is_none_or(|at| at > self.now) {
            return; // the common turn: nothing due
        }
        let (mark, fired_before) = (self.mark(), self.tally.timers);
        while let Some((at, due)) = self.timers.pop_due(self.now) {
            self.tally.timers += 1;
            match due {
                Due::Conn(id) => self.connection_deadline(id, at),
                Due::Timer(timer) => self.handler_timer(timer),
                Due::AcceptRetry => self.accept_all(),
                Due::Stats => {
                    match self.peers.len() {
                        1 => info!("stats: {}", self.counters.snapshot()),
                        _ => info!(
                            "stats (reactor {}): {}",
                            self.index,
                            self.counters.snapshot()
                        ),
                    }
                    if let Some(every) = self.config.stats_interval {
                        // From now, not from `at`: a late turn never makes
                        // the next line due at once (no catching up, no spin).
                        self.timers.schedule(self.now.after(every), Due::Stats);
                    }
                }
                Due::Shutdown => self.shutdown_deadline(),
            }
            self.settle_others();
        }
        self.compact_timers();
        if self.tally.timers > fired_before {
            self.spanned(SpanKind::Timers, None, mark);
        }
    }

    /// Connection `id`'s entry came due: close it, or move the entry to its
    /// next deadline.
    fn connection_deadline(&mut self, id: ConnId, at: Stamp) {
        let Some(conn) = lookup(&mut self.conns, id) else {
            return; // closed since
        };
        if conn.deadline != Some(at) {
            return; // a nearer deadline was scheduled after this one
        }
        conn.deadline = None;
        match deadline(conn, &self.config) {
            None => {}
            Some((due, expiry)) if due <= self.now => {
                let peer = conn.peer;
                match expiry {
                    Expiry::Drain(reason) => {
                        info!("{peer}: {reason}; closing");
                        self.begin_close(id, reason);
                        self.settle(id);
                    }
                    Expiry::Abort(reason) => {
                        info!("{peer}: {reason}; closing");
                        self.abort(id, reason);
                    }
                    Expiry::Finish => self.finish_lingering(id),
                }
            }
            Some((due, _)) => {
                conn.deadline = Some(due);
                self.timers.schedule(due, Due::Conn(id));
            }
        }
    }

    /// A lingering connection's peer sent no EOF in time: close it (its
    /// replies had `linger` to arrive).
    fn finish_lingering(&mut self, id: ConnId) {
        let reason = self
            .lookup(id)
            .and_then(|conn| conn.closing())
            .unwrap_or(CloseReason::Eof);
        self.abort(id, reason);
    }

    /// A handler's timer came due: call its hook, unless it was cancelled or
    /// its connection is closing or gone.
    fn handler_timer(&mut self, timer: TimerId) {
        let Some(set) = self.handler_timers.get(timer) else {
            return; // cancelled
        };
        let (owner, every) = (set.owner, set.every);
        match every {
            Some(every) => self
                .timers
                .schedule(self.now.after(every), Due::Timer(timer)),
            None => {
                self.handler_timers.remove(timer);
            }
        }
        let Some(id) = owner else {
            self.counters.timer_fired();
            self.call_loop_hook(|handler, ctx| handler.on_tick(ctx, timer));
            return; // written by `fire_due_timers`
        };
        match lookup(&mut self.conns, id) {
            Some(conn) if conn.is_open() => {
                if every.is_none() {
                    conn.timers -= 1;
                }
                self.counters.timer_fired();
                self.call_conn_hook(id, None, |handler, ctx| handler.on_timer(ctx, timer));
                self.settle(id);
            }
            Some(conn) => {
                // Closing: its timers will not fire again.
                if every.is_some() {
                    self.handler_timers.remove(timer);
                }
                conn.timers = conn.timers.saturating_sub(1);
            }
            None => {
                if every.is_some() {
                    self.handler_timers.remove(timer);
                }
                self.handler_timers.orphan_dropped();
            }
        }
    }

    /// Keeps timer memory in step with what is live: timers of closed
    /// connections are forgotten, and stale heap entries dropped, once they
    /// would otherwise dominate. (Checked after timers fire and after each
    /// close: a close is what leaves an entry stale.)
    pub(super) fn compact_timers(&mut self) {
        let conns = &self.conns;
        if self.handler_timers.has_many_orphans() {
            self.handler_timers
                .forget_orphans(|id| conns.get(id.index()).is_some_and(|c| c.id == id));
        }
        let live_at_most = conns.len() + self.handler_timers.len() + 3;
        if self.timers.needs_compaction(live_at_most) {
            let handler_timers = &self.handler_timers;
            self.timers
                .compact(|at, due| timer_is_live(conns, handler_timers, at, due));
        }
    }

    /// The shutdown deadline passed: close what is left, unflushed.
    fn shutdown_deadline(&mut self) {
        let left: Vec<ConnId> = self.conns.iter().map(|(_, c)| c.id).collect();
        if !left.is_empty() {
            warn!(
                "shutdown timeout: closing {} connections unflushed",
                left.len()
            );
        }
        for id in left {
            self.abort(id, CloseReason::Shutdown);
        }
    }
}
