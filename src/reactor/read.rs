//! Reading: one chunk per readiness (or ready-list) visit, through the
//! handshake and the decoder to the handler.

use std::io::{self, Read};
use std::time::Instant;

use log::{debug, trace, warn};
use mio::event::Event;
use mio::net::TcpStream;

use super::{Reactor, lookup};
use crate::config::Codec;
use crate::connection::ConnId;
use crate::frame::{Fed, Flow};
use crate::handler::Handler;
use crate::stats::CloseReason;
use crate::trace::SpanKind;

impl<H: Handler> Reactor<H> {
    /// A readiness event for a connection.
    pub(super) fn connection_event(&mut self, id: ConnId, event: &Event) {
        let Some(conn) = self.lookup(id) else {
            return; // closed earlier in this batch; its slot may hold another
        };
        if event.is_read_closed() {
            conn.fin_seen = true;
        }
        if event.is_writable() {
            self.settle(id);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(id);
        }
    }

    /// Reads one chunk and hands it on (or, for a closing connection, throws
    /// it away). Returns whether the chunk filled the buffer: more may wait.
    pub(super) fn read(&mut self, id: ConnId) -> bool {
        let Some(conn) = lookup(&mut self.conns, id) else {
            return false;
        };
        if !conn.wants_read() {
            return false;
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut full = false;
        self.tally.reads += 1;
        // One look at whether a recording runs, for this read's three spans.
        let recording = self.recorder.is_some();
        let mark = recording.then(Instant::now);
        let result = read_once(&mut conn.stream, &mut buf);
        // Inline, not `self.spanned`: `conn` still borrows the slab.
        if let (Some(recorder), Some(start)) = (&mut self.recorder, mark) {
            recorder.span(SpanKind::Read, Some(id), start);
        }
        match result {
            Ok(0) => {
                trace!("{id}: peer closed its write side");
                let was_open = conn.is_open();
                conn.input_ended();
                if was_open {
                    self.notify_close(id, CloseReason::Eof);
                }
            }
            Ok(n) => {
                self.counters.bytes_in(n);
                full = n == buf.len();
                // A short read means "drained", except when the peer's FIN came
                // in with the last bytes: no edge will announce it, so come
                // back next turn to read the 0 that says end of stream.
                let again = full || conn.fin_seen;
                match conn.processes_input() {
                    true => {
                        // Input thrown away does not keep a closing
                        // connection alive: only its reading does.
                        conn.last_active = self.now;
                        let mark = recording.then(Instant::now);
                        self.dispatch(id, &buf[..n]);
                        if recording {
                            self.spanned(SpanKind::Dispatch, Some(id), mark);
                        }
                    }
                    false => trace!("{id}: closing; {n} bytes discarded"),
                }
                if full {
                    self.counters.deferred();
                }
                if again {
                    self.mark_ready(id);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                debug!("{}: read failed: {e}", conn.peer);
                self.abort(id, CloseReason::Reset);
            }
        }
        self.read_buf = buf;
        let mark = recording.then(Instant::now);
        self.settle(id);
        if recording {
            self.spanned(SpanKind::Write, Some(id), mark);
        }
        full
    }

    pub(super) fn mark_ready(&mut self, id: ConnId) {
        if let Some(conn) = self.lookup(id)
            && !conn.in_ready_list
        {
            conn.in_ready_list = true;
            self.ready.push_back(id);
        }
    }

    /// One more chunk for each connection the fairness cap cut short.
    pub(super) fn read_ready_list(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            if let Some(conn) = self.lookup(id) {
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
        if let Some(handshake) = conn.handshake() {
            bytes = &bytes[handshake.take_answer(bytes)..];
            let Some(auth) = &self.auth else { return };
            match handshake.verdict(auth) {
                None => return,
                Some(false) => {
                    warn!(
                        "{}: wrong answer to the authentication challenge; closing",
                        conn.peer
                    );
                    self.abort(id, CloseReason::AuthFailed);
                    return;
                }
                Some(true) => {
                    debug!("{}: authenticated as {id}", conn.peer);
                    conn.authenticated();
                    self.open(id);
                }
            }
        }
        let Some(conn) = self.lookup(id) else {
            return;
        };
        if bytes.is_empty() || !conn.is_open() {
            return;
        }

        // The decoder leaves the connection while the handler runs, so that the
        // handler's context may borrow every connection (for `send_to`).
        let mut decoder = std::mem::take(&mut conn.decoder);
        let (codec, max) = (self.config.codec, self.config.max_frame);
        let fed = self.call_conn_hook(id, None, |handler, ctx| match codec {
            Codec::Raw => {
                handler.on_frame(ctx, bytes);
                Fed {
                    frames: 1,
                    too_large: None,
                }
            }
            _ => decoder.feed(bytes, max, |payload| {
                handler.on_frame(ctx, payload);
                match ctx.close_requested {
                    true => Flow::Stop,
                    false => Flow::Continue,
                }
            }),
        });
        trace!("{id}: {} bytes, {} frames", bytes.len(), fed.frames);
        self.counters.frames(fed.frames as u64);
        let Some(conn) = lookup(&mut self.conns, id) else {
            return;
        };
        if conn.is_open() {
            conn.decoder = decoder; // a closing one needs it no more
        }
        match fed.too_large {
            None => self.track_unfinished_frame(id, fed),
            Some(too_large) => {
                // The frames before the bad header were handled, and their
                // replies are written before the connection closes.
                warn!("{}: {too_large}; closing", conn.peer);
                self.begin_close(id, CloseReason::Oversize);
            }
        }
    }

    /// Starts the frame clock when a frame begins and is not complete.
    fn track_unfinished_frame(&mut self, id: ConnId, fed: Fed) {
        if self.config.frame_timeout.is_none() {
            return;
        }
        let now = self.now;
        let Some(conn) = self.lookup(id) else {
            return;
        };
        if conn.decoder.buffered() == 0 {
            conn.frame_started = None;
            return;
        }
        if fed.frames > 0 || conn.frame_started.is_none() {
            conn.frame_started = Some(now);
            self.arm(id);
        }
    }
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
