//! The chat handler: every frame to every other connection, in order, once.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use frameloop::{Chat, CloseReason, Config};

fn join(addr: std::net::SocketAddr) -> (TcpStream, String) {
    let mut s = connect(addr);
    let hello = String::from_utf8(read_frame(&mut s).unwrap()).unwrap();
    let me = hello.strip_prefix("* you are ").unwrap().to_string();
    (s, me)
}

fn next(s: &mut TcpStream) -> String {
    String::from_utf8(read_frame(s).unwrap()).unwrap()
}

#[test]
fn three_clients_see_each_others_messages_in_order() {
    let server = start(loopback_config(), Chat::new());
    let (mut a, id_a) = join(server.addr());
    let (mut b, id_b) = join(server.addr());
    assert_eq!(next(&mut a), format!("* {id_b} joined"));
    let (mut c, id_c) = join(server.addr());
    assert_eq!(next(&mut a), format!("* {id_c} joined"));
    assert_eq!(next(&mut b), format!("* {id_c} joined"));

    for i in 0..5 {
        a.write_all(&frame(format!("a{i}").as_bytes())).unwrap();
    }
    b.write_all(&frame(b"from b")).unwrap();
    for i in 0..5 {
        assert_eq!(next(&mut b), format!("{id_a}: a{i}"));
        assert_eq!(next(&mut c), format!("{id_a}: a{i}"));
    }
    assert_eq!(next(&mut c), format!("{id_b}: from b"));
    assert_eq!(next(&mut a), format!("{id_b}: from b"));

    drop(c);
    assert_eq!(next(&mut a), format!("* {id_c} left"));
    assert_eq!(next(&mut b), format!("* {id_c} left"));
}

#[test]
fn a_reader_that_cannot_keep_up_is_cut_off_while_the_others_chat_on() {
    let config = Config {
        max_output: 256 * 1024,
        ..loopback_config()
    };
    let server = start(config, Chat::new());
    let (mut stalled, _) = join(server.addr()); // never reads again
    let (mut talker, _) = join(server.addr());
    let (mut listener, _) = join(server.addr());
    assert!(next(&mut talker).ends_with(" joined"));

    let line = vec![b'm'; 16 * 1024];
    for _ in 0..300 {
        // ~4.8 MiB towards the stalled reader: far past its buffers and the cap.
        talker.write_all(&frame(&line)).unwrap();
        let mut got = read_frame(&mut listener).unwrap();
        if got.ends_with(b" left") {
            got = read_frame(&mut listener).unwrap(); // the stalled one, cut off
        }
        assert!(got.ends_with(&line));
    }
    assert!(wait_until(Duration::from_secs(5), || {
        server.handle().stats().closed(CloseReason::OutputCap) == 1
    }));
    assert!(closed_by_server(&mut stalled));
    talker.write_all(&frame(b"still here")).unwrap();
    loop {
        let got = next(&mut listener);
        if got.ends_with("still here") {
            break;
        }
        assert!(
            got.contains(" left") || got.ends_with(&"m".repeat(16)),
            "{got:.40}"
        );
    }
}

#[test]
fn two_hundred_clients_times_fifty_messages_delivered_exactly_once_each() {
    const CLIENTS: usize = 200;
    const MESSAGES: usize = 50;
    let server = start(loopback_config(), Chat::new());
    let addr = server.addr();
    let mut members: Vec<(TcpStream, String)> = (0..CLIENTS).map(|_| join(addr)).collect();
    // Everyone waits until the last member joined, so all see all messages.
    let last = members.last().unwrap().1.clone();
    for (s, me) in members.iter_mut() {
        if *me != last {
            while next(s) != format!("* {last} joined") {}
        }
    }
    let ids: Vec<String> = members.iter().map(|(_, me)| me.clone()).collect();
    let readers: Vec<_> = members
        .into_iter()
        .map(|(mut s, me)| {
            let ids = ids.clone();
            let mut w = s.try_clone().unwrap();
            let writer = std::thread::spawn(move || {
                for m in 0..MESSAGES {
                    w.write_all(&frame(format!("m{m}").as_bytes())).unwrap();
                }
            });
            std::thread::spawn(move || {
                // Per sender, the next message number expected.
                let mut expected: std::collections::HashMap<String, usize> = ids
                    .iter()
                    .filter(|id| **id != me)
                    .map(|id| (id.clone(), 0))
                    .collect();
                let mut remaining = (CLIENTS - 1) * MESSAGES;
                while remaining > 0 {
                    let line = next(&mut s);
                    let (from, text) = line.split_once(": ").expect("a message");
                    let n = expected.get_mut(from).expect("a known sender");
                    assert_eq!(text, format!("m{n}"), "from {from}, in order");
                    *n += 1;
                    remaining -= 1;
                }
                writer.join().unwrap();
                assert!(expected.values().all(|n| *n == MESSAGES));
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    let stats = server.handle().stats();
    assert_eq!(stats.frames, (CLIENTS * MESSAGES) as u64);
    assert_eq!(stats.closed(CloseReason::OutputCap), 0);
}
