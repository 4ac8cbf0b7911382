//! Soak: many connections sending random-size checksummed frames while others
//! connect, disconnect and reset mid-frame. The fast version runs in CI; the
//! long one is `cargo test --release --test soak -- --ignored`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::alone;
use crate::common::*;
use frameloop::Echo;

/// A tiny deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random bytes followed by their 8-byte FNV-1a checksum.
fn checksummed(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    p.extend_from_slice(&fnv(&p).to_be_bytes());
    p
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

fn checksum_ok(p: &[u8]) -> bool {
    p.len() >= 8 && fnv(&p[..p.len() - 8]).to_be_bytes() == p[p.len() - 8..]
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn soak(connections: usize, threads: usize, duration: Duration, reactors: usize) {
    let _alone = alone();
    let fds_before = open_fds();
    let rss_before = rss_kib();
    let server = frameloop::Server::bind_each(loopback_config(), reactors, |_| Echo)
        .and_then(frameloop::RunningServer::start)
        .expect("server starts");
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));

    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, echoed) = (stop.clone(), echoed.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9 + t as u64);
                let mut conns: Vec<_> = (0..connections / threads).map(|_| connect(addr)).collect();
                while !stop.load(Ordering::Relaxed) {
                    let sent: Vec<Vec<u8>> = conns
                        .iter_mut()
                        .map(|s| {
                            let p = {
                                let len = rng_len(&mut rng);
                                checksummed(&mut rng, len)
                            };
                            s.write_all(&frame(&p)).unwrap();
                            p
                        })
                        .collect();
                    for (s, p) in conns.iter_mut().zip(&sent) {
                        let got = read_frame(s).unwrap();
                        assert!(checksum_ok(&got) && got == *p, "mismatch");
                        echoed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut rng = Rng(42);
            let mut cycles = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut s = connect(addr);
                let p = {
                    let len = rng_len(&mut rng);
                    checksummed(&mut rng, len)
                };
                let wire = frame(&p);
                match rng.below(3) {
                    0 => assert_eq!(read_frame_after(&mut s, &wire), p),
                    1 => {
                        // Half a frame, then a reset.
                        s.write_all(&wire[..wire.len() / 2]).unwrap();
                        reset_on_close(&s);
                    }
                    _ => {
                        // A whole frame, then a reset before reading the echo.
                        s.write_all(&wire).unwrap();
                        reset_on_close(&s);
                    }
                }
                cycles += 1;
            }
            cycles
        })
    };

    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let cycles = churn.join().unwrap();
    assert!(echoed.load(Ordering::Relaxed) > connections as u64);
    assert!(cycles > 10, "churn ran {cycles} cycles");

    assert!(
        wait_until(Duration::from_secs(10), || server.handle().stats().active
            == 0),
        "active gauge back to zero: {}",
        server.handle().stats()
    );
    let stats = server.stop().unwrap();
    eprintln!(
        "soak: {} echoes, {cycles} churn cycles; {stats}",
        echoed.load(Ordering::Relaxed)
    );
    assert!(wait_until(Duration::from_secs(5), || open_fds() <= fds_before));
    let rss_growth = rss_kib().saturating_sub(rss_before);
    assert!(rss_growth < 64 * 1024, "RSS grew {rss_growth} KiB");
}

fn rng_len(rng: &mut Rng) -> usize {
    // Mostly small, sometimes tens of kilobytes.
    match rng.below(10) {
        0 => rng.below(60_000) as usize,
        _ => rng.below(600) as usize,
    }
}

fn read_frame_after(s: &mut std::net::TcpStream, wire: &[u8]) -> Vec<u8> {
    s.write_all(wire).unwrap();
    read_frame(s).unwrap()
}

#[test]
fn soak_fast_1000_connections_with_churn_and_resets() {
    soak(1000, 8, Duration::from_secs(3), 1);
}

#[test]
fn soak_fast_on_two_reactors() {
    soak(1000, 8, Duration::from_secs(2), 2);
}

#[test]
fn soak_fast_on_four_reactors() {
    soak(1000, 8, Duration::from_secs(2), 4);
}

#[test]
#[ignore = "long soak: run with --ignored"]
fn soak_long_1000_connections_for_a_minute() {
    soak(1000, 8, Duration::from_secs(60), 1);
}
