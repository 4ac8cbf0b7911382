//! Counters: what the server did, readable from any thread.
//!
//! This module owns the counters and the reasons a connection can close. The
//! reactor bumps them (relaxed atomics: one uncontended add each, no lock);
//! a [`crate::ServerHandle`] or the final summary reads them. It never decides
//! anything from them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::auth::datagram::Rejected;

/// Why a connection was closed. Each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer shut down its write side and every reply was flushed.
    Eof,
    /// Reset, broken pipe or another socket error.
    Reset,
    /// A header declared a payload over `max_frame`.
    Oversize,
    /// Wrong answer to the challenge.
    AuthFailed,
    /// No complete answer to the challenge in time.
    HandshakeTimeout,
    /// Nothing received for `idle_timeout`.
    Idle,
    /// A started frame did not complete within `frame_timeout`.
    FrameTimeout,
    /// Over `max_connections`: accepted and closed at once.
    Limit,
    /// Output grown by others' messages passed `max_output`.
    OutputCap,
    /// Output from others stayed over high-water for `slow_reader_timeout`.
    SlowReader,
    /// Buffers of all connections passed `max_buffered`, and this one held
    /// the most.
    Budget,
    /// The handler asked to close it.
    Handler,
    /// The server shut down.
    Shutdown,
}

impl CloseReason {
    /// Every reason, in the order summaries print them.
    pub const ALL: [CloseReason; 13] = [
        CloseReason::Eof,
        CloseReason::Reset,
        CloseReason::Oversize,
        CloseReason::AuthFailed,
        CloseReason::HandshakeTimeout,
        CloseReason::Idle,
        CloseReason::FrameTimeout,
        CloseReason::Limit,
        CloseReason::OutputCap,
        CloseReason::SlowReader,
        CloseReason::Budget,
        CloseReason::Handler,
        CloseReason::Shutdown,
    ];

    /// The name used in logs and summaries.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Eof => "eof",
            CloseReason::Reset => "reset",
            CloseReason::Oversize => "oversize",
            CloseReason::AuthFailed => "auth-failed",
            CloseReason::HandshakeTimeout => "handshake-timeout",
            CloseReason::Idle => "idle",
            CloseReason::FrameTimeout => "frame-timeout",
            CloseReason::Limit => "limit",
            CloseReason::OutputCap => "output-cap",
            CloseReason::SlowReader => "slow-reader",
            CloseReason::Budget => "memory-budget",
            CloseReason::Handler => "handler",
            CloseReason::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        // `ALL` lists every reason in declaration order.
        self as usize
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The live counters, shared between the reactor and its handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    frames: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    datagrams: AtomicU64,
    datagrams_dropped: AtomicU64,
    read_pauses: AtomicU64,
    fairness_deferrals: AtomicU64,
    accept_pauses: AtomicU64,
    messages: AtomicU64,
    timers: AtomicU64,
    datagrams_rejected: [AtomicU64; 4],
    buffered: AtomicU64,
    timer_entries: AtomicU64,
    closed: [AtomicU64; CloseReason::ALL.len()],
}

impl Counters {
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
    }
    /// Counts a close of an accepted connection.
    pub fn closed(&self, reason: CloseReason) {
        self.closed[reason.index()].fetch_add(1, Relaxed);
        self.active.fetch_sub(1, Relaxed);
    }
    pub fn frames(&self, n: u64) {
        self.frames.fetch_add(n, Relaxed);
    }
    pub fn bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Relaxed);
    }
    pub fn bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Relaxed);
    }
    pub fn datagram(&self, dropped: bool) {
        self.datagrams.fetch_add(1, Relaxed);
        if dropped {
            self.datagrams_dropped.fetch_add(1, Relaxed);
        }
    }

    /// Reading a connection paused for backpressure.
    pub fn read_paused(&self) {
        self.read_pauses.fetch_add(1, Relaxed);
    }
    /// A connection's input was left for the next turn (fairness cap).
    pub fn deferred(&self) {
        self.fairness_deferrals.fetch_add(1, Relaxed);
    }
    /// Accepting paused after an `accept` error (out of descriptors).
    pub fn accept_paused(&self) {
        self.accept_pauses.fetch_add(1, Relaxed);
    }
    /// A message from the mailbox ran.
    pub fn message(&self) {
        self.messages.fetch_add(1, Relaxed);
    }
    /// The gauges, as they are at the end of a turn.
    pub fn gauges(&self, buffered: usize, timer_entries: usize) {
        self.buffered.store(buffered as u64, Relaxed);
        self.timer_entries.store(timer_entries as u64, Relaxed);
    }
    /// A handler's timer fired.
    pub fn timer_fired(&self) {
        self.timers.fetch_add(1, Relaxed);
    }
    /// A datagram failed authentication.
    pub fn datagram_rejected(&self, why: Rejected) {
        let kind = match why {
            Rejected::Stale => 1,
            Rejected::Replayed => 2,
            Rejected::CacheFull => 3,
            _ => 0, // forged: malformed, wrong tag
        };
        self.datagrams.fetch_add(1, Relaxed);
        self.datagrams_rejected[kind].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        Stats {
            accepted: self.accepted.load(Relaxed),
            active: self.active.load(Relaxed),
            frames: self.frames.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            datagrams: self.datagrams.load(Relaxed),
            datagrams_dropped: self.datagrams_dropped.load(Relaxed),
            read_pauses: self.read_pauses.load(Relaxed),
            fairness_deferrals: self.fairness_deferrals.load(Relaxed),
            accept_pauses: self.accept_pauses.load(Relaxed),
            messages: self.messages.load(Relaxed),
            timers: self.timers.load(Relaxed),
            datagrams_forged: self.datagrams_rejected[0].load(Relaxed),
            datagrams_stale: self.datagrams_rejected[1].load(Relaxed),
            datagrams_replayed: self.datagrams_rejected[2].load(Relaxed),
            datagrams_refused_cache_full: self.datagrams_rejected[3].load(Relaxed),
            buffered_bytes: self.buffered.load(Relaxed),
            timer_entries: self.timer_entries.load(Relaxed),
            closed: std::array::from_fn(|i| self.closed[i].load(Relaxed)),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted (including ones closed at once for the limit).
    pub accepted: u64,
    /// Connections open now.
    pub active: u64,
    /// Frames (or raw chunks) handed to the handler.
    pub frames: u64,
    /// Bytes read from TCP connections.
    pub bytes_in: u64,
    /// Bytes written to TCP connections.
    pub bytes_out: u64,
    /// UDP datagrams received (rejected ones included).
    pub datagrams: u64,
    /// UDP replies dropped because the socket would block.
    pub datagrams_dropped: u64,
    /// Times reading a connection paused because its output passed high-water.
    pub read_pauses: u64,
    /// Times a connection's remaining input waited a turn (fairness cap).
    pub fairness_deferrals: u64,
    /// Times accepting paused after an error such as EMFILE.
    pub accept_pauses: u64,
    /// Messages run from the mailbox.
    pub messages: u64,
    /// Handler timers fired.
    pub timers: u64,
    /// Datagrams dropped for a missing or wrong tag (a key is set).
    pub datagrams_forged: u64,
    /// Datagrams dropped for a time outside the window.
    pub datagrams_stale: u64,
    /// Datagrams dropped as replays.
    pub datagrams_replayed: u64,
    /// Datagrams refused because the replay cache was full.
    pub datagrams_refused_cache_full: u64,
    /// Bytes connections hold in buffers now: queued output and unfinished
    /// frames (`Config::max_buffered` bounds it).
    pub buffered_bytes: u64,
    /// Deadlines in the timer heaps now, stale ones included (bounded by
    /// twice the live ones: see `timer.rs`).
    pub timer_entries: u64,
    closed: [u64; CloseReason::ALL.len()],
}

impl Stats {
    /// Connections closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()]
    }

    /// Datagrams dropped because they failed authentication, any way.
    pub fn datagrams_rejected(&self) -> u64 {
        self.datagrams_forged
            + self.datagrams_stale
            + self.datagrams_replayed
            + self.datagrams_refused_cache_full
    }

    /// Adds another reactor's counters to these.
    pub(crate) fn absorb(&mut self, other: &Stats) {
        self.accepted += other.accepted;
        self.active += other.active;
        self.frames += other.frames;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.datagrams += other.datagrams;
        self.datagrams_dropped += other.datagrams_dropped;
        self.read_pauses += other.read_pauses;
        self.fairness_deferrals += other.fairness_deferrals;
        self.accept_pauses += other.accept_pauses;
        self.messages += other.messages;
        self.timers += other.timers;
        self.datagrams_forged += other.datagrams_forged;
        self.datagrams_stale += other.datagrams_stale;
        self.datagrams_replayed += other.datagrams_replayed;
        self.datagrams_refused_cache_full += other.datagrams_refused_cache_full;
        self.buffered_bytes += other.buffered_bytes;
        self.timer_entries += other.timer_entries;
        for (mine, theirs) in self.closed.iter_mut().zip(other.closed) {
            *mine += theirs;
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {} active {} frames {} bytes in {} out {}",
            self.accepted, self.active, self.frames, self.bytes_in, self.bytes_out
        )?;
        if self.datagrams > 0 {
            write!(
                f,
                " datagrams {} (replies dropped {}, rejected: forged {} stale {} replayed {} cache full {})",
                self.datagrams,
                self.datagrams_dropped,
                self.datagrams_forged,
                self.datagrams_stale,
                self.datagrams_replayed,
                self.datagrams_refused_cache_full
            )?;
        }
        if self.messages > 0 || self.timers > 0 {
            write!(f, " messages {} timers {}", self.messages, self.timers)?;
        }
        write!(
            f,
            "; read pauses {} fairness deferrals {} accept pauses {}; buffered {} timers {}",
            self.read_pauses,
            self.fairness_deferrals,
            self.accept_pauses,
            self.buffered_bytes,
            self.timer_entries
        )?;
        f.write_str("; closed:")?;
        for reason in CloseReason::ALL {
            write!(f, " {} {}", reason, self.closed(reason))?;
        }
        Ok(())
    }
}
