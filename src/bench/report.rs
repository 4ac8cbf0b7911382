//! What a run measured, and the three ways it is written: the text summary
//! (`Display`), one JSON object (serde), one CSV row.
//!
//! Every number here happened in the measured window: messages are replies
//! received *and* verified in it, seconds are the window's real length (it
//! may have ended early, and `ended` says why), and requests still owed at
//! its end are reported rather than dropped. This module only formats; it
//! never measures.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::failure::{ErrorKind, Errors};
use super::payload::Verify;
use crate::config::Codec;

/// The configuration a run had, as written in the JSON and the CSV.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// The server's address, or `None` for the embedded server.
    pub addr: Option<String>,
    /// Concurrent connections.
    pub connections: usize,
    /// Payload bytes per request.
    pub size: usize,
    /// Requests in flight per connection (closed loop).
    pub depth: usize,
    /// Client threads.
    pub threads: usize,
    /// `frame` or `raw`.
    pub codec: &'static str,
    /// How replies were checked.
    pub verify: Verify,
    /// Whether the challenge was answered with a key.
    pub keyed: bool,
    /// Open loop: target total msgs/s.
    pub rate: Option<f64>,
    /// Stop after this many verified replies.
    pub requests: Option<u64>,
    /// `--duration`, in seconds.
    pub duration_s: f64,
    /// `--warmup`, in seconds.
    pub warmup_s: f64,
    /// The reply timeout (also the connect and challenge timeout).
    pub timeout_s: f64,
    /// `--percentiles` (100 is the maximum).
    pub percentiles: Vec<f64>,
    /// Which cores the embedded server and the bench threads were pinned
    /// to, if they were.
    pub pinning: Option<String>,
}

impl RunConfig {
    pub(crate) fn codec_name(codec: Codec) -> &'static str {
        match codec {
            Codec::Frame => "frame",
            Codec::Raw => "raw",
        }
    }
}

/// Why the measured window ended when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// It ran its full `--duration`.
    Duration,
    /// `--requests` verified replies arrived.
    Requests,
    /// Every connection was closed or given up before the end.
    ConnectionsGone,
    /// No connection could be opened: nothing was measured.
    NoConnection,
}

/// `--rate`: what was asked and what came back.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RateCheck {
    /// msgs/s asked for.
    pub target: f64,
    /// Verified replies per second in the measured window.
    pub achieved: f64,
    /// Achieved is at least 95% of the target.
    pub reached: bool,
}

/// Latency of the verified replies of the measured window, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// The fastest reply.
    pub min: f64,
    /// The mean.
    pub mean: f64,
    /// The standard deviation.
    pub stdev: f64,
    /// The slowest reply (in an open loop, or the oldest request owed).
    pub max: f64,
    /// `--percentiles`, in the order asked: (percentile, microseconds);
    /// 100 is the maximum.
    #[serde(skip)]
    pub percentiles: Vec<(f64, f64)>,
    /// The same but the maximum, keyed `p50`, `p99.9` (for the JSON).
    #[serde(flatten)]
    pub by_name: BTreeMap<String, f64>,
}

/// Requests still owed when the window ended.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Owed {
    /// On connections still open: sent and unanswered (in an open loop, due
    /// and not yet sent too).
    pub requests: u64,
    /// Age of the oldest, in microseconds.
    pub oldest_us: Option<f64>,
    /// Open loop: each one's age at the end is in the latency figures (a
    /// lower bound of its latency), so a server that stalls at the end
    /// shows. Closed loop: not in them.
    pub in_latency: bool,
}

/// One interval of the per-second series (warm-up included, marked).
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds from the start to the interval's end.
    pub at_s: f64,
    /// Its length (the last interval of a phase may be shorter than 1 s).
    pub seconds: f64,
    /// An interval of the warm-up (not in the summary).
    pub warmup: bool,
    /// Verified replies in it.
    pub messages: u64,
    /// The same per second.
    pub msgs_per_sec: f64,
    /// Its median latency in microseconds (`None`: no reply in it).
    pub p50_us: Option<f64>,
    /// Its 99th percentile latency in microseconds.
    pub p99_us: Option<f64>,
    /// Errors in this interval.
    pub errors: u64,
}

/// What a benchmark measured (the measured window only, warm-up excluded).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was run.
    pub config: RunConfig,
    /// Length of the measured window in seconds.
    pub seconds: f64,
    /// Why the window ended when it did.
    pub ended: End,
    /// Replies received and verified in the window.
    pub messages: u64,
    /// Verified replies per second of the window.
    pub msgs_per_sec: f64,
    /// Request bytes written in the window (headers included).
    pub bytes_sent: u64,
    /// Reply bytes read in the window (headers included).
    pub bytes_received: u64,
    /// `bytes_sent` per second, in millions.
    pub mb_per_sec_sent: f64,
    /// `bytes_received` per second, in millions.
    pub mb_per_sec_received: f64,
    /// `--rate`: target and achieved.
    pub rate: Option<RateCheck>,
    /// `None` when no reply was verified.
    pub latency_us: Option<Latency>,
    /// Requests still owed when the window closed.
    pub owed: Owed,
    /// Requests in flight on connections that failed (closed, reset, timed
    /// out), over the whole run.
    pub lost: u64,
    /// Errors in the measured window.
    pub errors: Errors,
    /// Errors in the warm-up: not in `errors`.
    pub warmup_errors: Errors,
    /// Connections that could not be opened, before the clock started.
    pub setup_errors: Errors,
    /// Each interval of the run, warm-up included (marked).
    pub series: Vec<Second>,
    /// The measured window on the monotonic clock (for tests that compare
    /// it with what a server saw).
    #[serde(skip)]
    pub measured_from: Instant,
    /// The window's end (the deadline, or earlier if the run ended early).
    #[serde(skip)]
    pub measured_to: Instant,
    /// Every latency of the window, in nanoseconds.
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

impl Report {
    /// Verified replies per second of the measured window.
    pub fn msgs_per_sec(&self) -> f64 {
        self.msgs_per_sec
    }

    /// Errors of every phase.
    pub fn all_errors(&self) -> u64 {
        self.errors.total() + self.warmup_errors.total() + self.setup_errors.total()
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The CSV header for rows of runs with these percentiles.
    pub fn csv_header(percentiles: &[f64], swept: Option<&str>) -> String {
        let mut h = String::new();
        if let Some(name) = swept {
            let _ = write!(h, "sweep_{name},");
        }
        h.push_str(
            "connections,size,depth,threads,codec,verify,rate_target,rate_achieved,\
             seconds,ended,messages,msgs_per_sec,mb_per_sec_sent,mb_per_sec_received,\
             latency_min_us,latency_mean_us,latency_stdev_us",
        );
        for &p in percentiles {
            let _ = write!(h, ",latency_{}_us", percentile_name(p));
        }
        h.push_str(",owed,lost");
        for kind in ErrorKind::ALL {
            let _ = write!(h, ",{}", kind.name());
        }
        h.push_str(",warmup_errors,setup_errors");
        h
    }

    /// This run as one CSV row, matching [`Report::csv_header`].
    pub fn csv_row(&self, swept: Option<u64>) -> String {
        let c = &self.config;
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
        let mut r = String::new();
        if let Some(value) = swept {
            let _ = write!(r, "{value},");
        }
        let _ = write!(
            r,
            "{},{},{},{},{},{},{},{},{:.3},{},{},{:.1},{:.3},{:.3}",
            c.connections,
            c.size,
            c.depth,
            c.threads,
            c.codec,
            serde_json::to_value(c.verify)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            opt(c.rate),
            opt(self.rate.map(|r| r.achieved)),
            self.seconds,
            serde_json::to_value(self.ended)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            self.messages,
            self.msgs_per_sec,
            self.mb_per_sec_sent,
            self.mb_per_sec_received,
        );
        let l = self.latency_us.as_ref();
        let _ = write!(
            r,
            ",{},{},{}",
            opt(l.map(|l| l.min)),
            opt(l.map(|l| l.mean)),
            opt(l.map(|l| l.stdev))
        );
        for &p in &c.percentiles {
            let v = l.and_then(|l| l.percentiles.iter().find(|(q, _)| *q == p).map(|x| x.1));
            let _ = write!(r, ",{}", opt(v));
        }
        let _ = write!(r, ",{},{}", self.owed.requests, self.lost);
        for kind in ErrorKind::ALL {
            let _ = write!(r, ",{}", self.errors.get(kind));
        }
        let _ = write!(
            r,
            ",{},{}",
            self.warmup_errors.total(),
            self.setup_errors.total()
        );
        r
    }

    /// Why the window ended, in words.
    pub fn ended_because(&self) -> String {
        match self.ended {
            End::Duration => "ran its full --duration".into(),
            End::Requests => format!(
                "--requests {} verified",
                self.config.requests.unwrap_or_default()
            ),
            End::ConnectionsGone => {
                let mut all = self.errors;
                all.add(&self.warmup_errors);
                format!("ended early: every connection was closed or given up ({all})")
            }
            End::NoConnection => {
                format!(
                    "nothing measured: no connection could be opened ({})",
                    self.setup_errors
                )
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let mode = match (c.rate, c.requests) {
            (Some(rate), _) => format!("open loop at {} msgs/s", thousands(rate)),
            (None, _) => format!("depth {}", c.depth),
        };
        let server = match &c.addr {
            Some(addr) => addr.clone(),
            None => "embedded server".into(),
        };
        writeln!(
            f,
            "{} connections, {}-byte payloads, {mode}, {} thread(s), {server}{}",
            c.connections,
            c.size,
            c.threads,
            c.pinning
                .as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        )?;
        let of = match c.requests {
            Some(_) => format!("at most {} s", c.duration_s),
            None => format!("{} s", c.duration_s),
        };
        writeln!(
            f,
            "  measured       {:.3} s of {of}: {}",
            self.seconds,
            self.ended_because()
        )?;
        writeln!(
            f,
            "  msgs/s         {}  ({} verified replies)",
            thousands(self.msgs_per_sec),
            self.messages
        )?;
        if let Some(rate) = self.rate {
            writeln!(
                f,
                "  rate           target {}  achieved {} ({:.0}%){}",
                thousands(rate.target),
                thousands(rate.achieved),
                rate.achieved / rate.target * 100.0,
                if rate.reached {
                    ""
                } else {
                    "  WARNING: under 95% of the target: the server (or this client) \
                     cannot keep up; latency includes the queueing"
                }
            )?;
        }
        writeln!(
            f,
            "  MB/s           sent {:.2}  received {:.2}",
            self.mb_per_sec_sent, self.mb_per_sec_received
        )?;
        match &self.latency_us {
            None => writeln!(f, "  latency        no verified reply")?,
            Some(l) => {
                writeln!(
                    f,
                    "  latency        min {}  mean {}  stdev {}",
                    human_us(l.min),
                    human_us(l.mean),
                    human_us(l.stdev)
                )?;
                let mut line = String::new();
                for &(p, us) in &l.percentiles {
                    let _ = write!(line, "{} {}  ", percentile_name(p), human_us(us));
                }
                writeln!(f, "                 {}", line.trim_end())?;
            }
        }
        let oldest = self
            .owed
            .oldest_us
            .map(|us| format!(", oldest {}", human_us(us)))
            .unwrap_or_default();
        let in_latency = match (self.owed.requests, self.owed.in_latency) {
            (0, _) => "",
            (_, true) => " (their ages are in the latency figures)",
            (_, false) => " (in flight when the window closed; not in the latency figures)",
        };
        writeln!(
            f,
            "  owed at end    {}{oldest}{in_latency}",
            self.owed.requests
        )?;
        if self.lost > 0 {
            writeln!(
                f,
                "  lost           {} requests in flight on connections that failed",
                self.lost
            )?;
        }
        write!(f, "  errors         {}", self.errors)?;
        if self.warmup_errors.total() > 0 {
            write!(
                f,
                "\n  warm-up errors {} (not counted above)",
                self.warmup_errors
            )?;
        }
        if self.setup_errors.total() > 0 {
            write!(
                f,
                "\n  connect errors {} ({} of {} connections never opened)",
                self.setup_errors,
                self.setup_errors.total(),
                c.connections
            )?;
        }
        Ok(())
    }
}

/// `p50`, `p99.9`, `max`.
pub fn percentile_name(p: f64) -> String {
    if p >= 100.0 {
        "max".into()
    } else {
        format!("p{p}")
    }
}

/// Nanoseconds to microseconds.
pub(crate) fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

/// `812 us`, `3.41 ms`, `1.20 s`.
pub fn human_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1} us")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// `1,234,567` (rounded to a whole number).
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_latencies_get_a_readable_unit() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(human_us(812.0), "812.0 us");
        assert_eq!(human_us(3410.0), "3.41 ms");
        assert_eq!(human_us(1_200_000.0), "1.20 s");
        assert_eq!(percentile_name(99.9), "p99.9");
        assert_eq!(percentile_name(100.0), "max");
    }
}
