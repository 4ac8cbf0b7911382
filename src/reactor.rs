//! The event loop: one thread, one `mio::Poll`, every socket in it.
//!
//! This module owns the loop and the decisions taken in it: when to accept,
//! read, write, pause, time out and close. One turn of the loop is
//!
//! 1. wait in `poll` until a socket is ready or the nearest deadline passes;
//! 2. dispatch each event by its token (listener, UDP socket, waker, or a
//!    connection);
//! 3. read the connections (and UDP socket) the fairness cap left with input
//!    pending;
//! 4. fire due timers.
//!
//! It never parses bytes (that is `frame.rs`), never decides what a frame
//! means (that is the [`Handler`]) and never blocks: every socket is
//! non-blocking, and the only wait is `poll` itself.
//!
//! The rules mio's edge-triggered readiness imposes, and how they are kept:
//! - A readiness event is a hint and comes once per change. After one, the
//!   socket is read until `WouldBlock` *or a short read* (fewer bytes than
//!   the buffer: the kernel had no more), which saves a syscall per message.
//!   A read that fills the buffer may have left more: the connection goes on
//!   the ready list and is read again next turn, after everyone else had a
//!   turn (no edge will come for bytes already there).
//! - A connection's token packs its slab key and a generation
//!   ([`ConnId`]). An event still in the batch for a connection closed
//!   earlier in the same batch finds a different generation in that slot and
//!   is dropped, never delivered to the newcomer.
//! - HUP and error flags alone never close a connection: the read that follows
//!   returns the remaining data first, then 0 or the error.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, trace, warn};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::auth::{Authenticator, Handshake};
use crate::config::{ACCEPT_RETRY, Codec, Config, LISTEN_BACKLOG, READ_CHUNK};
use crate::connection::{ConnId, Connection, Phase};
use crate::error::Error;
use crate::frame::{Fed, Flow};
use crate::handler::{Ctx, Handler};
use crate::stats::{CloseReason, Counters, Stats};
use crate::timer::{TimerKind, Timers};

const LISTENER: Token = Token(0);
const UDP: Token = Token(1);
const WAKER: Token = Token(2);

/// Connections accepted per listener event before others get a turn.
const ACCEPT_BATCH: usize = 256;

/// On shutdown, chunks read per connection to take in frames already received.
const SHUTDOWN_READS: usize = 64;

/// Datagrams answered per turn before TCP connections get their turn.
const DATAGRAM_BATCH: usize = 1024;

/// A frameloop server: bound, not yet running. [`Server::run`] runs it on the
/// calling thread; [`crate::spawn`] runs it on a thread of its own.
pub struct Server<H: Handler> {
    poll: Poll,
    listener: TcpListener,
    udp: Option<UdpSocket>,
    local_addr: SocketAddr,
    conns: Slab<Connection>,
    handler: H,
    config: Config,
    auth: Option<Authenticator>,
    timers: Timers,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    /// The one read buffer: every read lands here first.
    read_buf: Vec<u8>,
    /// The current connection's new output, written as soon as a hook returns.
    reply: Vec<u8>,
    /// Connections given output by a handler's `send_to`, to be flushed.
    touched: Vec<ConnId>,
    /// Connections with input left after a full read (fairness cap).
    ready: VecDeque<ConnId>,
    /// Datagrams may be left in the UDP socket after a full batch.
    udp_backlog: bool,
    next_generation: u32,
    /// Time of this loop turn (read once after `poll` returns).
    now: Instant,
    accepting: bool,
    accept_retry_at: Option<Instant>,
    last_accept_warning: Option<Instant>,
    next_stats_at: Option<Instant>,
    shutdown_deadline: Option<Instant>,
}

/// Controls a running server from another thread.
#[derive(Clone)]
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    counters: Arc<Counters>,
}

impl ServerHandle {
    /// Begins a graceful shutdown: stop accepting, stop reading, flush
    /// replies (up to `shutdown_timeout`), close everything, return.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            warn!("cannot wake the event loop for shutdown: {e}");
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

impl<H: Handler> Server<H> {
    /// Binds the listener (and the UDP socket with `config.udp`).
    pub fn bind(config: Config, handler: H) -> Result<Server<H>, Error> {
        let poll = Poll::new()?;
        let mut listener = listen(config.addr).map_err(|e| Error::bind(config.addr, e))?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let udp = match config.udp {
            false => None,
            true => {
                let mut socket =
                    UdpSocket::bind(local_addr).map_err(|e| Error::bind(local_addr, e))?;
                poll.registry()
                    .register(&mut socket, UDP, Interest::READABLE)?;
                Some(socket)
            }
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let now = Instant::now();
        Ok(Server {
            poll,
            listener,
            udp,
            local_addr,
            conns: Slab::new(),
            handler,
            auth: config.key.as_deref().map(Authenticator::new),
            timers: Timers::default(),
            counters: Arc::default(),
            stop: Arc::default(),
            waker,
            read_buf: vec![0; READ_CHUNK],
            reply: Vec::new(),
            touched: Vec::new(),
            ready: VecDeque::new(),
            udp_backlog: false,
            next_generation: 0,
            now,
            accepting: true,
            accept_retry_at: None,
            last_accept_warning: None,
            next_stats_at: config.stats_interval.map(|every| now + every),
            shutdown_deadline: None,
            config,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop the server and read its counters from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            stop: self.stop.clone(),
            waker: self.waker.clone(),
            counters: self.counters.clone(),
        }
    }

    /// Runs the loop until a shutdown completes; returns the final counters.
    pub fn run(mut self) -> io::Result<Stats> {
        info!("listening on {}", self.local_addr);
        let mut events = Events::with_capacity(1024);
        while !self.finished() {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    UDP => self.serve_datagrams(),
                    WAKER => self.check_shutdown(),
                    token => self.connection_event(ConnId::from_token(token), event),
                }
            }
            self.read_ready_list();
            if self.udp_backlog {
                self.serve_datagrams();
            }
            self.fire_due_timers();
        }
        let stats = self.counters.snapshot();
        info!("stopped: {stats}");
        Ok(stats)
    }

    /// How long `poll` may sleep: not at all if input is pending, else until
    /// the nearest deadline, else until an event. Measured from the turn's
    /// `now` (no clock read): a deadline may fire late by one turn's work.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.ready.is_empty() || self.udp_backlog {
            return Some(Duration::ZERO);
        }
        [
            self.timers.next_deadline(),
            self.accept_retry_at,
            self.next_stats_at,
            self.shutdown_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_duration_since(self.now))
    }

    fn finished(&self) -> bool {
        self.shutdown_deadline.is_some() && self.conns.is_empty()
    }

    fn connection_event(&mut self, id: ConnId, event: &Event) {
        let Some(conn) = lookup(&mut self.conns, id) else {
            return; // closed earlier in this batch; its slot may hold another
        };
        if event.is_read_closed() {
            conn.peer_closed = true;
        }
        if event.is_writable() {
            self.settle(id);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(id);
        }
    }

    // ----- accepting --------------------------------------------------------

    fn accept_all(&mut self) {
        if !self.accepting || self.accept_retry_at.is_some_and(|at| at > self.now) {
            return;
        }
        self.accept_retry_at = None;
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // EMFILE/ENFILE above all: the pending connection stays in
                    // the backlog and no new edge will come for it, so retry on
                    // a timer (or sooner, when a connection closes). Meanwhile
                    // every existing connection is served as usual.
                    if self.accept_warning_due() {
                        warn!("accept failed: {e}; pausing accepts for {ACCEPT_RETRY:?}");
                    }
                    self.accept_retry_at = Some(self.now + ACCEPT_RETRY);
                    self.counters.accept_paused();
                    return;
                }
            }
        }
        self.accept_retry_at = Some(self.now); // batch spent: more next turn
    }

    /// At most one accept warning a second, so a flood cannot flood the log.
    fn accept_warning_due(&mut self) -> bool {
        let due = self
            .last_accept_warning
            .is_none_or(|at| self.now >= at + Duration::from_secs(1));
        if due {
            self.last_accept_warning = Some(self.now);
        }
        due
    }

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        self.counters.accepted();
        if self.conns.len() >= self.config.max_connections {
            if self.accept_warning_due() {
                warn!(
                    "{peer}: over the {}-connection limit; closed at once",
                    self.config.max_connections
                );
            }
            self.counters.closed(CloseReason::Limit);
            return;
        }
        if let Err(e) = stream.set_nodelay(true) {
            debug!("{peer}: cannot set TCP_NODELAY: {e}");
        }
        let entry = self.conns.vacant_entry();
        let id = ConnId::new(entry.key(), self.next_generation);
        self.next_generation = self.next_generation.wrapping_add(1);
        let registry = self.poll.registry();
        if let Err(e) = registry.register(&mut stream, id.token(), Interest::READABLE) {
            warn!("{peer}: cannot register with the poller: {e}");
            self.counters.closed(CloseReason::Reset);
            return;
        }
        let mut conn = Connection::new(id, stream, peer, self.now);
        if self.auth.is_some() {
            match Handshake::new() {
                Ok(handshake) => {
                    self.reply.extend_from_slice(handshake.challenge());
                    conn.phase = Phase::Handshake(Box::new(handshake));
                }
                Err(e) => {
                    warn!("{peer}: cannot draw a challenge: {e}");
                    let _ = registry.deregister(&mut conn.stream);
                    self.counters.closed(CloseReason::Reset);
                    return;
                }
            }
            let deadline = self.now + self.config.handshake_timeout;
            self.timers.schedule(deadline, id, TimerKind::Handshake);
        }
        let open = matches!(conn.phase, Phase::Open);
        entry.insert(conn);
        if let Some(idle) = self.config.idle_timeout {
            self.timers.schedule(self.now + idle, id, TimerKind::Idle);
        }
        trace!("{peer}: accepted as {id}");
        if open {
            self.open(id, peer);
        }
        self.settle(id);
    }

    /// Tells the handler a connection is ready for frames.
    fn open(&mut self, id: ConnId, peer: SocketAddr) {
        if self.call_handler(id, peer, |handler, ctx| handler.on_open(ctx))
            && let Some(conn) = lookup(&mut self.conns, id)
        {
            conn.finish.get_or_insert(CloseReason::Handler);
        }
    }

    // ----- reading ----------------------------------------------------------

    /// Reads one chunk and hands it on. Returns whether the chunk filled the
    /// buffer (more may be waiting).
    fn read(&mut self, id: ConnId) -> bool {
        let Some(conn) = lookup(&mut self.conns, id) else {
            return false;
        };
        if !conn.wants_read() {
            return false;
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut full = false;
        match read_once(&mut conn.stream, &mut buf) {
            Ok(0) => {
                trace!("{id}: peer closed its write side");
                conn.finish.get_or_insert(CloseReason::Eof);
            }
            Ok(n) => {
                conn.last_read = self.now;
                self.counters.bytes_in(n);
                full = n == buf.len();
                // A short read means "drained", except when the peer's FIN came
                // in with the last bytes: no edge will announce it, so come
                // back next turn to read the 0 that says end of stream.
                if full {
                    self.counters.deferred();
                }
                if full || conn.peer_closed {
                    self.mark_ready(id);
                }
                self.dispatch(id, &buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                debug!("{}: read failed: {e}", conn.peer);
                conn.doomed = Some(CloseReason::Reset);
            }
        }
        self.read_buf = buf;
        self.settle(id);
        full
    }

    fn mark_ready(&mut self, id: ConnId) {
        if let Some(conn) = lookup(&mut self.conns, id)
            && !conn.in_ready_list
        {
            conn.in_ready_list = true;
            self.ready.push_back(id);
        }
    }

    /// One more chunk for each connection the fairness cap cut short.
    fn read_ready_list(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            if let Some(conn) = lookup(&mut self.conns, id) {
                conn.in_ready_list = false;
                self.read(id);
            }
        }
    }

    /// Runs a chunk of input through the handshake, the decoder and the handler.
    fn dispatch(&mut self, id: ConnId, mut bytes: &[u8]) {
        let Some(conn) = lookup(&mut self.conns, id) else {
            return;
        };
        let peer = conn.peer;
        if let Phase::Handshake(handshake) = &mut conn.phase {
            bytes = &bytes[handshake.take_answer(bytes)..];
            let Some(auth) = &self.auth else { return };
            match handshake.verdict(auth) {
                None => return,
                Some(false) => {
                    warn!("{peer}: wrong answer to the authentication challenge; closing");
                    conn.doomed = Some(CloseReason::AuthFailed);
                    return;
                }
                Some(true) => {
                    debug!("{peer}: authenticated as {id}");
                    conn.phase = Phase::Open;
                    self.open(id, peer);
                }
            }
        }
        let Some(conn) = lookup(&mut self.conns, id) else {
            return;
        };
        if bytes.is_empty() || !conn.is_open() || conn.finish.is_some() {
            return;
        }

        // The decoder leaves the connection while the handler runs, so that the
        // handler's context may borrow every connection (for `send_to`).
        let mut decoder = std::mem::take(&mut conn.decoder);
        let (codec, max) = (self.config.codec, self.config.max_frame);
        let mut result = Ok(Fed::default());
        let close = self.call_handler(id, peer, |handler, ctx| {
            result = match codec {
                Codec::Raw => {
                    handler.on_frame(ctx, bytes);
                    Ok(Fed { frames: 1 })
                }
                Codec::Frame => decoder.feed(bytes, max, |payload| {
                    handler.on_frame(ctx, payload);
                    match ctx.close_requested() {
                        true => Flow::Stop,
                        false => Flow::Continue,
                    }
                }),
            };
        });
        let Some(conn) = lookup(&mut self.conns, id) else {
            return;
        };
        conn.decoder = decoder;
        if close {
            conn.finish.get_or_insert(CloseReason::Handler);
        }
        match result {
            Ok(fed) => {
                trace!("{id}: {} bytes, {} frames", bytes.len(), fed.frames);
                self.counters.frames(fed.frames as u64);
                self.track_unfinished_frame(id, fed);
            }
            Err(too_large) => {
                warn!("{peer}: {too_large}; closing");
                conn.doomed = Some(CloseReason::Oversize);
            }
        }
    }

    /// Calls a handler hook with a context for connection `id`. Returns
    /// whether the handler asked to close the connection.
    fn call_handler(
        &mut self,
        id: ConnId,
        peer: SocketAddr,
        hook: impl FnOnce(&mut H, &mut Ctx<'_>),
    ) -> bool {
        let mut ctx = Ctx::new(
            id,
            peer,
            self.config.codec,
            &mut self.reply,
            &mut self.conns,
            &mut self.touched,
        );
        hook(&mut self.handler, &mut ctx);
        ctx.close_requested()
    }

    /// Starts the frame timeout when a frame begins and is not complete.
    fn track_unfinished_frame(&mut self, id: ConnId, fed: Fed) {
        let (Some(limit), Some(conn)) = (self.config.frame_timeout, lookup(&mut self.conns, id))
        else {
            return;
        };
        if conn.decoder.buffered() == 0 {
            conn.frame_started = None;
            return;
        }
        if fed.frames > 0 || conn.frame_started.is_none() {
            conn.frame_started = Some(self.now);
        }
        if !conn.frame_timer_armed {
            conn.frame_timer_armed = true;
            self.timers.schedule(self.now + limit, id, TimerKind::Frame);
        }
    }

    // ----- writing and closing ----------------------------------------------

    /// Writes what connection `id` has to say, then settles every connection a
    /// handler sent to along the way.
    fn settle(&mut self, id: ConnId) {
        self.settle_one(id);
        self.settle_touched();
    }

    /// Writes the reply buffer (or flushes the queue), then decides: close,
    /// pause or resume reading, and whether to watch for WRITABLE.
    fn settle_one(&mut self, id: ConnId) {
        let Some(conn) = lookup(&mut self.conns, id) else {
            self.reply.clear();
            return;
        };
        let mut close = conn.doomed;
        if close.is_none() {
            let written = match self.reply.is_empty() {
                true => conn.flush(),
                false => conn.write_or_queue(&self.reply),
            };
            match written {
                Ok(n) => self.counters.bytes_out(n),
                Err(e) => {
                    debug!("{}: write failed: {e}", conn.peer);
                    close = Some(CloseReason::Reset);
                }
            }
        }
        self.reply.clear();
        let pending = conn.pending_output();
        if close.is_none() && pending == 0 {
            close = conn.finish;
        }
        if let Some(reason) = close {
            self.close(id, reason);
            return;
        }

        // Backpressure: a peer that does not read its replies stops being read.
        let mut resume = false;
        if !conn.paused && pending > self.config.high_water {
            debug!("{}: {pending} bytes unsent; pausing reads", conn.peer);
            conn.paused = true;
            self.counters.read_paused();
        } else if conn.paused && pending <= self.config.low_water {
            debug!(
                "{}: output drained to {pending} bytes; resuming reads",
                conn.peer
            );
            conn.paused = false;
            resume = true; // input may be waiting, and no new edge will come
        }
        if let Err(e) = conn.sync_interest(self.poll.registry()) {
            debug!("{}: reregister failed: {e}", conn.peer);
            self.close(id, CloseReason::Reset);
            return;
        }
        if resume {
            self.mark_ready(id);
        }
    }

    /// Removes a connection; tells the handler if it had seen it open.
    fn close(&mut self, id: ConnId, reason: CloseReason) {
        if lookup(&mut self.conns, id).is_none() {
            return;
        }
        let mut conn = self.conns.remove(id.index());
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.counters.closed(reason);
        debug!("{} ({id}): closed: {reason}", conn.peer);
        if matches!(conn.phase, Phase::Open) {
            self.reply.clear();
            self.call_handler(id, conn.peer, |handler, ctx| handler.on_close(ctx));
            self.reply.clear(); // nobody left to read it
        }
        if self.accept_retry_at.is_some() {
            self.accept_retry_at = Some(self.now); // a descriptor was freed
        }
    }

    // ----- timers -----------------------------------------------------------

    fn fire_due_timers(&mut self) {
        while let Some((id, kind)) = self.timers.pop_due(self.now) {
            if let Some(reason) = self.expired(id, kind) {
                if let Some(conn) = lookup(&mut self.conns, id) {
                    info!("{}: {reason} timeout; closing", conn.peer);
                }
                self.close(id, reason);
                self.settle_touched();
            }
        }
        if self.accept_retry_at.is_some_and(|at| at <= self.now) {
            self.accept_all();
        }
        if let Some(at) = self.next_stats_at.filter(|at| *at <= self.now) {
            info!("stats: {}", self.counters.snapshot());
            self.next_stats_at = self.config.stats_interval.map(|every| at + every);
        }
        if self.shutdown_deadline.is_some_and(|at| at <= self.now) {
            let left: Vec<ConnId> = self.conns.iter().map(|(_, c)| c.id).collect();
            if !left.is_empty() {
                warn!(
                    "shutdown timeout: closing {} connections unflushed",
                    left.len()
                );
            }
            for id in left {
                self.close(id, CloseReason::Shutdown);
            }
            self.touched.clear();
        }
    }

    /// Whether a fired timer closes its connection; re-arms it if not yet.
    /// Timers are never cancelled, so each one checks it still applies.
    fn expired(&mut self, id: ConnId, kind: TimerKind) -> Option<CloseReason> {
        let conn = lookup(&mut self.conns, id)?;
        let rearm = match kind {
            TimerKind::Handshake => {
                return matches!(conn.phase, Phase::Handshake(_))
                    .then_some(CloseReason::HandshakeTimeout);
            }
            TimerKind::Idle => {
                let due = conn.last_read + self.config.idle_timeout?;
                (due > self.now).then_some(due).ok_or(CloseReason::Idle)
            }
            TimerKind::Frame => match conn.frame_started {
                None => {
                    conn.frame_timer_armed = false;
                    return None;
                }
                Some(started) => {
                    let due = started + self.config.frame_timeout?;
                    (due > self.now)
                        .then_some(due)
                        .ok_or(CloseReason::FrameTimeout)
                }
            },
        };
        match rearm {
            Ok(due) => {
                self.timers.schedule(due, id, kind);
                None
            }
            Err(reason) => Some(reason),
        }
    }

    /// Settles every connection a handler sent to (see [`Ctx::send_to`]).
    /// Output others piled on a connection is capped only after the kernel
    /// took what it would, so a reader that keeps up is never cut off.
    fn settle_touched(&mut self) {
        while let Some(other) = self.touched.pop() {
            if let Some(conn) = lookup(&mut self.conns, other) {
                conn.touched = false;
            }
            self.settle_one(other);
            if let Some(conn) = lookup(&mut self.conns, other)
                && conn.pending_output() > self.config.max_output
            {
                warn!(
                    "{}: {} bytes of output waiting, over the {}-byte cap; disconnecting",
                    conn.peer,
                    conn.pending_output(),
                    self.config.max_output
                );
                conn.discard_output();
                self.close(other, CloseReason::OutputCap);
            }
        }
    }

    // ----- shutdown ---------------------------------------------------------

    fn check_shutdown(&mut self) {
        if self.stop.load(Ordering::SeqCst) && self.shutdown_deadline.is_none() {
            self.begin_shutdown();
        }
    }

    /// Stop accepting; take in what every connection already sent (so each
    /// frame that fully arrived gets its reply); stop reading; flush; close.
    fn begin_shutdown(&mut self) {
        info!(
            "shutting down: flushing {} connections (at most {:?})",
            self.conns.len(),
            self.config.shutdown_timeout
        );
        self.shutdown_deadline = Some(self.now + self.config.shutdown_timeout);
        self.accepting = false;
        let _ = self.poll.registry().deregister(&mut self.listener);
        let ids: Vec<ConnId> = self.conns.iter().map(|(_, c)| c.id).collect();
        for id in ids {
            if let Some(conn) = lookup(&mut self.conns, id) {
                conn.paused = false;
            }
            for _ in 0..SHUTDOWN_READS {
                if !self.read(id) {
                    break;
                }
            }
            if let Some(conn) = lookup(&mut self.conns, id) {
                if !matches!(conn.phase, Phase::Open) {
                    conn.doomed = Some(CloseReason::Shutdown);
                }
                conn.finish.get_or_insert(CloseReason::Shutdown);
                self.settle(id);
            }
        }
    }

    // ----- UDP --------------------------------------------------------------

    /// Answers every waiting datagram. A reply that would block is dropped
    /// and counted: datagrams promise no delivery, and an unbounded queue
    /// would be worse.
    fn serve_datagrams(&mut self) {
        let Some(socket) = &self.udp else { return };
        // At most a batch per turn, so a flood cannot starve TCP; the rest
        // waits a turn (no edge will come for datagrams already queued).
        self.udp_backlog = true;
        for _ in 0..DATAGRAM_BATCH {
            let (n, from) = match socket.recv_from(&mut self.read_buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.udp_backlog = false;
                    break;
                }
                Err(e) => {
                    debug!("udp: recv_from failed: {e}");
                    continue;
                }
            };
            self.reply.clear();
            self.handler
                .on_datagram(&self.read_buf[..n], &mut self.reply);
            let mut dropped = false;
            if !self.reply.is_empty()
                && let Err(e) = socket.send_to(&self.reply, from)
            {
                debug!("udp: reply to {from} dropped: {e}");
                dropped = true;
            }
            self.counters.datagram(dropped);
        }
        self.reply.clear();
    }
}

/// Binds a listening socket with a backlog of [`LISTEN_BACKLOG`].
///
/// mio and std listen with a backlog of 128: too few for a burst of thousands
/// of connects. When the accept queue overflows, the kernel drops SYNs and each
/// client waits a 1-second retransmit. socket2 lets us choose the backlog (the
/// kernel still caps it at `net.core.somaxconn`).
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std does: a restarted server may bind while old connections linger
    // in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// The connection `id` names, if it is still the one in its slot.
fn lookup(conns: &mut Slab<Connection>, id: ConnId) -> Option<&mut Connection> {
    conns.get_mut(id.index()).filter(|conn| conn.id == id)
}

/// One `read`, retried on `Interrupted`.
fn read_once(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}
