//! Calling the handler: its hooks, with their contexts, and the messages
//! other threads post to this reactor's mailbox.
//!
//! A context borrows the reactor's parts a hook may touch (the connections,
//! for `send_to`; the timers; the reply buffer) for the length of one call.
//! What a hook asks for that cannot happen while it runs (closing a
//! connection, writing) is recorded and done when it returns.

use std::sync::atomic::Ordering;

use super::Reactor;
use crate::connection::ConnId;
use crate::handler::{Ctx, DatagramCtx, Handler, LoopCtx};
use crate::stats::CloseReason;
use crate::trace::SpanKind;

/// Messages run per turn before sockets get their turn again.
const MESSAGE_BATCH: usize = 1024;

/// Messages run between two writes: often enough to notice a receiver
/// falling behind, seldom enough that a thousand lines to one member make
/// a handful of writes, not a thousand.
const SETTLE_EVERY: usize = 64;

/// Borrows the reactor's parts into a `LoopCtx`; a macro, because a method
/// returning it would borrow all of `self` and leave nothing for the rest.
macro_rules! loop_ctx {
    ($reactor:ident) => {
        loop_ctx!($reactor, None)
    };
    ($reactor:ident, $own:expr) => {
        LoopCtx {
            reactor: $reactor.index,
            now: $reactor.now,
            clock: &$reactor.clock,
            codec: $reactor.config.codec,
            conns: &mut $reactor.conns,
            touched: &mut $reactor.touched,
            closes: &mut $reactor.closes,
            timers: &mut $reactor.timers,
            handler_timers: &mut $reactor.handler_timers,
            peers: &$reactor.peers,
            own: $own,
            shared: &$reactor.shared,
            held_back: &mut $reactor.held_back,
        }
    };
}

impl<H: Handler> Reactor<H> {
    /// Runs a hook about connection `id`, which must be in the slab. If the
    /// hook called [`Ctx::close`], the close begins as soon as it returns.
    /// `closing` is the reason, for [`Handler::on_close`].
    pub(super) fn call_conn_hook<R>(
        &mut self,
        id: ConnId,
        closing: Option<CloseReason>,
        hook: impl FnOnce(&mut H, &mut Ctx<'_, H>) -> R,
    ) -> R {
        let mut ctx = Ctx {
            lp: loop_ctx!(self, Some((id, &mut self.reply))),
            id,
            close_requested: false,
            close_reason: closing,
        };
        let result = hook(&mut self.handler, &mut ctx);
        if ctx.close_requested && closing.is_none() {
            self.begin_close(id, CloseReason::Handler);
        }
        result
    }

    /// Runs a hook that is not about one connection. What it sent is
    /// written by the caller's [`Reactor::settle_others`], once per batch of
    /// hooks: a thousand messages to one member make one write, not a
    /// thousand.
    pub(super) fn call_loop_hook<R>(
        &mut self,
        hook: impl FnOnce(&mut H, &mut LoopCtx<'_, H>) -> R,
    ) -> R {
        hook(&mut self.handler, &mut loop_ctx!(self))
    }

    /// Runs [`Handler::on_datagram`]; returns whether it replied. The reply's
    /// payload is written into the reply buffer after `room` bytes.
    pub(super) fn call_datagram_hook(
        &mut self,
        from: std::net::SocketAddr,
        payload: &[u8],
        room: usize,
    ) -> bool {
        self.reply.clear();
        self.reply.resize(room, 0);
        let mut ctx = DatagramCtx {
            lp: loop_ctx!(self),
            from,
            reply: &mut self.reply,
            start: room,
            replied: false,
        };
        self.handler.on_datagram(&mut ctx, payload);
        ctx.replied
    }

    /// The reactor starts: the handler may set its ticks.
    pub(super) fn start(&mut self) {
        self.call_loop_hook(|handler, ctx| handler.on_start(ctx));
        self.settle_others();
    }

    /// Tells the handler a connection is ready for frames.
    pub(super) fn open(&mut self, id: ConnId) {
        self.call_conn_hook(id, None, |handler, ctx| handler.on_open(ctx));
    }

    /// Tells the handler a connection stops being served.
    pub(super) fn notify_close(&mut self, id: ConnId, reason: CloseReason) {
        self.call_conn_hook(id, Some(reason), |handler, ctx| handler.on_close(ctx));
    }

    /// The waker fired: messages were posted, another reactor's receivers
    /// drained, or a shutdown was asked for.
    pub(super) fn woken(&mut self) {
        self.inbox.woken();
        let relief = self.shared.relief.load(Ordering::SeqCst);
        if relief != self.seen_relief {
            self.seen_relief = relief;
            self.unblock_senders();
        }
        self.deliver_messages();
        if self.shared.stop.load(Ordering::SeqCst) && self.shutdown.is_none() {
            self.begin_shutdown();
        }
    }

    /// Runs the messages in the inbox, at most a batch per turn.
    pub(super) fn deliver_messages(&mut self) {
        self.spanning(SpanKind::Messages, Self::deliver_batch);
    }

    /// Runs messages, written every [`SETTLE_EVERY`], and stops while one
    /// of this reactor's connections is over high-water with output from
    /// others: what other reactors' senders post waits in the mailbox (it is
    /// bounded; they are held back) instead of piling onto the receiver.
    fn deliver_batch(&mut self) {
        self.inbox_backlog = false;
        let mut delivered = 0;
        while delivered < MESSAGE_BATCH {
            if self.congested_receivers > 0 {
                self.inbox_stalled = true;
                return;
            }
            let mut settled = true;
            for _ in 0..SETTLE_EVERY {
                let Some(message) = self.inbox.next() else {
                    break;
                };
                self.counters.message();
                self.call_loop_hook(|handler, ctx| message(handler, ctx));
                delivered += 1;
                settled = false;
            }
            if settled {
                return; // the inbox is empty
            }
            self.settle_others();
        }
        self.inbox_backlog = true;
    }
}
