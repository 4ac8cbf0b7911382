//! The extension point: what a server does with each frame.
//!
//! This is the reactor's `socketserver.BaseRequestHandler`. A [`Handler`] gets
//! a hook when a connection opens, one per frame (or raw chunk) and one when it
//! closes; each hook gets a [`Ctx`] through which it replies, sends to other
//! connections by [`ConnId`], or closes its connection.
//!
//! A handler never sees a socket, a token or a buffer's insides, and it must
//! never block: the whole server is one thread, so a handler that sleeps,
//! waits on a lock or does file or network IO of its own stalls every
//! connection. Replies are queued, never written from inside a hook; the
//! reactor writes them once the hook returns.

use std::net::SocketAddr;

use slab::Slab;

use crate::config::Codec;
use crate::connection::{ConnId, Connection};
use crate::frame::HEADER_LEN;

/// A protocol: one instance serves every connection of a server.
///
/// State shared across connections (a chat room, a key-value store) lives in
/// the handler itself; no locks are needed, since only the reactor's thread
/// ever calls it.
pub trait Handler {
    /// A connection was accepted (and authenticated, if a key is set).
    fn on_open(&mut self, _ctx: &mut Ctx<'_>) {}

    /// A whole frame arrived (with `--codec raw`: a chunk as read).
    /// `payload` is borrowed from the reactor's buffer, valid for this call.
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]);

    /// The connection is gone. Replies are discarded; messages to other
    /// connections still go out.
    fn on_close(&mut self, _ctx: &mut Ctx<'_>) {}

    /// A UDP datagram arrived (`serve --udp`). Whatever is appended to
    /// `reply` goes back to the sender as one datagram; nothing, no reply.
    /// The default echoes.
    fn on_datagram(&mut self, payload: &[u8], reply: &mut Vec<u8>) {
        reply.extend_from_slice(payload);
    }
}

impl<H: Handler + ?Sized> Handler for Box<H> {
    fn on_open(&mut self, ctx: &mut Ctx<'_>) {
        (**self).on_open(ctx)
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]) {
        (**self).on_frame(ctx, payload)
    }
    fn on_close(&mut self, ctx: &mut Ctx<'_>) {
        (**self).on_close(ctx)
    }
    fn on_datagram(&mut self, payload: &[u8], reply: &mut Vec<u8>) {
        (**self).on_datagram(payload, reply)
    }
}

/// What a handler may do to its connection and to others, during one hook.
pub struct Ctx<'a> {
    id: ConnId,
    peer: SocketAddr,
    codec: Codec,
    /// This connection's new output (the reactor's reply buffer).
    reply: &'a mut Vec<u8>,
    conns: &'a mut Slab<Connection>,
    /// Connections given output by `send_to`, for the reactor to flush.
    touched: &'a mut Vec<ConnId>,
    close_requested: bool,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        id: ConnId,
        peer: SocketAddr,
        codec: Codec,
        reply: &'a mut Vec<u8>,
        conns: &'a mut Slab<Connection>,
        touched: &'a mut Vec<ConnId>,
    ) -> Ctx<'a> {
        Ctx {
            id,
            peer,
            codec,
            reply,
            conns,
            touched,
            close_requested: false,
        }
    }

    /// This connection's id: give it to others so they can `send_to` it.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Replies with one frame (raw codec: the bytes as they are).
    pub fn send(&mut self, payload: &[u8]) {
        self.send_with(|out| out.extend_from_slice(payload));
    }

    /// Replies with one frame whose payload `write` appends to `out`, so a
    /// handler can build a reply in place instead of in a buffer of its own.
    pub fn send_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        append_message(self.codec, self.reply, write);
    }

    /// Sends one frame to another connection. Returns `false` if it is gone
    /// (closed, or not yet authenticated). Sending to [`Ctx::id`] replies.
    ///
    /// The reactor writes it when the hook returns; if the receiver's unsent
    /// output is then still over `max_output`, the receiver is disconnected:
    /// a reader that cannot keep up must not grow memory.
    pub fn send_to(&mut self, to: ConnId, payload: &[u8]) -> bool {
        if to == self.id {
            self.send(payload);
            return true;
        }
        let Some(conn) = self.conns.get_mut(to.index()) else {
            return false;
        };
        if conn.id != to || !conn.is_open() {
            return false;
        }
        let codec = self.codec;
        conn.queue_with(|out| append_message(codec, out, |out| out.extend_from_slice(payload)));
        if !conn.touched {
            conn.touched = true;
            self.touched.push(to);
        }
        true
    }

    /// Closes this connection once the replies written so far are flushed.
    /// Frames behind this one in the same read are not delivered.
    pub fn close(&mut self) {
        self.close_requested = true;
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.close_requested
    }
}

/// Appends one message in the codec's format: a length header and the
/// payload `write` appends, or (raw) the payload alone.
fn append_message(codec: Codec, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    match codec {
        Codec::Raw => write(out),
        Codec::Frame => {
            let start = out.len();
            out.extend_from_slice(&[0; HEADER_LEN]);
            write(out);
            let len = out.len() - start - HEADER_LEN;
            match u32::try_from(len) {
                Ok(len) => out[start..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes()),
                Err(_) => {
                    log::error!("handler reply of {len} bytes cannot be framed; dropped");
                    out.truncate(start);
                }
            }
        }
    }
}

/// Sends every frame back unchanged. The default handler.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]) {
        ctx.send(payload);
    }
}

/// Sends every frame back with ASCII letters upper-cased, like the notes'
/// non-blocking server (`content.upper()`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Upper;

impl Handler for Upper {
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]) {
        ctx.send_with(|out| out.extend(payload.iter().map(u8::to_ascii_uppercase)));
    }

    fn on_datagram(&mut self, payload: &[u8], reply: &mut Vec<u8>) {
        reply.extend(payload.iter().map(u8::to_ascii_uppercase));
    }
}
