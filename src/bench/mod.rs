//! The load generator behind `frameloop bench`: many concurrent echo clients.
//!
//! This module owns the client side of a benchmark: connecting (and
//! authenticating), keeping `depth` requests in flight per connection or
//! sending at a fixed rate, checking every echoed byte, and measuring latency
//! into an HdrHistogram. It never shares code paths with the server's loop,
//! so a bug in one cannot hide in the other.
//!
//! Each thread runs its own `mio::Poll` over its share of the connections.
//! Closed loop (the default): each connection keeps `depth` requests in
//! flight; when replies arrive it reads all that is there, checks them, and
//! sends the replacements in one write. Open loop (`rate`): every connection
//! sends on a fixed schedule whether or not replies came back, and latency is
//! measured from the *scheduled* send time, so a stalled server shows up as
//! latency instead of hiding as fewer requests (no coordinated omission).
//!
//! Every payload is derived from its connection id and sequence number:
//!
//! ```text
//! +--------------+----------------------+--------------------------------+
//! | conn id: u32 | sequence: u64        | filler: f(id, seq, i)           |
//! +--------------+----------------------+--------------------------------+
//!  (cut to `size` bytes; framed with the usual 4-byte length unless raw)
//! ```
//! so any byte out of place is a mismatch, whatever the server did.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::config::{Codec, Config, fd_soft_limit};
use crate::frame::{DEFAULT_MAX_FRAME, HEADER_LEN};
use crate::{Echo, auth};

/// What to run. `Default` is `frameloop bench` with no flags.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Server to load; `None` starts an embedded echo server on 127.0.0.1:0.
    pub addr: Option<SocketAddr>,
    pub connections: usize,
    /// Payload bytes per request.
    pub size: usize,
    /// Requests in flight per connection (closed loop).
    pub depth: usize,
    pub duration: Duration,
    /// Run this long before measuring (connections warm up, caches fill).
    pub warmup: Duration,
    pub threads: usize,
    pub codec: Codec,
    /// Answer the server's HMAC challenge with this key.
    pub key: Option<crate::Key>,
    /// Open loop: total requests per second over all connections.
    pub rate: Option<f64>,
    /// Print a progress line to stderr every second.
    pub progress: bool,
}

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
            progress: true,
        }
    }
}

/// Why a benchmark could not run at all.
#[derive(Debug)]
pub enum BenchError {
    /// Not enough file descriptors for the connections asked for.
    FdLimit { needed: u64, limit: u64 },
    /// A flag combination that cannot work.
    Invalid(String),
    /// The embedded server or the poller could not start.
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

/// Failures, counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Errors {
    /// Connections that could not be opened, or that the server closed
    /// before their first reply (a wrong key, its connection limit).
    pub connect: u64,
    /// Replies whose bytes differ from the request.
    pub mismatch: u64,
    /// Connections the server closed with replies still owed.
    pub short_reply: u64,
    /// Resets, broken pipes and other socket errors.
    pub reset: u64,
}

impl Errors {
    fn add(&mut self, other: Errors) {
        self.connect += other.connect;
        self.mismatch += other.mismatch;
        self.short_reply += other.short_reply;
        self.reset += other.reset;
    }

    pub fn total(&self) -> u64 {
        self.connect + self.mismatch + self.short_reply + self.reset
    }
}

/// What a benchmark measured (the measured window only, warm-up excluded).
#[derive(Debug, Clone)]
pub struct Report {
    pub connections: usize,
    pub size: usize,
    pub depth: usize,
    pub threads: usize,
    pub rate: Option<f64>,
    pub seconds: f64,
    /// Replies received and checked.
    pub messages: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Latency percentiles in microseconds: p50, p90, p99, p99.9, max.
    pub latency_us: [f64; 5],
    pub errors: Errors,
}

impl Report {
    pub fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        let [p50, p90, p99, p999, max] = self.latency_us;
        format!(
            concat!(
                "{{\"connections\":{},\"size\":{},\"depth\":{},\"threads\":{},\"rate\":{},",
                "\"seconds\":{:.3},\"messages\":{},\"msgs_per_sec\":{:.1},",
                "\"mb_per_sec_sent\":{:.3},\"mb_per_sec_received\":{:.3},",
                "\"latency_us\":{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"p99_9\":{:.1},\"max\":{:.1}}},",
                "\"errors\":{{\"connect\":{},\"mismatch\":{},\"short_reply\":{},\"reset\":{}}}}}"
            ),
            self.connections,
            self.size,
            self.depth,
            self.threads,
            self.rate.map_or("null".to_string(), |r| format!("{r}")),
            self.seconds,
            self.messages,
            self.msgs_per_sec(),
            self.bytes_sent as f64 / self.seconds / 1e6,
            self.bytes_received as f64 / self.seconds / 1e6,
            p50,
            p90,
            p99,
            p999,
            max,
            self.errors.connect,
            self.errors.mismatch,
            self.errors.short_reply,
            self.errors.reset,
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [p50, p90, p99, p999, max] = self.latency_us;
        let mode = match self.rate {
            Some(rate) => format!("open loop at {rate} msgs/s"),
            None => format!("depth {}", self.depth),
        };
        writeln!(
            f,
            "{} connections, {}-byte payloads, {mode}, {} thread(s), {:.1} s measured",
            self.connections, self.size, self.threads, self.seconds
        )?;
        writeln!(f, "  msgs/s        {:>12.0}", self.msgs_per_sec())?;
        writeln!(
            f,
            "  MB/s sent     {:>12.2}",
            self.bytes_sent as f64 / self.seconds / 1e6
        )?;
        writeln!(
            f,
            "  MB/s received {:>12.2}",
            self.bytes_received as f64 / self.seconds / 1e6
        )?;
        writeln!(
            f,
            "  latency us    p50 {p50:.1}  p90 {p90:.1}  p99 {p99:.1}  p99.9 {p999:.1}  max {max:.1}"
        )?;
        let e = self.errors;
        write!(
            f,
            "  errors        connect {}  mismatch {}  short reply {}  reset {}",
            e.connect, e.mismatch, e.short_reply, e.reset
        )
    }
}

/// Runs a benchmark to completion.
pub fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    validate(config)?;
    let embedded = match config.addr {
        Some(_) => None,
        None => Some(start_embedded(config)?),
    };
    let addr = match (&embedded, config.addr) {
        (Some(server), _) => server.addr(),
        (None, Some(addr)) => addr,
        (None, None) => unreachable!("an address or an embedded server"),
    };
    // Every reply checked so far, warm-up included: the progress lines.
    let replies = Arc::new(AtomicU64::new(0));
    // The clock starts once every thread has connected: 10,000 connects take
    // a while, and must count neither as warm-up nor as measured time.
    let connected = Arc::new(Barrier::new(config.threads + 1));

    let workers: Vec<_> = (0..config.threads)
        .map(|t| {
            let mine = share(config.connections, config.threads, t);
            let first_id = (0..t)
                .map(|u| share(config.connections, config.threads, u))
                .sum::<usize>();
            let (config, replies) = (config.clone(), replies.clone());
            let connected = connected.clone();
            std::thread::Builder::new()
                .name(format!("bench-{t}"))
                .spawn(move || {
                    let worker = Worker::new(&config, addr, first_id, mine);
                    connected.wait();
                    let start = Instant::now();
                    let measure_from = start + config.warmup;
                    worker.and_then(|w| w.run(measure_from, config.duration, &replies))
                })
                .map_err(|e| BenchError::Setup(format!("cannot start a thread: {e}")))
        })
        .collect::<Result<_, _>>()?;

    connected.wait();
    let start = Instant::now();
    if config.progress {
        report_progress(&replies, start, config.warmup, config.duration, &workers);
    }
    let mut histogram = new_histogram();
    let mut totals = Totals::default();
    for worker in workers {
        let result = worker
            .join()
            .map_err(|_| BenchError::Setup("a benchmark thread panicked".into()))?;
        let done = result.map_err(|e| BenchError::Setup(e.to_string()))?;
        histogram
            .add(&done.histogram)
            .map_err(|e| BenchError::Setup(format!("merging histograms: {e}")))?;
        totals.add(&done.totals);
    }
    drop(embedded);
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    Ok(Report {
        connections: config.connections,
        size: config.size,
        depth: config.depth,
        threads: config.threads,
        rate: config.rate,
        seconds: config.duration.as_secs_f64(),
        messages: totals.messages,
        bytes_sent: totals.bytes_sent,
        bytes_received: totals.bytes_received,
        latency_us: [
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.999),
            histogram.max() as f64 / 1000.0,
        ],
        errors: totals.errors,
    })
}

fn validate(config: &BenchConfig) -> Result<(), BenchError> {
    if config.connections == 0 || config.threads == 0 || config.depth == 0 {
        return Err(BenchError::Invalid(
            "--connections, --threads and --depth must be at least 1".into(),
        ));
    }
    if config.threads > config.connections {
        return Err(BenchError::Invalid(
            "--threads must not exceed --connections".into(),
        ));
    }
    // Each connection sends once per `connections / rate` seconds: that
    // interval must be a real, non-zero duration (at least a microsecond).
    if let Some(rate) = config.rate {
        let interval = Duration::try_from_secs_f64(config.connections as f64 / rate);
        if !interval.is_ok_and(|i| i >= Duration::from_micros(1)) {
            return Err(BenchError::Invalid(format!(
                "--rate must be a positive number of at most {} msgs/s for {} connections",
                config.connections as u64 * 1_000_000,
                config.connections
            )));
        }
    }
    if config.duration.is_zero() {
        return Err(BenchError::Invalid("--duration must be above zero".into()));
    }
    // A raw echo of nothing is no reply at all: the bench would wait forever
    // for a zero-byte "reply" that never arrives (and count it endlessly).
    if config.codec == Codec::Raw && config.size == 0 {
        return Err(BenchError::Invalid(
            "--size must be at least 1 with --codec raw".into(),
        ));
    }
    if u32::try_from(config.size).is_err() {
        return Err(BenchError::Invalid(format!(
            "--size {} does not fit the 4-byte length header",
            config.size
        )));
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

fn start_embedded(config: &BenchConfig) -> Result<crate::RunningServer, BenchError> {
    let server_config = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        codec: config.codec,
        key: config.key.clone(),
        max_frame: config.size.max(DEFAULT_MAX_FRAME),
        max_connections: config.connections + 16,
        ..Config::default()
    };
    crate::spawn(server_config, Echo).map_err(|e| BenchError::Setup(e.to_string()))
}

/// Connections of thread `t` when `n` are spread over `threads`.
fn share(n: usize, threads: usize, t: usize) -> usize {
    n / threads + usize::from(t < n % threads)
}

/// One progress line a second on stderr until the run ends: the rate over
/// that second, warm-up seconds marked as such. (`scripts/compare.sh` counts
/// these lines to find where the measured window starts.)
fn report_progress<T>(
    replies: &AtomicU64,
    start: Instant,
    warmup: Duration,
    duration: Duration,
    workers: &[std::thread::JoinHandle<T>],
) {
    let end = start + warmup + duration;
    let (mut last_count, mut last_at) = (0, start);
    while Instant::now() < end && !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(
            Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())),
        );
        let (count, at) = (replies.load(Ordering::Relaxed), Instant::now());
        let seconds = (at - last_at).as_secs_f64().max(1e-3);
        // Marked when the second began in the warm-up.
        let phase = if last_at - start < warmup {
            " (warm-up)"
        } else {
            ""
        };
        eprintln!(
            "[{:>4.0}s] {:>10.0} msgs/s{phase}",
            (at - start).as_secs_f64(),
            (count - last_count) as f64 / seconds
        );
        (last_count, last_at) = (count, at);
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| unreachable!())
}

#[derive(Debug, Default)]
struct Totals {
    messages: u64,
    bytes_sent: u64,
    bytes_received: u64,
    errors: Errors,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.messages += other.messages;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.errors.add(other.errors);
    }
}

/// The bytes of request `seq` on connection `id`, cut to `size`.
fn payload_into(out: &mut Vec<u8>, id: u32, seq: u64, size: usize) {
    out.extend_from_slice(&id.to_be_bytes()[..size.min(4)]);
    if size > 4 {
        out.extend_from_slice(&seq.to_be_bytes()[..(size - 4).min(8)]);
    }
    let seed = (id as u64)
        .wrapping_mul(131)
        .wrapping_add(seq.wrapping_mul(31));
    out.extend((12..size).map(|i| seed.wrapping_add(i as u64) as u8));
}

/// One benchmark connection.
struct Conn {
    stream: TcpStream,
    id: u32,
    /// Next sequence number to send, and the next one expected back.
    next_send: u64,
    next_reply: u64,
    /// When each request in flight was sent (or scheduled), oldest first.
    sent_at: VecDeque<Instant>,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    open: bool,
}

/// Why a connection was given up, when the server is to blame.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// The server closed it with replies still owed.
    ShortReply,
    /// A reset, a broken pipe or another socket error.
    Reset,
}

/// One client thread: its poll loop and its share of the connections.
struct Worker {
    poll: Poll,
    conns: Vec<Conn>,
    /// Connections still open: when none is left there is nothing to measure.
    open: usize,
    size: usize,
    depth: usize,
    codec: Codec,
    /// Open loop: time between two sends of one connection.
    interval: Option<Duration>,
    measure_from: Instant,
    histogram: Histogram<u64>,
    totals: Totals,
    /// Replies checked, warm-up included (for the progress lines).
    checked: u64,
    expected: Vec<u8>,
    scratch: Vec<u8>,
}

struct Done {
    histogram: Histogram<u64>,
    totals: Totals,
}

impl Worker {
    fn new(
        config: &BenchConfig,
        addr: SocketAddr,
        first_id: usize,
        count: usize,
    ) -> io::Result<Worker> {
        let poll = Poll::new()?;
        let mut totals = Totals::default();
        let mut conns = Vec::with_capacity(count);
        // After one connection timed out (no challenge came, the server does
        // not accept), the rest would too, one timeout each: give them up.
        let mut timed_out = false;
        for i in 0..count {
            if timed_out {
                totals.errors.connect += 1;
                continue;
            }
            match open(addr, config.key.as_ref()) {
                Ok(mut stream) => {
                    let token = Token(conns.len());
                    poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns.push(Conn {
                        stream,
                        id: (first_id + i) as u32,
                        next_send: 0,
                        next_reply: 0,
                        sent_at: VecDeque::new(),
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        open: true,
                    });
                }
                Err(e) => {
                    totals.errors.connect += 1;
                    // A read timeout is reported as `WouldBlock` on Unix.
                    timed_out = matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    );
                }
            }
        }
        let interval = config
            .rate
            .map(|rate| Duration::from_secs_f64(config.connections as f64 / rate));
        Ok(Worker {
            poll,
            open: conns.len(),
            conns,
            size: config.size,
            depth: config.depth,
            codec: config.codec,
            interval,
            measure_from: Instant::now(),
            histogram: new_histogram(),
            totals,
            checked: 0,
            expected: Vec::with_capacity(config.size),
            scratch: vec![0; 64 * 1024],
        })
    }

    /// Runs until `duration` after `measure_from`, or until every connection
    /// is gone. Adds each reply checked to `replies` as it goes.
    fn run(
        mut self,
        measure_from: Instant,
        duration: Duration,
        replies: &AtomicU64,
    ) -> io::Result<Done> {
        let start = Instant::now();
        let end = measure_from + duration;
        self.measure_from = measure_from;
        // Open loop: connections take turns in a fixed cycle, staggered evenly
        // over one interval, so the total rate is smooth.
        let mut schedule: VecDeque<(Instant, usize)> = match self.interval {
            Some(interval) => {
                let n = self.conns.len().max(1) as u32;
                (0..self.conns.len())
                    .map(|i| (start + interval * i as u32 / n, i))
                    .collect()
            }
            None => {
                for i in 0..self.conns.len() {
                    for _ in 0..self.depth {
                        self.queue_request(i, start);
                    }
                    self.flush(i);
                }
                VecDeque::new()
            }
        };
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if now >= end || self.open == 0 {
                break;
            }
            let mut timeout = end - now;
            if let Some(&(at, _)) = schedule.front() {
                timeout = timeout.min(at.saturating_duration_since(now));
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let before = self.checked;
            for event in events.iter() {
                let i = event.token().0;
                if event.is_writable() {
                    self.flush(i);
                }
                // After a FIN or an error, read on to the end of the stream:
                // no further edge would come for what is left.
                let to_the_end = event.is_read_closed() || event.is_error();
                if event.is_readable() || to_the_end {
                    self.read(i, to_the_end);
                }
            }
            if let Some(interval) = self.interval {
                // Everything due is sent, late or not, stamped with the time it
                // was due: a server that stalls shows as latency.
                let now = Instant::now();
                while let Some(&(at, i)) = schedule.front() {
                    if at > now {
                        break;
                    }
                    schedule.pop_front();
                    self.queue_request(i, at);
                    self.flush(i);
                    schedule.push_back((at + interval, i));
                }
            }
            replies.fetch_add(self.checked - before, Ordering::Relaxed);
        }
        Ok(Done {
            histogram: self.histogram,
            totals: self.totals,
        })
    }

    /// Appends request `next_send` of connection `i` to its output.
    fn queue_request(&mut self, i: usize, scheduled: Instant) {
        let conn = &mut self.conns[i];
        if !conn.open {
            return;
        }
        if self.codec == Codec::Frame {
            // `validate` checked that the size fits the header.
            conn.outbuf
                .extend_from_slice(&(self.size as u32).to_be_bytes());
        }
        payload_into(&mut conn.outbuf, conn.id, conn.next_send, self.size);
        conn.next_send += 1;
        conn.sent_at.push_back(scheduled);
    }

    /// Writes connection `i`'s pending output until done or blocked.
    fn flush(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        let mut written = 0;
        let mut failed = false;
        while conn.open && written < conn.outbuf.len() {
            match conn.stream.write(&conn.outbuf[written..]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if Instant::now() >= self.measure_from {
            self.totals.bytes_sent += written as u64;
        }
        conn.outbuf.drain(..written);
        if failed {
            self.close(i, Some(Failure::Reset));
        }
    }

    /// Reads all that is there, checks each whole reply, sends replacements.
    ///
    /// A read shorter than the buffer means the kernel had no more, which
    /// saves the `WouldBlock` read per wake-up; `to_the_end` reads on anyway.
    fn read(&mut self, i: usize, to_the_end: bool) {
        let mut ended = None;
        loop {
            let conn = &mut self.conns[i];
            if !conn.open {
                return;
            }
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    ended = Some(Failure::ShortReply);
                    break;
                }
                Ok(n) => {
                    conn.inbuf.extend_from_slice(&self.scratch[..n]);
                    if Instant::now() >= self.measure_from {
                        self.totals.bytes_received += n as u64;
                    }
                    if n < self.scratch.len() && !to_the_end {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    ended = Some(Failure::Reset);
                    break;
                }
            }
        }
        // Replies that came before an end of stream are checked all the same.
        let Some(replies) = self.check_replies(i) else {
            self.close(i, None); // garbled beyond resync; counted as a mismatch
            return;
        };
        match ended {
            // The end of the stream is a failure only with replies still owed.
            Some(Failure::ShortReply) if self.conns[i].sent_at.is_empty() => self.close(i, None),
            Some(failure) => self.close(i, Some(failure)),
            None => {
                if self.interval.is_none() {
                    let now = Instant::now();
                    for _ in 0..replies {
                        self.queue_request(i, now);
                    }
                }
                self.flush(i);
            }
        }
    }

    /// Takes every whole reply out of connection `i`'s input and checks it
    /// against the request it answers. Returns how many, or `None` if a frame
    /// header is so far off that the rest of the stream cannot be cut.
    ///
    /// Framed replies are cut by their own headers, so a reply of the wrong
    /// length is one mismatch and the next reply is still found. Raw replies
    /// have no edges: the stream is compared, `size` bytes at a time, with
    /// the concatenation of the requests.
    fn check_replies(&mut self, i: usize) -> Option<usize> {
        let now = Instant::now();
        let measuring = now >= self.measure_from;
        // Far above any echo of `size`; beyond it the header is garbage.
        let max_reply = self.size.max(DEFAULT_MAX_FRAME);
        let conn = &mut self.conns[i];
        let mut used = 0;
        let mut replies = 0;
        let mut garbled = false;
        loop {
            let rest = &conn.inbuf[used..];
            let (payload, len) = match self.codec {
                Codec::Raw if rest.len() >= self.size => (&rest[..self.size], self.size),
                Codec::Raw => break,
                Codec::Frame => {
                    let Some((header, body)) = rest.split_first_chunk::<HEADER_LEN>() else {
                        break;
                    };
                    let declared = u32::from_be_bytes(*header) as usize;
                    if declared > max_reply {
                        garbled = true;
                        break;
                    }
                    match body.get(..declared) {
                        Some(payload) => (payload, HEADER_LEN + declared),
                        None => break,
                    }
                }
            };
            self.expected.clear();
            payload_into(&mut self.expected, conn.id, conn.next_reply, self.size);
            if payload != self.expected.as_slice() {
                self.totals.errors.mismatch += 1;
            }
            // More replies than requests is a mismatch already counted; the
            // reply then has no send time to measure from.
            if let Some(sent) = conn.sent_at.pop_front()
                && measuring
            {
                let nanos = now.saturating_duration_since(sent).as_nanos() as u64;
                self.histogram.saturating_record(nanos.max(1));
                self.totals.messages += 1;
            }
            conn.next_reply += 1;
            used += len;
            replies += 1;
        }
        conn.inbuf.drain(..used);
        self.checked += replies as u64;
        if garbled {
            self.totals.errors.mismatch += 1;
            return None;
        }
        Some(replies)
    }

    /// Gives connection `i` up, counting why if the server is to blame.
    fn close(&mut self, i: usize, failure: Option<Failure>) {
        let conn = &mut self.conns[i];
        if !conn.open {
            return;
        }
        conn.open = false;
        self.open -= 1;
        // Hung up on before the first reply: the server refused the
        // connection (wrong key, over its limit) rather than broke it.
        let failure = match failure {
            Some(_) if conn.next_reply == 0 => {
                self.totals.errors.connect += 1;
                None
            }
            failure => failure,
        };
        // Deregistered so that no more events come for it; the socket itself
        // closes when the worker ends.
        let _ = self.poll.registry().deregister(&mut conn.stream);
        conn.outbuf = Vec::new();
        conn.inbuf = Vec::new();
        match failure {
            Some(Failure::ShortReply) => self.totals.errors.short_reply += 1,
            Some(Failure::Reset) => self.totals.errors.reset += 1,
            None => {}
        }
    }
}

/// Longest a connect, or the wait for a challenge, may take. Without it a
/// `--key-file` against a server that sends no challenge would wait forever.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects (blocking, then switched to non-blocking) and authenticates.
fn open(addr: SocketAddr, key: Option<&crate::Key>) -> io::Result<TcpStream> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, SETUP_TIMEOUT)?;
    stream.set_nodelay(true)?;
    if let Some(key) = key {
        stream.set_read_timeout(Some(SETUP_TIMEOUT))?;
        auth::answer_challenge(&mut stream, key.as_bytes())?;
    }
    stream.set_nonblocking(true)?;
    Ok(TcpStream::from_std(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_differ_by_connection_and_sequence_and_have_the_asked_size() {
        for size in [0, 1, 4, 5, 12, 13, 64, 4096] {
            let mut a = Vec::new();
            payload_into(&mut a, 1, 7, size);
            assert_eq!(a.len(), size);
        }
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        payload_into(&mut a, 1, 7, 64);
        payload_into(&mut b, 2, 7, 64);
        payload_into(&mut c, 1, 8, 64);
        assert!(a != b && a != c && b != c);
    }

    #[test]
    fn connections_are_shared_out_evenly() {
        let shares: Vec<usize> = (0..3).map(|t| share(10, 3, t)).collect();
        assert_eq!(shares, vec![4, 3, 3]);
    }
}
