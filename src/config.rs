//! Every limit and default of the server, in one place, and the rules they obey.
//!
//! This module owns the numbers: [`Config::default`] is what `frameloop serve`
//! runs with (the command line takes its defaults and help text from here),
//! and [`Config::validate`] is the one set of rules every value must pass,
//! applied by [`crate::Server::bind`] for the command line and library users
//! alike. It never reads flags (that is `cli`) and never enforces a limit at
//! run time (the reactor does).

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::Key;
use crate::frame::DEFAULT_MAX_FRAME;

/// How a connection's byte stream is cut into messages for the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// 4-byte big-endian length prefix, then the payload (see [`crate::frame`]).
    Frame,
    /// No framing: the handler gets the bytes exactly as each read returned
    /// them, like the notes' `recv(1024)` servers; replies are sent as-is.
    Raw,
}

/// Server settings. `Config::default()` is what `frameloop serve` runs with.
///
/// Durations that mean "off" are `Option`s; every value is checked by
/// [`Config::validate`] when a server is bound.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Framed or raw.
    pub codec: Codec,
    /// Largest accepted payload; a bigger header closes the connection.
    pub max_frame: usize,
    /// Shared HMAC key; `Some` makes every client, TCP and UDP, prove it
    /// knows the key (see [`crate::auth`]).
    pub key: Option<Key>,
    /// Time a client has to answer the challenge.
    pub handshake_timeout: Duration,
    /// Close a connection when no byte went either way for this long.
    pub idle_timeout: Option<Duration>,
    /// A frame whose first byte arrived must be complete within this (time
    /// the server itself was not reading does not count).
    pub frame_timeout: Option<Duration>,
    /// Stop reading a connection whose unsent output exceeds this.
    pub high_water: usize,
    /// Resume reading once its unsent output is down to this (0: all flushed).
    pub low_water: usize,
    /// Disconnect a connection at once when output sent to it by others
    /// (broadcasts) leaves more than this unsent: the hard limit.
    pub max_output: usize,
    /// Disconnect a connection whose unsent output from others stays over
    /// `high_water` this long: the soft limit (while it is over, the
    /// connections sending to it are not read).
    pub slow_reader_timeout: Duration,
    /// Bytes all connections together may hold in buffers (queued output and
    /// unfinished frames); past it, the connections holding the most are
    /// disconnected until the total is back under.
    pub max_buffered: usize,
    /// Connections beyond this are accepted and closed at once.
    pub max_connections: usize,
    /// On shutdown, how long pending replies may take to flush.
    pub shutdown_timeout: Duration,
    /// How long a closing connection, all replies written and its write side
    /// shut, waits for the peer's EOF before it is closed anyway.
    pub linger: Duration,
    /// Log the counters this often (`None`: never).
    pub stats_interval: Option<Duration>,
    /// Also serve UDP datagrams on the same address and port.
    pub udp: bool,
    /// Messages a reactor's [`crate::Mailbox`] holds before posts are
    /// refused. Its slots are allocated when the reactor starts (about 24
    /// bytes each), so a large capacity costs memory even when idle.
    pub mailbox_capacity: usize,
}

/// Bytes read from one connection per loop turn before others get a turn;
/// also the size of the reactor's one read buffer.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Pending connections the kernel may queue before `accept` takes them.
pub(crate) const LISTEN_BACKLOG: i32 = 4096;

/// Largest UDP payload over IPv4 (65,535 - 8 UDP header - 20 IP header).
pub const MAX_DATAGRAM: usize = 65_507;

/// Bytes in an authentication challenge and in its answer.
pub const CHALLENGE_LEN: usize = 32;

/// After `accept` fails for lack of file descriptors, wait this long before
/// trying again (unless a connection closes first).
pub(crate) const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The longest any timeout or interval may be: a year. Longer would be
/// "never" in practice, and `Instant` arithmetic near its limits overflows.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The largest mailbox: a million messages' slots (24 MiB) per reactor.
pub const MAX_MAILBOX: usize = 1 << 20;

/// The shortest stats interval: more often would drown the log.
pub const MIN_STATS_INTERVAL: Duration = Duration::from_millis(10);

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
            slow_reader_timeout: Duration::from_secs(2),
            max_buffered: default_max_buffered(),
            max_connections: default_max_connections(),
            shutdown_timeout: Duration::from_secs(5),
            linger: Duration::from_secs(2),
            stats_interval: None,
            udp: false,
            mailbox_capacity: 4096,
        }
    }
}

/// A value [`Config::validate`] refused: the flag, the field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag} {problem}")]
pub struct ConfigError {
    /// The command-line flag (the field is the same with `_` for `-`).
    pub flag: &'static str,
    /// What is wrong, and what would be right.
    pub problem: String,
}

fn refuse(flag: &'static str, problem: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError {
        flag,
        problem: problem.into(),
    })
}

impl Config {
    /// The defaults, listening on 127.0.0.1 on a free port (tests, examples).
    pub fn loopback() -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        }
    }

    /// Checks every value: each either works as documented or is refused
    /// here, with a message that names the flag and says what would work.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut config = frameloop::Config::default();
    /// config.low_water = config.high_water + 1;
    /// assert_eq!(
    ///     config.validate().unwrap_err().to_string(),
    ///     "--low-water 65537 exceeds --high-water 65536"
    /// );
    /// config.low_water = 0;
    /// config.idle_timeout = Some(Duration::from_secs(u64::MAX));
    /// assert!(config.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_frame == 0 {
            return refuse("max-frame", "must be at least 1 byte");
        }
        if u32::try_from(self.max_frame).is_err() {
            return refuse(
                "max-frame",
                format!(
                    "{} does not fit the 4-byte length header (at most {})",
                    self.max_frame,
                    u32::MAX
                ),
            );
        }
        check_timeout("handshake-timeout", self.handshake_timeout)?;
        if self.handshake_timeout.is_zero() {
            return refuse(
                "handshake-timeout",
                "must be above zero: no client can answer a challenge in no time",
            );
        }
        for (flag, timeout) in [
            ("idle-timeout", self.idle_timeout),
            ("frame-timeout", self.frame_timeout),
        ] {
            if let Some(timeout) = timeout {
                check_timeout(flag, timeout)?;
                if timeout.is_zero() {
                    return refuse(
                        flag,
                        "of zero would close every connection (use None, or 0 on the command line, to turn it off)",
                    );
                }
            }
        }
        if self.low_water > self.high_water {
            return refuse(
                "low-water",
                format!(
                    "{} exceeds --high-water {}",
                    self.low_water, self.high_water
                ),
            );
        }
        check_timeout("slow-reader-timeout", self.slow_reader_timeout)?;
        if self.slow_reader_timeout.is_zero() {
            return refuse("slow-reader-timeout", "must be above zero");
        }
        if self.max_buffered == 0 {
            return refuse("max-buffered", "must be at least 1 byte");
        }
        if self.max_connections == 0 {
            return refuse(
                "max-connections",
                "must be at least 1: with 0 every client would be refused",
            );
        }
        check_timeout("shutdown-timeout", self.shutdown_timeout)?;
        check_timeout("linger", self.linger)?;
        if let Some(every) = self.stats_interval {
            check_timeout("stats-interval", every)?;
            if every < MIN_STATS_INTERVAL {
                return refuse(
                    "stats-interval",
                    format!("must be at least {MIN_STATS_INTERVAL:?} (0 turns it off)"),
                );
            }
        }
        if !(1..=MAX_MAILBOX).contains(&self.mailbox_capacity) {
            return refuse(
                "mailbox-capacity",
                format!("must be between 1 and {MAX_MAILBOX} (its slots are allocated up front)"),
            );
        }
        Ok(())
    }
}

fn check_timeout(flag: &'static str, timeout: Duration) -> Result<(), ConfigError> {
    if timeout > MAX_TIMEOUT {
        return refuse(
            flag,
            format!(
                "of {} s is over the limit of a year ({} s)",
                timeout.as_secs(),
                MAX_TIMEOUT.as_secs()
            ),
        );
    }
    Ok(())
}

/// The fd soft limit minus 32 (for the listener, poller, logs), at most 10,000.
fn default_max_connections() -> usize {
    let soft = fd_soft_limit().unwrap_or(1024);
    (soft.saturating_sub(32) as usize).clamp(1, 10_000)
}

/// The process's soft limit on open file descriptors (`ulimit -n`).
pub(crate) fn fd_soft_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _hard)| soft)
}

/// A quarter of the memory this process may use: the machine's, or its
/// cgroup's limit if lower; 1 GiB if neither can be read.
fn default_max_buffered() -> usize {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
        });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|max| max.trim().parse::<u64>().ok());
    let memory = [machine, cgroup].into_iter().flatten().min();
    memory.map_or(1 << 30, |bytes| (bytes / 4) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_their_own_rules() {
        Config::default().validate().unwrap();
        assert!(Config::default().max_buffered >= 64 * 1024 * 1024);
    }

    #[test]
    fn extreme_values_are_refused_with_the_flag_named() {
        let huge = Duration::from_secs(10_000_000_000_000_000_000);
        type Breaks = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Breaks)> = vec![
            (
                "--idle-timeout",
                Box::new(move |c| c.idle_timeout = Some(huge)),
            ),
            (
                "--frame-timeout",
                Box::new(move |c| c.frame_timeout = Some(huge)),
            ),
            (
                "--handshake-timeout",
                Box::new(move |c| c.handshake_timeout = huge),
            ),
            (
                "--shutdown-timeout",
                Box::new(move |c| c.shutdown_timeout = huge),
            ),
            (
                "--stats-interval",
                Box::new(move |c| c.stats_interval = Some(huge)),
            ),
            (
                "--stats-interval",
                Box::new(|c| c.stats_interval = Some(Duration::from_micros(1))),
            ),
            (
                "--handshake-timeout",
                Box::new(|c| c.handshake_timeout = Duration::ZERO),
            ),
            ("--max-connections", Box::new(|c| c.max_connections = 0)),
            ("--max-frame", Box::new(|c| c.max_frame = 0)),
            ("--max-frame", Box::new(|c| c.max_frame = 1 << 40)),
            ("--low-water", Box::new(|c| c.low_water = c.high_water + 1)),
        ];
        for (flag, break_it) in cases {
            let mut config = Config::default();
            break_it(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.starts_with(flag), "{err}");
        }
    }
}
