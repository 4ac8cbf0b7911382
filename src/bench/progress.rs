//! The collector: merges the workers' intervals into one per second, prints
//! the progress line, keeps the per-second series and the measured total.
//!
//! Intervals are cut at the same instants in every worker (each second from
//! the start, the end of the warm-up, each second after it, the end), so
//! merging is adding. An interval is complete once every worker has sent it
//! or has finished; intervals are printed in order, one line each, on
//! stderr. This module never touches a socket.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use hdrhistogram::Histogram;

use super::failure::Errors;
use super::report::{Second, micros};
use super::worker::Interval;
use super::{Plan, new_histogram};

/// One merged interval, as handed to an observer (the HdrHistogram log).
#[derive(Debug)]
pub struct IntervalView<'a> {
    /// Wall-clock time of the run's start (second 0).
    pub started: SystemTime,
    /// Seconds from the start to the interval's start.
    pub from_s: f64,
    /// The interval's length in seconds.
    pub seconds: f64,
    /// False for the warm-up.
    pub measured: bool,
    /// Latencies in nanoseconds.
    pub histogram: &'a Histogram<u64>,
    /// Verified replies in it.
    pub messages: u64,
    /// Failures in it, by kind.
    pub errors: Errors,
}

/// Merges intervals; see the module docs.
pub(crate) struct Collector<'a> {
    plan: Plan,
    started: SystemTime,
    progress: bool,
    /// Per worker: the start of the last interval it sent, and whether it
    /// finished (it sends nothing after that).
    sent: Vec<Option<Instant>>,
    finished: Vec<bool>,
    pending: BTreeMap<Instant, Interval>,
    errors_so_far: u64,
    /// Every measured interval added up.
    pub total: Histogram<u64>,
    pub series: Vec<Second>,
    observer: &'a mut dyn FnMut(&IntervalView<'_>),
}

impl<'a> Collector<'a> {
    pub(crate) fn new(
        plan: Plan,
        started: SystemTime,
        workers: usize,
        progress: bool,
        observer: &'a mut dyn FnMut(&IntervalView<'_>),
    ) -> Collector<'a> {
        Collector {
            plan,
            started,
            progress,
            sent: vec![None; workers],
            finished: vec![false; workers],
            pending: BTreeMap::new(),
            errors_so_far: 0,
            total: new_histogram(),
            series: Vec::new(),
            observer,
        }
    }

    pub(crate) fn interval(&mut self, interval: Interval) {
        self.sent[interval.worker] = Some(interval.from);
        match self.pending.get_mut(&interval.from) {
            Some(merged) => {
                merged.to = merged.to.max(interval.to);
                merged.messages += interval.messages;
                merged.errors.add(&interval.errors);
                // Same bounds on both sides: adding cannot fail.
                let _ = merged.histogram.add(&interval.histogram);
            }
            None => {
                self.pending.insert(interval.from, interval);
            }
        }
        self.emit_complete();
    }

    pub(crate) fn finished(&mut self, worker: usize) {
        self.finished[worker] = true;
        self.emit_complete();
    }

    fn emit_complete(&mut self) {
        while let Some((&from, _)) = self.pending.first_key_value() {
            let complete = (0..self.sent.len())
                .all(|w| self.finished[w] || self.sent[w].is_some_and(|s| s >= from));
            if !complete {
                return;
            }
            let (_, interval) = self.pending.pop_first().expect("a first entry");
            self.emit(interval);
        }
    }

    fn emit(&mut self, interval: Interval) {
        let measured = interval.from >= self.plan.measure_from;
        let seconds = (interval.to - interval.from).as_secs_f64();
        let from_s = (interval.from - self.plan.start).as_secs_f64();
        let at_s = (interval.to - self.plan.start).as_secs_f64();
        self.errors_so_far += interval.errors.total();
        let h = &interval.histogram;
        let p = |q: f64| (!h.is_empty()).then(|| micros(h.value_at_quantile(q)));
        let rate = match seconds > 0.0 {
            true => interval.messages as f64 / seconds,
            false => 0.0,
        };
        if measured {
            let _ = self.total.add(h);
        }
        if self.progress {
            let p99 = match p(0.99) {
                Some(us) => super::report::human_us(us),
                None => "-".into(),
            };
            let phase = if measured { "" } else { "  (warm-up)" };
            eprintln!(
                "[{at_s:>6.1}s] {:>12} msgs/s  p99 {p99:>9}  errors {}{phase}",
                super::report::thousands(rate),
                self.errors_so_far
            );
        }
        (self.observer)(&IntervalView {
            started: self.started,
            from_s,
            seconds,
            measured,
            histogram: h,
            messages: interval.messages,
            errors: interval.errors,
        });
        self.series.push(Second {
            at_s,
            seconds,
            warmup: !measured,
            messages: interval.messages,
            msgs_per_sec: rate,
            p50_us: p(0.5),
            p99_us: p(0.99),
            errors: interval.errors.total(),
        });
    }
}
