//! UDP datagrams served by the same loop, on the same address and port, as TCP.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::common::*;
use frameloop::config::MAX_DATAGRAM;
use frameloop::{Config, Echo, Handler, RunningServer, Upper};

/// A client socket on the same loopback as `server`, with a read timeout.
fn udp_socket(server: SocketAddr) -> UdpSocket {
    let local = match server {
        SocketAddr::V4(_) => "127.0.0.1:0",
        SocketAddr::V6(_) => "[::1]:0",
    };
    let s = UdpSocket::bind(local).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn start_udp<H: Handler + Send>(handler: H) -> RunningServer
where
    H::Conn: Send,
{
    let config = Config {
        udp: true,
        ..loopback_config()
    };
    start(config, handler)
}

#[test]
fn datagrams_echo_on_the_same_port_as_tcp() {
    let server = start_udp(Echo);
    let sk = udp_socket(server.addr());
    sk.send_to(b"hello", server.addr()).unwrap();
    let mut buf = [0u8; 1024];
    let (n, from) = sk.recv_from(&mut buf).unwrap();
    // The reply comes from the very address the TCP listener has.
    assert_eq!((&buf[..n], from), (&b"hello"[..], server.addr()));
    assert_eq!(echo(&mut connect(server.addr()), b"tcp"), b"tcp");
    let stats = server.stop().unwrap();
    assert_eq!((stats.datagrams, stats.frames), (1, 1));
}

#[test]
fn upper_handler_upper_cases_datagrams() {
    let server = start_udp(Upper);
    let sk = udp_socket(server.addr());
    sk.send_to(b"hello, udp 123", server.addr()).unwrap();
    let mut buf = [0u8; 1024];
    let n = sk.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"HELLO, UDP 123");
}

#[test]
fn a_65507_byte_datagram_round_trips_whole() {
    assert_eq!(MAX_DATAGRAM, 65_507);
    let server = start_udp(Echo);
    let sk = udp_socket(server.addr());
    let big = tagged(5, MAX_DATAGRAM);
    sk.send_to(&big, server.addr()).unwrap();
    // A bigger buffer than the datagram: a truncated reply would show as short.
    let mut buf = vec![0u8; 70_000];
    let n = sk.recv(&mut buf).unwrap();
    assert_eq!(n, MAX_DATAGRAM);
    assert_eq!(&buf[..n], &big[..]);
}

#[test]
fn an_empty_datagram_is_echoed_as_an_empty_datagram_like_an_empty_frame() {
    let server = start_udp(Echo);
    let sk = udp_socket(server.addr());
    sk.send_to(b"", server.addr()).unwrap();
    sk.send_to(b"after", server.addr()).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(sk.recv(&mut buf).unwrap(), 0, "an empty reply first");
    let n = sk.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
    let stats = server.stop().unwrap();
    assert_eq!((stats.datagrams, stats.datagrams_dropped), (2, 0));
}

#[test]
fn a_burst_sent_before_any_reply_is_read_is_answered_in_full() {
    // Many datagrams wait behind one readiness event; the loop must read
    // until WouldBlock, or the rest would sit there until the next datagram.
    let server = start_udp(Echo);
    let sk = udp_socket(server.addr());
    // Bursts of 50 small datagrams fit the kernel's socket buffers, so none
    // is lost on the way and each must be answered.
    for burst in 0..10u32 {
        for i in 0..50 {
            sk.send_to(&tagged(burst * 50 + i, 100), server.addr())
                .unwrap();
        }
        let mut buf = [0u8; 200];
        for i in 0..50 {
            let n = sk.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &tagged(burst * 50 + i, 100)[..], "burst {burst}");
        }
    }
    let stats = server.stop().unwrap();
    assert_eq!((stats.datagrams, stats.datagrams_dropped), (500, 0));
}

#[test]
fn many_datagrams_from_many_senders_each_answered_to_its_sender() {
    let server = start_udp(Echo);
    let senders: Vec<UdpSocket> = (0..20).map(|_| udp_socket(server.addr())).collect();
    for round in 0..25u32 {
        for (i, s) in senders.iter().enumerate() {
            s.send_to(&tagged(i as u32 * 100 + round, 100), server.addr())
                .unwrap();
        }
        for (i, s) in senders.iter().enumerate() {
            let mut buf = [0u8; 200];
            let n = s.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &tagged(i as u32 * 100 + round, 100)[..]);
        }
    }
    let stats = server.stop().unwrap();
    assert_eq!((stats.datagrams, stats.datagrams_dropped), (500, 0));
}

#[test]
fn datagrams_and_frames_interleave_without_stalling_each_other() {
    let server = start_udp(Upper);
    let sk = udp_socket(server.addr());
    let mut tcp = connect(server.addr());
    let mut buf = [0u8; 64];
    for i in 0..100 {
        let text = format!("turn {i}");
        sk.send_to(text.as_bytes(), server.addr()).unwrap();
        assert_eq!(
            echo(&mut tcp, text.as_bytes()),
            text.to_uppercase().as_bytes()
        );
        let n = sk.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], text.to_uppercase().as_bytes());
    }
}

#[test]
fn serves_datagrams_on_ipv6_loopback_too() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine; skipped");
        return;
    }
    let server = start(
        Config {
            addr: "[::1]:0".parse().unwrap(),
            udp: true,
            ..Config::default()
        },
        Upper,
    );
    let sk = udp_socket(server.addr());
    sk.send_to(b"v6", server.addr()).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = sk.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"V6"[..], server.addr()));
}

#[test]
fn frameloop_client_udp_prints_each_reply() {
    let server = start_udp(Upper);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frameloop"))
        .args([
            "client",
            "--udp",
            "--addr",
            &server.addr().to_string(),
            "hello",
            "again",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO\nAGAIN\n");
    assert_eq!(server.stop().unwrap().datagrams, 2);
}

#[test]
fn frameloop_serve_udp_answers_on_its_tcp_port() {
    let (serve, addr, _log) = serve_process(&[], &["--udp", "--handler", "upper"]);
    let _serve = serve; // killed on drop
    let sk = udp_socket(addr);
    sk.send_to(b"cli", addr).unwrap();
    let mut buf = [0u8; 64];
    let n = sk.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"CLI");
    assert_eq!(echo(&mut connect(addr), b"tcp"), b"TCP");
}

/// Relays each datagram to the first TCP connection, and answers the
/// datagram with "relayed".
#[derive(Default)]
struct DatagramToTcp {
    first: Option<frameloop::ConnId>,
}

impl Handler for DatagramToTcp {
    type Conn = ();
    fn on_open(&mut self, ctx: &mut frameloop::Ctx<'_, Self>) {
        self.first.get_or_insert(ctx.id());
    }
    fn on_frame(&mut self, ctx: &mut frameloop::Ctx<'_, Self>, payload: &[u8]) {
        ctx.send(payload);
    }
    fn on_datagram(&mut self, ctx: &mut frameloop::DatagramCtx<'_, Self>, payload: &[u8]) {
        if let Some(first) = self.first {
            ctx.send_to(first, payload);
        }
        ctx.reply(b"relayed");
    }
}

#[test]
fn a_datagram_hook_sending_to_a_connection_writes_its_frame_not_the_datagram_reply() {
    let server = start_udp(DatagramToTcp::default());
    let mut tcp = connect(server.addr());
    assert_eq!(echo(&mut tcp, b"here"), b"here");
    let sk = udp_socket(server.addr());
    for i in 0..20u32 {
        sk.send_to(&tagged(i, 40), server.addr()).unwrap();
    }
    let mut buf = [0u8; 64];
    for _ in 0..20 {
        let n = sk.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"relayed");
    }
    for i in 0..20u32 {
        assert_eq!(read_frame(&mut tcp).unwrap(), tagged(i, 40));
    }
}
