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
//! This handler uses only the public [`Handler`] API: it is what a user's own
//! multi-connection handler looks like. Each member's number is its
//! per-connection state; the room is the set of members.

use std::collections::BTreeSet;
use std::io::Write;

use crate::connection::ConnId;
use crate::handler::{Ctx, Handler};

/// A chat room: all connections of the server are its members.
#[derive(Debug, Default)]
pub struct Chat {
    /// Every member, in `ConnId` order (so a broadcast visits them in the
    /// same order every time).
    members: BTreeSet<ConnId>,
    next_member: u64,
    /// One reusable buffer for the message being broadcast.
    line: Vec<u8>,
}

impl Chat {
    /// An empty room.
    pub fn new() -> Chat {
        Chat::default()
    }

    /// Sends `self.line` to every member but the one speaking.
    fn broadcast(&mut self, ctx: &mut Ctx<'_, Self>) {
        for &id in &self.members {
            if id != ctx.id() {
                ctx.send_to(id, &self.line);
            }
        }
    }
}

impl Handler for Chat {
    /// The member's number.
    type Conn = u64;

    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.next_member += 1;
        let me = self.next_member;
        *ctx.conn() = me;
        self.members.insert(ctx.id());
        ctx.send_with(|w| {
            let _ = write!(w, "* you are {me}");
        });
        self.line.clear();
        let _ = write!(self.line, "* {me} joined");
        self.broadcast(ctx);
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        let me = *ctx.conn();
        self.line.clear();
        let _ = write!(self.line, "{me}: ");
        self.line.extend_from_slice(payload);
        self.broadcast(ctx);
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.members.remove(&ctx.id());
        let me = *ctx.conn();
        self.line.clear();
        let _ = write!(self.line, "* {me} left");
        self.broadcast(ctx);
    }
}
