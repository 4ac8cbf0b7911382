//! The notes' servers in Rust (`examples/blocking.rs`, `threads.rs`,
//! `busy_loop.rs`) and `examples/tiny_reactor.rs`, run for real: each is
//! started as its own process, found by the `listening on ADDR` line it
//! prints on stderr, and spoken to in frames over loopback.
//!
//! What they prove: each one echoes correctly (every size, frames split
//! across writes and stuck together in one, a client that half-closes, a
//! flood sent before any reply is read), and
//! each one behaves as its design says: the blocking server makes the second
//! client wait for the first, the others serve many clients at once, the
//! busy loop spins with nothing to do while the reactor sleeps.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::common::*;

/// Payload sizes every server must echo: empty, one byte, the bench's
/// default, a page, and two larger than one 64 KiB read.
const SIZES: [usize; 6] = [0, 1, 64, 4096, 65_537, 200_000];

/// How long a server refusing its flags may take to exit.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// Starts example `name` on 127.0.0.1:0 and returns it (killed when
/// dropped) with the address from its `listening on` line.
fn start(name: &str) -> (ServerProcess, SocketAddr) {
    let mut command = Command::new(example(name));
    command
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let (server, addr, _stderr) = spawn_server(command);
    (server, addr)
}

/// Every size in turn; three frames in one write (sticky packets); one frame
/// a byte at a time; then a half-close: the last reply still arrives, and
/// then the server closes.
fn echoes_every_kind_of_frame(addr: SocketAddr) {
    let mut s = connect(addr);
    for (tag, &size) in SIZES.iter().enumerate() {
        let payload = tagged(tag as u32, size);
        assert!(echo(&mut s, &payload) == payload, "{size}-byte frame");
    }

    let big = tagged(99, 3000);
    let mut burst = frame(b"a");
    burst.extend(frame(b""));
    burst.extend(frame(&big));
    s.write_all(&burst).unwrap();
    assert_eq!(read_frame(&mut s).unwrap(), b"a");
    assert_eq!(read_frame(&mut s).unwrap(), b"");
    assert!(read_frame(&mut s).unwrap() == big, "third frame of a burst");

    for byte in frame(b"split") {
        s.write_all(&[byte]).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(read_frame(&mut s).unwrap(), b"split");

    s.write_all(&frame(b"last")).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_frame(&mut s).unwrap(), b"last");
    assert!(closed_by_server(&mut s), "no close after a half-close");
}

/// Sixteen 1 MB frames written before any reply is read: far more than the
/// socket buffers on both sides hold, so the server's writes come up short
/// (or block) and it must keep, then send, the rest.
fn echoes_a_flood_read_late(addr: SocketAddr) {
    let mut s = connect(addr);
    let mut writer = s.try_clone().unwrap();
    writer.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    let payloads: Vec<Vec<u8>> = (0..16).map(|i| tagged(1000 + i, 1_000_000)).collect();
    let to_send = payloads.clone();
    // The writer on its own thread: a blocking server only reads the next
    // frame once its reply is written, so one thread doing both would stall.
    let sender = thread::spawn(move || {
        for payload in &to_send {
            writer.write_all(&frame(payload)).unwrap();
        }
    });
    thread::sleep(Duration::from_millis(300));
    for (i, payload) in payloads.iter().enumerate() {
        assert!(
            read_frame(&mut s).unwrap() == *payload,
            "frame {i} of the flood"
        );
    }
    sender.join().expect("the writer failed");
}

/// Eight clients, all connected before any sends, each echoing every size
/// with payloads of its own, while a ninth sits in the middle of a frame.
fn serves_clients_at_once(addr: SocketAddr) {
    let mut stalled = connect(addr);
    stalled.write_all(&frame(b"never finished")[..6]).unwrap();

    let clients: Vec<TcpStream> = (0..8).map(|_| connect(addr)).collect();
    let start_together = Arc::new(Barrier::new(clients.len()));
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut s)| {
            let start_together = start_together.clone();
            thread::spawn(move || {
                start_together.wait();
                for (i, &size) in SIZES.iter().enumerate() {
                    let payload = tagged((c * SIZES.len() + i) as u32, size);
                    assert!(
                        echo(&mut s, &payload) == payload,
                        "client {c}, {size} bytes"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client's echoes failed");
    }
    drop(stalled);
}

#[test]
fn blocking_echoes_every_size_split_stuck_together_and_flooded() {
    let (_server, addr) = start("blocking");
    echoes_every_kind_of_frame(addr);
    echoes_a_flood_read_late(addr);
}

#[test]
fn blocking_makes_the_second_client_wait_until_the_first_leaves() {
    let (_server, addr) = start("blocking");
    let mut first = connect(addr);
    assert_eq!(echo(&mut first, b"first"), b"first");

    // The kernel completes the second client's handshake and queues it in
    // the listen backlog; its request is sent, and nobody reads it.
    let mut second = connect(addr);
    second.write_all(&frame(b"second")).unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waited = second
        .read(&mut byte)
        .expect_err("the second client was answered while the first was connected");
    assert!(
        matches!(waited.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{waited}"
    );
    assert_eq!(echo(&mut first, b"first again"), b"first again");

    drop(first);
    second.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    assert_eq!(read_frame(&mut second).unwrap(), b"second");
}

#[test]
fn threads_echoes_every_size_split_stuck_together_and_flooded() {
    let (_server, addr) = start("threads");
    echoes_every_kind_of_frame(addr);
    echoes_a_flood_read_late(addr);
}

#[test]
fn threads_serves_eight_clients_at_once_while_one_stalls_mid_frame() {
    let (_server, addr) = start("threads");
    serves_clients_at_once(addr);
}

#[test]
fn busy_loop_echoes_every_size_split_stuck_together_and_flooded() {
    let (_server, addr) = start("busy_loop");
    echoes_every_kind_of_frame(addr);
    echoes_a_flood_read_late(addr);
}

#[test]
fn busy_loop_serves_eight_clients_at_once_while_one_stalls_mid_frame() {
    let (_server, addr) = start("busy_loop");
    serves_clients_at_once(addr);
}

#[test]
fn tiny_reactor_echoes_every_size_split_stuck_together_and_flooded() {
    let (_server, addr) = start("tiny_reactor");
    echoes_every_kind_of_frame(addr);
    echoes_a_flood_read_late(addr);
}

#[test]
fn tiny_reactor_serves_eight_clients_at_once_while_one_stalls_mid_frame() {
    let (_server, addr) = start("tiny_reactor");
    serves_clients_at_once(addr);
}

#[test]
fn notes_servers_refuse_a_bad_address_in_one_line_and_exit_2() {
    for name in ["blocking", "threads", "busy_loop", "tiny_reactor"] {
        let mut child = Command::new(example(name))
            .args(["--addr", "localhost:nine"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_with_limit(&mut child, EXIT_LIMIT);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.contains("not an address"), "{name}: {stderr}");
    }
}
