//! HMAC-SHA256 challenge-response, end to end over TCP.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::*;
use frameloop::{Client, CloseReason, Config, Echo, Key, auth};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-shared";

fn key() -> Key {
    Key::new(KEY.to_vec()).unwrap()
}

fn auth_config() -> Config {
    Config {
        key: Some(key()),
        handshake_timeout: Duration::from_millis(500),
        ..loopback_config()
    }
}

fn challenge(s: &mut std::net::TcpStream) -> [u8; 32] {
    let mut c = [0u8; 32];
    s.read_exact(&mut c).unwrap();
    c
}

#[test]
fn right_key_authenticates_and_echoes() {
    let server = start(auth_config(), Echo);
    let mut client = Client::connect_with_key(server.addr(), &key()).unwrap();
    assert_eq!(client.request(b"hello").unwrap(), b"hello");
    assert_eq!(client.request(b"again").unwrap(), b"again");
}

#[test]
fn wrong_key_gets_no_echo_and_a_closed_connection() {
    let server = start(auth_config(), Echo);
    let mut s = connect(server.addr());
    let c = challenge(&mut s);
    let mut wire = auth::answer(b"not-the-key-not-the-key-not-the-key", &c).to_vec();
    wire.extend(frame(b"let me in"));
    s.write_all(&wire).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "not one byte after a wrong answer");
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::AuthFailed), 1);
    assert_eq!(stats.frames, 0);
}

#[test]
fn library_client_with_wrong_key_says_so_in_one_line() {
    let server = start(auth_config(), Echo);
    let mut client = Client::connect_with_key(
        server.addr(),
        &Key::new(b"wrong-wrong-wrong-wrong-wrong-wrong".to_vec()).unwrap(),
    )
    .unwrap();
    let err = client.request(b"hi").unwrap_err();
    assert!(
        err.to_string()
            .contains("during authentication: wrong key?"),
        "{err}"
    );
}

#[test]
fn a_31_byte_answer_then_close_never_reaches_the_handler() {
    let server = start(auth_config(), Echo);
    let mut s = connect(server.addr());
    let c = challenge(&mut s);
    s.write_all(&auth::answer(KEY, &c)[..31]).unwrap();
    drop(s);
    assert!(wait_until(Duration::from_secs(5), || server
        .handle()
        .stats()
        .active
        == 0));
    let stats = server.stop().unwrap();
    assert_eq!(stats.frames, 0);
    assert_eq!(stats.closed(CloseReason::Eof), 1);
}

#[test]
fn an_answer_sent_one_byte_at_a_time_within_the_timeout_succeeds() {
    let server = start(auth_config(), Echo);
    let mut s = connect(server.addr());
    let c = challenge(&mut s);
    for b in auth::answer(KEY, &c) {
        s.write_all(&[b]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(echo(&mut s, b"slow but right"), b"slow but right");
}

#[test]
fn silence_is_closed_after_the_handshake_timeout() {
    let server = start(auth_config(), Echo);
    // Timed from before the connect: the server's 500 ms start at accept.
    let start = Instant::now();
    let mut s = connect(server.addr());
    let _ = challenge(&mut s);
    assert!(closed_by_server(&mut s));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(490),
        "closed too early: {waited:?}"
    );
    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::HandshakeTimeout), 1);
}

#[test]
fn answer_and_three_frames_in_one_write_give_three_echoes() {
    let server = start(auth_config(), Echo);
    let mut s = connect(server.addr());
    let c = challenge(&mut s);
    let mut wire = auth::answer(KEY, &c).to_vec();
    for p in [&b"one"[..], b"two", b"three"] {
        wire.extend(frame(p));
    }
    s.write_all(&wire).unwrap();
    for p in [&b"one"[..], b"two", b"three"] {
        assert_eq!(read_frame(&mut s).unwrap(), p);
    }
}

#[test]
fn replaying_a_recorded_answer_on_a_new_connection_is_refused() {
    let server = start(auth_config(), Echo);
    let mut first = connect(server.addr());
    let recorded = auth::answer(KEY, &challenge(&mut first));
    first.write_all(&recorded).unwrap();
    assert_eq!(echo(&mut first, b"legit"), b"legit");

    let mut replay = connect(server.addr());
    let _ = challenge(&mut replay);
    replay.write_all(&recorded).unwrap();
    replay.write_all(&frame(b"replayed")).unwrap();
    assert!(closed_by_server(&mut replay));
    assert_eq!(server.stop().unwrap().closed(CloseReason::AuthFailed), 1);
}

#[test]
fn challenges_differ_across_a_thousand_connections() {
    let server = start(auth_config(), Echo);
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        let mut s = connect(server.addr());
        assert!(seen.insert(challenge(&mut s)), "a challenge repeated");
    }
}

#[test]
fn an_unauthenticated_flood_of_500_does_not_slow_authenticated_clients() {
    let config = Config {
        handshake_timeout: Duration::from_secs(30),
        ..auth_config()
    };
    let server = start(config, Echo);
    let mut client = Client::connect_with_key(server.addr(), &key()).unwrap();
    let time_100 = |client: &mut Client| {
        let start = Instant::now();
        for i in 0..100u32 {
            let p = tagged(i, 64);
            assert_eq!(client.request(&p).unwrap(), p);
        }
        start.elapsed()
    };
    let quiet = time_100(&mut client);
    // 500 connections that read their challenge and then sit, or send junk.
    let mut flood: Vec<_> = (0..500).map(|_| connect(server.addr())).collect();
    for (i, s) in flood.iter_mut().enumerate() {
        let _ = challenge(s);
        if i % 2 == 0 {
            s.write_all(&[0xAA; 20]).unwrap(); // part of a (wrong) answer
        }
    }
    let flooded = time_100(&mut client);
    assert!(
        flooded < quiet * 10 + Duration::from_millis(200),
        "100 echoes took {flooded:?} under the flood, {quiet:?} without"
    );
    assert_eq!(server.handle().stats().frames, 200);
}

#[test]
fn nothing_from_an_unauthenticated_connection_reaches_the_handler() {
    let server = start(auth_config(), Echo);
    let mut s = connect(server.addr());
    // Frames instead of an answer: they are read as (wrong) answer bytes.
    s.write_all(&frame(&[7u8; 60])).unwrap();
    assert!(closed_by_server(&mut s));
    let stats = server.stop().unwrap();
    assert_eq!(stats.frames, 0);
    assert_eq!(stats.closed(CloseReason::AuthFailed), 1);
}
