//! One bench thread: its own `mio::Poll` over its share of the connections.
//!
//! A worker owns connecting (and answering the challenge), keeping requests
//! in flight, checking every reply, and measuring latency into one
//! HdrHistogram per interval, which it hands to the collector
//! (`progress.rs`) at each interval's end. It never prints and never decides
//! what the run's numbers are: it reports what happened and when.
//!
//! How many requests a connection may have sent is one number, `allowed`:
//! - closed loop: `depth` plus the replies verified so far, so only a
//!   *verified* reply makes room for the next request, and a server that
//!   sends garbage (or more replies than requests) can never push the
//!   requests in flight past `depth`;
//! - open loop (`rate`): the slots of the connection's schedule that are due
//!   by now. Latency counts from the slot's time, not from when it was
//!   written, so a stalled server (or a client that falls behind) shows as
//!   latency instead of as fewer requests (no coordinated omission).
//!
//! Requests are generated only as the socket takes them (at most `OUT_CAP`
//! bytes wait in a connection's buffer), so an open loop that runs ahead of
//! the server owes requests, counted, but holds no growing pile of bytes.
//!
//! Every reply is stamped with the clock read just before its connection is
//! read: it counts in the measured window if that time is in it, and
//! nothing is read once the window has ended.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::failure::{ErrorKind, Errors};
use super::payload::{Checker, write_payload};
use super::{BenchConfig, Phase, Plan, new_histogram};
use crate::config::{CHALLENGE_LEN, Codec};
use crate::frame::{self, DEFAULT_MAX_FRAME};

/// Most request bytes waiting in one connection's buffer: the socket's
/// buffer takes the rest as fast as the server reads.
const OUT_CAP: usize = 64 * 1024;

/// One interval of one worker: what the collector merges and prints.
#[derive(Debug)]
pub(crate) struct Interval {
    pub worker: usize,
    pub from: Instant,
    pub to: Instant,
    /// Latency of every verified reply read in the interval (nanoseconds);
    /// in the last interval of an open-loop run, also the age of each
    /// request still owed.
    pub histogram: Histogram<u64>,
    pub messages: u64,
    pub errors: Errors,
}

/// What a worker sends the collector.
#[derive(Debug)]
pub(crate) enum Note {
    Interval(Interval),
    Finished(usize, Box<Outcome>),
}

/// Why a worker stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The measured window ended.
    Deadline,
    /// Its share of `--requests` was verified.
    Requests,
    /// Every connection was gone (or none could be opened).
    NoConnection,
}

/// A worker's totals, sent once it stops.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub stop: Stop,
    /// When it stopped (the deadline, or earlier).
    pub stopped_at: Instant,
    /// Verified replies read in the measured window.
    pub messages: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Errors by the phase they happened in.
    pub errors: [Errors; 3],
    /// Connections closed or reset before any reply, without a key and
    /// without a challenge: either too large a request or a server that
    /// closes every connection; the run's probe tells which.
    pub closed_before_reply: [u64; 3],
    /// Requests owed on connections still open when the worker stopped
    /// (in an open loop, slots due but not yet written too).
    pub owed: u64,
    /// Age of the oldest of them.
    pub oldest_owed: Option<Duration>,
    /// Requests in flight on connections that failed.
    pub lost: u64,
}

/// One bench connection.
struct Conn {
    stream: TcpStream,
    /// Global id: the first 4 bytes of every payload, and the connection's
    /// place in the open-loop schedule.
    id: u32,
    /// Next sequence number to send, and the next one expected back.
    next_send: u64,
    next_reply: u64,
    /// Replies that checked out: in a closed loop, what makes room.
    verified: u64,
    /// When each request in flight was written, oldest first (the reply
    /// timeout counts from here; so does closed-loop latency).
    sent_at: VecDeque<Instant>,
    /// Bytes received before the first verified reply (a 32-byte challenge
    /// sent to a keyless client is recognised by its length).
    received_early: usize,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    open: bool,
}

/// How a connection ended, when it was not the bench that ended it.
#[derive(Debug, Clone, Copy)]
enum Cause {
    /// End of stream.
    Closed,
    /// A reset or another socket error.
    Reset,
    /// A frame header beyond any echo of our size: the stream cannot be cut.
    Garbled,
    /// The oldest request waited longer than `--timeout`.
    Timeout,
}

/// The open-loop schedule: connection `id` sends at
/// `start + interval * id / connections + k * interval`, so the sends of all
/// connections of all threads are spread evenly over each interval.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    interval_ns: u64,
    connections: u64,
}

impl Schedule {
    fn first(&self, id: u32) -> Instant {
        let offset = (self.interval_ns as u128 * id as u128 / self.connections as u128) as u64;
        self.start + Duration::from_nanos(offset)
    }

    /// When request `seq` of connection `id` is due.
    fn due_at(&self, id: u32, seq: u64) -> Instant {
        self.first(id) + Duration::from_nanos(self.interval_ns.saturating_mul(seq))
    }

    /// How many requests of connection `id` are due by `now`.
    fn due_by(&self, id: u32, now: Instant) -> u64 {
        match now.checked_duration_since(self.first(id)) {
            None => 0,
            Some(since) => (since.as_nanos() / self.interval_ns as u128) as u64 + 1,
        }
    }
}

/// One client thread: its poll loop and its share of the connections.
pub(crate) struct Worker {
    index: usize,
    poll: Poll,
    conns: Vec<Conn>,
    /// Connections still open: when none is left there is nothing to measure.
    open: usize,
    size: usize,
    depth: u64,
    codec: Codec,
    keyed: bool,
    timeout: Duration,
    /// Open loop only.
    schedule: Option<Schedule>,
    /// `--requests`: this worker's share of verified replies to measure.
    quota: Option<u64>,
    checker: Checker,
    /// Largest reply header believed: far above any echo of `size`.
    max_reply: usize,
    scratch: Vec<u8>,
    /// Requests in flight over all connections (for `quota`).
    in_flight: u64,
    plan: Option<Plan>,
    /// When the last loop turn that could send began.
    last_turn: Instant,
    current: Option<Interval>,
    messages: u64,
    bytes_sent: u64,
    bytes_received: u64,
    errors: [Errors; 3],
    closed_before_reply: [u64; 3],
    lost: u64,
}

impl Worker {
    /// Opens (and authenticates) connections `first_id..first_id + count`,
    /// before any clock starts. Failures are counted, not returned: a run
    /// with some connections refused still runs, and says so.
    pub(crate) fn connect(
        index: usize,
        config: &BenchConfig,
        addr: SocketAddr,
        first_id: usize,
        count: usize,
        quota: Option<u64>,
    ) -> io::Result<Worker> {
        let poll = Poll::new()?;
        let mut errors = [Errors::default(); 3];
        let mut conns = Vec::with_capacity(count);
        // After one connection timed out, the rest would too, one timeout
        // each: they are counted with the same cause, untried.
        let mut gave_up = None;
        for i in 0..count {
            if let Some(kind) = gave_up {
                errors[Phase::Setup as usize].count(kind);
                continue;
            }
            match open(
                addr,
                config.key.as_ref().map(|k| k.as_bytes()),
                config.timeout,
            ) {
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
                        verified: 0,
                        sent_at: VecDeque::new(),
                        received_early: 0,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        open: true,
                    });
                }
                Err((kind, timed_out)) => {
                    errors[Phase::Setup as usize].count(kind);
                    if timed_out {
                        gave_up = Some(kind);
                    }
                }
            }
        }
        Ok(Worker {
            index,
            poll,
            open: conns.len(),
            conns,
            size: config.size,
            depth: config.depth as u64,
            codec: config.codec,
            keyed: config.key.is_some(),
            timeout: config.timeout,
            schedule: None,
            quota,
            checker: Checker::new(config.verify, config.size),
            max_reply: config.size.max(DEFAULT_MAX_FRAME),
            scratch: vec![0; 64 * 1024],
            in_flight: 0,
            plan: None,
            last_turn: Instant::now(),
            current: None,
            messages: 0,
            bytes_sent: 0,
            bytes_received: 0,
            errors,
            closed_before_reply: [0; 3],
            lost: 0,
        })
    }

    /// Runs the plan: sends intervals to `notes` as they end, then the
    /// outcome. `rate` is the total over all connections of all threads.
    pub(crate) fn run(
        mut self,
        plan: Plan,
        rate: Option<f64>,
        connections: usize,
        notes: &Sender<Note>,
    ) {
        let outcome = match self.run_plan(plan, rate, connections, notes) {
            Ok(outcome) => outcome,
            Err(e) => {
                // The poller itself failed: nothing more can be measured;
                // what was counted so far is still true.
                log::error!("bench thread {}: poll failed: {e}", self.index);
                self.finish(Stop::NoConnection, Instant::now().min(plan.end), notes)
            }
        };
        let _ = notes.send(Note::Finished(self.index, Box::new(outcome)));
    }

    fn run_plan(
        &mut self,
        plan: Plan,
        rate: Option<f64>,
        connections: usize,
        notes: &Sender<Note>,
    ) -> io::Result<Outcome> {
        self.plan = Some(plan);
        self.current = Some(Interval {
            worker: self.index,
            from: plan.start,
            to: plan.start,
            histogram: new_histogram(),
            messages: 0,
            errors: Errors::default(),
        });
        let mut next_boundary = plan.boundary_after(plan.start);
        // Open loop: a heap of (next due time, connection).
        let mut due: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
        if let Some(rate) = rate {
            // `validate` checked that this is at least a microsecond.
            let interval_ns = (connections as f64 / rate * 1e9).round() as u64;
            let schedule = Schedule {
                start: plan.start,
                interval_ns,
                connections: connections as u64,
            };
            for (i, conn) in self.conns.iter().enumerate() {
                due.push(Reverse((schedule.first(conn.id), i)));
            }
            self.schedule = Some(schedule);
        } else {
            for i in 0..self.conns.len() {
                self.pump(i, plan.start);
            }
        }
        // Reply timeouts are checked in sweeps, a few per timeout.
        let sweep_every =
            (self.timeout / 4).clamp(Duration::from_millis(1), Duration::from_millis(100));
        let mut next_sweep = plan.start + sweep_every;
        let mut events = Events::with_capacity(1024);
        let mut now = Instant::now();
        loop {
            while now >= next_boundary && next_boundary < plan.end {
                self.ship(next_boundary, notes);
                next_boundary = plan.boundary_after(next_boundary);
            }
            if now >= plan.end {
                return Ok(self.finish(Stop::Deadline, plan.end, notes));
            }
            if self.open == 0 {
                return Ok(self.finish(Stop::NoConnection, now, notes));
            }
            if let Some(quota) = self.quota
                && self.messages >= quota
            {
                return Ok(self.finish(Stop::Requests, now, notes));
            }
            // The last turn that could still send.
            self.last_turn = now;
            if now >= next_sweep {
                self.expire(now);
                next_sweep = now + sweep_every;
            }
            // Open loop: each connection whose slot came writes all its due
            // requests (one pass per connection per turn, however late).
            if let Some(schedule) = self.schedule {
                while let Some(&Reverse((at, i))) = due.peek() {
                    if at > now {
                        break;
                    }
                    due.pop();
                    self.pump(i, now);
                    if self.conns[i].open {
                        let id = self.conns[i].id;
                        let next = schedule.due_at(id, schedule.due_by(id, now));
                        due.push(Reverse((next, i)));
                    }
                }
            }
            let mut wake = next_boundary.min(plan.end).min(next_sweep);
            if let Some(&Reverse((at, _))) = due.peek() {
                wake = wake.min(at);
            }
            match self
                .poll
                .poll(&mut events, Some(wake.saturating_duration_since(now)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            now = Instant::now();
            if now >= plan.end {
                // Whatever arrived after the window is not read.
                continue;
            }
            for event in events.iter() {
                let i = event.token().0;
                if event.is_writable() {
                    self.pump(i, now);
                }
                // After a FIN or an error, read on to the end of the stream:
                // no further edge would come for what is left.
                let to_the_end = event.is_read_closed() || event.is_error();
                if event.is_readable() || to_the_end {
                    // Replies are stamped when read, not when the turn
                    // began: a request written in this turn may already be
                    // answered.
                    let at = Instant::now();
                    if at >= plan.end {
                        break;
                    }
                    self.read(i, at, to_the_end);
                }
            }
        }
    }

    fn plan(&self) -> Plan {
        self.plan.expect("a running worker has a plan")
    }

    fn phase(&self, now: Instant) -> Phase {
        match now < self.plan().measure_from {
            true => Phase::Warmup,
            false => Phase::Measured,
        }
    }

    fn current(&mut self) -> &mut Interval {
        self.current
            .as_mut()
            .expect("a running worker has an interval")
    }

    fn count_error(&mut self, kind: ErrorKind, now: Instant) {
        let phase = self.phase(now);
        self.errors[phase as usize].count(kind);
        self.current().errors.count(kind);
    }

    /// Ends the current interval at `at` and starts the next one there.
    fn ship(&mut self, at: Instant, notes: &Sender<Note>) {
        let next = Interval {
            worker: self.index,
            from: at,
            to: at,
            histogram: new_histogram(),
            messages: 0,
            errors: Errors::default(),
        };
        let mut done = std::mem::replace(self.current(), next);
        done.to = at;
        let _ = notes.send(Note::Interval(done));
    }

    /// Counts what is still owed at `stop`, ships the last interval, and
    /// sums up.
    fn finish(&mut self, stop: Stop, at: Instant, notes: &Sender<Note>) -> Outcome {
        let measuring = at > self.plan().measure_from;
        let (mut owed, mut oldest) = (0u64, None::<Duration>);
        for i in 0..self.conns.len() {
            let conn = &self.conns[i];
            if !conn.open {
                continue;
            }
            match self.schedule {
                // Every slot due by the last turn and not answered is owed,
                // written or not; its age is a latency the server (or the
                // client) has already caused: recorded, so a stall at the
                // end shows. (Slots that fell due after the last turn had
                // no chance to be sent: their ages of a few microseconds
                // would only blur the minimum.)
                Some(schedule) => {
                    let due = schedule
                        .due_by(conn.id, self.last_turn.min(at))
                        .max(conn.next_reply);
                    for seq in conn.next_reply..due {
                        let age = at.saturating_duration_since(schedule.due_at(conn.id, seq));
                        oldest = oldest.max(Some(age));
                        if measuring {
                            record(&mut self.current.as_mut().unwrap().histogram, age);
                        }
                    }
                    owed += due - conn.next_reply;
                }
                None => {
                    owed += conn.next_send - conn.next_reply;
                    if let Some(&sent) = conn.sent_at.front() {
                        oldest = oldest.max(Some(at.saturating_duration_since(sent)));
                    }
                }
            }
        }
        let from = self.current().from;
        if at > from {
            self.ship(at, notes);
        }
        Outcome {
            stop,
            stopped_at: at,
            messages: self.messages,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            errors: self.errors,
            closed_before_reply: self.closed_before_reply,
            owed,
            oldest_owed: oldest,
            lost: self.lost,
        }
    }

    /// How many requests connection `i` may have sent by `now`.
    fn allowed(&self, i: usize, now: Instant) -> u64 {
        let conn = &self.conns[i];
        match self.schedule {
            Some(schedule) => schedule.due_by(conn.id, now),
            None => conn.verified + self.depth,
        }
    }

    /// Writes what connection `i` may send: requests are generated only
    /// while the socket takes them.
    fn pump(&mut self, i: usize, now: Instant) {
        loop {
            if !self.conns[i].open {
                return;
            }
            let allowed = self.allowed(i, now);
            let measuring = now >= self.plan().measure_from;
            let conn = &mut self.conns[i];
            while conn.next_send < allowed && conn.outbuf.len() < OUT_CAP {
                // `--requests`: never more in flight than measured replies
                // still wanted (in the warm-up there is no limit).
                if let Some(quota) = self.quota
                    && measuring
                    && self.messages + self.in_flight >= quota
                {
                    break;
                }
                let (id, seq, size) = (conn.id, conn.next_send, self.size);
                match self.codec {
                    // `validate` checked that the size fits the header.
                    Codec::Frame => {
                        let _ = frame::encode_with(&mut conn.outbuf, |w| {
                            write_payload(id, seq, size, |b| w.extend_from_slice(b))
                        });
                    }
                    Codec::Raw => {
                        write_payload(id, seq, size, |b| conn.outbuf.extend_from_slice(b))
                    }
                }
                conn.next_send += 1;
                conn.sent_at.push_back(now);
                self.in_flight += 1;
            }
            let before = conn.outbuf.len();
            if before == 0 {
                return;
            }
            self.flush(i, now);
            let conn = &self.conns[i];
            // Stop when the socket is full, or when nothing more may go.
            if !conn.outbuf.is_empty() || conn.next_send >= self.allowed(i, now) {
                return;
            }
        }
    }

    /// Writes connection `i`'s pending output until done or blocked.
    fn flush(&mut self, i: usize, now: Instant) {
        let conn = &mut self.conns[i];
        let mut written = 0;
        let mut failed = false;
        while written < conn.outbuf.len() {
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
        conn.outbuf.drain(..written);
        if self.phase(now) == Phase::Measured {
            self.bytes_sent += written as u64;
        }
        if failed {
            self.fail(i, Cause::Reset, now);
        }
    }

    /// Reads all that is there, checks each whole reply, sends what the
    /// verified ones made room for.
    ///
    /// A read shorter than the buffer means the kernel had no more, which
    /// saves the `WouldBlock` read per wake-up; `to_the_end` reads on anyway.
    fn read(&mut self, i: usize, now: Instant, to_the_end: bool) {
        let mut ended = None;
        loop {
            let conn = &mut self.conns[i];
            if !conn.open {
                return;
            }
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    ended = Some(Cause::Closed);
                    break;
                }
                Ok(n) => {
                    conn.inbuf.extend_from_slice(&self.scratch[..n]);
                    if conn.verified == 0 {
                        conn.received_early += n;
                    }
                    if now >= self.plan().measure_from {
                        self.bytes_received += n as u64;
                    }
                    if n < self.scratch.len() && !to_the_end {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    ended = Some(Cause::Reset);
                    break;
                }
            }
        }
        // Replies that came before an end of stream are checked all the same.
        if !self.take_replies(i, now) {
            self.fail(i, Cause::Garbled, now);
            return;
        }
        if let Some(cause) = ended {
            self.fail(i, cause, now);
            return;
        }
        let conn = &self.conns[i];
        if self.schedule.is_none() && conn.next_send == conn.next_reply {
            // Closed loop with nothing in flight and no room: every request
            // was answered wrongly; the connection can do no more.
            if conn.next_send >= self.allowed(i, now) {
                self.close(i);
                return;
            }
        }
        self.pump(i, now);
    }

    /// Takes every whole reply out of connection `i`'s input and checks it
    /// against the request it answers. False if a frame header is so far
    /// off that the rest of the stream cannot be cut (the caller fails the
    /// connection: a mismatch, or a challenge a keyless client was sent).
    ///
    /// Framed replies are cut by their own headers, so a reply of the wrong
    /// length is one mismatch and the next reply is still found. Raw replies
    /// have no edges: the stream is compared, `size` bytes at a time, with
    /// the concatenation of the requests.
    fn take_replies(&mut self, i: usize, now: Instant) -> bool {
        let plan = self.plan();
        let measuring = now >= plan.measure_from;
        let phase = self.phase(now) as usize;
        let Worker {
            conns,
            checker,
            current,
            errors,
            schedule,
            ..
        } = self;
        let interval = current.as_mut().expect("a running worker has an interval");
        let conn = &mut conns[i];
        let mut used = 0;
        let mut garbled = false;
        let (mut verified, mut answered) = (0u64, 0u64);
        loop {
            let rest = &conn.inbuf[used..];
            let (reply, len) = match self.codec {
                Codec::Raw if rest.len() >= self.size => (&rest[..self.size], self.size),
                Codec::Raw => break,
                Codec::Frame => match frame::decode(rest, self.max_reply) {
                    Ok(Some(found)) => found,
                    Ok(None) => break,
                    Err(_) => {
                        garbled = true;
                        break;
                    }
                },
            };
            used += len;
            // A reply to nothing is a mismatch; it frees no request.
            if conn.next_reply >= conn.next_send {
                errors[phase].count(ErrorKind::Mismatch);
                interval.errors.count(ErrorKind::Mismatch);
                continue;
            }
            let seq = conn.next_reply;
            let sent = conn.sent_at.pop_front().unwrap_or(now);
            conn.next_reply += 1;
            answered += 1;
            if !checker.check(reply, conn.id, seq) {
                errors[phase].count(ErrorKind::Mismatch);
                interval.errors.count(ErrorKind::Mismatch);
                continue;
            }
            verified += 1;
            let from = match schedule {
                Some(schedule) => schedule.due_at(conn.id, seq),
                None => sent,
            };
            record(&mut interval.histogram, now.saturating_duration_since(from));
            interval.messages += 1;
        }
        conn.inbuf.drain(..used);
        conn.verified += verified;
        self.in_flight -= answered;
        if measuring {
            self.messages += verified;
        }
        !garbled
    }

    /// Gives up every connection whose oldest request waited past the
    /// timeout.
    fn expire(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let conn = &self.conns[i];
            if conn.open
                && let Some(&sent) = conn.sent_at.front()
                && now.saturating_duration_since(sent) >= self.timeout
            {
                self.fail(i, Cause::Timeout, now);
            }
        }
    }

    /// Gives connection `i` up and counts why.
    fn fail(&mut self, i: usize, cause: Cause, now: Instant) {
        let conn = &self.conns[i];
        if !conn.open {
            return;
        }
        let owed = conn.next_send - conn.next_reply;
        let no_reply_yet = conn.verified == 0;
        let challenged = !self.keyed && conn.received_early == CHALLENGE_LEN;
        let kind = match cause {
            Cause::Timeout => Some(ErrorKind::ReplyTimeout),
            // A keyed connection hung up on before any reply: our answer to
            // the challenge was wrong. A keyless one that was sent exactly a
            // challenge's worth of bytes: the server wants a key.
            _ if no_reply_yet && (self.keyed || challenged) => Some(ErrorKind::Auth),
            Cause::Garbled => Some(ErrorKind::Mismatch),
            Cause::Closed | Cause::Reset if no_reply_yet => {
                let phase = self.phase(now) as usize;
                self.closed_before_reply[phase] += 1;
                self.current().errors.count(ErrorKind::ServerClosed);
                None
            }
            Cause::Closed => Some(ErrorKind::ServerClosed),
            Cause::Reset => Some(ErrorKind::Reset),
        };
        if let Some(kind) = kind {
            self.count_error(kind, now);
        }
        self.lost += owed;
        self.close(i);
    }

    /// Closes connection `i`; what it had in flight is no longer in flight.
    fn close(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if !conn.open {
            return;
        }
        conn.open = false;
        self.open -= 1;
        self.in_flight -= conn.next_send - conn.next_reply;
        // Deregistered so that no more events come for it; the socket itself
        // closes when the worker ends.
        let _ = self.poll.registry().deregister(&mut conn.stream);
        conn.outbuf = Vec::new();
        conn.inbuf = Vec::new();
        conn.sent_at = VecDeque::new();
    }
}

/// Records one latency (at least a nanosecond: the histogram's floor).
fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
    histogram.saturating_record(nanos.max(1));
}

/// Connects (blocking, then switched to non-blocking) and authenticates.
/// On failure: the cause, and whether it was a timeout.
fn open(
    addr: SocketAddr,
    key: Option<&[u8]>,
    timeout: Duration,
) -> Result<TcpStream, (ErrorKind, bool)> {
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
            io::ErrorKind::ConnectionRefused => (ErrorKind::Refused, false),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                (ErrorKind::ConnectTimeout, true)
            }
            _ => (ErrorKind::Reset, false),
        })?;
    let _ = stream.set_nodelay(true);
    if let Some(key) = key {
        // No challenge in time (the server wants no key), or the connection
        // closed before one came: either way the handshake failed. A read
        // timeout is reported as `WouldBlock` on Unix.
        let _ = stream.set_read_timeout(Some(timeout));
        crate::auth::answer_challenge(&mut stream, key).map_err(|e| {
            let timed_out = matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            );
            (ErrorKind::Auth, timed_out)
        })?;
    }
    stream
        .set_nonblocking(true)
        .map_err(|_| (ErrorKind::Reset, false))?;
    Ok(TcpStream::from_std(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_loop_schedule_spreads_every_connection_over_one_interval() {
        let start = Instant::now();
        let schedule = Schedule {
            start,
            interval_ns: 1_000_000,
            connections: 4,
        };
        let offsets: Vec<u64> = (0..4)
            .map(|id| (schedule.first(id) - start).as_nanos() as u64)
            .collect();
        assert_eq!(offsets, [0, 250_000, 500_000, 750_000]);
        assert_eq!(schedule.due_by(1, start), 0);
        assert_eq!(schedule.due_by(1, start + Duration::from_micros(250)), 1);
        assert_eq!(schedule.due_by(1, start + Duration::from_micros(1250)), 2);
        assert_eq!(schedule.due_at(1, 2), start + Duration::from_micros(2250));
    }
}
