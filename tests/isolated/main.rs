//! Tests that measure the whole test process (its memory, its descriptors)
//! or how long something takes: they must not share the machine with other
//! tests. This binary runs after or before the others (cargo runs test
//! binaries one at a time), and its tests take turns: each holds `ALONE`.

#[path = "../it/common.rs"]
mod common;
mod soak;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use frameloop::Echo;

/// Held by each test for its whole run.
pub static ALONE: Mutex<()> = Mutex::new(());

/// Takes the turn (a test that failed while holding it poisoned nothing
/// the next one needs).
pub fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn a_client_that_sends_a_gibibyte_without_reading_leaves_memory_flat() {
    let _alone = alone();
    let server = start(loopback_config(), Echo);
    let frames = (1u32 << 30) / FRAME as u32; // 1 GiB
    let hog = connect(server.addr());
    let mut hog_writer = hog.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(FRAME + 4);
        for i in 0..frames {
            numbered_frame(i, &mut buf);
            hog_writer.write_all(&buf).unwrap();
        }
    });

    // The hog fills every buffer on the way and the server stops reading it.
    std::thread::sleep(Duration::from_millis(500));
    let rss_stalled = rss_kib();
    std::thread::sleep(Duration::from_secs(1));
    let growth = rss_kib().saturating_sub(rss_stalled);
    assert!(
        growth < 16 * 1024,
        "server memory grew {growth} KiB while stalled"
    );
    assert!(
        !writing.is_finished(),
        "the server must have stopped reading"
    );

    // Others are served meanwhile.
    let mut other = connect(server.addr());
    for i in 0..100 {
        let p = tagged(i, 100);
        assert_eq!(echo(&mut other, &p), p);
    }

    // When it finally reads, every frame comes back, in order.
    let mut reader = hog;
    let mut got = vec![0u8; FRAME + 4];
    let mut want = Vec::with_capacity(FRAME + 4);
    for i in 0..frames {
        reader.read_exact(&mut got).unwrap();
        numbered_frame(i, &mut want);
        assert!(got == want, "frame {i} differs");
    }
    writing.join().unwrap();
    let peak_growth = rss_kib().saturating_sub(rss_stalled);
    assert!(
        peak_growth < 16 * 1024,
        "memory grew {peak_growth} KiB overall"
    );
    assert!(server.stop().unwrap().read_pauses > 0);
}

#[test]
fn one_streaming_connection_does_not_starve_a_hundred_ping_pong_clients() {
    let _alone = alone();
    let server = start(loopback_config(), Echo);
    let addr = server.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let streamer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut s = connect(addr);
            let mut r = s.try_clone().unwrap();
            let drain = std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                while r.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
            let big = frame(&vec![1u8; 256 * 1024]);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if s.write_all(&big).is_err() {
                    break;
                }
            }
            // Half-close: the server flushes, closes, and the drain sees EOF.
            let _ = s.shutdown(std::net::Shutdown::Write);
            let _ = drain.join();
        })
    };
    std::thread::sleep(Duration::from_millis(200));

    let pingers: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut conns: Vec<TcpStream> = (0..25).map(|_| connect(addr)).collect();
                let mut latencies = Vec::new();
                for round in 0..40u32 {
                    for (i, s) in conns.iter_mut().enumerate() {
                        let p = tagged(t * 1000 + i as u32 + round, 32);
                        let start = Instant::now();
                        assert_eq!(echo(s, &p), p);
                        latencies.push(start.elapsed());
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = pingers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    streamer.join().unwrap();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "ping-pong p99 next to a streamer: {p99:?} over {} requests",
        latencies.len()
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    assert!(server.stop().unwrap().fairness_deferrals > 0);
}

/// Starts one of the notes' servers (an example) on 127.0.0.1:0.
fn start_example(name: &str) -> (ServerProcess, std::net::SocketAddr) {
    let mut command = std::process::Command::new(example(name));
    command
        .args(["--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let (server, addr, _stderr) = spawn_server(command);
    (server, addr)
}

#[test]
fn busy_loop_spins_with_idle_clients_while_tiny_reactor_sleeps() {
    let _alone = alone();
    let (busy, busy_addr) = start_example("busy_loop");
    let (tiny, tiny_addr) = start_example("tiny_reactor");
    let _idle: Vec<TcpStream> = (0..10)
        .flat_map(|_| [connect(busy_addr), connect(tiny_addr)])
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // Alone, the busy loop takes a whole core (100 ticks a second). On a
    // shared machine it gets less, but whatever it gets it burns: wait until
    // it has burnt half a second of CPU (at most 10 s), and see how much the
    // reactor, with as many idle clients, used meanwhile.
    let (busy0, tiny0) = (cpu_ticks(busy.id()), cpu_ticks(tiny.id()));
    let started = std::time::Instant::now();
    let spun = loop {
        std::thread::sleep(Duration::from_millis(100));
        let spun = cpu_ticks(busy.id()) - busy0;
        if spun >= 50 || started.elapsed() > Duration::from_secs(10) {
            break spun;
        }
    };
    let slept = cpu_ticks(tiny.id()) - tiny0;
    let window = started.elapsed();
    assert!(
        spun >= 50,
        "the busy loop used only {spun} ticks in {window:?}"
    );
    assert!(
        slept <= 2,
        "the idle reactor used {slept} ticks in {window:?}"
    );
}

/// `--addr 127.0.0.1:0 --udp`: the kernel picks a port free for TCP, which
/// a UDP socket elsewhere may hold. The server must still come up, with both
/// on one port. Here most of the ephemeral range is held for UDP; it runs
/// alone, since the ports it holds would be refused to other tests.
#[test]
fn port_zero_with_udp_comes_up_even_when_most_udp_ports_are_taken() {
    use rlimit::Resource;
    let _alone = alone();
    let (soft, hard) = Resource::NOFILE.get().unwrap();
    let _ = Resource::NOFILE.set(hard, hard);
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let mut bounds = range.split_whitespace().map(|n| n.parse::<u32>().unwrap());
    let (low, high) = (bounds.next().unwrap(), bounds.next().unwrap());
    // Held as other programs' UDP sockets hold them: port 0, the kernel's
    // choice, spread over the range. Up to half of it, as descriptors allow.
    let room = (hard.min(20_000).saturating_sub(500) as u32).min((high - low).div_ceil(2));
    let held: Vec<std::net::UdpSocket> = (0..room)
        .map_while(|_| std::net::UdpSocket::bind("127.0.0.1:0").ok())
        .collect();
    let share = held.len() as f64 / f64::from(high - low + 1);
    eprintln!(
        "holding {} UDP ports, {:.0}% of the range",
        held.len(),
        share * 100.0
    );
    for _ in 0..50 {
        let config = frameloop::Config {
            udp: true,
            ..frameloop::Config::loopback()
        };
        let server = frameloop::Server::bind(config, Echo)
            .unwrap_or_else(|e| panic!("with {} UDP ports held: {e}", held.len()));
        let port = server.local_addr().port();
        assert!(
            std::net::UdpSocket::bind(("127.0.0.1", port)).is_err(),
            "the server's UDP socket is on its TCP port {port}"
        );
    }
    drop(held);
    let _ = Resource::NOFILE.set(soft, hard);
}
