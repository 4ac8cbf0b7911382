//! The `chat` handler: every frame goes to every other connection.
//!
//! Wire format (all frames are UTF-8 text by convention, but any bytes pass):
//!
//! ```text
//! to the newcomer, once:      "* you are 7"
//! to everyone else:           "* 7 joined"
//! a message from member 7:    "7: " + the frame's payload, byte for byte
//! when member 7 leaves:       "* 7 left"
//! ```
//!
//! Members are numbered from 1 in order of arrival. The sender does not get
//! its own message back. A member that reads too slowly holds up the members
//! sending to it (the reactor stops reading them while its unsent output is
//! over high-water), and is disconnected if it stays that way for
//! `slow_reader_timeout` or its output passes `max_output`: so readers that
//! keep up lose nothing, and one stalled reader can never grow the server's
//! memory.
//!
//! With several reactors, each has a `Chat` of its own, holding the members
//! it serves; they share only the member numbers (a [`ChatRoom`]). A line
//! said on one reactor goes to its own members directly, and to each other
//! reactor as a message through that reactor's mailbox, which delivers it to
//! its members. A mailbox is first in, first out, so every member hears each
//! speaker's lines, joins and leaves in the order they happened. Between
//! speakers there is no one order: news from another reactor may reach a
//! member after news from its own, and a newcomer may hear that someone
//! joined who in fact came just before it (the news was on its way). A mailbox
//! that is full keeps the lines back, in order, in the speaker's reactor,
//! and they are posted again on the next tick: none is lost.
//!
//! This handler uses only the public [`Handler`] API: it is what a user's own
//! multi-connection handler looks like. Each member's number is its
//! per-connection state; the room is the set of members.

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::connection::ConnId;
use crate::handler::{Ctx, Handler, LoopCtx};
use crate::mailbox::PostError;
use crate::timer::TimerId;

/// How soon lines kept back by a full mailbox are posted again.
const RETRY: Duration = Duration::from_millis(1);

/// One chat room shared by several reactors: it hands out the member
/// numbers. `room.member()` makes the `Chat` for one reactor.
#[derive(Debug, Clone, Default)]
pub struct ChatRoom {
    last_member: Arc<AtomicU64>,
}

impl ChatRoom {
    /// An empty room.
    pub fn new() -> ChatRoom {
        ChatRoom::default()
    }

    /// The chat handler of one reactor in this room.
    pub fn member(&self) -> Chat {
        Chat {
            room: self.clone(),
            ..Chat::default()
        }
    }
}

/// A chat room's handler: all connections of its reactor are members, and
/// through the [`ChatRoom`] it shares, those of every other reactor too.
#[derive(Debug, Default)]
pub struct Chat {
    room: ChatRoom,
    /// This reactor's members, in `ConnId` order (so a broadcast visits them
    /// in the same order every time).
    members: BTreeSet<ConnId>,
    /// One reusable buffer for the line being said.
    line: Vec<u8>,
    /// Lines a full mailbox refused, by reactor, oldest first.
    held: Vec<VecDeque<Arc<[u8]>>>,
    /// The tick that posts held lines again, while one is set.
    retry: Option<TimerId>,
}

impl Chat {
    /// A room of its own (one reactor). For several, see [`ChatRoom`].
    pub fn new() -> Chat {
        Chat::default()
    }

    /// Says `self.line` to every member but `except`: those of this reactor
    /// directly, those of the others through their mailboxes.
    fn say(&mut self, ctx: &mut LoopCtx<'_, Self>, except: Option<ConnId>) {
        for &id in &self.members {
            if Some(id) != except {
                ctx.send_to(id, &self.line);
            }
        }
        if ctx.reactors() == 1 {
            return;
        }
        let line: Arc<[u8]> = self.line.as_slice().into();
        self.held.resize_with(ctx.reactors(), VecDeque::new);
        let here = ctx.reactor();
        for reactor in (0..ctx.reactors()).filter(|&r| r != here) {
            // Behind any line held back for that reactor: order is kept.
            self.held[reactor].push_back(line.clone());
            self.post_held(ctx, reactor);
        }
    }

    /// Posts the lines held for `reactor`, oldest first, until its mailbox
    /// is full (then a tick tries again soon).
    fn post_held(&mut self, ctx: &mut LoopCtx<'_, Self>, reactor: usize) {
        while let Some(line) = self.held[reactor].front().cloned() {
            match ctx.post_to(reactor, move |chat, ctx| chat.hear(ctx, &line)) {
                Ok(()) => {
                    self.held[reactor].pop_front();
                }
                Err(refused) if refused.reason() == PostError::Stopped => {
                    self.held[reactor].clear(); // that reactor is gone: so are its members
                }
                Err(_full) => {
                    if self.retry.is_none() {
                        self.retry = Some(ctx.set_tick(RETRY));
                    }
                    return;
                }
            }
        }
    }

    /// A line said on another reactor, for this reactor's members.
    fn hear(&mut self, ctx: &mut LoopCtx<'_, Self>, line: &[u8]) {
        for &id in &self.members {
            ctx.send_to(id, line);
        }
    }
}

impl Handler for Chat {
    /// The member's number.
    type Conn = u64;

    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>) {
        let me = self.room.last_member.fetch_add(1, Ordering::Relaxed) + 1;
        *ctx.conn() = me;
        self.members.insert(ctx.id());
        ctx.send_with(|w| {
            let _ = write!(w, "* you are {me}");
        });
        self.line.clear();
        let _ = write!(self.line, "* {me} joined");
        let except = Some(ctx.id());
        self.say(ctx, except);
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        let me = *ctx.conn();
        self.line.clear();
        let _ = write!(self.line, "{me}: ");
        self.line.extend_from_slice(payload);
        let except = Some(ctx.id());
        self.say(ctx, except);
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.members.remove(&ctx.id());
        let me = *ctx.conn();
        self.line.clear();
        let _ = write!(self.line, "* {me} left");
        let except = Some(ctx.id());
        self.say(ctx, except);
    }

    /// Posts held lines again, as far as the mailboxes take them.
    fn on_tick(&mut self, ctx: &mut LoopCtx<'_, Self>, _timer: TimerId) {
        self.retry = None;
        for reactor in 0..self.held.len() {
            self.post_held(ctx, reactor);
        }
    }
}
