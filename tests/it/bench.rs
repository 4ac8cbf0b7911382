//! The load generator checks what it measures: a correct server gives zero
//! errors, a corrupting one is caught, impossible runs are refused, and the
//! command writes what it promises (text, JSON, CSV, HdrHistogram log, SVG).

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use frameloop::bench::{self, BenchConfig, BenchError, End, Verify};
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
    let latency = report.latency_us.as_ref().unwrap();
    assert!(latency.min > 0.0 && latency.min <= latency.by_name["p50"]);
    assert!(latency.by_name["p50"] <= latency.max);
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
    // A connection whose every request was answered wrongly can do no
    // more (a mismatch never makes room for another request): the run
    // ends early and says so.
    assert!(
        report.errors.mismatch + report.warmup_errors.mismatch > 0,
        "{report}"
    );
    assert!(report.to_string().contains("mismatch"), "{report}");
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

/// Echoes, but drops the last byte of each connection's 5th reply (header
/// adjusted).
#[derive(Default)]
struct Truncating {
    frames: HashMap<ConnId, u64>,
}

impl Handler for Truncating {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        let seen = self.frames.entry(ctx.id()).or_default();
        *seen += 1;
        let keep = match *seen == 5 {
            true => payload.len().saturating_sub(1),
            false => payload.len(),
        };
        ctx.send(&payload[..keep]);
    }
}

#[test]
fn a_truncated_reply_is_one_mismatch_and_the_next_reply_is_still_found() {
    let server = start(loopback_config(), Truncating::default());
    let report = bench::run(&BenchConfig {
        warmup: Duration::ZERO,
        ..quick(Some(server.addr()))
    })
    .unwrap();
    // One bad reply per connection; cutting by the headers keeps the rest
    // in step, so each connection goes on with depth - 1 in flight.
    assert_eq!(report.errors.mismatch, 20, "{report}");
    assert!(report.messages > 20 * 10, "{report}");
    assert_eq!(report.ended, End::Duration, "{report}");
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
fn a_server_that_hangs_up_is_counted_as_server_closed_and_the_run_ends_early() {
    let server = start(loopback_config(), Quitting::default());
    let started = Instant::now();
    // Depth 1: the server has read every request when it hangs up, so its
    // kernel sends a FIN (unread requests would turn it into a reset).
    let report = bench::run(&BenchConfig {
        depth: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(20),
        ..quick(Some(server.addr()))
    })
    .unwrap();
    assert_eq!(report.errors.server_closed, 20, "{report}");
    assert_eq!(report.lost, 20, "{report}");
    assert_eq!(report.ended, End::ConnectionsGone, "{report}");
    assert_eq!(report.errors.mismatch, 0, "{report}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited out the run"
    );
}

#[test]
fn nothing_listening_is_counted_as_refused_and_the_run_ends_at_once() {
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
    assert_eq!(report.setup_errors.refused, 20, "{report}");
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
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["errors"]["mismatch"].as_u64() > Some(0), "{json}");

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
fn a_wrong_key_is_counted_as_auth_failures() {
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
    assert_eq!(wrong.errors.auth + wrong.warmup_errors.auth, 20, "{wrong}");
    assert_eq!(wrong.all_errors(), 20, "{wrong}");
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
fn flags_that_cannot_work_are_refused_before_anything_starts() {
    let refused = [
        BenchConfig {
            depth: usize::MAX,
            ..quick(None)
        },
        BenchConfig {
            requests: Some(0),
            ..quick(None)
        },
        BenchConfig {
            percentiles: vec![50.0, 0.0],
            ..quick(None)
        },
        BenchConfig {
            timeout: Duration::ZERO,
            ..quick(None)
        },
        BenchConfig {
            duration: Duration::MAX,
            ..quick(None)
        },
    ];
    for config in refused {
        let err = bench::run(&config).unwrap_err();
        assert!(matches!(err, BenchError::Invalid(_)), "{err}");
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
    assert!(stderr.contains("no verified reply"), "{stderr}");
    drop(silent);
}

#[test]
fn upper_is_verified_as_upper_case_and_none_accepts_any_reply() {
    let server = start(loopback_config(), frameloop::Upper);
    let upper = bench::run(&BenchConfig {
        verify: Verify::Upper,
        ..quick(Some(server.addr()))
    })
    .unwrap();
    assert_eq!(upper.all_errors(), 0, "{upper}");
    assert!(upper.messages > 100, "{upper}");
    let none = bench::run(&BenchConfig {
        verify: Verify::None,
        ..quick(Some(server.addr()))
    })
    .unwrap();
    assert_eq!(none.all_errors(), 0, "{none}");
    let echo = bench::run(&BenchConfig {
        warmup: Duration::ZERO,
        ..quick(Some(server.addr()))
    })
    .unwrap();
    assert!(echo.errors.mismatch > 0, "{echo}");
}

#[test]
fn the_embedded_server_gets_a_core_of_its_own_when_there_are_two() {
    let report = bench::run(&quick(None)).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(report.config.pinning.is_some(), cores >= 2, "{report}");
}

/// Runs `frameloop bench` against a fresh embedded server with short
/// windows and `extra` flags; returns (exit code, stdout, stderr).
fn bench_command(extra: &[&str]) -> (Option<i32>, String, String) {
    let duration = match extra.contains(&"--duration") {
        true => &[][..],
        false => &["--duration", "300ms"][..],
    };
    let out = Command::new(env!("CARGO_BIN_EXE_frameloop"))
        .args(["bench", "--connections", "4", "--warmup", "200ms"])
        .args(duration)
        .args(extra)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_embedded_servers_log_never_lands_among_the_progress_lines() {
    let (code, stdout, stderr) = bench_command(&["--duration", "1100ms"]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let progress: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with('['))
        .filter(|&i| lines[i].contains("msgs/s"))
        .collect();
    let logged: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("frameloop::reactor"))
        .collect();
    assert!(progress.len() >= 2 && !logged.is_empty(), "{stderr}");
    assert!(logged[0] > *progress.last().unwrap(), "{stderr}");
    assert!(stdout.contains("msgs/s"), "{stdout}");
}

#[test]
fn json_holds_the_configuration_the_summary_and_the_series() {
    let (code, stdout, stderr) =
        bench_command(&["--json", "--percentiles", "50,99.9,max", "--rate", "2000"]);
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(json["config"]["connections"], 4);
    assert_eq!(json["config"]["rate"], 2000.0);
    assert!(json["msgs_per_sec"].as_f64().unwrap() > 0.0, "{json}");
    assert!(json["rate"]["achieved"].as_f64().is_some(), "{json}");
    for key in ["min", "mean", "stdev", "p50", "p99.9", "max"] {
        assert!(json["latency_us"][key].as_f64().is_some(), "{key}: {json}");
    }
    let series = json["series"].as_array().unwrap();
    assert!(series.iter().any(|s| s["warmup"] == true), "{json}");
    assert!(series.iter().any(|s| s["warmup"] == false), "{json}");
    assert_eq!(json["errors"]["mismatch"], 0);
}

#[test]
fn a_sweep_prints_one_csv_row_per_cell_and_draws_its_picture() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("sweep.svg");
    // A second a cell: a shorter window can see no reply at all when the
    // shared machine is busy (the run then rightly exits 1).
    let (code, stdout, stderr) = bench_command(&[
        "--duration",
        "1s",
        "--sweep",
        "connections=1,4",
        "--csv",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(
        rows[0].starts_with("sweep_connections,connections,"),
        "{stdout}"
    );
    assert!(
        rows[1].starts_with("1,1,") && rows[2].starts_with("4,4,"),
        "{stdout}"
    );
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.contains("<svg") && picture.contains("p99 latency"));
}

#[test]
fn the_hdr_log_holds_one_histogram_per_measured_second() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.hlog");
    let (code, _, stderr) =
        bench_command(&["--duration", "1100ms", "--hdr-log", log.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let bytes = std::fs::read(&log).unwrap();
    let intervals = IntervalLogIterator::new(&bytes)
        .filter(|e| matches!(e, Ok(LogEntry::Interval(_))))
        .count();
    // 1 s and 0.1 s: the warm-up is left out.
    assert_eq!(intervals, 2, "{}", String::from_utf8_lossy(&bytes));
}

#[test]
fn a_hostname_is_resolved_once_and_a_bad_one_is_one_line() {
    let server = start(loopback_config(), frameloop::Echo);
    let port = server.addr().port().to_string();
    let (code, _, stderr) = bench_command(&["--addr", &format!("localhost:{port}")]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = bench_command(&["--addr", "no-such-host.invalid:9000"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
