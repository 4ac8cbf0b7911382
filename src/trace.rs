//! Watching the loop: what each turn did, as a log line or a timeline.
//!
//! `RUST_LOG=trace` says what every step does, one line each: readable for
//! one connection, a blur at 100,000 events a second. This module records
//! *turns* instead, two ways:
//!
//! - a **turn summary**, one log line per turn on the target
//!   [`TURN_TARGET`] (`RUST_LOG=frameloop::turn=debug` selects it alone):
//!   how long `poll` waited, the events by kind, reads, frames, bytes
//!   written, timers fired, connections open;
//! - a **recording** of a bounded window ([`Window`]): a span for each `poll`
//!   wait and for each connection's read, dispatch and write, and the
//!   counters sampled once a turn. `frameloop serve --trace FILE` writes it
//!   as a Chrome trace (open it in <https://ui.perfetto.dev> or
//!   `chrome://tracing`): the loop sleeping, waking, and serving connections
//!   one after another.
//!
//! Neither costs anything when off: the reactor checks once per turn whether
//! the summary is wanted (a level comparison), and once per span whether a
//! recording is running (an `Option`), and reads no clock otherwise.

use std::time::{Duration, Instant};

use crate::connection::ConnId;

/// The log target of the turn summaries.
pub const TURN_TARGET: &str = "frameloop::turn";

/// Spans a recording keeps at most (about 64 MiB): a window too long for it
/// ends early, and says so.
pub const MAX_SPANS: usize = 1 << 20;

/// How much of the loop to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// This many turns, from the first.
    Turns(u64),
    /// This long, from the start.
    Duration(Duration),
}

/// What a span of the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpanKind {
    /// Waiting in `poll`: the loop asleep.
    Poll,
    /// One `read` from a connection.
    Read,
    /// Its bytes through the decoder and the handler.
    Dispatch,
    /// Writing its replies (or flushing its queue).
    Write,
    /// Accepting new connections.
    Accept,
    /// Firing due timers.
    Timers,
    /// Answering datagrams.
    Datagrams,
    /// Running messages from the mailbox.
    Messages,
}

impl SpanKind {
    /// The span's name on the timeline.
    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Poll => "poll",
            SpanKind::Read => "read",
            SpanKind::Dispatch => "dispatch",
            SpanKind::Write => "write",
            SpanKind::Accept => "accept",
            SpanKind::Timers => "timers",
            SpanKind::Datagrams => "datagrams",
            SpanKind::Messages => "messages",
        }
    }
}

/// One span: what, for which connection, when (from the recording's
/// start) and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// What it is.
    pub kind: SpanKind,
    /// The connection it was for, if any.
    pub conn: Option<ConnId>,
    /// When it began, since the recording started.
    pub start: Duration,
    /// How long it took.
    pub duration: Duration,
    /// The turn it belongs to.
    pub turn: u64,
}

/// The counters at the end of one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When, since the recording started.
    pub at: Duration,
    /// Connections open.
    pub open: u64,
    /// Bytes held in buffers.
    pub buffered: u64,
    /// Frames handed to the handler so far.
    pub frames: u64,
    /// Bytes written so far.
    pub bytes_out: u64,
}

/// What one reactor recorded.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// The reactor (0 with one).
    pub reactor: usize,
    /// Turns recorded.
    pub turns: u64,
    /// The spans, in the order they ended.
    pub spans: Vec<Span>,
    /// The counters, once a turn.
    pub samples: Vec<Sample>,
    /// Whether the window ended early because [`MAX_SPANS`] was reached.
    pub truncated: bool,
}

/// Where a finished recording goes (the command line writes a file).
pub type Sink = std::sync::Arc<dyn Fn(Recording) + Send + Sync>;

/// A recording in progress, inside a reactor.
pub(crate) struct Recorder {
    started: Instant,
    window: Window,
    recording: Recording,
    sink: Sink,
}

impl Recorder {
    pub fn new(reactor: usize, window: Window, sink: Sink) -> Recorder {
        let now = Instant::now();
        Recorder {
            started: now,
            window,
            recording: Recording {
                reactor,
                ..Recording::default()
            },
            sink,
        }
    }

    /// A span that began at `start` ends now.
    pub fn span(&mut self, kind: SpanKind, conn: Option<ConnId>, start: Instant) {
        self.span_between(kind, conn, start, Instant::now());
    }

    /// A span from `start` to `end`.
    pub fn span_between(
        &mut self,
        kind: SpanKind,
        conn: Option<ConnId>,
        start: Instant,
        end: Instant,
    ) {
        if self.recording.spans.len() >= MAX_SPANS {
            self.recording.truncated = true;
            return;
        }
        self.recording.spans.push(Span {
            kind,
            conn,
            start: start.saturating_duration_since(self.started),
            duration: end.saturating_duration_since(start),
            turn: self.recording.turns,
        });
    }

    /// A turn ended with these counters. Returns whether the window is over.
    pub fn turn_ends(&mut self, sample: impl FnOnce(Duration) -> Sample) -> bool {
        let at = self.started.elapsed();
        self.recording.samples.push(sample(at));
        self.recording.turns += 1;
        self.recording.truncated
            || match self.window {
                Window::Turns(n) => self.recording.turns >= n,
                Window::Duration(d) => at >= d,
            }
    }

    /// Hands the recording to its sink.
    pub fn finish(self) {
        (self.sink)(self.recording);
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("window", &self.window)
            .field("spans", &self.recording.spans.len())
            .finish_non_exhaustive()
    }
}

/// What one turn did, for its summary line: the loop's own tallies, and the
/// counters' values when the turn began.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    /// `read` calls on connections.
    pub reads: u64,
    /// Deadlines that came due (of any kind).
    pub timers: u64,
}
