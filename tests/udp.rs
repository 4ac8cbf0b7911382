//! UDP datagrams served by the same loop as TCP.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use frameloop::{Config, Echo, Upper};

fn udp_socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

#[test]
fn datagrams_echo_on_the_same_port_as_tcp() {
    let server = start(
        Config {
            udp: true,
            ..loopback_config()
        },
        Echo,
    );
    let sk = udp_socket();
    sk.send_to(b"hello", server.addr()).unwrap();
    let mut buf = [0u8; 1024];
    let (n, from) = sk.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"hello"[..], server.addr()));
    // TCP on the same port still works.
    assert_eq!(echo(&mut connect(server.addr()), b"tcp"), b"tcp");
    assert_eq!(server.stop().unwrap().datagrams, 1);
}

#[test]
fn upper_handler_upper_cases_datagrams() {
    let server = start(
        Config {
            udp: true,
            ..loopback_config()
        },
        Upper,
    );
    let sk = udp_socket();
    sk.send_to(b"hello, udp", server.addr()).unwrap();
    let mut buf = [0u8; 1024];
    let n = sk.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"HELLO, UDP");
}

#[test]
fn a_65507_byte_datagram_round_trips_whole() {
    let server = start(
        Config {
            udp: true,
            ..loopback_config()
        },
        Echo,
    );
    let sk = udp_socket();
    let big = tagged(5, 65_507);
    sk.send_to(&big, server.addr()).unwrap();
    let mut buf = vec![0u8; 70_000];
    let n = sk.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &big[..]);
}

#[test]
fn many_datagrams_from_many_senders_each_answered_to_its_sender() {
    let server = start(
        Config {
            udp: true,
            ..loopback_config()
        },
        Echo,
    );
    let senders: Vec<UdpSocket> = (0..20).map(|_| udp_socket()).collect();
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
fn frameloop_client_udp_prints_the_reply() {
    let server = start(
        Config {
            udp: true,
            ..loopback_config()
        },
        Upper,
    );
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
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO\nAGAIN\n");
}
