//! The examples run for real: each is started as a process and spoken to.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::*;

/// `target/<profile>/examples/NAME`, which a whole `cargo test` builds.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap(); // target/<profile>/deps/examples-…
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} not built: run the whole `cargo test`",
        path.display()
    );
    path
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_example(name: &str) -> (Running, SocketAddr) {
    let mut child = Command::new(example(name))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run example {name}: {e}"));
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    (Running(child), addr)
}

#[test]
fn custom_handler_example_reverses_each_frame() {
    let (_server, addr) = run_example("custom_handler");
    let mut s = connect(addr);
    assert_eq!(echo(&mut s, b"hello"), b"olleh");
    assert_eq!(echo(&mut s, b""), b"");
}

#[test]
fn kv_example_shares_its_store_across_connections() {
    let (_server, addr) = run_example("kv");
    let mut a = connect(addr);
    let mut b = connect(addr);
    assert_eq!(echo(&mut a, b"SET lang rust and mio"), b"OK");
    assert_eq!(echo(&mut b, b"GET lang"), b"VAL rust and mio");
    assert_eq!(echo(&mut b, b"DEL lang"), b"1");
    assert_eq!(echo(&mut a, b"DEL lang"), b"0");
    assert_eq!(echo(&mut a, b"GET lang"), b"NIL");
    assert_eq!(echo(&mut a, b"SET"), b"ERR usage: SET <key> <value>");
    assert!(echo(&mut a, b"FLY away").starts_with(b"ERR unknown command"));
}
