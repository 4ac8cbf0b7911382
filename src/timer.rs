//! Per-connection deadlines, and how long `poll` may sleep.
//!
//! This module owns a min-heap of `(deadline, connection id, kind)`. The
//! reactor asks it for the nearest deadline (to compute the `poll` timeout:
//! no thread, no busy wait) and pops what is due. It never closes anything
//! and never looks at connections.
//!
//! Entries are never removed early ("lazy cancellation"). A connection id
//! carries a generation, so an entry for a connection that closed, or whose
//! slab slot now holds another connection, simply finds nothing when it fires;
//! an entry whose condition changed (an idle timer on a connection that has
//! been talking since) is re-armed by the reactor. That keeps the hot path
//! free of heap operations: reading a frame only stores a timestamp.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::connection::ConnId;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// The client must have answered the challenge.
    Handshake,
    /// The connection must have sent something.
    Idle,
    /// A started frame must be complete.
    Frame,
}

/// The reactor's deadlines, nearest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId, TimerKind)>>,
}

impl Timers {
    pub fn schedule(&mut self, at: Instant, id: ConnId, kind: TimerKind) {
        self.heap.push(Reverse((at, id, kind)));
    }

    /// The nearest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns one entry due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<(ConnId, TimerKind)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.heap.pop().map(|Reverse((_, id, kind))| (id, kind))
            }
            _ => None,
        }
    }

    /// Entries held, fired or not (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_entries_come_out_nearest_first_and_later_ones_stay() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let a = ConnId::new(1, 1);
        let b = ConnId::new(2, 1);
        timers.schedule(t0 + Duration::from_secs(3), a, TimerKind::Idle);
        timers.schedule(t0 + Duration::from_secs(1), b, TimerKind::Handshake);
        timers.schedule(t0 + Duration::from_secs(9), b, TimerKind::Frame);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
        let now = t0 + Duration::from_secs(5);
        assert_eq!(timers.pop_due(now), Some((b, TimerKind::Handshake)));
        assert_eq!(timers.pop_due(now), Some((a, TimerKind::Idle)));
        assert_eq!(timers.pop_due(now), None);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(9)));
    }
}
