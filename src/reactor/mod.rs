//! The event loop: one thread, one `mio::Poll`, every socket in it.
//!
//! A `Reactor` owns the loop and the decisions taken in it: when to accept,
//! read, write, pause, time out and close. One turn of the loop is
//!
//! 1. wait in `poll` until a socket is ready or the nearest deadline passes;
//! 2. dispatch each event by its token (listener, UDP socket, waker, or a
//!    connection);
//! 3. read the connections the fairness cap left with input pending;
//! 4. fire due timers.
//!
//! Each step is a call out of `Reactor::run`, into the file named for it:
//! `accept.rs`, `read.rs` (read, decode, hand to the handler), `write.rs`
//! (write, backpressure, close), `timers.rs`, `hooks.rs` (calling the handler,
//! messages from other threads), `shutdown.rs`, `udp.rs`. It never parses
//! bytes (that is `frame.rs` and `auth`), never decides what a frame means
//! (that is the [`Handler`]) and never blocks: every socket is non-blocking,
//! and the only wait is `poll` itself. It relies on Linux's epoll semantics,
//! as mio exposes them (see the rules below); frameloop is Linux only.
//!
//! The rules edge-triggered readiness imposes, and how they are kept:
//! - A readiness event is a hint and comes once per change. After one, the
//!   socket is read until `WouldBlock` *or a short read* (fewer bytes than
//!   the buffer: on Linux, the kernel had no more), which saves a syscall per
//!   message. A read that fills the buffer may have left more: the
//!   connection goes on the ready list and is read again next turn, after
//!   everyone else had a turn (no edge will come for bytes already there).
//! - A connection's token packs its slab key and a generation
//!   ([`ConnId`]). An event still in the batch for a connection closed
//!   earlier in the same batch finds a different generation in that slot and
//!   is dropped, never delivered to the newcomer.
//! - HUP and error flags alone never close a connection: the read that follows
//!   returns the remaining data first, then 0 or the error.

mod accept;
mod hooks;
mod observe;
mod read;
mod shutdown;
mod timers;
mod udp;
mod write;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use log::{debug, info};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::auth::datagram::Guard;
use crate::auth::handshake::Authenticator;
use crate::config::{Config, LISTEN_BACKLOG, READ_CHUNK};
use crate::connection::{ConnId, Connection};
use crate::error::Error;
use crate::handler::Handler;
use crate::mailbox::{self, Inbox, Mailbox};
use crate::stats::{Counters, Stats};
use crate::timer::{Clock, HandlerTimers, Stamp, Timers};
use crate::trace::{Recorder, Sink, Tally, Window};

pub(crate) use timers::Due;

const LISTENER: Token = Token(0);
const UDP: Token = Token(1);
const WAKER: Token = Token(2);

/// What every reactor of a server shares with the others and with the
/// server's handles. Touched on accept, close and shutdown, never per frame.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Set by [`crate::ServerHandle::shutdown`]; each reactor's waker then fires.
    pub stop: AtomicBool,
    /// Connections open in the whole server, for `max_connections`.
    pub open: AtomicUsize,
    /// With a key and UDP: the datagram checks, and their one replay cache.
    pub udp_guard: Option<Guard>,
    /// Per reactor: whether one of its connections is over high-water with
    /// output from others. Another reactor's hook that posts to it is held
    /// back like a local sender (see `write.rs`).
    pub congested: Box<[AtomicBool]>,
    /// Bumped when a reactor's last congested receiver drains: the others,
    /// woken, let their held-back senders go on.
    pub relief: AtomicU64,
}

/// Whether the listener is being accepted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepting {
    Yes,
    /// `accept` failed (out of descriptors): not before this, or a close.
    PausedUntil(Stamp),
}

/// One event loop: a poller, a listener, its connections, its handler.
pub(crate) struct Reactor<H: Handler> {
    // ----- sockets -------------------------------------------------------------
    /// Which reactor this is (0 with one): part of every `ConnId` it makes.
    index: usize,
    /// The readiness poller. The listener, the UDP socket, the waker and every
    /// connection are registered in it; `poll` is the loop's only wait.
    poll: Poll,
    /// The TCP listening socket (backlog raised, see [`listen`]); closed
    /// (`None`) once shutdown began.
    listener: Option<TcpListener>,
    /// The UDP socket, with `Config::udp`.
    udp: Option<udp::Udp>,
    /// The address the listener is bound to (port 0 resolved).
    local_addr: SocketAddr,
    /// Whether the listener is being accepted from.
    accepting: Accepting,
    /// Connections may be left in the listen queue after a full batch.
    accept_backlog: bool,

    // ----- connections ---------------------------------------------------------
    /// Every connection, keyed by the slab key inside its `ConnId`.
    conns: Slab<Connection<H::Conn>>,
    /// The generation the next connection gets (so ids are never reused).
    next_generation: u32,
    /// Connections with input left after a full read (the fairness cap): they
    /// are read once more next turn, after everyone else.
    ready: VecDeque<ConnId>,
    /// Connections a hook sent to: they are written when the hook returns.
    touched: Vec<ConnId>,
    /// Connections a hook asked to close with `LoopCtx::close_conn`.
    closes: Vec<ConnId>,
    /// Connections not read because a connection they send to is over
    /// high-water: read again when a congested receiver drains.
    blocked: Vec<ConnId>,
    /// This reactor's connections over high-water with output from others.
    congested_receivers: usize,
    /// The hook that just ran posted to a reactor with a congested receiver.
    held_back: bool,
    /// The last `Shared::relief` seen.
    seen_relief: u64,
    /// Messages were left in the inbox because a receiver is congested:
    /// taken again once it drains.
    inbox_stalled: bool,

    // ----- the handler ---------------------------------------------------------
    /// The protocol: called from hooks only, on this thread only.
    handler: H,
    /// The timers the handler has set (their deadlines are in `timers`).
    handler_timers: HandlerTimers,
    /// This reactor's mailbox (cloned out to handlers and other threads).
    mailbox: Mailbox<H>,
    /// Its receiving end.
    inbox: Inbox<H>,
    /// Every reactor's mailbox, by index (this one's included).
    peers: Vec<Mailbox<H>>,
    /// Messages were left in the inbox after a full batch.
    inbox_backlog: bool,

    // ----- buffers -------------------------------------------------------------
    /// The one read buffer: every read lands here first.
    read_buf: Vec<u8>,
    /// The output of the hook running now, written as soon as it returns.
    reply: Vec<u8>,
    /// Bytes all connections hold in buffers now (see `Config::max_buffered`).
    buffered: usize,

    // ----- time ----------------------------------------------------------------
    /// The time of this turn, read once after `poll` returns.
    now: Stamp,
    /// The same, as an `Instant`.
    woke_at: Instant,
    /// Turns `Instant`s into stamps and back.
    clock: Clock,
    /// Every deadline the loop waits for besides sockets.
    timers: Timers<Due>,
    /// When the last warning about a limit was logged (at most one a second).
    last_warning: Option<Stamp>,

    // ----- policy --------------------------------------------------------------
    /// Limits and settings, checked by `Config::validate` before the bind.
    config: Config,
    /// The keyed MAC, when clients must authenticate.
    auth: Option<Authenticator>,
    /// This reactor's share of `Config::max_buffered`.
    budget: usize,

    // ----- shared with other threads ---------------------------------------------
    /// The stop flag and the server-wide connection count.
    shared: Arc<Shared>,
    /// This reactor's counters (a handle sums every reactor's).
    counters: Arc<Counters>,
    /// Set once shutdown began: the deadline for flushing.
    shutdown: Option<Stamp>,

    // ----- watching it work (see `trace.rs`) --------------------------------------
    /// Reads and timers so far, for the turn summary.
    tally: Tally,
    /// The recording of a window of turns, while one runs.
    recorder: Option<Recorder>,
}

impl<H: Handler> Reactor<H> {
    /// Binds the listener (and the UDP socket with `config.udp`) on `addr`.
    /// With `reuse_port`, several reactors can bind the same port and the
    /// kernel spreads connections (and datagrams) among them.
    pub fn bind(
        index: usize,
        config: &Config,
        addr: SocketAddr,
        reuse_port: bool,
        share_of_budget: usize,
        handler: H,
        shared: Arc<Shared>,
    ) -> Result<Reactor<H>, Error> {
        let poll = Poll::new()?;
        let (mut listener, datagrams) =
            bind_sockets(addr, reuse_port, config.udp).map_err(|e| Error::bind(addr, e))?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let udp = match datagrams {
            None => None,
            Some(socket) => Some(udp::Udp::new(socket, shared.udp_guard.clone(), &poll, UDP)?),
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (mailbox, inbox) = mailbox::mailbox(waker, config.mailbox_capacity);
        let clock = Clock::start();
        let woke_at = Instant::now();
        let now = clock.stamp(woke_at);
        let mut timers = Timers::default();
        if let Some(every) = config.stats_interval {
            timers.schedule(now.after(every), Due::Stats);
        }
        Ok(Reactor {
            index,
            poll,
            listener: Some(listener),
            udp,
            local_addr,
            accepting: Accepting::Yes,
            accept_backlog: false,
            conns: Slab::new(),
            next_generation: 0,
            ready: VecDeque::new(),
            touched: Vec::new(),
            closes: Vec::new(),
            blocked: Vec::new(),
            congested_receivers: 0,
            held_back: false,
            seen_relief: 0,
            inbox_stalled: false,
            handler,
            handler_timers: HandlerTimers::new(index),
            peers: vec![mailbox.clone()],
            mailbox,
            inbox,
            inbox_backlog: false,
            read_buf: vec![0; READ_CHUNK],
            reply: Vec::new(),
            buffered: 0,
            now,
            woke_at,
            clock,
            timers,
            last_warning: None,
            auth: config
                .key
                .as_ref()
                .map(|key| Authenticator::new(key.as_bytes())),
            budget: share_of_budget,
            config: config.clone(),
            shared,
            counters: Arc::default(),
            shutdown: None,
            tally: Tally::default(),
            recorder: None,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This reactor's mailbox.
    pub fn mailbox(&self) -> &Mailbox<H> {
        &self.mailbox
    }

    /// Learns the other reactors' mailboxes (every reactor's, by index).
    pub fn meet(&mut self, mailboxes: &[Mailbox<H>]) {
        self.peers = mailboxes.to_vec();
    }

    /// Records a window of turns (see `trace.rs`).
    pub fn record(&mut self, window: Window, sink: Sink) {
        self.recorder = Some(Recorder::new(self.index, window, sink));
    }

    /// This reactor's counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Runs the loop until a shutdown completes; returns this reactor's
    /// final counters.
    pub fn run(mut self) -> io::Result<Stats> {
        // Said once for the server: every reactor listens on the same port.
        match self.index {
            0 => info!("listening on {}", self.local_addr),
            i => debug!("reactor {i}: listening on {}", self.local_addr),
        }
        self.start();
        let mut events = Events::with_capacity(1024);
        while !self.finished() {
            let watch = self.watch_turn(); // `None` unless a summary or recording is on
            self.wait(&mut events)?;
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    UDP => self.serve_datagrams(),
                    WAKER => self.woken(),
                    token => self.connection_event(ConnId::from_token(self.index, token), event),
                }
            }
            self.read_ready_list();
            self.serve_backlogs();
            self.fire_due_timers();
            self.update_gauges();
            if let Some(watch) = watch {
                self.end_turn(watch, &events);
            }
        }
        self.stop_recording();
        Ok(self.counters.snapshot())
    }

    /// Waits in `poll` for readiness or the nearest deadline, then reads the
    /// clock once for the whole turn.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        let timeout = self.poll_timeout();
        match self.poll.poll(events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
            result => result?,
        }
        self.woke_at = Instant::now();
        self.now = self.clock.stamp(self.woke_at);
        Ok(())
    }

    /// How long `poll` may sleep: not at all if work is pending, else until
    /// the nearest deadline, else until an event. Measured from the turn's
    /// `now` (no clock read): a deadline may fire late by one turn's work.
    fn poll_timeout(&self) -> Option<Duration> {
        let udp_backlog = self.udp.as_ref().is_some_and(|udp| udp.backlog);
        if !self.ready.is_empty() || udp_backlog || self.inbox_backlog || self.accept_backlog {
            return Some(Duration::ZERO);
        }
        self.timers.next_deadline().map(|at| at.since(self.now))
    }

    /// Publishes the gauges (buffered bytes, timer entries) for handles to
    /// read: two relaxed stores, every turn. (Not less often: the turn before
    /// the loop sleeps may be the last for a long while, and what a handle
    /// reads must be what it left.)
    fn update_gauges(&self) {
        self.counters.gauges(self.buffered, self.timers.len());
    }

    /// Work a full batch left for the next turn: connects, datagrams, messages.
    fn serve_backlogs(&mut self) {
        if self.accept_backlog {
            self.accept_backlog = false;
            self.accept_all();
        }
        if self.udp.as_ref().is_some_and(|udp| udp.backlog) {
            self.serve_datagrams();
        }
        if self.inbox_backlog {
            self.deliver_messages();
        }
    }

    fn finished(&self) -> bool {
        self.shutdown.is_some() && self.conns.is_empty()
    }

    /// The connection `id` names, if it is still the one in its slot.
    fn lookup(&mut self, id: ConnId) -> Option<&mut Connection<H::Conn>> {
        lookup(&mut self.conns, id)
    }

    /// Logs at most one warning a second about limits, so a flood cannot
    /// flood the log. Returns whether this one may be logged.
    fn warning_due(&mut self) -> bool {
        let due = self
            .last_warning
            .is_none_or(|at| self.now >= at.after(Duration::from_secs(1)));
        if due {
            self.last_warning = Some(self.now);
        }
        due
    }
}

/// The connection `id` names in `conns`, if it is still the one in its slot.
pub(crate) fn lookup<S>(conns: &mut Slab<Connection<S>>, id: ConnId) -> Option<&mut Connection<S>> {
    conns.get_mut(id.index()).filter(|conn| conn.id == id)
}

/// Binds the TCP listener and, with `udp`, a UDP socket on the same port.
/// Port 0 lets the kernel pick a port free for TCP, which a UDP socket may
/// hold: then both are bound afresh, a port at a time (bounded; each try
/// fails only if the kernel picked a port taken for UDP).
fn bind_sockets(
    addr: SocketAddr,
    reuse_port: bool,
    udp: bool,
) -> io::Result<(TcpListener, Option<mio::net::UdpSocket>)> {
    let mut tries = 0;
    loop {
        let listener = listen(addr, reuse_port)?;
        if !udp {
            return Ok((listener, None));
        }
        match udp::bind(listener.local_addr()?, reuse_port) {
            Ok(socket) => return Ok((listener, Some(socket))),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && addr.port() == 0 && tries < 64 => {
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Binds a listening socket with a backlog of [`LISTEN_BACKLOG`].
///
/// mio and std listen with a backlog of 128: too few for a burst of thousands
/// of connects. When the accept queue overflows, the kernel drops SYNs and each
/// client waits a 1-second retransmit. socket2 lets us choose the backlog (the
/// kernel still caps it at `net.core.somaxconn`).
fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std does: a restarted server may bind while old connections linger
    // in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Why a timer entry may be stale: see [`Due`].
pub(crate) fn timer_is_live<S>(
    conns: &Slab<Connection<S>>,
    handler_timers: &HandlerTimers,
    at: Stamp,
    due: &Due,
) -> bool {
    match *due {
        Due::Conn(id) => conns
            .get(id.index())
            .is_some_and(|c| c.id == id && c.deadline == Some(at)),
        Due::Timer(timer) => handler_timers.get(timer).is_some(),
        Due::AcceptRetry | Due::Stats | Due::Shutdown => true,
    }
}
