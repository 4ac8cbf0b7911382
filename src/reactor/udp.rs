//! UDP in the same loop: datagrams to the handler, at most one reply each.
//!
//! With a key set, every datagram must be sealed (see [`crate::auth::datagram`]):
//! the ones that are not are dropped and counted before the handler sees a
//! byte, and replies are sealed in turn.

use std::io;
use std::net::SocketAddr;

use log::debug;
use mio::net::UdpSocket;
use mio::{Interest, Poll, Token};

use super::Reactor;
use crate::auth::datagram::{self, Guard, HEADER_LEN, OVERHEAD};
use crate::error::Error;
use crate::handler::Handler;
use crate::trace::SpanKind;

/// Datagrams answered per turn before TCP connections get their turn.
const DATAGRAM_BATCH: usize = 1024;

/// The reactor's UDP socket.
#[derive(Debug)]
pub(super) struct Udp {
    socket: UdpSocket,
    /// Checks and seals datagrams when a key is set.
    guard: Option<Guard>,
    /// Datagrams may be left in the socket after a full batch.
    pub backlog: bool,
}

impl Udp {
    /// The reactor's UDP socket, `socket` (bound by [`bind`]) registered
    /// with `poll` under `token`.
    pub fn new(
        mut socket: UdpSocket,
        guard: Option<Guard>,
        poll: &Poll,
        token: Token,
    ) -> Result<Udp, Error> {
        poll.registry()
            .register(&mut socket, token, Interest::READABLE)?;
        Ok(Udp {
            socket,
            guard,
            backlog: false,
        })
    }
}

/// Binds a non-blocking UDP socket on `addr`.
pub(super) fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

impl<H: Handler> Reactor<H> {
    /// Answers waiting datagrams, at most a batch (a flood cannot starve TCP;
    /// the rest waits a turn, since no edge will come for datagrams already
    /// queued). A reply that would block is dropped and counted: datagrams
    /// promise no delivery, and an unbounded queue would be worse.
    pub(super) fn serve_datagrams(&mut self) {
        let Some(mut udp) = self.udp.take() else {
            return;
        };
        let mark = self.mark();
        let mut buf = std::mem::take(&mut self.read_buf);
        let now = self.clock.instant(self.now);
        udp.backlog = true;
        for _ in 0..DATAGRAM_BATCH {
            let (n, from) = match udp.socket.recv_from(&mut buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    udp.backlog = false;
                    break;
                }
                Err(e) => {
                    debug!("udp: recv_from failed: {e}");
                    continue;
                }
            };
            let (payload, nonce) = match &udp.guard {
                None => (&buf[..n], None),
                Some(guard) => match guard.admit(&buf[..n], datagram::unix_millis(), now) {
                    Ok(opened) => (opened.payload, Some(opened.nonce)),
                    Err(why) => {
                        debug!("udp: datagram from {from} dropped: {why}");
                        self.counters.datagram_rejected(why);
                        continue;
                    }
                },
            };
            let room = if nonce.is_some() { HEADER_LEN } else { 0 };
            let replied = self.call_datagram_hook(from, payload, room);
            let mut dropped = false;
            if replied {
                if let (Some(guard), Some(nonce)) = (&udp.guard, nonce) {
                    guard.seal_reply(&nonce, datagram::unix_millis(), &mut self.reply);
                }
                if self.reply.len() > crate::config::MAX_DATAGRAM + OVERHEAD {
                    debug!(
                        "udp: reply to {from} of {} bytes is too large; dropped",
                        self.reply.len()
                    );
                    dropped = true;
                } else if let Err(e) = udp.socket.send_to(&self.reply, from) {
                    debug!("udp: reply to {from} dropped: {e}");
                    dropped = true;
                }
            }
            self.counters.datagram(dropped);
        }
        self.reply.clear();
        self.read_buf = buf;
        self.udp = Some(udp);
        // Only now, with the reply buffer free again: what the datagrams'
        // hooks sent to connections.
        self.settle_others();
        if mark.is_some() {
            self.spanned(SpanKind::Datagrams, None, mark);
        }
    }

    /// Shutdown: datagrams are no longer served.
    pub(super) fn stop_datagrams(&mut self) {
        if let Some(mut udp) = self.udp.take() {
            let _ = self.poll.registry().deregister(&mut udp.socket);
        }
    }
}
