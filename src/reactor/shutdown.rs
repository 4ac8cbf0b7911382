//! Graceful shutdown: stop accepting, answer what already arrived, flush,
//! say goodbye properly, and stop.

use std::time::Instant;

use log::info;

use super::{Due, Reactor};
use crate::config::READ_CHUNK;
use crate::connection::ConnId;
use crate::handler::Handler;
use crate::stats::CloseReason;

/// Reads per connection at shutdown, at most: 8 MiB, more than Linux's
/// largest default receive buffer (`net.ipv4.tcp_rmem`, 6 MiB).
const SHUTDOWN_READS: usize = (8 << 20) / READ_CHUNK;

impl<H: Handler> Reactor<H> {
    /// Takes in the listen queue and closes the listener; takes in what
    /// every connection already sent (even past high-water: each frame that
    /// fully arrived gets its reply); then closes every connection
    /// gracefully: replies flushed, write side shut, the peer's EOF awaited.
    /// Whatever is left at `shutdown_timeout` is closed at once, so a peer
    /// that never reads cannot hold the server.
    pub(super) fn begin_shutdown(&mut self) {
        let deadline = self.now.after(self.config.shutdown_timeout);
        self.shutdown = Some(deadline);
        self.timers.schedule(deadline, Due::Shutdown);
        self.close_listener();
        info!(
            "shutting down: flushing {} connections (at most {:?})",
            self.conns.len(),
            self.config.shutdown_timeout
        );
        self.stop_datagrams();

        let ids: Vec<ConnId> = self.conns.iter().map(|(_, c)| c.id).collect();
        for id in ids {
            let now = self.now;
            if let Some(conn) = self.lookup(id) {
                conn.resume(now); // paused or not, take in what arrived
            }
            // Read until the kernel has nothing more (a short read), within
            // the shutdown deadline (settling never pauses during shutdown),
            // and at most what its receive buffer can hold: a peer that keeps
            // it full must not take the others' time.
            for _ in 0..SHUTDOWN_READS {
                if !self.read(id) || self.clock.stamp(Instant::now()) >= deadline {
                    break;
                }
            }
            self.begin_close(id, CloseReason::Shutdown);
            self.settle(id);
        }
    }
}
