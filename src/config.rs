//! Every limit and default of the server, in one place.
//!
//! This module owns the numbers; it never reads flags (that is `main.rs`) and
//! never enforces anything (the reactor and connection do). The README's table
//! of limits is a copy of [`Config::default`]: keep them in step.

use std::net::SocketAddr;
use std::time::Duration;

use crate::frame::DEFAULT_MAX_FRAME;

/// How a connection's byte stream is cut into messages for the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// 4-byte big-endian length prefix, then the payload (see `frame.rs`).
    Frame,
    /// No framing: the handler gets the bytes exactly as each read returned
    /// them, like the notes' `recv(1024)` servers; replies are sent as-is.
    Raw,
}

/// Server settings. `Config::default()` is what `frameloop serve` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Framed or raw.
    pub codec: Codec,
    /// Largest accepted payload; a bigger header closes the connection.
    pub max_frame: usize,
    /// Shared HMAC key; `Some` turns the challenge-response handshake on.
    pub key: Option<Vec<u8>>,
    /// Time a client has to answer the challenge.
    pub handshake_timeout: Duration,
    /// Close a connection that sent nothing for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// A frame whose first byte arrived must be complete within this.
    pub frame_timeout: Option<Duration>,
    /// Stop reading a connection whose unsent output exceeds this.
    pub high_water: usize,
    /// Resume reading once its unsent output is down to this (0: all flushed).
    pub low_water: usize,
    /// Disconnect a connection whose unsent output, grown by others'
    /// messages (broadcasts), exceeds this.
    pub max_output: usize,
    /// Connections beyond this are accepted and closed at once.
    pub max_connections: usize,
    /// On shutdown, how long pending replies may take to flush.
    pub shutdown_timeout: Duration,
    /// Log the counters this often (`None`: never).
    pub stats_interval: Option<Duration>,
    /// Also serve UDP datagrams on the same address and port.
    pub udp: bool,
}

/// Bytes read from one connection per loop turn before others get a turn;
/// also the size of the reactor's one read buffer.
pub const READ_CHUNK: usize = 64 * 1024;

/// Pending connections the kernel may queue before `accept` takes them.
pub const LISTEN_BACKLOG: i32 = 4096;

/// Largest UDP payload over IPv4 (65,535 - 8 UDP header - 20 IP header).
pub const MAX_DATAGRAM: usize = 65_507;

/// Bytes in an authentication challenge and in its answer.
pub const CHALLENGE_LEN: usize = 32;

/// After `accept` fails for lack of file descriptors, wait this long before
/// trying again (unless a connection closes first).
pub const ACCEPT_RETRY: Duration = Duration::from_millis(100);

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 9000)),
            codec: Codec::Frame,
            max_frame: DEFAULT_MAX_FRAME,
            key: None,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(300)),
            frame_timeout: Some(Duration::from_secs(10)),
            high_water: 64 * 1024,
            low_water: 32 * 1024,
            max_output: 4 * 1024 * 1024,
            max_connections: default_max_connections(),
            shutdown_timeout: Duration::from_secs(5),
            stats_interval: None,
            udp: false,
        }
    }
}

/// The fd soft limit minus 32 (for the listener, poller, logs), at most 10,000.
pub fn default_max_connections() -> usize {
    let soft = fd_soft_limit().unwrap_or(1024);
    (soft.saturating_sub(32) as usize).clamp(1, 10_000)
}

/// The process's soft limit on open file descriptors (`ulimit -n`).
pub fn fd_soft_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _hard)| soft)
}

/// Parses `250ms`, `5s`, `2m`, or a bare number of seconds (`5`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (try 250ms, 5s or 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("'{text}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
