//! The bench's numbers are the ones that happened: checked against a plain
//! std echo server written here (the witness), which counts and timestamps
//! what it really received and wrote. Each test of a "wrong numbers" case
//! failed against the bench before its fix.
//!
//! No test asserts a speed or a timing ratio: they compare counts over the
//! same window, or check bounds far from what a loaded machine does.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use frameloop::Config;
use frameloop::bench::{self, BenchConfig, End};

/// What the witness does with each request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Echo it.
    Echo,
    /// Echo it after a pause: a server with a known, low capacity.
    SlowEcho(Duration),
    /// Answer each request with two frames of garbage.
    DoubleGarbage,
    /// Echo the first `n` requests of each connection, then answer nothing.
    StallAfter(u64),
    /// Close connections with an odd id after `n` requests.
    CloseOddAfter(u64),
}

/// What the witness saw.
#[derive(Default)]
struct Seen {
    /// When each reply was written.
    replies: Vec<Instant>,
    /// Requests received, by the bench's connection id (payload bytes 0..4).
    requests: HashMap<u32, u64>,
    /// When each connection's first request arrived.
    first: HashMap<u32, Instant>,
}

/// A thread-per-connection std server; stops (and its threads end) on drop.
struct Witness {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Witness {
    fn start(behaviour: Behaviour) -> Witness {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (s, st) = (s.clone(), st.clone());
                        std::thread::spawn(move || serve(stream, behaviour, &s, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Witness { addr, seen, stop }
    }

    /// Replies written in `[from, to)`.
    fn replies_between(&self, from: Instant, to: Instant) -> u64 {
        let seen = self.seen.lock().unwrap();
        seen.replies
            .iter()
            .filter(|t| **t >= from && **t < to)
            .count() as u64
    }
}

fn serve(mut stream: TcpStream, behaviour: Behaviour, seen: &Mutex<Seen>, stop: &AtomicBool) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut input, mut chunk, mut count) = (Vec::new(), vec![0u8; 64 * 1024], 0u64);
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => input.extend_from_slice(&chunk[..n]),
            Err(_) => continue, // the read timeout: look at `stop` again
        }
        let (mut used, mut out, mut replies) = (0, Vec::new(), 0);
        while let Some(header) = input.get(used..used + 4) {
            let len = u32::from_be_bytes(header.try_into().unwrap()) as usize;
            let Some(payload) = input.get(used + 4..used + 4 + len) else {
                break;
            };
            used += 4 + len;
            count += 1;
            let id = u32::from_be_bytes(payload[..4].try_into().unwrap());
            {
                let mut seen = seen.lock().unwrap();
                *seen.requests.entry(id).or_default() += 1;
                seen.first.entry(id).or_insert_with(Instant::now);
            }
            match behaviour {
                Behaviour::Echo => {
                    out.extend_from_slice(&frame(payload));
                    replies += 1;
                }
                Behaviour::SlowEcho(pause) => {
                    std::thread::sleep(pause);
                    if stream.write_all(&frame(payload)).is_err() {
                        return;
                    }
                    seen.lock().unwrap().replies.push(Instant::now());
                }
                Behaviour::DoubleGarbage => {
                    let garbage = frame(&vec![0xAB; len]);
                    out.extend_from_slice(&garbage);
                    out.extend_from_slice(&garbage);
                    replies += 2;
                }
                Behaviour::StallAfter(n) if count > n => {}
                Behaviour::StallAfter(_) => {
                    out.extend_from_slice(&frame(payload));
                    replies += 1;
                }
                Behaviour::CloseOddAfter(n) if id % 2 == 1 && count > n => return,
                Behaviour::CloseOddAfter(_) => {
                    out.extend_from_slice(&frame(payload));
                    replies += 1;
                }
            }
        }
        input.drain(..used);
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                return;
            }
            let now = Instant::now();
            let mut seen = seen.lock().unwrap();
            seen.replies.extend(std::iter::repeat_n(now, replies));
        }
    }
}

fn quick(addr: SocketAddr) -> BenchConfig {
    BenchConfig {
        addr: Some(addr),
        connections: 4,
        depth: 1,
        threads: 1,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(600),
        progress: false,
        ..BenchConfig::default()
    }
}

/// `a` within 10% of `b`.
fn within_10_percent(a: u64, b: u64) -> bool {
    (a as f64 - b as f64).abs() <= 0.1 * b as f64
}

#[test]
fn msgs_per_second_match_what_an_independent_server_wrote_in_the_same_window() {
    let witness = Witness::start(Behaviour::Echo);
    let report = bench::run(&BenchConfig {
        connections: 8,
        depth: 4,
        threads: 2,
        ..quick(witness.addr)
    })
    .unwrap();
    let wrote = witness.replies_between(report.measured_from, report.measured_to);
    assert!(report.messages > 100, "{report}");
    assert!(
        within_10_percent(report.messages, wrote),
        "bench counted {} replies, the server wrote {wrote} in the window\n{report}",
        report.messages
    );
    let seconds = (report.measured_to - report.measured_from).as_secs_f64();
    assert!((report.seconds - seconds).abs() < 1e-6);
}

#[test]
fn a_rate_the_server_cannot_reach_is_reported_as_missed_and_counted_only_in_the_window() {
    // 4 connections at 1 ms a reply: at most 4,000/s, far below 400,000.
    let witness = Witness::start(Behaviour::SlowEcho(Duration::from_millis(1)));
    let started = Instant::now();
    let report = bench::run(&BenchConfig {
        rate: Some(400_000.0),
        ..quick(witness.addr)
    })
    .unwrap();
    let took = started.elapsed();
    let rate = report.rate.expect("a rate check in --rate mode");
    assert_eq!(rate.target, 400_000.0);
    assert!(!rate.reached, "{report}");
    assert!(
        report.to_string().contains("WARNING: under 95%"),
        "{report}"
    );
    let wrote = witness.replies_between(report.measured_from, report.measured_to);
    assert!(
        within_10_percent(report.messages, wrote),
        "bench {} vs server {wrote}\n{report}",
        report.messages
    );
    // The run ends with its window, however far behind the schedule it is.
    assert!(took < Duration::from_secs(4), "ran {took:?}");
    // What the server could not answer in time is owed, not dropped.
    assert!(report.owed.requests > 1000, "{report}");
}

#[test]
fn a_rate_beyond_what_the_client_can_send_still_ends_with_its_window() {
    // A million requests a second over 100 connections: more than this
    // client can write on a shared machine. Before the fix the run went on
    // for seconds after its window and counted what arrived then.
    let started = Instant::now();
    let report = bench::run(&BenchConfig {
        addr: None,
        connections: 100,
        rate: Some(1_000_000.0),
        ..quick(SocketAddr::from(([127, 0, 0, 1], 0)))
    })
    .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "ran {took:?}\n{report}");
    assert!(report.seconds <= 0.6 + 1e-9, "{report}");
    let last = report.series.last().unwrap();
    assert!(last.at_s <= 0.8 + 1e-9, "{:?}", report.series);
}

#[test]
fn a_server_that_dies_shortens_the_measured_window_and_says_why() {
    let server = start(loopback_config(), frameloop::Echo);
    let addr = server.addr();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        server.stop().unwrap();
    });
    let report = bench::run(&BenchConfig {
        warmup: Duration::ZERO,
        duration: Duration::from_secs(3),
        ..quick(addr)
    })
    .unwrap();
    stopper.join().unwrap();
    assert!(report.seconds < 1.5, "{report}");
    assert_eq!(report.ended, End::ConnectionsGone, "{report}");
    assert!(report.to_string().contains("ended early"), "{report}");
}

#[test]
fn nothing_listening_measures_zero_seconds_and_no_latency() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let report = bench::run(&quick(addr)).unwrap();
    assert_eq!(report.seconds, 0.0, "{report}");
    assert_eq!(report.ended, End::NoConnection);
    assert!(report.latency_us.is_none(), "{report}");
    assert_eq!(report.setup_errors.refused, 4, "{report}");
}

#[test]
fn garbage_replies_are_not_messages_and_never_raise_the_requests_in_flight() {
    let witness = Witness::start(Behaviour::DoubleGarbage);
    let report = bench::run(&BenchConfig {
        depth: 2,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(300),
        ..quick(witness.addr)
    })
    .unwrap();
    assert_eq!(report.messages, 0, "{report}");
    assert!(report.errors.mismatch > 0, "{report}");
    let most = *witness
        .seen
        .lock()
        .unwrap()
        .requests
        .values()
        .max()
        .unwrap();
    assert!(most <= 2, "{most} requests on one connection at depth 2");
}

#[test]
fn a_chat_server_broadcasting_to_others_scores_no_messages() {
    let server = start(loopback_config(), frameloop::Chat::new());
    let report = bench::run(&BenchConfig {
        connections: 10,
        depth: 2,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(300),
        ..quick(server.addr())
    })
    .unwrap();
    assert_eq!(report.messages, 0, "{report}");
    assert!(report.errors.mismatch > 0, "{report}");
}

#[test]
fn replies_still_owed_at_the_end_show_in_open_loop_latency() {
    // Each connection is answered twice, then never again.
    let witness = Witness::start(Behaviour::StallAfter(2));
    let report = bench::run(&BenchConfig {
        rate: Some(40.0),
        warmup: Duration::ZERO,
        ..quick(witness.addr)
    })
    .unwrap();
    // 10/s per connection over 0.6 s, 2 of each answered: the rest are
    // owed, and the oldest has waited since about 0.2 s.
    assert!(report.owed.requests >= 8, "{report}");
    let max = report.latency_us.as_ref().unwrap().max;
    assert!(max >= 300_000.0, "max {max} us\n{report}");
}

#[test]
fn errors_in_the_warmup_are_not_counted_as_measured_ones() {
    let witness = Witness::start(Behaviour::CloseOddAfter(3));
    let report = bench::run(&BenchConfig {
        warmup: Duration::from_millis(300),
        duration: Duration::from_millis(300),
        ..quick(witness.addr)
    })
    .unwrap();
    assert_eq!(report.errors.total(), 0, "{report}");
    assert_eq!(report.warmup_errors.server_closed, 2, "{report}");
    assert!(report.messages > 0, "{report}");
}

#[test]
fn open_loop_threads_are_staggered_across_threads_not_each_from_zero() {
    // 20 connections at 40/s in all: each sends every 500 ms, connection k
    // at k * 25 ms. Connection 10, the first of the second thread, sends
    // 250 ms after connection 0 (before the fix: at the same time).
    let witness = Witness::start(Behaviour::Echo);
    bench::run(&BenchConfig {
        connections: 20,
        threads: 2,
        rate: Some(40.0),
        warmup: Duration::ZERO,
        duration: Duration::from_millis(600),
        ..quick(witness.addr)
    })
    .unwrap();
    let seen = witness.seen.lock().unwrap();
    let (a, b) = (seen.first[&0], seen.first[&10]);
    let gap = a.max(b) - a.min(b);
    assert!(gap >= Duration::from_millis(125), "{gap:?} apart");
}

#[test]
fn error_kinds_name_refused_auth_and_oversize() {
    let keyed = start(
        Config {
            key: Some(frameloop::Key::new(vec![7; 32]).unwrap()),
            ..loopback_config()
        },
        frameloop::Echo,
    );
    let short = BenchConfig {
        warmup: Duration::ZERO,
        duration: Duration::from_millis(300),
        ..quick(keyed.addr())
    };
    let keyless = bench::run(&short).unwrap();
    assert_eq!(keyless.errors.auth, 4, "{keyless}");
    assert_eq!(keyless.errors.total(), 4, "{keyless}");

    let small = start(
        Config {
            max_frame: 100,
            ..loopback_config()
        },
        frameloop::Echo,
    );
    let oversize = bench::run(&BenchConfig {
        size: 200,
        addr: Some(small.addr()),
        ..short.clone()
    })
    .unwrap();
    assert_eq!(oversize.errors.oversize, 4, "{oversize}");
    assert_eq!(oversize.errors.total(), 4, "{oversize}");

    let nobody = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let refused = bench::run(&BenchConfig {
        addr: Some(nobody),
        ..short
    })
    .unwrap();
    assert_eq!(refused.setup_errors.refused, 4, "{refused}");
}

#[test]
fn a_request_unanswered_past_the_timeout_is_a_reply_timeout() {
    let witness = Witness::start(Behaviour::StallAfter(3));
    let report = bench::run(&BenchConfig {
        timeout: Duration::from_millis(100),
        warmup: Duration::ZERO,
        duration: Duration::from_secs(2),
        ..quick(witness.addr)
    })
    .unwrap();
    assert_eq!(report.errors.reply_timeout, 4, "{report}");
    assert_eq!(report.lost, 4, "{report}");
    assert_eq!(report.ended, End::ConnectionsGone, "{report}");
}

#[test]
fn requests_stops_after_exactly_that_many_verified_replies() {
    let witness = Witness::start(Behaviour::Echo);
    let report = bench::run(&BenchConfig {
        requests: Some(500),
        depth: 4,
        threads: 2,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(20),
        ..quick(witness.addr)
    })
    .unwrap();
    assert_eq!(report.messages, 500, "{report}");
    assert_eq!(report.ended, End::Requests, "{report}");
    assert!(report.seconds < 20.0);
}

#[test]
fn extreme_durations_are_one_line_errors_not_panics() {
    let bin = env!("CARGO_BIN_EXE_frameloop");
    for flag in ["--duration", "--warmup", "--timeout"] {
        let out = Command::new(bin)
            .args(["bench", flag, "10000000000000000000"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{flag}: {stderr}");
        assert!(stderr.contains("too long"), "{flag}: {stderr}");
    }
}
