//! The examples run for real: each is started as its own process, found by
//! the `listening on ADDR` line it prints first, and spoken to over TCP.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

/// Starts example `name` (built on `frameloop::cli`) as `NAME BEFORE.. serve
/// --addr 127.0.0.1:0 ARGS..`.
fn serve_example(
    name: &str,
    before: &[&str],
    args: &[&str],
) -> (ServerProcess, SocketAddr, mpsc::Receiver<String>) {
    serve_binary(&example(name), &[], before, args)
}

#[test]
fn custom_handler_example_replies_with_each_frames_length_and_takes_every_serve_flag() {
    let (_example, addr, _log) = serve_example("custom_handler", &[], &["--max-frame", "70000"]);
    let mut s = connect(addr);
    assert_eq!(echo(&mut s, b"hello"), b"5");
    assert_eq!(echo(&mut s, b""), b"0");
    assert_eq!(echo(&mut s, &vec![b'x'; 70_000]), b"70000");
    // Three frames in one write: three replies, in order.
    let mut burst = frame(b"a");
    burst.extend(frame(b"bb"));
    burst.extend(frame(b"ccc"));
    s.write_all(&burst).unwrap();
    for want in [&b"1"[..], b"2", b"3"] {
        assert_eq!(read_frame(&mut s).unwrap(), want);
    }
    // --max-frame took effect: one byte more closes the connection.
    s.write_all(&frame(&vec![b'x'; 70_001])).unwrap();
    assert!(closed_by_server(&mut s));
}

#[test]
fn heartbeat_example_keeps_those_who_answer_and_closes_those_who_miss_two_pongs() {
    // 300 ms: the answering thread has that long to answer each ping, which
    // a loaded machine allows (at 100 ms it was once too late).
    let (_example, addr, _log) = serve_example("heartbeat", &["--every", "300ms"], &[]);
    let started = std::time::Instant::now();
    let mut silent = connect(addr);
    let mut lively = connect(addr);
    // The one that answers each ping stays, and is echoed meanwhile.
    let answering = std::thread::spawn(move || {
        for _ in 0..6 {
            assert_eq!(read_frame(&mut lively).unwrap(), b"ping");
            lively.write_all(&frame(b"pong")).unwrap();
        }
        assert_eq!(echo(&mut lively, b"still here"), b"still here");
    });
    assert_eq!(read_frame(&mut silent).unwrap(), b"ping");
    assert_eq!(read_frame(&mut silent).unwrap(), b"ping");
    assert_eq!(read_frame(&mut silent).unwrap(), b"bye: missed 2 pongs");
    assert!(closed_by_server(&mut silent));
    // Cut at its third tick, not before: 900 ms after it connected (less a
    // millisecond or two for the loop's millisecond clock).
    assert!(started.elapsed() >= Duration::from_millis(890));
    answering.join().unwrap();
}

#[test]
fn offload_example_keeps_the_loop_responsive_while_a_hundred_slow_jobs_run() {
    let (_example, addr, _log) = serve_example("offload", &[], &[]);
    let mut worker = connect(addr);
    let jobs: Vec<u8> = (0..100)
        .flat_map(|i| frame(format!("job 200 {i}").as_bytes()))
        .collect();
    worker.write_all(&jobs).unwrap();
    let results = std::thread::spawn(move || {
        let mut done = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let reply = String::from_utf8(read_frame(&mut worker).unwrap()).unwrap();
            done.insert(reply);
        }
        done
    });
    let mut round_trips = 0;
    let mut pinger = connect(addr);
    while !results.is_finished() {
        assert_eq!(echo(&mut pinger, b"ping"), b"ping");
        round_trips += 1;
    }
    let done = results.join().unwrap();
    assert_eq!(done.len(), 100);
    assert!(done.contains("done 99"));
    assert!(
        round_trips >= 100,
        "only {round_trips} round trips while the jobs ran"
    );
}

#[test]
fn offload_example_drops_a_result_whose_client_left_and_never_gives_it_to_a_newcomer() {
    let (_example, addr, _log) = serve_example("offload", &[], &[]);
    let mut leaver = connect(addr);
    leaver.write_all(&frame(b"job 300 for-the-leaver")).unwrap();
    assert_eq!(echo(&mut leaver, b"sync"), b"sync"); // the job is running
    drop(leaver);
    // A newcomer, very likely in the same slot of the connection slab.
    let mut newcomer = connect(addr);
    newcomer
        .set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    assert!(
        read_frame(&mut newcomer).is_err(),
        "the newcomer got nothing"
    );
    newcomer.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    assert_eq!(echo(&mut newcomer, b"stats"), b"done 0 dropped 1");
}

#[test]
fn pubsub_example_routes_by_topic_and_cleans_up_after_a_closed_subscriber() {
    let (_example, addr, log) = serve_example("pubsub", &["--stats-every", "100ms"], &[]);
    let mut alice = connect(addr);
    let mut bob = connect(addr);
    let mut publisher = connect(addr);
    assert_eq!(echo(&mut alice, b"SUBSCRIBE news"), b"subscribed news");
    assert_eq!(echo(&mut bob, b"SUBSCRIBE news"), b"subscribed news");
    assert_eq!(echo(&mut bob, b"SUBSCRIBE sport"), b"subscribed sport");
    assert_eq!(
        echo(&mut publisher, b"PUBLISH news rain today"),
        b"published 2"
    );
    assert_eq!(read_frame(&mut alice).unwrap(), b"message news rain today");
    assert_eq!(read_frame(&mut bob).unwrap(), b"message news rain today");
    assert_eq!(echo(&mut publisher, b"PUBLISH sport 2-1"), b"published 1");
    assert_eq!(read_frame(&mut bob).unwrap(), b"message sport 2-1");
    assert_eq!(echo(&mut alice, b"UNSUBSCRIBE news"), b"unsubscribed news");
    assert_eq!(echo(&mut publisher, b"PUBLISH news sun"), b"published 1");
    assert_eq!(read_frame(&mut bob).unwrap(), b"message news sun");
    drop(bob);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(echo(&mut publisher, b"PUBLISH news nobody"), b"published 0");
    assert!(echo(&mut publisher, b"SHOUT x").starts_with(b"ERR"));
    // A subscriber publishing to itself, pipelined: replies in order.
    let mut both = frame(b"SUBSCRIBE self");
    both.extend(frame(b"PUBLISH self hi"));
    publisher.write_all(&both).unwrap();
    for want in [&b"subscribed self"[..], b"message self hi", b"published 1"] {
        assert_eq!(read_frame(&mut publisher).unwrap(), want);
    }
    // The tick's stats line, from the handler's own timer.
    assert!(
        log.iter()
            .any(|line| line.contains("pubsub: ") && line.contains("messages published"))
    );
}

#[test]
fn pubsub_example_cuts_off_a_subscriber_that_never_reads_and_the_others_get_everything() {
    let (_example, addr, log) = serve_example("pubsub", &[], &["--slow-reader-timeout", "300ms"]);
    let mut stalled = connect(addr);
    let mut reader = connect(addr);
    let mut publisher = connect(addr);
    assert_eq!(echo(&mut stalled, b"SUBSCRIBE feed"), b"subscribed feed");
    assert_eq!(echo(&mut reader, b"SUBSCRIBE feed"), b"subscribed feed");
    let body = "x".repeat(16 * 1024);
    let reading = std::thread::spawn(move || {
        for i in 0..1000 {
            let got = read_frame(&mut reader).unwrap();
            assert_eq!(got, format!("message feed {i} {body}").as_bytes());
        }
    });
    let body = "x".repeat(16 * 1024);
    for i in 0..1000 {
        // 16 MB in all: far more than the stalled subscriber's buffers.
        let reply = echo(
            &mut publisher,
            format!("PUBLISH feed {i} {body}").as_bytes(),
        );
        assert!(reply.starts_with(b"published "), "{reply:?}");
    }
    reading.join().unwrap();
    assert!(closed_by_server(&mut stalled));
    assert!(log.iter().any(|line| line.contains("slow-reader")));
}

#[test]
fn kv_example_shares_its_store_across_connections() {
    let (_example, addr, _log) = serve_example("kv", &[], &[]);
    let mut a = connect(addr);
    let mut b = connect(addr);
    assert_eq!(echo(&mut a, b"SET lang rust and mio"), b"OK");
    assert_eq!(echo(&mut b, b"GET lang"), b"VAL rust and mio");
    assert_eq!(echo(&mut b, b"SET lang rust"), b"OK");
    assert_eq!(echo(&mut a, b"GET lang"), b"VAL rust");
    assert_eq!(echo(&mut b, b"DEL lang"), b"1");
    assert_eq!(echo(&mut a, b"DEL lang"), b"0");
    assert_eq!(echo(&mut a, b"GET lang"), b"NIL");
}

#[test]
fn kv_example_keeps_a_value_after_the_connection_that_set_it_closes() {
    let (_example, addr, _log) = serve_example("kv", &[], &[]);
    let mut writer = connect(addr);
    // Values are bytes: a zero and a 0xFF pass through unchanged.
    assert_eq!(echo(&mut writer, b"SET bin \x00\xff end"), b"OK");
    drop(writer);
    let mut reader = connect(addr);
    assert_eq!(echo(&mut reader, b"GET bin"), b"VAL \x00\xff end");
}

#[test]
fn kv_example_answers_bad_commands_with_err() {
    let (_example, addr, _log) = serve_example("kv", &[], &[]);
    let mut s = connect(addr);
    assert_eq!(echo(&mut s, b"SET"), b"ERR usage: SET <key> <value>");
    assert_eq!(
        echo(&mut s, b"FLY away"),
        b"ERR unknown command (use SET, GET or DEL)"
    );
    assert_eq!(
        echo(&mut s, b"get lang"),
        b"ERR unknown command (use SET, GET or DEL)"
    );
    // The connection is still served after an error.
    assert_eq!(echo(&mut s, b"GET lang"), b"NIL");
}

#[test]
fn examples_refuse_an_unparsable_address_in_one_line_with_exit_code_2() {
    for name in ["kv", "custom_handler", "heartbeat", "offload", "pubsub"] {
        let out = Command::new(example(name))
            .args(["serve", "--addr", "localhost:nine"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.contains("cannot resolve localhost:nine"),
            "{name}: {stderr}"
        );
    }
}
