//! A live server over TCP: framing, many connections, half-close, resets, raw mode.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use crate::common::*;
use frameloop::{CloseReason, Codec, Config, Echo, Upper};

#[test]
fn payloads_of_0_1_70000_bytes_and_exactly_the_maximum_echo_exactly() {
    let max = 200_000;
    let server = start(
        Config {
            max_frame: max,
            ..loopback_config()
        },
        Echo,
    );
    let mut s = connect(server.addr());
    for len in [0, 1, 70_000, max] {
        let payload = tagged(len as u32, len);
        assert_eq!(echo(&mut s, &payload), payload, "payload of {len} bytes");
    }
}

#[test]
fn maximum_plus_one_closes_only_that_connection() {
    let max = 1000;
    let server = start(
        Config {
            max_frame: max,
            ..loopback_config()
        },
        Echo,
    );
    let mut bystander = connect(server.addr());
    assert_eq!(echo(&mut bystander, b"before"), b"before");

    let mut offender = connect(server.addr());
    offender
        .write_all(&((max + 1) as u32).to_be_bytes())
        .unwrap();
    assert!(
        closed_by_server(&mut offender),
        "oversized header must close"
    );

    assert_eq!(echo(&mut bystander, b"after"), b"after");
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::Oversize), 1);
}

#[test]
fn header_declaring_four_gigabytes_closes_at_once_without_allocating_it() {
    let server = start(loopback_config(), Echo);
    let mut s = connect(server.addr());
    s.write_all(&0xFFFF_FFF0u32.to_be_bytes()).unwrap();
    assert!(closed_by_server(&mut s));
    assert_eq!(
        echo(&mut connect(server.addr()), b"still here"),
        b"still here"
    );
}

#[test]
fn fifty_frames_coalesced_in_one_write_all_echo_in_order() {
    let server = start(loopback_config(), Echo);
    let mut s = connect(server.addr());
    let mut wire = Vec::new();
    for i in 0..50u32 {
        wire.extend(frame(&tagged(i, i as usize * 13)));
    }
    s.write_all(&wire).unwrap();
    for i in 0..50u32 {
        assert_eq!(read_frame(&mut s).unwrap(), tagged(i, i as usize * 13));
    }
}

#[test]
fn a_frame_sent_one_byte_at_a_time_echoes_once_whole() {
    let server = start(loopback_config(), Echo);
    let mut s = connect(server.addr());
    let payload = tagged(9, 300);
    for byte in frame(&payload) {
        s.write_all(&[byte]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(read_frame(&mut s).unwrap(), payload);
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(s.read(&mut [0u8; 1]).is_err(), "exactly one reply");
}

#[test]
fn a_thousand_concurrent_connections_each_get_their_own_frames_back() {
    let server = start(loopback_config(), Echo);
    let mut clients: Vec<_> = (0..1000).map(|_| connect(server.addr())).collect();
    for round in 0..3u32 {
        for (i, s) in clients.iter_mut().enumerate() {
            s.write_all(&frame(&tagged(i as u32 * 10 + round, 40 + i % 50)))
                .unwrap();
        }
        for (i, s) in clients.iter_mut().enumerate() {
            let want = tagged(i as u32 * 10 + round, 40 + i % 50);
            assert_eq!(read_frame(s).unwrap(), want, "client {i} round {round}");
        }
    }
    assert_eq!(server.handle().stats().active, 1000);
}

#[test]
fn half_close_flushes_every_reply_of_ten_mebibytes() {
    let server = start(loopback_config(), Echo);
    let mut writer = connect(server.addr());
    let mut reader = writer.try_clone().unwrap();
    let frames: Vec<Vec<u8>> = (0..160u32).map(|i| tagged(i, 65_536)).collect();
    let expected: Vec<u8> = frames.iter().flat_map(|f| frame(f)).collect();
    assert!(expected.len() >= 10 << 20);

    let sent = expected.clone();
    let writing = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap(); // ends only when the server closes
    writing.join().unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "echoed bytes differ");
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::Eof), 1);
}

#[test]
fn a_peer_that_resets_mid_reply_does_not_disturb_others() {
    let server = start(loopback_config(), Echo);
    let mut steady = connect(server.addr());
    assert_eq!(echo(&mut steady, b"one"), b"one");

    for _ in 0..5 {
        let mut rude = connect(server.addr());
        let big = frame(&tagged(1, 512 * 1024));
        for _ in 0..4 {
            rude.write_all(&big).unwrap();
        }
        // Read a little of the replies, then reset with replies still pending.
        let mut some = [0u8; 1000];
        rude.read_exact(&mut some).unwrap();
        reset_on_close(&rude);
        drop(rude);
        assert_eq!(echo(&mut steady, b"two"), b"two");
    }
    assert!(wait_until(Duration::from_secs(5), || server
        .handle()
        .stats()
        .active
        == 1));
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::Reset), 5);
}

#[test]
fn raw_upper_mode_serves_the_notes_client_unchanged() {
    let config = Config {
        codec: Codec::Raw,
        ..loopback_config()
    };
    let server = start(config, Upper);
    // The notes' client: sk.send(b'hello'); msg = sk.recv(1024)
    let mut sk = connect(server.addr());
    for _ in 0..3 {
        sk.write_all(b"hello").unwrap();
        let mut msg = [0u8; 1024];
        let n = sk.read(&mut msg).unwrap();
        assert_eq!(&msg[..n], b"HELLO");
    }
}

#[test]
fn zero_length_frames_echo_as_zero_length_frames() {
    let server = start(loopback_config(), Echo);
    let mut s = connect(server.addr());
    s.write_all(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(read_frame(&mut s).unwrap(), b"");
    assert_eq!(read_frame(&mut s).unwrap(), b"");
}

#[test]
fn library_client_round_trips_and_reports_the_counters() {
    let server = start(loopback_config(), Echo);
    let mut client = frameloop::Client::connect(server.addr()).unwrap();
    assert_eq!(client.request(b"ping").unwrap(), b"ping");
    drop(client);
    assert!(wait_until(Duration::from_secs(5), || server
        .handle()
        .stats()
        .active
        == 0));
    let stats = server.stop().unwrap();
    assert_eq!((stats.accepted, stats.frames), (1, 1));
    assert_eq!(stats.bytes_in, 8);
    assert_eq!(stats.bytes_out, 8);
}

#[test]
fn serves_ipv6_loopback_too() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine; skipped");
        return;
    }
    let config = Config {
        addr: "[::1]:0".parse().unwrap(),
        ..Config::default()
    };
    let server = start(config, Echo);
    assert!(server.addr().is_ipv6());
    assert_eq!(echo(&mut connect(server.addr()), b"v6"), b"v6");
}

#[test]
fn a_burst_of_a_thousand_connects_is_queued_by_the_kernel_not_dropped() {
    // Bound but not yet running: nothing accepts, so every connection must
    // wait in the listen backlog. With a short backlog the kernel drops the
    // SYNs past it and each of those clients stalls for a 1 s retransmit.
    let server = frameloop::Server::bind(loopback_config(), Echo).unwrap();
    let addr = server.local_addr();
    let waiting: Vec<_> = (0..1000)
        .map(|i| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                .unwrap_or_else(|e| panic!("connect {i} waited: {e}"))
        })
        .collect();
    let running = std::thread::spawn(move || server.run());
    let mut last = waiting.into_iter().last().unwrap();
    last.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    assert_eq!(echo(&mut last, b"served"), b"served");
    drop(last);
    drop(running); // the loop thread ends with the test process
}

/// Replies twice: once with `send`, once by sending to its own id through
/// the loop's context, as a helper taking `&mut LoopCtx` would.
struct TwoWays;

impl frameloop::Handler for TwoWays {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut frameloop::Ctx<'_, Self>, payload: &[u8]) {
        ctx.send(b"first");
        let me = ctx.id();
        let lp: &mut frameloop::LoopCtx<'_, Self> = ctx;
        lp.send_to(me, payload);
    }
}

#[test]
fn sending_to_ones_own_id_through_the_loop_context_is_a_reply_in_order() {
    let server = start(loopback_config(), TwoWays);
    let mut s = connect(server.addr());
    let mut wire = frame(b"second");
    wire.extend(frame(b"fourth"));
    s.write_all(&wire).unwrap();
    for want in [&b"first"[..], b"second", b"first", b"fourth"] {
        assert_eq!(read_frame(&mut s).unwrap(), want);
    }
}

/// "kick" closes the first connection (gracefully: it gets its goodbye).
#[derive(Default)]
struct Kick {
    first: Option<frameloop::ConnId>,
}

impl frameloop::Handler for Kick {
    type Conn = ();
    fn on_open(&mut self, ctx: &mut frameloop::Ctx<'_, Self>) {
        self.first.get_or_insert(ctx.id());
    }
    fn on_frame(&mut self, ctx: &mut frameloop::Ctx<'_, Self>, payload: &[u8]) {
        match (payload, self.first) {
            (b"kick", Some(first)) => {
                ctx.send_to(first, b"you are kicked");
                let kicked = ctx.close_conn(first);
                ctx.send(if kicked { b"kicked" } else { b"gone" });
            }
            _ => ctx.send(payload),
        }
    }
}

#[test]
fn a_handler_closes_another_connection_after_what_was_sent_to_it() {
    let server = start(loopback_config(), Kick::default());
    let mut first = connect(server.addr());
    assert_eq!(echo(&mut first, b"here"), b"here");
    let mut kicker = connect(server.addr());
    assert_eq!(echo(&mut kicker, b"kick"), b"kicked");
    assert_eq!(read_frame(&mut first).unwrap(), b"you are kicked");
    assert!(closed_by_server(&mut first));
    assert_eq!(echo(&mut kicker, b"kick"), b"gone");
    assert_eq!(server.stop().unwrap().closed(CloseReason::Handler), 1);
}
