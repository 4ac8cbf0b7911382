//! The load generator behind `frameloop bench`: many concurrent clients of
//! an echo server, and numbers a benchmarker can trust.
//!
//! This module owns one run from start to end: check the settings, start the
//! embedded server if there is no `--addr`, connect every connection (before
//! any clock starts), then run the warm-up and the measured window and add
//! up what the threads report. It never shares code paths with the server's
//! loop, so a bug in one cannot hide in the other; it does share the frame
//! codec (`frame.rs`) and the challenge answer (`auth.rs`).
//!
//! ```text
//!  connect all ──► start ──── warm-up ────► measure_from ──── measured ────► end
//!  (not timed)      │  1 s  │  1 s  │ ..     │  1 s  │  1 s  │ ..  (may end early)
//!                   └ an interval per second, cut at the same instants in
//!                     every thread, merged by `progress.rs` into one line
//! ```
//!
//! The files:
//! - `worker.rs`: one thread's poll loop: connections, requests in flight,
//!   replies, latency per interval;
//! - `payload.rs`: what a request holds and how a reply is checked;
//! - `failure.rs`: error kinds that name causes;
//! - `progress.rs`: merging intervals, progress lines, the series;
//! - `report.rs`: the summary as text, JSON and CSV;
//! - `embedded.rs`: the embedded server on a core of its own;
//! - `sweep.rs`, `plot.rs`, `hdr_log.rs`: runs over a list of values, SVG
//!   pictures, HdrHistogram interval logs.

mod embedded;
mod failure;
pub mod hdr_log;
mod payload;
pub mod plot;
mod progress;
mod report;
pub mod sweep;
mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;

pub use failure::{ErrorKind, Errors};
pub use payload::{Verify, payload_into};
pub use progress::IntervalView;
pub use report::{End, Latency, Owed, RateCheck, Report, RunConfig, Second};
pub use report::{human_us, percentile_name, thousands};

use crate::config::{Codec, fd_soft_limit};
use worker::{Note, Stop, Worker};

/// What to run. `Default` is `frameloop bench` with no flags.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Server to load (already resolved); `None` starts an embedded echo
    /// server on 127.0.0.1:0.
    pub addr: Option<SocketAddr>,
    /// Concurrent connections.
    pub connections: usize,
    /// Payload bytes per request.
    pub size: usize,
    /// Requests in flight per connection (closed loop).
    pub depth: usize,
    /// How long to measure (with `requests`, at most this long).
    pub duration: Duration,
    /// Run this long before measuring (connections warm up, caches fill).
    pub warmup: Duration,
    /// Client threads, each with its own poll loop.
    pub threads: usize,
    /// Length-prefixed frames, or raw byte echo.
    pub codec: Codec,
    /// Answer the server's HMAC challenge with this key.
    pub key: Option<crate::Key>,
    /// Open loop: total requests per second over all connections.
    pub rate: Option<f64>,
    /// Stop after this many verified replies in the measured window.
    pub requests: Option<u64>,
    /// How replies are checked.
    pub verify: Verify,
    /// A request unanswered this long fails its connection; also the limit
    /// for a connect and for the challenge.
    pub timeout: Duration,
    /// Latency percentiles to report (100 is the maximum).
    pub percentiles: Vec<f64>,
    /// Pin the embedded server and the bench threads to separate cores.
    pub pin: bool,
    /// Print a progress line to stderr every second.
    pub progress: bool,
}

/// The default `--percentiles`.
pub const DEFAULT_PERCENTILES: [f64; 6] = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0];

/// The most requests in flight per connection: far beyond what a socket
/// buffer holds.
pub const MAX_DEPTH: usize = 1 << 20;

/// The longest `--duration`, `--warmup` or `--timeout` taken: far beyond
/// any benchmark, and far below where adding it to a clock could overflow.
pub const MAX_SPAN: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            addr: None,
            connections: 100,
            size: 64,
            depth: 1,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            threads: 1,
            codec: Codec::Frame,
            key: None,
            rate: None,
            requests: None,
            verify: Verify::Echo,
            timeout: Duration::from_secs(5),
            percentiles: DEFAULT_PERCENTILES.to_vec(),
            pin: true,
            progress: true,
        }
    }
}

/// Why a benchmark could not run at all.
#[derive(Debug)]
pub enum BenchError {
    /// Not enough file descriptors for the connections asked for.
    FdLimit {
        /// Descriptors the run needs (connections, an embedded server's,
        /// and some to spare).
        needed: u64,
        /// The soft limit (`ulimit -n`).
        limit: u64,
    },
    /// A flag combination that cannot work.
    Invalid(String),
    /// The embedded server, a thread or the poller could not start.
    Setup(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::FdLimit { needed, limit } => write!(
                f,
                "this run needs about {needed} file descriptors but the limit is {limit}; \
                 raise it (ulimit -n {needed}) or use fewer --connections"
            ),
            BenchError::Invalid(why) | BenchError::Setup(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for BenchError {}

/// The phases of a run, for counting errors apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connecting, before the clock.
    Setup = 0,
    Warmup = 1,
    Measured = 2,
}

/// The instants of one run, shared by every thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub start: Instant,
    pub measure_from: Instant,
    pub end: Instant,
}

/// Interval length for the progress lines and the series.
const TICK: Duration = Duration::from_secs(1);

impl Plan {
    /// `validate` keeps both spans under [`MAX_SPAN`], so this cannot
    /// overflow; `None` all the same rather than a panic.
    fn new(start: Instant, warmup: Duration, duration: Duration) -> Option<Plan> {
        let measure_from = start.checked_add(warmup)?;
        let end = measure_from.checked_add(duration)?;
        Some(Plan {
            start,
            measure_from,
            end,
        })
    }

    /// The first interval boundary after `t`: every second from the start,
    /// the warm-up's end, every second after it, the end.
    fn boundary_after(&self, t: Instant) -> Instant {
        let (base, limit) = match t < self.measure_from {
            true => (self.start, self.measure_from),
            false => (self.measure_from, self.end),
        };
        let ticks = t.saturating_duration_since(base).as_nanos() / TICK.as_nanos() + 1;
        let next = u32::try_from(ticks)
            .ok()
            .and_then(|n| TICK.checked_mul(n))
            .and_then(|d| base.checked_add(d));
        next.map_or(limit, |next| next.min(limit))
    }
}

/// A histogram for latencies in nanoseconds: 1 ns to an hour, 3 digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// Runs a benchmark to completion.
pub fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    run_observed(config, &mut |_| {})
}

/// Runs a benchmark, handing each merged interval (warm-up ones included)
/// to `observer` as it completes: how the HdrHistogram log is written.
pub fn run_observed(
    config: &BenchConfig,
    observer: &mut dyn FnMut(&IntervalView<'_>),
) -> Result<Report, BenchError> {
    validate(config)?;
    let embedded = match config.addr {
        Some(_) => None,
        None => Some(embedded::start(config)?),
    };
    let addr = match (&embedded, config.addr) {
        (Some(e), _) => e.server.addr(),
        (None, Some(addr)) => addr,
        (None, None) => unreachable!("an address or an embedded server"),
    };
    let bench_cores = embedded
        .as_ref()
        .map(|e| e.bench_cores.clone())
        .unwrap_or_default();

    let (notes_tx, notes) = mpsc::channel::<Note>();
    let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
    let mut plans = Vec::new();
    let mut threads = Vec::new();
    for t in 0..config.threads {
        let mine = share(config.connections as u64, config.threads, t) as usize;
        let first_id = (0..t)
            .map(|u| share(config.connections as u64, config.threads, u) as usize)
            .sum::<usize>();
        let quota = config.requests.map(|n| share(n, config.threads, t));
        let (plan_tx, plan_rx) = mpsc::channel::<Plan>();
        plans.push(plan_tx);
        let (config, notes_tx, ready_tx) = (config.clone(), notes_tx.clone(), ready_tx.clone());
        let core = (!bench_cores.is_empty()).then(|| bench_cores[t % bench_cores.len()]);
        let thread = std::thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                let worker = Worker::connect(t, &config, addr, first_id, mine, quota);
                // Said once, and the sender dropped at once: a thread that
                // dies before it is ready leaves the main thread no sender to
                // wait on forever.
                let said = ready_tx.send(
                    worker
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| format!("cannot start a poller: {e}")),
                );
                drop(ready_tx);
                let (Ok(worker), Ok(())) = (worker, said) else {
                    return;
                };
                // The clock starts once every thread has connected: 10,000
                // connects take a while, and count as neither warm-up nor
                // measured time.
                if let Ok(plan) = plan_rx.recv() {
                    worker.run(plan, config.rate, config.connections, &notes_tx);
                }
            })
            .map_err(|e| BenchError::Setup(format!("cannot start a thread: {e}")))?;
        threads.push(thread);
    }
    drop((notes_tx, ready_tx));
    for _ in 0..config.threads {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(BenchError::Setup(why)),
            Err(_) => return Err(BenchError::Setup("a benchmark thread died".into())),
        }
    }
    let started = SystemTime::now();
    let plan = Plan::new(Instant::now(), config.warmup, config.duration)
        .ok_or_else(|| BenchError::Invalid("--warmup plus --duration is too long".into()))?;
    for tx in &plans {
        let _ = tx.send(plan);
    }

    let mut collector =
        progress::Collector::new(plan, started, config.threads, config.progress, observer);
    let mut outcomes = Vec::new();
    while outcomes.len() < config.threads {
        match notes.recv() {
            Ok(Note::Interval(interval)) => collector.interval(interval),
            Ok(Note::Finished(worker, outcome)) => {
                collector.finished(worker);
                outcomes.push(*outcome);
            }
            Err(_) => return Err(BenchError::Setup("a benchmark thread panicked".into())),
        }
    }
    for thread in threads {
        thread
            .join()
            .map_err(|_| BenchError::Setup("a benchmark thread panicked".into()))?;
    }

    // Connections closed before any reply: too large a request, or a
    // server that closes everything? A small request on a fresh connection
    // tells, when the codec has a size to be too large for.
    let mut closed_early = [0u64; 3];
    for o in &outcomes {
        for (sum, n) in closed_early.iter_mut().zip(o.closed_before_reply) {
            *sum += n;
        }
    }
    let early_kind = match closed_early.iter().sum::<u64>() > 0
        && config.codec == Codec::Frame
        && config.size > 1
        && probe_small_request(addr, config)
    {
        true => ErrorKind::Oversize,
        false => ErrorKind::ServerClosed,
    };
    let pinning = embedded.as_ref().and_then(|e| e.pinning.clone());
    drop(embedded);

    let progress::Collector { total, series, .. } = collector;
    Ok(summarize(
        config,
        plan,
        outcomes,
        closed_early,
        early_kind,
        total,
        series,
        pinning,
    ))
}

/// Adds up the workers' outcomes into the report.
#[allow(clippy::too_many_arguments)]
fn summarize(
    config: &BenchConfig,
    plan: Plan,
    outcomes: Vec<worker::Outcome>,
    closed_early: [u64; 3],
    early_kind: ErrorKind,
    histogram: Histogram<u64>,
    series: Vec<Second>,
    pinning: Option<String>,
) -> Report {
    let mut errors = [Errors::default(); 3];
    let (mut messages, mut sent, mut received, mut owed, mut lost) = (0, 0, 0, 0, 0);
    let mut oldest: Option<Duration> = None;
    let mut last_stop = plan.start;
    for o in &outcomes {
        for (sum, e) in errors.iter_mut().zip(&o.errors) {
            sum.add(e);
        }
        messages += o.messages;
        sent += o.bytes_sent;
        received += o.bytes_received;
        owed += o.owed;
        lost += o.lost;
        oldest = oldest.max(o.oldest_owed);
        last_stop = last_stop.max(o.stopped_at);
    }
    for (phase, n) in closed_early.iter().enumerate() {
        for _ in 0..*n {
            errors[phase].count(early_kind);
        }
    }
    let ended = if outcomes.iter().any(|o| o.stop == Stop::Deadline) {
        End::Duration
    } else if outcomes.iter().any(|o| o.stop == Stop::Requests) {
        End::Requests
    } else if errors[Phase::Setup as usize].total() >= config.connections as u64 {
        End::NoConnection
    } else {
        End::ConnectionsGone
    };
    // The window is what really was: from the warm-up's end to the last
    // thread's stop (never past the end, never before the start).
    let measured_to = last_stop.clamp(plan.measure_from, plan.end);
    let seconds = (measured_to - plan.measure_from).as_secs_f64();
    let per_sec = |n: u64| match seconds > 0.0 {
        true => n as f64 / seconds,
        false => 0.0,
    };
    let latency = (!histogram.is_empty()).then(|| {
        let percentiles: Vec<(f64, f64)> = config
            .percentiles
            .iter()
            .map(|&p| {
                let nanos = match p >= 100.0 {
                    true => histogram.max(),
                    false => histogram.value_at_percentile(p),
                };
                (p, report::micros(nanos))
            })
            .collect();
        // `max` is a field of its own.
        let by_name: BTreeMap<String, f64> = percentiles
            .iter()
            .filter(|(p, _)| *p < 100.0)
            .map(|&(p, us)| (percentile_name(p), us))
            .collect();
        Latency {
            min: report::micros(histogram.min()),
            mean: histogram.mean() / 1000.0,
            stdev: histogram.stdev() / 1000.0,
            max: report::micros(histogram.max()),
            percentiles,
            by_name,
        }
    });
    let msgs_per_sec = per_sec(messages);
    Report {
        config: RunConfig {
            addr: config.addr.map(|a| a.to_string()),
            connections: config.connections,
            size: config.size,
            depth: config.depth,
            threads: config.threads,
            codec: RunConfig::codec_name(config.codec),
            verify: config.verify,
            keyed: config.key.is_some(),
            rate: config.rate,
            requests: config.requests,
            duration_s: config.duration.as_secs_f64(),
            warmup_s: config.warmup.as_secs_f64(),
            timeout_s: config.timeout.as_secs_f64(),
            percentiles: config.percentiles.clone(),
            pinning,
        },
        seconds,
        ended,
        messages,
        msgs_per_sec,
        bytes_sent: sent,
        bytes_received: received,
        mb_per_sec_sent: per_sec(sent) / 1e6,
        mb_per_sec_received: per_sec(received) / 1e6,
        rate: config.rate.map(|target| RateCheck {
            target,
            achieved: msgs_per_sec,
            reached: msgs_per_sec >= 0.95 * target,
        }),
        latency_us: latency,
        owed: Owed {
            requests: owed,
            oldest_us: oldest.map(|d| d.as_nanos() as f64 / 1000.0),
            in_latency: config.rate.is_some(),
        },
        lost,
        errors: errors[Phase::Measured as usize],
        warmup_errors: errors[Phase::Warmup as usize],
        setup_errors: errors[Phase::Setup as usize],
        series,
        measured_from: plan.measure_from,
        measured_to,
        histogram,
    }
}

/// True if the server echoes a one-byte request on a fresh connection.
fn probe_small_request(addr: SocketAddr, config: &BenchConfig) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = std::net::TcpStream::connect_timeout(&addr, config.timeout)?;
        stream.set_read_timeout(Some(config.timeout))?;
        if let Some(key) = &config.key {
            crate::auth::answer_challenge(&mut stream, key.as_bytes())?;
        }
        crate::frame::write_frame(&mut stream, b"?")?;
        Ok(!crate::frame::read_frame(&mut stream, 1 << 16)?.is_empty())
    };
    attempt().unwrap_or(false)
}

fn validate(config: &BenchConfig) -> Result<(), BenchError> {
    let invalid = |why: String| Err(BenchError::Invalid(why));
    if config.connections == 0 || config.threads == 0 || config.depth == 0 {
        return invalid("--connections, --threads and --depth must be at least 1".into());
    }
    if config.threads > config.connections {
        return invalid("--threads must not exceed --connections".into());
    }
    if u32::try_from(config.connections).is_err() {
        return invalid("--connections must fit in 32 bits".into());
    }
    if config.depth > MAX_DEPTH {
        return invalid(format!("--depth must be at most {MAX_DEPTH}"));
    }
    // Each connection sends once per `connections / rate` seconds: that
    // interval must be a real, non-zero duration (at least a microsecond).
    if let Some(rate) = config.rate {
        let interval = Duration::try_from_secs_f64(config.connections as f64 / rate);
        if !interval.is_ok_and(|i| i >= Duration::from_micros(1) && i <= MAX_SPAN) {
            return invalid(format!(
                "--rate must be a positive number of at most {} msgs/s for {} connections",
                config.connections as u64 * 1_000_000,
                config.connections
            ));
        }
    }
    for (flag, span) in [
        ("--duration", config.duration),
        ("--warmup", config.warmup),
        ("--timeout", config.timeout),
    ] {
        if span > MAX_SPAN {
            return invalid(format!(
                "{flag} {} s is too long: at most {} s (10 years)",
                span.as_secs(),
                MAX_SPAN.as_secs()
            ));
        }
    }
    if config.duration.is_zero() {
        return invalid("--duration must be above zero".into());
    }
    if config.timeout.is_zero() {
        return invalid("--timeout must be above zero".into());
    }
    if config.requests == Some(0) {
        return invalid("--requests must be at least 1".into());
    }
    if let Some(p) = config
        .percentiles
        .iter()
        .find(|p| !(**p > 0.0 && **p <= 100.0))
    {
        return invalid(format!(
            "--percentiles: {p} is not in (0, 100] (write max for 100)"
        ));
    }
    // A raw echo of nothing is no reply at all: the bench would wait forever
    // for a zero-byte "reply" that never arrives (and count it endlessly).
    if config.codec == Codec::Raw && config.size == 0 {
        return invalid("--size must be at least 1 with --codec raw".into());
    }
    if u32::try_from(config.size).is_err() {
        return invalid(format!(
            "--size {} does not fit the 4-byte length header",
            config.size
        ));
    }
    // Each connection is one descriptor here, and one more in an embedded
    // server; 64 more for the process itself.
    let per_connection = if config.addr.is_none() { 2 } else { 1 };
    let needed = config.connections as u64 * per_connection + 64;
    match fd_soft_limit() {
        Some(limit) if limit < needed => Err(BenchError::FdLimit { needed, limit }),
        _ => Ok(()),
    }
}

/// Thread `t`'s share when `n` are spread over `threads`.
fn share(n: u64, threads: usize, t: usize) -> u64 {
    let threads = threads as u64;
    n / threads + u64::from((t as u64) < n % threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_shared_out_evenly() {
        let shares: Vec<u64> = (0..3).map(|t| share(10, 3, t)).collect();
        assert_eq!(shares, vec![4, 3, 3]);
    }

    #[test]
    fn intervals_are_cut_each_second_and_at_the_warmup_end() {
        let start = Instant::now();
        let plan = Plan::new(start, Duration::from_millis(1500), Duration::from_secs(2)).unwrap();
        let mut at = start;
        let mut cuts = Vec::new();
        while at < plan.end {
            at = plan.boundary_after(at);
            cuts.push((at - start).as_millis());
        }
        assert_eq!(cuts, [1000, 1500, 2500, 3500]);
    }
}
