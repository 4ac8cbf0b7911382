//! Closing without losing a reply: what the server wrote reaches the peer,
//! then a clean end of stream, however the connection ends.
//!
//! Linux answers a `close` on a socket with unread input by a reset, and a
//! reset destroys the replies still in flight. Each test here leaves input
//! unread when the server decides to close, and checks that every reply
//! arrives, followed by EOF, not a reset.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::*;
use frameloop::{CloseReason, Config, Ctx, Echo, Handler};

/// Reads to the end of the stream; fails on a reset.
fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => got,
        Err(e) => panic!("{e} after {} bytes: replies were destroyed", got.len()),
    }
}

#[test]
fn valid_frames_before_a_bad_header_are_all_echoed_then_the_stream_ends() {
    let server = start(loopback_config(), Echo);
    for attempt in 0..20 {
        let mut s = connect(server.addr());
        let mut wire = Vec::new();
        for i in 0..50 {
            wire.extend(frame(&tagged(attempt * 100 + i, 1000)));
        }
        wire.extend_from_slice(&u32::MAX.to_be_bytes()); // 4 GiB: refused
        wire.extend_from_slice(&[0xAB; 64 * 1024]); // and more behind it, unread
        s.write_all(&wire).unwrap();
        let got = read_to_eof(&mut s);
        let want: Vec<u8> = (0..50)
            .flat_map(|i| frame(&tagged(attempt * 100 + i, 1000)))
            .collect();
        assert_eq!(got, want, "attempt {attempt}");
    }
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::Oversize), 20);
    assert_eq!(
        stats.frames,
        20 * 50,
        "the frames before each bad header count"
    );
}

/// Replies with a megabyte to "bye", then closes.
struct Goodbye;

impl Handler for Goodbye {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        if payload == b"bye" {
            ctx.send(&vec![b'z'; 1 << 20]);
            ctx.close();
        } else {
            ctx.send(payload);
        }
    }
}

#[test]
fn a_handler_close_with_input_still_unread_delivers_every_reply() {
    let server = start(loopback_config(), Goodbye);
    let mut s = connect(server.addr());
    let mut wire = frame(b"hello");
    wire.extend(frame(b"bye"));
    for _ in 0..100 {
        wire.extend(frame(&[1u8; 1000])); // behind the close: never answered
    }
    s.write_all(&wire).unwrap();
    let got = read_to_eof(&mut s);
    let mut want = frame(b"hello");
    want.extend(frame(&vec![b'z'; 1 << 20]));
    assert_eq!(got.len(), want.len());
    assert!(got == want);
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::Handler), 1);
}

/// A client that sends `bytes` of 64 KiB frames at once and starts reading
/// only after `wait`: the server pauses it long before, with a frame cut in
/// half in its buffers. Every echo must come back.
fn late_reader_gets_every_echo(config: Config, bytes: usize, wait: Duration) {
    let server = start(config, Echo);
    let s = connect(server.addr());
    let mut w = s.try_clone().unwrap();
    let frames = bytes / (64 * 1024);
    let writer = std::thread::spawn(move || {
        let wire: Vec<u8> = (0..frames as u32)
            .flat_map(|i| frame(&tagged(i, 64 * 1024)))
            .collect();
        w.write_all(&wire).unwrap();
    });
    std::thread::sleep(wait);
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    for i in 0..frames as u32 {
        let echo = read_frame(&mut s).unwrap_or_else(|e| panic!("echo {i}: {e}"));
        assert!(echo == tagged(i, 64 * 1024), "echo {i} differs");
    }
    writer.join().unwrap();
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::FrameTimeout), 0);
    assert!(stats.read_pauses > 0, "the server did pause it");
}

#[test]
fn a_frame_stuck_behind_the_servers_own_backpressure_is_not_slowloris() {
    let config = Config {
        frame_timeout: Some(Duration::from_millis(300)),
        ..loopback_config()
    };
    late_reader_gets_every_echo(config, 6 << 20, Duration::from_millis(1200));
}

/// The case as it was found: 6 MB, read after 12 s, default frame timeout.
#[test]
#[ignore = "slow: the fast version runs by default"]
fn six_megabytes_read_only_after_twelve_seconds_all_come_back() {
    late_reader_gets_every_echo(loopback_config(), 6 << 20, Duration::from_secs(12));
}

#[test]
fn slowloris_is_closed_by_the_frame_timeout_after_its_whole_frames_are_answered() {
    let config = Config {
        frame_timeout: Some(Duration::from_millis(200)),
        ..loopback_config()
    };
    let server = start(config, Echo);
    let mut s = connect(server.addr());
    let mut wire = frame(b"whole");
    wire.extend_from_slice(&[0, 0, 0, 100, 1, 2, 3]); // 3 of 100 bytes
    s.write_all(&wire).unwrap();
    let started = Instant::now();
    assert_eq!(read_frame(&mut s).unwrap(), b"whole");
    // Keep dribbling, as slowloris does: it must not buy more time.
    let dribble = s.try_clone().unwrap();
    let dribbler = std::thread::spawn(move || {
        let mut d = dribble;
        for _ in 0..20 {
            if d.write_all(&[9]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert_eq!(read_to_eof(&mut s), b"", "a clean end of stream");
    assert!(started.elapsed() < Duration::from_secs(2));
    dribbler.join().unwrap();
    assert_eq!(server.stop().unwrap().closed(CloseReason::FrameTimeout), 1);
}

#[test]
fn a_closing_connection_that_never_reads_cannot_stay_by_trickling_bytes() {
    let config = Config {
        idle_timeout: Some(Duration::from_millis(500)),
        high_water: 16 << 20,
        ..loopback_config()
    };
    let server = start(config, Echo);
    let mut s = connect(server.addr());
    // Replies it will never read, then a header that closes it (gracefully:
    // the replies must go first, and they cannot).
    let wire: Vec<u8> = (0..1000).flat_map(|i| frame(&tagged(i, 4000))).collect();
    s.write_all(&wire).unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    // One byte every 100 ms: read and thrown away, it must not count as life.
    let started = Instant::now();
    let mut w = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..40 {
            if w.write_all(&[0]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(
        wait_until(Duration::from_secs(4), || {
            server.handle().stats().active == 0
        }),
        "still open after {:?}",
        started.elapsed()
    );
    let _ = trickle.join();
}
