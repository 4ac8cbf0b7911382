//! Deadlines: the one timer facility of the reactor, and how long `poll` may sleep.
//!
//! Everything the loop waits for besides sockets is an entry here: each
//! connection's own deadline (handshake, idle, frame, linger, slow reader),
//! the timers handlers set ([`crate::Ctx::set_timer`], [`crate::LoopCtx::set_tick`]),
//! the accept retry after running out of descriptors, the stats line, the
//! shutdown deadline. The reactor asks for the nearest deadline (the `poll`
//! timeout: no thread, no busy wait) and pops what is due. This module never
//! decides what a due entry means and never looks at connections.
//!
//! ```text
//!   heap (min by deadline)           what each entry is for (the reactor's `Due`)
//!   +-------------+-----------+
//!   | 12:00:01.20 | Conn(7.3) |  -> is 7.3 still open, and is this still its deadline?
//!   | 12:00:02.00 | Tick(t1)  |  -> is t1 still set?
//!   | 12:00:05.00 | Shutdown  |
//!   +-------------+-----------+
//! ```
//!
//! Entries are not removed when they stop mattering ("lazy cancellation"):
//! an entry for a connection that closed, or a deadline that moved, is found
//! stale by the reactor when it comes due and dropped. That keeps the hot path
//! free of heap operations (reading a frame only stores a timestamp). So that
//! stale entries cannot pile up (a connection churn of 16,000/s would leave
//! millions), the heap is compacted whenever its entries outnumber the live
//! ones by two to one: stale entries are dropped and the capacity is given
//! back, so memory follows the live timers, not the history.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::connection::ConnId;

/// A point in the loop's time: milliseconds since its [`Clock`] started,
/// plus one.
///
/// Eight bytes where an `Instant` takes sixteen, and `Option<Stamp>` eight
/// too: a connection keeps several of these, and an idle connection should
/// cost about 200 bytes. Millisecond precision is all a timeout needs, and
/// all `epoll_wait` offers anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Stamp(NonZeroU64);

impl Stamp {
    /// `delay` later, rounded up to a whole millisecond (so a deadline never
    /// comes early).
    pub fn after(self, delay: Duration) -> Stamp {
        let millis = delay.as_nanos().div_ceil(1_000_000);
        let millis = u64::try_from(millis).unwrap_or(u64::MAX);
        Stamp(self.0.saturating_add(millis))
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub fn since(self, earlier: Stamp) -> Duration {
        Duration::from_millis(self.0.get().saturating_sub(earlier.0.get()))
    }
}

/// Turns `Instant`s into [`Stamp`]s and back, from the moment it started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// `now` as a stamp (rounded down to the millisecond).
    pub fn stamp(&self, now: Instant) -> Stamp {
        let millis = now.saturating_duration_since(self.epoch).as_millis();
        let millis = u64::try_from(millis).unwrap_or(u64::MAX - 1);
        Stamp(NonZeroU64::MIN.saturating_add(millis))
    }

    /// The `Instant` a stamp stands for.
    pub fn instant(&self, stamp: Stamp) -> Instant {
        self.epoch + Duration::from_millis(stamp.0.get() - 1)
    }
}

/// Entries the heap may hold beyond twice the live ones before a compaction:
/// small heaps are never worth compacting.
const COMPACTION_SLACK: usize = 64;

/// A min-heap of deadlines, each tagged with what it is for.
#[derive(Debug)]
pub(crate) struct Timers<D> {
    heap: BinaryHeap<Reverse<Entry<D>>>,
}

#[derive(Debug)]
struct Entry<D> {
    at: Stamp,
    due: D,
}

// Ordered by deadline only: entries due at the same instant fire in any order.
impl<D> PartialEq for Entry<D> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl<D> Eq for Entry<D> {}
impl<D> PartialOrd for Entry<D> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<D> Ord for Entry<D> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

impl<D> Default for Timers<D> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
        }
    }
}

impl<D> Timers<D> {
    /// Adds a deadline.
    pub fn schedule(&mut self, at: Stamp, due: D) {
        self.heap.push(Reverse(Entry { at, due }));
    }

    /// The nearest deadline, if any (possibly a stale one: waking for it
    /// early is harmless).
    pub fn next_deadline(&self) -> Option<Stamp> {
        self.heap.peek().map(|Reverse(entry)| entry.at)
    }

    /// Removes and returns one entry due at `now`, with its deadline.
    pub fn pop_due(&mut self, now: Stamp) -> Option<(Stamp, D)> {
        match self.heap.peek() {
            Some(Reverse(entry)) if entry.at <= now => {
                self.heap.pop().map(|Reverse(entry)| (entry.at, entry.due))
            }
            _ => None,
        }
    }

    /// Entries held, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether stale entries may now outnumber live ones two to one, given
    /// how many entries could at most be live.
    pub fn needs_compaction(&self, live_at_most: usize) -> bool {
        self.heap.len() > 2 * live_at_most + COMPACTION_SLACK
    }

    /// Drops every entry `live` says is stale, and gives back the capacity
    /// they used (after a burst of connections, the memory goes back too).
    pub fn compact(&mut self, mut live: impl FnMut(Stamp, &D) -> bool) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.retain(|Reverse(entry)| live(entry.at, &entry.due));
        entries.shrink_to(2 * entries.len() + COMPACTION_SLACK);
        self.heap = BinaryHeap::from(entries);
    }
}

/// Names one timer a handler set: [`crate::Ctx::set_timer`] (for a
/// connection) or [`crate::LoopCtx::set_tick`] (for the handler as a whole).
/// Keep it to cancel the timer, or to tell timers apart when one fires.
///
/// Like a [`crate::ConnId`], it carries a generation: an id kept after its
/// timer fired or was cancelled never names a later timer; and it names its
/// reactor, so one carried to another reactor names nothing there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    reactor: u16,
    slot: u32,
    generation: u32,
}

/// A timer a handler set, while it is set.
#[derive(Debug)]
pub(crate) struct HandlerTimer {
    id: TimerId,
    /// The connection it belongs to; `None`: the handler's own (a tick).
    pub owner: Option<ConnId>,
    /// Fires again this long after each firing, until cancelled.
    pub every: Option<Duration>,
}

/// The timers handlers have set and not yet seen fire or cancelled. The
/// heap holds their deadlines; this says which are still wanted.
#[derive(Debug, Default)]
pub(crate) struct HandlerTimers {
    /// The reactor these timers belong to.
    reactor: u16,
    set: Slab<HandlerTimer>,
    next_generation: u32,
    /// Timers whose connection closed before they fired: dropped at the next
    /// [`HandlerTimers::forget_orphans`], so that closed connections cannot
    /// leave timers behind.
    orphans: usize,
}

impl HandlerTimers {
    /// The timers of reactor `reactor`.
    pub fn new(reactor: usize) -> HandlerTimers {
        HandlerTimers {
            reactor: reactor as u16,
            ..HandlerTimers::default()
        }
    }

    /// Records a new timer and returns its id.
    pub fn add(&mut self, owner: Option<ConnId>, every: Option<Duration>) -> TimerId {
        let entry = self.set.vacant_entry();
        let id = TimerId {
            reactor: self.reactor,
            slot: entry.key() as u32,
            generation: self.next_generation,
        };
        self.next_generation = self.next_generation.wrapping_add(1);
        entry.insert(HandlerTimer { id, owner, every });
        id
    }

    /// The timer `id` names, if it is still set.
    pub fn get(&self, id: TimerId) -> Option<&HandlerTimer> {
        self.set.get(id.slot as usize).filter(|t| t.id == id)
    }

    /// Unsets a timer; returns it if it was set.
    pub fn remove(&mut self, id: TimerId) -> Option<HandlerTimer> {
        self.get(id)?;
        Some(self.set.remove(id.slot as usize))
    }

    /// Timers set, orphans included.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Notes that a connection closed with `count` timers still set.
    pub fn orphaned(&mut self, count: usize) {
        self.orphans += count;
    }

    /// Notes that an orphan came due and was dropped.
    pub fn orphan_dropped(&mut self) {
        self.orphans = self.orphans.saturating_sub(1);
    }

    /// Whether orphans are numerous enough to be worth a sweep.
    pub fn has_many_orphans(&self) -> bool {
        self.orphans > self.set.len() / 2 + COMPACTION_SLACK
    }

    /// Drops every timer whose connection is gone.
    pub fn forget_orphans(&mut self, mut open: impl FnMut(ConnId) -> bool) {
        self.set.retain(|_, t| t.owner.is_none_or(&mut open));
        self.set.shrink_to_fit();
        self.orphans = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_deadlines_up_and_now_down() {
        let clock = Clock::start();
        let t0 = clock.stamp(clock.epoch + Duration::from_micros(2_700));
        assert_eq!(t0.since(clock.stamp(clock.epoch)), Duration::from_millis(2));
        let later = t0.after(Duration::from_micros(1));
        assert_eq!(later.since(t0), Duration::from_millis(1), "never early");
        assert!(clock.instant(later) >= clock.instant(t0) + Duration::from_micros(1));
        assert_eq!(std::mem::size_of::<Option<Stamp>>(), 8);
        assert_eq!(
            t0.after(Duration::MAX).since(t0),
            Duration::from_millis(u64::MAX - 3)
        );
    }

    #[test]
    fn due_entries_come_out_nearest_first_and_later_ones_stay() {
        let t0 = Clock::start().stamp(Instant::now());
        let mut timers = Timers::default();
        timers.schedule(t0.after(Duration::from_secs(3)), 'a');
        timers.schedule(t0.after(Duration::from_secs(1)), 'b');
        timers.schedule(t0.after(Duration::from_secs(9)), 'c');
        assert_eq!(
            timers.next_deadline(),
            Some(t0.after(Duration::from_secs(1)))
        );
        let now = t0.after(Duration::from_secs(5));
        assert_eq!(timers.pop_due(now).map(|(_, d)| d), Some('b'));
        assert_eq!(timers.pop_due(now).map(|(_, d)| d), Some('a'));
        assert_eq!(timers.pop_due(now), None);
        assert_eq!(timers.len(), 1);
        assert_eq!(
            timers.next_deadline(),
            Some(t0.after(Duration::from_secs(9)))
        );
    }

    #[test]
    fn compaction_drops_stale_entries_and_gives_the_memory_back() {
        let t0 = Clock::start().stamp(Instant::now());
        let mut timers = Timers::default();
        for i in 0..100_000u32 {
            timers.schedule(t0.after(Duration::from_secs(300)), i);
        }
        // Ten of them still matter (ten connections left after a burst).
        assert!(timers.needs_compaction(10));
        timers.compact(|_, &i| i % 10_000 == 0);
        assert_eq!(timers.len(), 10);
        assert!(timers.heap.capacity() <= 2 * 10 + COMPACTION_SLACK);
        assert!(!timers.needs_compaction(10));
        let mut left = Vec::new();
        while let Some((_, i)) = timers.pop_due(t0.after(Duration::from_secs(301))) {
            left.push(i);
        }
        left.sort();
        assert_eq!(left, (0..10).map(|i| i * 10_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_timer_id_never_names_a_later_timer_in_the_same_slot() {
        let mut timers = HandlerTimers::default();
        let first = timers.add(None, None);
        assert!(timers.remove(first).is_some());
        let second = timers.add(None, None);
        assert!(timers.get(first).is_none());
        assert!(timers.remove(first).is_none());
        assert!(timers.get(second).is_some());
    }

    #[test]
    fn orphans_of_closed_connections_are_forgotten() {
        let mut timers = HandlerTimers::default();
        let (alive, gone) = (ConnId::new(0, 1, 0), ConnId::new(0, 2, 0));
        let kept = timers.add(Some(alive), None);
        for _ in 0..200 {
            timers.add(Some(gone), None);
        }
        timers.orphaned(200);
        assert!(timers.has_many_orphans());
        timers.forget_orphans(|id| id == alive);
        assert_eq!(timers.len(), 1);
        assert!(timers.get(kept).is_some());
        assert!(!timers.has_many_orphans());
    }
}
