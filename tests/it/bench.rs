//! The load generator checks what it measures: a correct server gives zero
//! errors, a corrupting one is caught, and impossible runs are refused.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use frameloop::bench::{self, BenchConfig, BenchError};
use frameloop::{Codec, Config, ConnId, Ctx, Handler};

fn quick(addr: Option<std::net::SocketAddr>) -> BenchConfig {
    BenchConfig {
        addr,
        connections: 20,
        depth: 4,
        duration: Duration::from_millis(500),
        warmup: Duration::from_millis(100),
        threads: 2,
        progress: false,
        ..BenchConfig::default()
    }
}

#[test]
fn embedded_run_checks_every_reply_and_finds_no_errors() {
    let report = bench::run(&quick(None)).unwrap();
    assert!(report.messages > 100, "{report}");
    assert_eq!(report.errors.total(), 0, "{report}");
    assert!(report.latency_us[0] > 0.0 && report.latency_us[0] <= report.latency_us[4]);
    assert!(report.to_json().contains("\"mismatch\":0"));
}

#[test]
fn raw_codec_and_open_loop_rate_work_against_a_raw_echo_server() {
    let server = start(
        Config {
            codec: Codec::Raw,
            ..loopback_config()
        },
        frameloop::Echo,
    );
    let config = BenchConfig {
        codec: Codec::Raw,
        rate: Some(2000.0),
        ..quick(Some(server.addr()))
    };
    let report = bench::run(&config).unwrap();
    assert_eq!(report.errors.total(), 0, "{report}");
    // 2000/s for 0.5 s: about 1000 replies.
    assert!((700..=1300).contains(&report.messages), "{report}");
}

/// Echoes, but flips one byte in every 100th frame.
#[derive(Default)]
struct Corrupting {
    frames: u64,
}

impl Handler for Corrupting {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        self.frames += 1;
        let flip = self.frames.is_multiple_of(100);
        ctx.send_with(|out| {
            let mut reply = payload.to_vec();
            if flip && payload.len() > 20 {
                reply[20] ^= 0xFF;
            }
            out.extend_from_slice(&reply);
        });
    }
}

#[test]
fn a_server_that_corrupts_bytes_is_caught_as_mismatches() {
    let server = start(loopback_config(), Corrupting::default());
    let report = bench::run(&quick(Some(server.addr()))).unwrap();
    assert!(report.errors.mismatch > 0, "{report}");
}

#[test]
fn more_connections_than_descriptors_is_refused_naming_ulimit() {
    let config = BenchConfig {
        connections: 10_000_000,
        threads: 1,
        ..quick(None)
    };
    let err = bench::run(&config).unwrap_err();
    assert!(matches!(err, BenchError::FdLimit { .. }));
    assert!(err.to_string().contains("ulimit -n"), "{err}");
}

/// Echoes, but drops the last byte of every 100th reply (header adjusted).
#[derive(Default)]
struct Truncating {
    frames: u64,
}

impl Handler for Truncating {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        self.frames += 1;
        let keep = match self.frames.is_multiple_of(100) {
            true => payload.len().saturating_sub(1),
            false => payload.len(),
        };
        ctx.send(&payload[..keep]);
    }
}

#[test]
fn a_truncated_reply_is_one_mismatch_and_the_next_reply_is_still_found() {
    let server = start(loopback_config(), Truncating::default());
    let report = bench::run(&quick(Some(server.addr()))).unwrap();
    assert!(report.errors.mismatch > 0, "{report}");
    // One reply in a hundred is bad; cutting by the headers keeps the rest
    // in step, so the mismatches do not cascade.
    assert!(report.errors.mismatch * 20 < report.messages, "{report}");
}

/// Echoes the first 10 frames of each connection, then closes it.
#[derive(Default)]
struct Quitting {
    frames: HashMap<ConnId, u32>,
}

impl Handler for Quitting {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        let seen = self.frames.entry(ctx.id()).or_default();
        *seen += 1;
        match *seen > 10 {
            true => ctx.close(),
            false => ctx.send(payload),
        }
    }
}

#[test]
fn a_server_that_hangs_up_is_counted_as_short_replies_and_the_run_ends_early() {
    let server = start(loopback_config(), Quitting::default());
    let started = Instant::now();
    // Depth 1: the server has read every request when it hangs up, so its
    // kernel sends a FIN (unread requests would turn it into a reset).
    let report = bench::run(&BenchConfig {
        depth: 1,
        duration: Duration::from_secs(20),
        ..quick(Some(server.addr()))
    })
    .unwrap();
    assert_eq!(report.errors.short_reply, 20, "{report}");
    assert_eq!(report.errors.mismatch, 0, "{report}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited out the run"
    );
}

#[test]
fn nothing_listening_is_counted_as_connect_failures_and_the_run_ends_at_once() {
    // A port that was just free: connects are refused at once.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = Instant::now();
    let report = bench::run(&BenchConfig {
        duration: Duration::from_secs(20),
        ..quick(Some(addr))
    })
    .unwrap();
    assert_eq!(report.errors.connect, 20, "{report}");
    assert_eq!(report.messages, 0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited out the run"
    );
}

#[test]
fn a_raw_run_of_empty_payloads_is_refused() {
    let config = BenchConfig {
        codec: Codec::Raw,
        size: 0,
        ..quick(None)
    };
    let err = bench::run(&config).unwrap_err();
    assert!(matches!(err, BenchError::Invalid(_)), "{err}");
}

#[test]
fn the_command_exits_1_on_mismatches_and_2_with_one_line_when_it_cannot_run() {
    let bin = env!("CARGO_BIN_EXE_frameloop");
    let server = start(loopback_config(), Corrupting::default());
    let out = Command::new(bin)
        .args(["bench", "--addr", &server.addr().to_string()])
        .args(["--connections", "4", "--depth", "8", "--warmup", "0"])
        .args(["--duration", "300ms", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.starts_with('{') && !json.contains("\"mismatch\":0"),
        "{json}"
    );

    let out = Command::new(bin)
        .args(["bench", "--connections", "10000000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("ulimit -n"), "{stderr}");
}

#[test]
fn a_wrong_key_is_counted_as_connect_failures() {
    let server = start(
        Config {
            key: Some(frameloop::Key::new(vec![7; 32]).unwrap()),
            ..loopback_config()
        },
        frameloop::Echo,
    );
    let right = bench::run(&BenchConfig {
        key: Some(frameloop::Key::new(vec![7; 32]).unwrap()),
        ..quick(Some(server.addr()))
    })
    .unwrap();
    assert_eq!(right.errors.total(), 0, "{right}");
    assert!(right.messages > 100, "{right}");
    let wrong = bench::run(&BenchConfig {
        key: Some(frameloop::Key::new(vec![8; 32]).unwrap()),
        ..quick(Some(server.addr()))
    })
    .unwrap();
    assert_eq!(wrong.errors.connect, 20, "{wrong}");
    assert_eq!(wrong.errors.total(), 20, "{wrong}");
}

#[test]
fn a_rate_too_high_or_too_low_for_a_send_interval_is_refused() {
    for rate in [1e12, 1e-20, 0.0, f64::NAN] {
        let config = BenchConfig {
            rate: Some(rate),
            ..quick(None)
        };
        let err = bench::run(&config).unwrap_err();
        assert!(matches!(err, BenchError::Invalid(_)), "{rate}: {err}");
    }
}

#[test]
fn a_server_that_accepts_and_never_answers_does_not_pass() {
    let bin = env!("CARGO_BIN_EXE_frameloop");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    // The kernel completes the handshakes (backlog); nobody ever reads.
    let out = Command::new(bin)
        .args(["bench", "--addr", &addr.to_string(), "--connections", "4"])
        .args(["--warmup", "0", "--duration", "300ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no reply"), "{stderr}");
    drop(silent);
}
