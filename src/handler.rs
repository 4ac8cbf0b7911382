//! The extension point: what a server does with each frame.
//!
//! This is the reactor's `socketserver.BaseRequestHandler`, with what Redis's
//! `ae` gives its callbacks besides: data kept per connection, timers, and a
//! way for other threads to hand work back to the loop. A [`Handler`] gets a
//! hook when a connection opens, one per frame (or raw chunk), one when a
//! timer it set fires, and one when the connection closes; each hook gets a
//! [`Ctx`] through which it replies, reaches its connection's state, sends to
//! other connections by [`ConnId`], sets timers, or closes. Hooks that are not
//! about one connection ([`Handler::on_start`], [`Handler::on_tick`], a
//! message posted through a [`Mailbox`]) get a [`LoopCtx`]: everything a
//! `Ctx` offers but the connection itself. A `Ctx` derefs to its `LoopCtx`.
//!
//! A handler never sees a socket, a token or a buffer's insides, and it must
//! never block: the whole server is one thread, so a handler that sleeps,
//! waits on a lock or does file or network IO of its own stalls every
//! connection. Slow work goes to other threads, and comes back through a
//! [`Mailbox`]. Replies are queued, never written from inside a hook; the
//! reactor writes them once the hook returns.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::config::Codec;
use crate::connection::{ConnId, Connection};
use crate::frame::{self, PayloadWriter};
use crate::mailbox::{Mailbox, PostError, Refused};
use crate::reactor::Due;
use crate::stats::CloseReason;
use crate::timer::{Clock, HandlerTimers, Stamp, TimerId, Timers};

/// A protocol: one instance serves every connection of a reactor.
///
/// State shared across connections (a chat room, a key-value store) lives in
/// the handler itself; state of one connection lives in [`Handler::Conn`]. No
/// locks are needed for either: only the reactor's thread ever calls a hook.
///
/// # Examples
///
/// The smallest handler: reply to every frame with its length, in decimal.
///
/// ```
/// use frameloop::{Client, Config, Ctx, Handler};
///
/// struct Length;
///
/// impl Handler for Length {
///     type Conn = ();
///     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
///         ctx.send(payload.len().to_string().as_bytes());
///     }
/// }
///
/// let server = frameloop::spawn(Config::loopback(), Length)?;
/// let mut client = Client::connect(server.addr())?;
/// assert_eq!(client.request(b"hello")?, b"5");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A handler that keeps a count per connection and says goodbye after three
/// frames:
///
/// ```
/// use frameloop::{Client, Config, Ctx, Handler};
///
/// struct Three;
///
/// impl Handler for Three {
///     type Conn = u32; // frames seen on this connection
///     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
///         *ctx.conn() += 1;
///         ctx.send(payload);
///         if *ctx.conn() == 3 {
///             ctx.close(); // after the replies so far are written
///         }
///     }
/// }
///
/// let server = frameloop::spawn(Config::loopback(), Three)?;
/// let mut client = Client::connect(server.addr())?;
/// for word in ["one", "two", "three"] {
///     assert_eq!(client.request(word.as_bytes())?, word.as_bytes());
/// }
/// assert!(client.request(b"four").is_err()); // closed after the third
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Handler: Sized + 'static {
    /// What the handler keeps for each connection: made with `Default` when
    /// the connection opens, reached with [`Ctx::conn`] in every hook about
    /// it, dropped after [`Handler::on_close`]. `()` for nothing.
    type Conn: Default + 'static;

    /// The reactor is about to start serving (set ticks here).
    fn on_start(&mut self, _ctx: &mut LoopCtx<'_, Self>) {}

    /// A connection was accepted (and authenticated, if a key is set).
    fn on_open(&mut self, _ctx: &mut Ctx<'_, Self>) {}

    /// A whole frame arrived (with `--codec raw`: a chunk as read).
    /// `payload` is borrowed from the reactor's buffer, valid for this call.
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]);

    /// A timer set with [`Ctx::set_timer`] (or [`Ctx::set_timer_every`]) for
    /// this connection fired. Never called after the connection closed.
    fn on_timer(&mut self, _ctx: &mut Ctx<'_, Self>, _timer: TimerId) {}

    /// The connection stops being served: no more frames will come, and
    /// others can no longer [`LoopCtx::send_to`] it. What this hook sends to
    /// the connection itself is still written, unless it closes for a reset,
    /// an output cap or the shutdown deadline ([`Ctx::close_reason`] says why).
    fn on_close(&mut self, _ctx: &mut Ctx<'_, Self>) {}

    /// A timer set with [`LoopCtx::set_tick`] (or [`LoopCtx::set_tick_every`]) fired.
    fn on_tick(&mut self, _ctx: &mut LoopCtx<'_, Self>, _timer: TimerId) {}

    /// A UDP datagram arrived (`serve --udp`). Answer with at most one
    /// datagram through [`DatagramCtx::reply`]; the default echoes it.
    fn on_datagram(&mut self, ctx: &mut DatagramCtx<'_, Self>, payload: &[u8]) {
        ctx.reply(payload);
    }
}

/// What a handler may do during a hook that is not about one connection,
/// and, through a [`Ctx`], during one that is.
pub struct LoopCtx<'a, H: Handler> {
    /// The reactor running the hook (0 with one reactor).
    pub(crate) reactor: usize,
    pub(crate) now: Stamp,
    pub(crate) clock: &'a Clock,
    pub(crate) codec: Codec,
    pub(crate) conns: &'a mut Slab<Connection<H::Conn>>,
    /// Connections given output by `send_to`, for the reactor to flush.
    pub(crate) touched: &'a mut Vec<ConnId>,
    /// Connections a handler asked to close with [`LoopCtx::close_conn`].
    pub(crate) closes: &'a mut Vec<ConnId>,
    pub(crate) timers: &'a mut Timers<Due>,
    pub(crate) handler_timers: &'a mut HandlerTimers,
    /// Every reactor's mailbox, this one's included, by index.
    pub(crate) peers: &'a Vec<Mailbox<H>>,
    /// The connection whose hook is running, and the reactor's reply
    /// buffer for it: sending to it is replying.
    pub(crate) own: Option<(ConnId, &'a mut Vec<u8>)>,
    /// What the reactors share: which of them have a congested receiver.
    pub(crate) shared: &'a crate::reactor::Shared,
    /// Set when this hook posted to one of them: its sender is held back.
    pub(crate) held_back: &'a mut bool,
}

impl<H: Handler> LoopCtx<'_, H> {
    /// The reactor running this hook: 0 with one reactor.
    pub fn reactor(&self) -> usize {
        self.reactor
    }

    /// How many reactors the server has.
    pub fn reactors(&self) -> usize {
        self.peers.len()
    }

    /// Posts a message to reactor `reactor`'s handler (see [`Mailbox::post`]):
    /// how handlers on different reactors share what they know. Posting to
    /// this reactor runs the message later, on this thread.
    pub fn post_to(
        &mut self,
        reactor: usize,
        message: impl for<'b> FnOnce(&mut H, &mut LoopCtx<'b, H>) + Send + 'static,
    ) -> Result<(), Refused<H>> {
        if reactor != self.reactor
            && self
                .shared
                .congested
                .get(reactor)
                .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            *self.held_back = true; // a receiver there is behind: slow down
        }
        match self.peers.get(reactor) {
            Some(mailbox) => mailbox.post(message),
            None => Err(Refused::new(PostError::Stopped, Box::new(message))),
        }
    }

    /// The time of this turn of the loop (read once after `poll` returned).
    pub fn now(&self) -> Instant {
        self.clock.instant(self.now)
    }

    /// Whether `id` names a connection that is open now. A [`ConnId`] kept
    /// after its connection closed never names another one: this is how a
    /// message that arrives late tells that its connection is gone.
    pub fn is_open(&self, id: ConnId) -> bool {
        id.reactor() == self.reactor
            && self
                .conns
                .get(id.index())
                .is_some_and(|c| c.id == id && c.is_open())
    }

    /// Sends one frame to connection `id`. Returns `false`, and sends
    /// nothing, if it is gone (closed, closing, or not yet authenticated).
    /// In a hook about `id` itself, it is a reply, in order with
    /// [`Ctx::send`].
    ///
    /// A connection on another reactor is reached through that reactor's
    /// mailbox: then `true` means the frame is on its way (that reactor drops
    /// it if the connection is gone by the time it arrives), and `false`
    /// that its mailbox was full.
    ///
    /// The reactor writes it when the hook returns. A receiver that does not
    /// keep up is dealt with by the reactor: while its unsent output is over
    /// high-water, connections sending to it are not read (they feel their
    /// slowest receiver); if it stays there for `slow_reader_timeout`, or its
    /// output passes `max_output`, it is disconnected. So a stalled reader
    /// never grows memory.
    ///
    /// # Examples
    ///
    /// An announcer: every frame goes to every other connection.
    ///
    /// ```
    /// use std::collections::BTreeSet;
    /// use frameloop::{Client, Config, ConnId, Ctx, Handler};
    ///
    /// #[derive(Default)]
    /// struct Announce(BTreeSet<ConnId>);
    ///
    /// impl Handler for Announce {
    ///     type Conn = ();
    ///     fn on_open(&mut self, ctx: &mut Ctx<'_, Self>) {
    ///         self.0.insert(ctx.id());
    ///         ctx.send(b"welcome");
    ///     }
    ///     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
    ///         let me = ctx.id();
    ///         for &other in self.0.iter().filter(|&&id| id != me) {
    ///             ctx.send_to(other, payload);
    ///         }
    ///     }
    ///     fn on_close(&mut self, ctx: &mut Ctx<'_, Self>) {
    ///         self.0.remove(&ctx.id());
    ///     }
    /// }
    ///
    /// let server = frameloop::spawn(Config::loopback(), Announce::default())?;
    /// let mut alice = Client::connect(server.addr())?;
    /// assert_eq!(alice.recv()?, b"welcome");
    /// let mut bob = Client::connect(server.addr())?;
    /// assert_eq!(bob.recv()?, b"welcome");
    /// alice.send(b"hi bob")?;
    /// assert_eq!(bob.recv()?, b"hi bob");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Everything goes to the first connection; the others are told whether
    /// it got there (once the first has left, it is gone for good: a later
    /// connection in its slot is another connection).
    ///
    /// ```
    /// use frameloop::{Client, Config, ConnId, Ctx, Handler};
    ///
    /// #[derive(Default)]
    /// struct ToFirst {
    ///     first: Option<ConnId>,
    /// }
    ///
    /// impl Handler for ToFirst {
    ///     type Conn = ();
    ///     fn on_open(&mut self, ctx: &mut Ctx<'_, Self>) {
    ///         self.first.get_or_insert(ctx.id());
    ///     }
    ///     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
    ///         let Some(first) = self.first else { return };
    ///         let arrived = ctx.send_to(first, payload); // to itself: a reply
    ///         if first != ctx.id() {
    ///             ctx.send(if arrived { b"sent" } else { b"gone" });
    ///         }
    ///     }
    /// }
    ///
    /// let server = frameloop::spawn(Config::loopback(), ToFirst::default())?;
    /// let mut first = Client::connect(server.addr())?;
    /// assert_eq!(first.request(b"me first")?, b"me first");
    /// let mut second = Client::connect(server.addr())?;
    /// assert_eq!(second.request(b"hi, first")?, b"sent");
    /// assert_eq!(first.recv()?, b"hi, first");
    /// drop(first);
    /// std::thread::sleep(std::time::Duration::from_millis(100));
    /// assert_eq!(second.request(b"still there?")?, b"gone");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_to(&mut self, id: ConnId, payload: &[u8]) -> bool {
        self.send_to_with(id, |w| w.extend_from_slice(payload))
    }

    /// Like [`LoopCtx::send_to`], with the payload built in place by `write`.
    pub fn send_to_with(&mut self, id: ConnId, write: impl FnOnce(&mut PayloadWriter<'_>)) -> bool {
        if let Some((own, reply)) = &mut self.own
            && *own == id
        {
            // Into the reply buffer: behind this hook's replies, not ahead.
            append_message(self.codec, reply, write);
            return true;
        }
        if id.reactor() != self.reactor {
            let mut payload = Vec::new();
            write(&mut PayloadWriter::new(&mut payload));
            return self
                .post_to(id.reactor(), move |_, ctx| {
                    ctx.send_to(id, &payload);
                })
                .is_ok();
        }
        let Some(conn) = self.conns.get_mut(id.index()) else {
            return false;
        };
        if conn.id != id || !conn.is_open() {
            return false;
        }
        append_message(self.codec, conn.queue(), write);
        if !conn.touched {
            conn.touched = true;
            self.touched.push(id);
        }
        true
    }

    /// Closes connection `id` gracefully, as if its own handler had called
    /// [`Ctx::close`]: what was sent to it is written first. Returns `false`
    /// if it is gone already.
    pub fn close_conn(&mut self, id: ConnId) -> bool {
        if id.reactor() != self.reactor {
            return self
                .post_to(id.reactor(), move |_, ctx| {
                    ctx.close_conn(id);
                })
                .is_ok();
        }
        let Some(conn) = self.conns.get_mut(id.index()) else {
            return false;
        };
        if conn.id != id || !conn.is_open() {
            return false;
        }
        self.closes.push(id);
        true
    }

    /// Calls [`Handler::on_tick`] once, `after` from now (at least a
    /// millisecond). Ticks belong to the handler as a whole, not to a
    /// connection.
    pub fn set_tick(&mut self, after: Duration) -> TimerId {
        self.add_timer(None, after, None)
    }

    /// Calls [`Handler::on_tick`] every `every`, until cancelled. (Each tick
    /// is scheduled from the time the last one ran: a busy loop delays ticks,
    /// never bunches them up.)
    pub fn set_tick_every(&mut self, every: Duration) -> TimerId {
        self.add_timer(None, every, Some(every))
    }

    /// Cancels a timer or tick. Returns `false` if it was not set (fired
    /// already, or cancelled).
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        let Some(cancelled) = self.handler_timers.remove(timer) else {
            return false;
        };
        if let Some(owner) = cancelled.owner
            && let Some(conn) = self.conns.get_mut(owner.index())
            && conn.id == owner
        {
            conn.timers -= 1;
        }
        true
    }

    /// A handle other threads can use to hand work back to this loop.
    pub fn mailbox(&self) -> Mailbox<H> {
        self.peers[self.reactor].clone()
    }

    fn add_timer(
        &mut self,
        owner: Option<ConnId>,
        after: Duration,
        every: Option<Duration>,
    ) -> TimerId {
        // At least a millisecond (the clock's grain): a timer set for "now"
        // from its own hook would otherwise fire again in the same pass, for
        // ever.
        let (after, every) = (after.max(MIN_DELAY), every.map(|e| e.max(MIN_DELAY)));
        let id = self.handler_timers.add(owner, every);
        self.timers.schedule(self.now.after(after), Due::Timer(id));
        // Timers set and cancelled in a loop leave stale entries behind:
        // compact as soon as they dominate, not when something fires.
        let (conns, handler_timers) = (&*self.conns, &*self.handler_timers);
        if self
            .timers
            .needs_compaction(conns.len() + handler_timers.len() + 3)
        {
            self.timers
                .compact(|at, due| crate::reactor::timer_is_live(conns, handler_timers, at, due));
        }
        id
    }
}

/// The shortest delay a handler timer gets.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// What a handler may do during a hook about one connection: reply, reach
/// the connection's state, set its timers, close it; and, through
/// [`LoopCtx`] (a `Ctx` derefs to one), everything else.
pub struct Ctx<'a, H: Handler> {
    pub(crate) lp: LoopCtx<'a, H>,
    pub(crate) id: ConnId,
    pub(crate) close_requested: bool,
    pub(crate) close_reason: Option<CloseReason>,
}

impl<'a, H: Handler> Deref for Ctx<'a, H> {
    type Target = LoopCtx<'a, H>;
    fn deref(&self) -> &LoopCtx<'a, H> {
        &self.lp
    }
}

impl<'a, H: Handler> DerefMut for Ctx<'a, H> {
    fn deref_mut(&mut self) -> &mut LoopCtx<'a, H> {
        &mut self.lp
    }
}

impl<H: Handler> Ctx<'_, H> {
    /// This connection's id: give it to others so they can `send_to` it.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.lp.conns[self.id.index()].peer
    }

    /// What the handler keeps for this connection ([`Handler::Conn`]).
    pub fn conn(&mut self) -> &mut H::Conn {
        let conn = &mut self.lp.conns[self.id.index()];
        debug_assert_eq!(conn.id, self.id);
        &mut conn.handler
    }

    /// Replies with one frame (raw codec: the bytes as they are).
    ///
    /// # Examples
    ///
    /// ```
    /// use frameloop::{Client, Config, Ctx, Handler};
    ///
    /// struct Twice;
    ///
    /// impl Handler for Twice {
    ///     type Conn = ();
    ///     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
    ///         ctx.send(payload); // two replies, in this order
    ///         ctx.send(payload);
    ///     }
    /// }
    ///
    /// let server = frameloop::spawn(Config::loopback(), Twice)?;
    /// let mut client = Client::connect(server.addr())?;
    /// client.send(b"hey")?;
    /// assert_eq!((client.recv()?, client.recv()?), (b"hey".to_vec(), b"hey".to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send(&mut self, payload: &[u8]) {
        self.send_with(|w| w.extend_from_slice(payload));
    }

    /// Replies with one frame whose payload `write` appends, so a reply can
    /// be built in place instead of in a buffer of its own. The writer only
    /// appends: nothing sent before can be changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use frameloop::{Client, Config, Ctx, Handler};
    ///
    /// struct Sum;
    ///
    /// impl Handler for Sum {
    ///     type Conn = ();
    ///     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
    ///         let sum: u64 = payload.iter().map(|&b| u64::from(b)).sum();
    ///         ctx.send_with(|w| {
    ///             let _ = write!(w, "sum={sum}");
    ///         });
    ///     }
    /// }
    ///
    /// let server = frameloop::spawn(Config::loopback(), Sum)?;
    /// let mut client = Client::connect(server.addr())?;
    /// assert_eq!(client.request(&[1, 2, 3])?, b"sum=6");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_with(&mut self, write: impl FnOnce(&mut PayloadWriter<'_>)) {
        // Straight into the reply buffer (this is echo's path).
        if let Some((_, reply)) = &mut self.lp.own {
            append_message(self.lp.codec, reply, write);
        }
    }

    /// Closes this connection once the replies written so far are flushed.
    /// Frames behind this one in the same read are not delivered.
    pub fn close(&mut self) {
        self.close_requested = true;
    }

    /// Why the connection is closing, in [`Handler::on_close`]; `None` in
    /// other hooks.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// Calls [`Handler::on_timer`] for this connection once, `after` from
    /// now; never after the connection closed.
    ///
    /// # Examples
    ///
    /// Say "still there?" a moment after each frame, unless another comes:
    ///
    /// ```
    /// use std::time::Duration;
    /// use frameloop::{Client, Config, Ctx, Handler, TimerId};
    ///
    /// struct Nudge;
    ///
    /// impl Handler for Nudge {
    ///     type Conn = Option<TimerId>; // the nudge pending, if any
    ///     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
    ///         ctx.send(payload);
    ///         if let Some(old) = ctx.conn().take() {
    ///             ctx.cancel_timer(old);
    ///         }
    ///         let timer = ctx.set_timer(Duration::from_millis(50));
    ///         *ctx.conn() = Some(timer);
    ///     }
    ///     fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _timer: frameloop::TimerId) {
    ///         *ctx.conn() = None;
    ///         ctx.send(b"still there?");
    ///     }
    /// }
    ///
    /// let server = frameloop::spawn(Config::loopback(), Nudge)?;
    /// let mut client = Client::connect(server.addr())?;
    /// assert_eq!(client.request(b"hi")?, b"hi");
    /// assert_eq!(client.recv()?, b"still there?");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_timer(&mut self, after: Duration) -> TimerId {
        self.connection_timer(after, None)
    }

    /// Calls [`Handler::on_timer`] for this connection every `every`, until
    /// cancelled or the connection closes.
    pub fn set_timer_every(&mut self, every: Duration) -> TimerId {
        self.connection_timer(every, Some(every))
    }

    fn connection_timer(&mut self, after: Duration, every: Option<Duration>) -> TimerId {
        let id = self.id;
        self.lp.conns[id.index()].timers += 1;
        self.lp.add_timer(Some(id), after, every)
    }
}

/// What a handler may do while answering a UDP datagram: reply to its sender
/// with at most one datagram, and, through [`LoopCtx`] (it derefs to one),
/// reach the TCP connections, timers and mailbox.
pub struct DatagramCtx<'a, H: Handler> {
    pub(crate) lp: LoopCtx<'a, H>,
    pub(crate) from: SocketAddr,
    /// The reply datagram: `start` bytes of room for the reactor's header,
    /// then the payload.
    pub(crate) reply: &'a mut Vec<u8>,
    pub(crate) start: usize,
    pub(crate) replied: bool,
}

impl<'a, H: Handler> Deref for DatagramCtx<'a, H> {
    type Target = LoopCtx<'a, H>;
    fn deref(&self) -> &LoopCtx<'a, H> {
        &self.lp
    }
}

impl<'a, H: Handler> DerefMut for DatagramCtx<'a, H> {
    fn deref_mut(&mut self) -> &mut LoopCtx<'a, H> {
        &mut self.lp
    }
}

impl<H: Handler> DatagramCtx<'_, H> {
    /// The sender's address.
    pub fn from(&self) -> SocketAddr {
        self.from
    }

    /// Answers with `payload` (empty is a valid, empty datagram). Calling it
    /// again replaces the answer: a datagram gets at most one.
    pub fn reply(&mut self, payload: &[u8]) {
        self.reply_with(|w| w.extend_from_slice(payload));
    }

    /// Answers with a payload built in place by `write`.
    pub fn reply_with(&mut self, write: impl FnOnce(&mut PayloadWriter<'_>)) {
        self.reply.truncate(self.start);
        write(&mut PayloadWriter::new(self.reply));
        self.replied = true;
    }
}

impl<H: Handler> std::fmt::Debug for LoopCtx<'_, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopCtx")
            .field("reactor", &self.reactor)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl<H: Handler> std::fmt::Debug for Ctx<'_, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("id", &self.id)
            .field("close_requested", &self.close_requested)
            .field("close_reason", &self.close_reason)
            .finish_non_exhaustive()
    }
}

impl<H: Handler> std::fmt::Debug for DatagramCtx<'_, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramCtx")
            .field("from", &self.from)
            .field("replied", &self.replied)
            .finish_non_exhaustive()
    }
}

/// Appends one message in the codec's format: a frame (see `frame.rs`), or
/// with the raw codec the payload alone.
fn append_message(codec: Codec, out: &mut Vec<u8>, write: impl FnOnce(&mut PayloadWriter<'_>)) {
    match codec {
        Codec::Raw => write(&mut PayloadWriter::new(out)),
        Codec::Frame => {
            if let Err(too_large) = frame::encode_with(out, write) {
                log::error!("handler reply dropped: {too_large}");
            }
        }
    }
}

/// Sends every frame back unchanged. The default handler.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        ctx.send(payload);
    }
}

/// Sends every frame back with ASCII letters upper-cased, like the notes'
/// non-blocking server (`content.upper()`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Upper;

impl Handler for Upper {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        ctx.send_with(|w| w.extend(payload.iter().map(u8::to_ascii_uppercase)));
    }

    fn on_datagram(&mut self, ctx: &mut DatagramCtx<'_, Self>, payload: &[u8]) {
        ctx.reply_with(|w| w.extend(payload.iter().map(u8::to_ascii_uppercase)));
    }
}
