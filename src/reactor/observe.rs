//! Watching turns: the summary line and the recording (see `trace.rs`).
//! Nothing here runs unless one of them is on.

use std::time::Instant;

use log::{debug, log_enabled};
use mio::Events;

use super::{LISTENER, Reactor};
use crate::connection::ConnId;
use crate::handler::Handler;
use crate::stats::Stats;
use crate::trace::{Sample, SpanKind, TURN_TARGET, Tally};

/// What a watched turn looked like when it began.
pub(super) struct Watch {
    began: Instant,
    counters: Stats,
    tally: Tally,
}

impl<H: Handler> Reactor<H> {
    /// Starts watching this turn, if a summary or a recording wants it.
    /// (Boxed: the common answer, `None`, is then one word, not a copy of
    /// the counters.)
    #[inline]
    pub(super) fn watch_turn(&mut self) -> Option<Box<Watch>> {
        if self.recorder.is_none() && !log_enabled!(target: TURN_TARGET, log::Level::Debug) {
            return None;
        }
        Some(Box::new(Watch {
            began: Instant::now(),
            counters: self.counters.snapshot(),
            tally: self.tally,
        }))
    }

    /// A watched turn ended: log its summary, record its poll span and
    /// counters, and end the recording when its window is over.
    pub(super) fn end_turn(&mut self, watch: Box<Watch>, events: &Events) {
        let now = self.counters.snapshot();
        let (mut accepts, mut conns, mut others) = (0, 0, 0);
        for event in events.iter() {
            match event.token() {
                LISTENER => accepts += 1,
                token if token.0 >= crate::connection::FIRST_CONNECTION_TOKEN => conns += 1,
                _ => others += 1,
            }
        }
        debug!(
            target: TURN_TARGET,
            "reactor {}: waited {:.3} ms for {} events ({accepts} listener, {conns} connection, \
             {others} other); {} reads, {} frames, {} bytes written; {} timers; {} open",
            self.index,
            self.woke_at.saturating_duration_since(watch.began).as_secs_f64() * 1e3,
            accepts + conns + others,
            self.tally.reads - watch.tally.reads,
            now.frames - watch.counters.frames,
            now.bytes_out - watch.counters.bytes_out,
            self.tally.timers - watch.tally.timers,
            self.conns.len(),
        );
        let (open, buffered) = (self.conns.len() as u64, self.buffered as u64);
        let Some(recorder) = &mut self.recorder else {
            return;
        };
        recorder.span_between(SpanKind::Poll, None, watch.began, self.woke_at);
        let over = recorder.turn_ends(|at| Sample {
            at,
            open,
            buffered,
            frames: now.frames,
            bytes_out: now.bytes_out,
        });
        if over {
            self.stop_recording();
        }
    }

    /// Hands the recording, if one is running, to its sink.
    pub(super) fn stop_recording(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            recorder.finish();
        }
    }

    /// Runs `body`, recorded as a span of `kind` if a recording is running.
    pub(super) fn spanning(&mut self, kind: SpanKind, body: impl FnOnce(&mut Self)) {
        let mark = self.mark();
        body(self);
        if mark.is_some() {
            self.spanned(kind, None, mark);
        }
    }

    /// The start of a span, if a recording is running.
    pub(super) fn mark(&self) -> Option<Instant> {
        self.recorder.as_ref().map(|_| Instant::now())
    }

    /// The span begun at `mark` ends now.
    pub(super) fn spanned(&mut self, kind: SpanKind, conn: Option<ConnId>, mark: Option<Instant>) {
        if let (Some(recorder), Some(start)) = (&mut self.recorder, mark) {
            recorder.span(kind, conn, start);
        }
    }
}
