//! With a key set, datagrams authenticate too: each is sealed with a time, a
//! nonce and an HMAC-SHA256 tag, and the server drops (and counts) what is
//! forged, stale or replayed before the handler sees a byte.

use std::net::UdpSocket;
use std::time::Duration;

use crate::common::*;
use frameloop::auth::datagram::{self, REQUEST_LABEL};
use frameloop::client::UdpClient;
use frameloop::{Config, Key, RunningServer, Upper};

fn key(byte: u8) -> Key {
    Key::new(vec![byte; 32]).unwrap()
}

fn keyed_udp_server() -> RunningServer {
    start(
        Config {
            udp: true,
            key: Some(key(1)),
            ..loopback_config()
        },
        Upper,
    )
}

fn raw_socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// Whether a datagram comes back within the socket's timeout.
fn answered(s: &UdpSocket) -> bool {
    s.recv(&mut [0u8; 2048]).is_ok()
}

#[test]
fn sealed_datagrams_are_answered_sealed_and_empty_ones_too() {
    let server = keyed_udp_server();
    let client = UdpClient::connect(server.addr(), Some(key(1)), READ_TIMEOUT).unwrap();
    assert_eq!(client.request(b"hello").unwrap(), b"HELLO");
    assert_eq!(client.request(b"").unwrap(), b"");
    assert!(
        client.local_addr().unwrap().ip().is_unspecified(),
        "reaches any host"
    );
    let stats = server.stop().unwrap();
    assert_eq!((stats.datagrams, stats.datagrams_rejected()), (2, 0));
}

#[test]
fn a_wrong_key_and_no_key_get_no_reply_and_are_counted_as_forged() {
    let server = keyed_udp_server();
    let s = raw_socket();
    let (wrong, _) = datagram::seal_request(&key(2), b"let me in").unwrap();
    s.send_to(&wrong, server.addr()).unwrap();
    assert!(!answered(&s));
    s.send_to(b"no key at all", server.addr()).unwrap();
    assert!(!answered(&s));
    let stats = server.stop().unwrap();
    assert_eq!(stats.datagrams_forged, 2);
}

#[test]
fn a_replayed_datagram_is_answered_once() {
    let server = keyed_udp_server();
    let s = raw_socket();
    let (sealed, nonce) = datagram::seal_request(&key(1), b"once").unwrap();
    s.send_to(&sealed, server.addr()).unwrap();
    let mut buf = [0u8; 2048];
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let n = s.recv(&mut buf).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert_eq!(
        datagram::open_reply(&key(1), &buf[..n], &nonce).unwrap(),
        b"ONCE"
    );
    s.send_to(&sealed, server.addr()).unwrap(); // an eavesdropper's replay
    assert!(!answered(&s));
    assert_eq!(server.stop().unwrap().datagrams_replayed, 1);
}

#[test]
fn a_datagram_from_outside_the_time_window_is_dropped_as_stale() {
    let server = keyed_udp_server();
    let s = raw_socket();
    let mut old = Vec::new();
    let thirty_one_seconds_ago = datagram::unix_millis() - 31_000;
    datagram::seal(
        &key(1),
        REQUEST_LABEL,
        thirty_one_seconds_ago,
        &[5; 16],
        b"late",
        &mut old,
    );
    s.send_to(&old, server.addr()).unwrap();
    assert!(!answered(&s));
    assert_eq!(server.stop().unwrap().datagrams_stale, 1);
}

fn one_line_error(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn client_udp_with_a_key_against_a_keyless_server_and_the_reverse_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "k".repeat(40)).unwrap();
    let key_file = key_file.to_str().unwrap();

    let keyless = start(
        Config {
            udp: true,
            ..loopback_config()
        },
        frameloop::Echo,
    );
    let addr = keyless.addr().to_string();
    let out = frameloop(&[
        "client",
        "--udp",
        "--addr",
        &addr,
        "--key-file",
        key_file,
        "hi",
    ]);
    assert!(one_line_error(&out).contains("runs without --key-file"));

    let keyed = start(
        Config {
            udp: true,
            key: Some(Key::new(b"k".repeat(40)).unwrap()),
            ..loopback_config()
        },
        frameloop::Echo,
    );
    let addr = keyed.addr().to_string();
    let out = frameloop(&[
        "client",
        "--udp",
        "--addr",
        &addr,
        "--timeout",
        "300ms",
        "hi",
    ]);
    assert!(one_line_error(&out).contains("may require --key-file"));
    let out = frameloop(&[
        "client",
        "--udp",
        "--addr",
        &addr,
        "--key-file",
        key_file,
        "hi",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
}
