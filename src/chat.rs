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
//! its own message back. A member that reads too slowly is disconnected by the
//! reactor once its unsent output passes `max_output` (see `Ctx::send_to`),
//! so one stalled reader can never grow the server's memory.
//!
//! This handler uses only the public [`Handler`] API: it is what a user's own
//! multi-connection handler looks like.

use std::collections::BTreeMap;
use std::io::Write;

use crate::connection::ConnId;
use crate::handler::{Ctx, Handler};

/// A chat room: all connections of the server are its members.
#[derive(Debug, Default)]
pub struct Chat {
    /// Member number of each connection (ordered by `ConnId`, so a broadcast
    /// visits members in the same order every time).
    members: BTreeMap<ConnId, u64>,
    next_member: u64,
    /// One reusable buffer for the message being broadcast.
    line: Vec<u8>,
}

impl Chat {
    /// An empty room.
    pub fn new() -> Chat {
        Chat::default()
    }

    /// Sends `self.line` to every member but `except`.
    fn broadcast(&mut self, ctx: &mut Ctx<'_>, except: ConnId) {
        for &id in self.members.keys() {
            if id != except {
                ctx.send_to(id, &self.line);
            }
        }
    }
}

impl Handler for Chat {
    fn on_open(&mut self, ctx: &mut Ctx<'_>) {
        self.next_member += 1;
        let me = self.next_member;
        self.members.insert(ctx.id(), me);
        ctx.send_with(|out| {
            let _ = write!(out, "* you are {me}");
        });
        self.line.clear();
        let _ = write!(self.line, "* {me} joined");
        self.broadcast(ctx, ctx.id());
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]) {
        let Some(&me) = self.members.get(&ctx.id()) else {
            return;
        };
        self.line.clear();
        let _ = write!(self.line, "{me}: ");
        self.line.extend_from_slice(payload);
        self.broadcast(ctx, ctx.id());
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_>) {
        let Some(me) = self.members.remove(&ctx.id()) else {
            return;
        };
        self.line.clear();
        let _ = write!(self.line, "* {me} left");
        self.broadcast(ctx, ctx.id());
    }
}
