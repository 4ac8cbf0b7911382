//! The chat handler: every frame to every other member, in order, exactly
//! once; a member too slow to read is cut off, and the others chat on.
//!
//! The wire format these tests read is the one `src/chat.rs` documents:
//! `* you are 7`, `* 7 joined`, `7: <payload>`, `* 7 left`.

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use crate::common::*;
use frameloop::{Chat, CloseReason, Config};

/// Connects, reads the greeting and returns the stream and its member id.
fn join(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = connect(addr);
    let hello = next(&mut s);
    let me = hello
        .strip_prefix("* you are ")
        .unwrap_or_else(|| panic!("a greeting, not {hello:?}"))
        .to_string();
    (s, me)
}

/// The next frame, as text.
fn next(s: &mut TcpStream) -> String {
    String::from_utf8(read_frame(s).unwrap()).unwrap()
}

fn say(s: &mut TcpStream, text: &str) {
    s.write_all(&frame(text.as_bytes())).unwrap();
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
        say(&mut a, &format!("a{i}"));
    }
    for i in 0..5 {
        assert_eq!(next(&mut b), format!("{id_a}: a{i}"));
    }
    // b answers only after it saw all of a's messages, so the server handled
    // a's five first: c must see them first too, in the order a sent them.
    say(&mut b, "from b");
    for i in 0..5 {
        assert_eq!(next(&mut c), format!("{id_a}: a{i}"));
    }
    assert_eq!(next(&mut c), format!("{id_b}: from b"));
    say(&mut c, "from c");
    assert_eq!(next(&mut a), format!("{id_b}: from b"));
    assert_eq!(next(&mut a), format!("{id_c}: from c"));
    assert_eq!(next(&mut b), format!("{id_c}: from c"));

    // Nobody got its own messages back: the next thing each hears is c leaving.
    drop(c);
    assert_eq!(next(&mut a), format!("* {id_c} left"));
    assert_eq!(next(&mut b), format!("* {id_c} left"));
    assert_eq!(server.stop().unwrap().frames, 7);
}

#[test]
fn a_slow_reader_is_cut_off_while_the_others_keep_chatting() {
    const MAX_OUTPUT: usize = 64 * 1024;
    // Enough to fill any kernel's socket buffers many times over; the cap
    // must trip long before this, or the test fails instead of looping on.
    const BUDGET: usize = 256 * 1024 * 1024;
    let config = Config {
        max_output: MAX_OUTPUT,
        ..loopback_config()
    };
    let server = start(config, Chat::new());
    let (mut stalled, id_stalled) = join(server.addr()); // never reads again
    let (mut talker, _) = join(server.addr());
    let (mut listener, id_listener) = join(server.addr());
    assert!(next(&mut talker).ends_with(" joined"));

    // The talker sends, the listener keeps up, the stalled member reads
    // nothing. Each message also goes to the stalled member: first into the
    // kernel's buffers, then, once they are full, into the server's queue for
    // it, until that passes MAX_OUTPUT and the server cuts it off.
    let line = "m".repeat(16 * 1024);
    let mut sent = 0;
    let mut left_seen = false;
    let started = Instant::now();
    while server.handle().stats().closed(CloseReason::OutputCap) == 0 {
        assert!(
            sent < BUDGET,
            "{sent} bytes broadcast and the stalled reader is still connected"
        );
        say(&mut talker, &line);
        sent += line.len();
        let mut got = next(&mut listener);
        if got == format!("* {id_stalled} left") {
            left_seen = true;
            got = next(&mut listener);
        }
        assert!(got.ends_with(&line), "{got:.40}");
    }
    let cut_after = started.elapsed();
    assert!(
        closed_by_server(&mut stalled),
        "the stalled reader is closed"
    );

    // The rest of the room carries on, both ways.
    say(&mut talker, "still here");
    loop {
        let got = next(&mut listener);
        if got == format!("* {id_stalled} left") {
            assert!(!left_seen, "its leaving is announced once");
            left_seen = true;
        } else if got.ends_with("still here") {
            break;
        } else {
            assert!(got.ends_with(&line), "{got:.40}");
        }
    }
    assert!(left_seen);
    say(&mut listener, "me too");
    assert_eq!(next(&mut talker), format!("* {id_stalled} left"));
    assert_eq!(next(&mut talker), format!("{id_listener}: me too"));

    let stats = server.stop().unwrap();
    assert_eq!(stats.closed(CloseReason::OutputCap), 1);
    eprintln!("cut off after {sent} bytes broadcast, in {cut_after:?}");
}

#[test]
fn two_hundred_clients_times_fifty_messages_delivered_exactly_once_each() {
    const CLIENTS: usize = 200;
    const MESSAGES: usize = 50;
    let server = start(loopback_config(), Chat::new());
    everyone_hears_everyone(server.addr(), CLIENTS, MESSAGES);
    let stats = server.stop().unwrap();
    assert_eq!(stats.frames, (CLIENTS * MESSAGES + 2) as u64);
    assert_eq!(stats.closed(CloseReason::OutputCap), 0);
}

/// `clients` members join; each says `messages` lines while all listen; every
/// member must hear every other member's lines exactly once, in order.
pub fn everyone_hears_everyone(addr: SocketAddr, clients: usize, messages: usize) {
    let mut members: Vec<(TcpStream, String)> = (0..clients).map(|_| join(addr)).collect();
    // Each member waits until it heard everyone after it join, so that every
    // member is in the room before anyone speaks. In any order, and perhaps
    // with some who joined before it: across reactors a join travels through
    // mailboxes, and one announced by the member's own reactor can overtake
    // it (the chat orders each speaker's lines, not the room's news).
    let ids: Vec<String> = members.iter().map(|(_, me)| me.clone()).collect();
    for (k, (s, _)) in members.iter_mut().enumerate() {
        let mut awaited: std::collections::HashSet<String> = ids[k + 1..]
            .iter()
            .map(|id| format!("* {id} joined"))
            .collect();
        while !awaited.is_empty() {
            let line = next(s);
            assert!(line.ends_with(" joined"), "before anyone spoke: {line}");
            awaited.remove(&line);
        }
    }

    // Everyone talks and listens at once: one writer and one reader thread
    // per member, each reader checking every other member's messages arrive
    // in the order sent.
    let readers: Vec<_> = members
        .into_iter()
        .map(|(mut s, me)| {
            let mut next_from: HashMap<String, usize> = ids
                .iter()
                .filter(|id| **id != me)
                .map(|id| (id.clone(), 0))
                .collect();
            let mut w = s.try_clone().unwrap();
            w.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
            let writer = std::thread::spawn(move || {
                for m in 0..messages {
                    say(&mut w, &format!("m{m}"));
                }
            });
            std::thread::spawn(move || {
                let mut heard = 0;
                while heard < (clients - 1) * messages {
                    let line = next(&mut s);
                    if line.starts_with("* ") && line.ends_with(" joined") {
                        // Across reactors, news of one who joined before this
                        // member may reach it late (through a mailbox).
                        continue;
                    }
                    heard += 1;
                    let (from, text) = line
                        .split_once(": ")
                        .unwrap_or_else(|| panic!("a message, not {line:?}, to {me}"));
                    let n = next_from.get_mut(from).expect("from another member");
                    assert_eq!(text, format!("m{n}"), "from {from}, to {me}");
                    *n += 1;
                }
                writer.join().unwrap();
                assert!(next_from.values().all(|n| *n == messages));
                (s, me)
            })
        })
        .collect();
    let mut members: Vec<(TcpStream, String)> =
        readers.into_iter().map(|r| r.join().unwrap()).collect();

    // Every member got all 9,950 it expected. A duplicate would have been
    // queued before any later message, so if each member's next frame is a
    // marker sent now, nobody got anything twice.
    // (Late news of a join, as above, is not a message.)
    let next_said = |s: &mut TcpStream| loop {
        let line = next(s);
        if !(line.starts_with("* ") && line.ends_with(" joined")) {
            break line;
        }
    };
    let (first, rest) = members.split_at_mut(1);
    let (s0, id0) = &mut first[0];
    say(s0, "end");
    for (s, _) in rest.iter_mut() {
        assert_eq!(next_said(s), format!("{id0}: end"));
    }
    let (s1, id1) = &mut rest[0];
    say(s1, "end");
    assert_eq!(next_said(s0), format!("{id1}: end"));
}

#[test]
fn a_reader_that_keeps_up_is_not_cut_off_by_one_burst_of_small_frames() {
    // 4,000 empty frames arrive in one read: 16,000 bytes in, 28,000 out to
    // the listener ("N: " plus a header each). The listener has read all it
    // was sent and its kernel buffers are empty; only a cap that counts bytes
    // the server never tried to write can call it slow.
    let config = Config {
        max_output: 16 * 1024,
        ..loopback_config()
    };
    let server = start(config, Chat::new());
    let (mut talker, id_talker) = join(server.addr());
    let (mut listener, _) = join(server.addr());
    assert!(next(&mut talker).ends_with(" joined"));
    let burst: Vec<u8> = (0..4000).flat_map(|_| frame(b"")).collect();
    talker.write_all(&burst).unwrap();
    for i in 0..4000 {
        let got = read_frame(&mut listener)
            .unwrap_or_else(|e| panic!("frame {i}: {e}; {}", server.handle().stats()));
        assert_eq!(got, format!("{id_talker}: ").as_bytes());
    }
    assert_eq!(server.stop().unwrap().closed(CloseReason::OutputCap), 0);
}

#[test]
fn under_a_blast_readers_that_keep_reading_lose_nothing_and_a_never_reader_is_cut_off() {
    // Ten senders pipeline as fast as they can; three readers parse frame by
    // frame (two syscalls each, slower than the blast); one member never
    // reads. Senders must feel their receivers: the readers lose nothing,
    // and only the never-reader is cut off.
    const SENDERS: usize = 10;
    const MESSAGES: usize = 10_000;
    // The default slow-reader timeout (2 s): a reader that keeps reading
    // but whose thread a loaded machine leaves unscheduled for a moment is
    // still a reader that keeps reading.
    let server = start(loopback_config(), Chat::new());
    let addr = server.addr();
    let (_never_reads, id_never) = join(addr);
    let mut readers: Vec<(TcpStream, String)> = (0..3).map(|_| join(addr)).collect();
    let mut senders: Vec<(TcpStream, String)> = (0..SENDERS).map(|_| join(addr)).collect();
    let last = senders.last().unwrap().1.clone();
    for (s, me) in readers.iter_mut().chain(senders.iter_mut()) {
        if *me != last {
            while next(s) != format!("* {last} joined") {}
        }
    }
    let sender_ids: Vec<String> = senders.iter().map(|(_, id)| id.clone()).collect();
    let filler = "x".repeat(100);
    let blasts: Vec<_> = senders
        .into_iter()
        .map(|(s, _)| {
            let mut w = s.try_clone().unwrap();
            let filler = filler.clone();
            // Senders are members too: they read (and discard) what others say.
            let mut drain = s;
            let drainer = std::thread::spawn(move || {
                let _ = std::io::copy(&mut drain, &mut std::io::sink());
            });
            let writer = std::thread::spawn(move || {
                let mut batch = Vec::new();
                for m in 0..MESSAGES {
                    batch.extend(frame(format!("{m} {filler}").as_bytes()));
                    if batch.len() > 32 * 1024 {
                        w.write_all(&batch).unwrap();
                        batch.clear();
                    }
                }
                w.write_all(&batch).unwrap();
                w
            });
            (writer, drainer)
        })
        .collect();
    let checks: Vec<_> = readers
        .into_iter()
        .map(|(mut s, me)| {
            let ids = sender_ids.clone();
            let filler = filler.clone();
            let never = id_never.clone();
            std::thread::spawn(move || {
                let mut next_from: HashMap<String, usize> =
                    ids.iter().map(|id| (id.clone(), 0)).collect();
                let mut left = 0;
                while next_from.values().any(|n| *n < MESSAGES) {
                    let line = next(&mut s);
                    if line.starts_with("* ") {
                        assert_eq!(line, format!("* {never} left"), "to {me}");
                        left += 1;
                        continue;
                    }
                    let (from, text) = line.split_once(": ").expect("a message");
                    let Some(n) = next_from.get_mut(from) else {
                        continue; // another reader: readers say nothing here
                    };
                    assert_eq!(text, format!("{n} {filler}"), "from {from}, to {me}");
                    *n += 1;
                }
                left
            })
        })
        .collect();
    for check in checks {
        assert!(check.join().unwrap() <= 1, "a leaving is announced once");
    }
    let stats = server.handle().stats();
    assert_eq!(stats.closed(CloseReason::SlowReader), 1, "{stats}");
    assert_eq!(stats.closed(CloseReason::OutputCap), 0, "{stats}");
    for (writer, drainer) in blasts {
        let w = writer.join().unwrap();
        w.shutdown(std::net::Shutdown::Both).unwrap();
        drainer.join().unwrap();
    }
}
