//! Why a request or a connection failed, and the counts by kind.
//!
//! Each kind names a cause a benchmarker can act on. A connection that fails
//! is given up (its stream can no longer be trusted); a mismatched reply is
//! counted and never answered with another request, so a server that sends
//! garbage cannot make the bench send more than it would otherwise.

use std::fmt;

/// One kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connect was refused: nothing listens there.
    Refused,
    /// The connect did not complete within `--timeout`.
    ConnectTimeout,
    /// The handshake failed: no challenge came for `--key-file`, a keyed
    /// connection was closed before its first reply (a wrong key), or a
    /// keyless one was sent a 32-byte challenge.
    Auth,
    /// The server closed a connection the bench was still using (closed
    /// loop: always with requests owed; they are counted as lost).
    ServerClosed,
    /// The server closed connections before any reply, yet answers a small
    /// request: ours are larger than it accepts.
    Oversize,
    /// A reply whose bytes differ from the request (or that answers nothing).
    Mismatch,
    /// A reset, a broken pipe or another socket error.
    Reset,
    /// A request went unanswered for `--timeout`.
    ReplyTimeout,
}

impl ErrorKind {
    /// Every kind, in the order the summary and the CSV list them.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Refused,
        ErrorKind::ConnectTimeout,
        ErrorKind::Auth,
        ErrorKind::ServerClosed,
        ErrorKind::Oversize,
        ErrorKind::Mismatch,
        ErrorKind::Reset,
        ErrorKind::ReplyTimeout,
    ];

    /// The name used in the summary, the JSON and the CSV.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Auth => "auth",
            ErrorKind::ServerClosed => "server_closed",
            ErrorKind::Oversize => "oversize",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::Reset => "reset",
            ErrorKind::ReplyTimeout => "reply_timeout",
        }
    }
}

/// Failures counted by kind: connections for the kinds that end one, replies
/// for `mismatch`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Errors {
    /// Connects refused ([`ErrorKind::Refused`]).
    pub refused: u64,
    /// Connects timed out ([`ErrorKind::ConnectTimeout`]).
    pub connect_timeout: u64,
    /// Handshakes failed ([`ErrorKind::Auth`]).
    pub auth: u64,
    /// Connections the server closed ([`ErrorKind::ServerClosed`]).
    pub server_closed: u64,
    /// Connections closed for too large a request ([`ErrorKind::Oversize`]).
    pub oversize: u64,
    /// Replies that did not check out ([`ErrorKind::Mismatch`]).
    pub mismatch: u64,
    /// Connections reset ([`ErrorKind::Reset`]).
    pub reset: u64,
    /// Requests unanswered for `--timeout` ([`ErrorKind::ReplyTimeout`]).
    pub reply_timeout: u64,
}

impl Errors {
    /// The count of one kind.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        match kind {
            ErrorKind::Refused => self.refused,
            ErrorKind::ConnectTimeout => self.connect_timeout,
            ErrorKind::Auth => self.auth,
            ErrorKind::ServerClosed => self.server_closed,
            ErrorKind::Oversize => self.oversize,
            ErrorKind::Mismatch => self.mismatch,
            ErrorKind::Reset => self.reset,
            ErrorKind::ReplyTimeout => self.reply_timeout,
        }
    }

    fn get_mut(&mut self, kind: ErrorKind) -> &mut u64 {
        match kind {
            ErrorKind::Refused => &mut self.refused,
            ErrorKind::ConnectTimeout => &mut self.connect_timeout,
            ErrorKind::Auth => &mut self.auth,
            ErrorKind::ServerClosed => &mut self.server_closed,
            ErrorKind::Oversize => &mut self.oversize,
            ErrorKind::Mismatch => &mut self.mismatch,
            ErrorKind::Reset => &mut self.reset,
            ErrorKind::ReplyTimeout => &mut self.reply_timeout,
        }
    }

    /// Counts one failure of `kind`.
    pub fn count(&mut self, kind: ErrorKind) {
        *self.get_mut(kind) += 1;
    }

    /// Adds every count of `other`.
    pub fn add(&mut self, other: &Errors) {
        for kind in ErrorKind::ALL {
            *self.get_mut(kind) += other.get(kind);
        }
    }

    /// All failures, of every kind.
    pub fn total(&self) -> u64 {
        ErrorKind::ALL.iter().map(|&k| self.get(k)).sum()
    }
}

/// The non-zero kinds, `refused 3  reset 1`, or `none`.
impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for kind in ErrorKind::ALL {
            let n = self.get(kind);
            if n > 0 {
                if any {
                    f.write_str("  ")?;
                }
                write!(f, "{} {n}", kind.name().replace('_', " "))?;
                any = true;
            }
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}
