//! The examples run for real: each is started as its own process, found by
//! the `listening on ADDR` line it prints first, and spoken to over TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

/// How long an example may take to print its `listening on` line.
pub(crate) const START_LIMIT: Duration = Duration::from_secs(10);

/// `target/<profile>/examples/NAME`. Cargo builds the examples for a whole
/// `cargo test` (not for `cargo test --test examples` alone), next to the
/// `deps/` directory this test binary runs from.
pub(crate) fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap(); // target/<profile>/deps/examples-…
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run the whole `cargo test` (or `cargo build --examples` first)",
        path.display()
    );
    path
}

/// A running example, killed when the test ends (pass or fail).
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts example `name` on 127.0.0.1:0 and returns it with its address.
fn run_example(name: &str) -> (Running, SocketAddr) {
    let child = Command::new(example(name))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run example {name}: {e}"));
    let mut running = Running(child);
    // Read the first line on a thread, so an example that never prints fails
    // the test after START_LIMIT instead of hanging it.
    let stdout = running.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(START_LIMIT).unwrap_or_default();
    let Some(addr) = first
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
    else {
        let _ = running.0.kill();
        let mut stderr = String::new();
        let _ = running.0.stderr.take().unwrap().read_to_string(&mut stderr);
        panic!("example {name} printed {first:?} instead of `listening on ADDR`; stderr: {stderr}");
    };
    (running, addr)
}

#[test]
fn custom_handler_example_replies_with_each_frames_length() {
    let (_example, addr) = run_example("custom_handler");
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
}

#[test]
fn kv_example_shares_its_store_across_connections() {
    let (_example, addr) = run_example("kv");
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
    let (_example, addr) = run_example("kv");
    let mut writer = connect(addr);
    // Values are bytes: a zero and a 0xFF pass through unchanged.
    assert_eq!(echo(&mut writer, b"SET bin \x00\xff end"), b"OK");
    drop(writer);
    let mut reader = connect(addr);
    assert_eq!(echo(&mut reader, b"GET bin"), b"VAL \x00\xff end");
}

#[test]
fn kv_example_answers_bad_commands_with_err() {
    let (_example, addr) = run_example("kv");
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
fn examples_refuse_an_unparsable_address_and_exit_nonzero() {
    for name in ["kv", "custom_handler"] {
        let mut child = Command::new(example(name))
            .args(["--addr", "localhost:nine"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_with_limit(&mut child, START_LIMIT);
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        assert!(!status.success(), "{name} accepted a bad address");
        assert!(!stdout.contains("listening on"), "{name}: {stdout}");
    }
}
