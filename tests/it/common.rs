//! Shared test helpers: start a server on 127.0.0.1:0, speak frames over
//! plain blocking sockets. Every socket gets a read timeout, so a test that
//! goes wrong fails instead of hanging.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use frameloop::{Config, Handler, RunningServer};

/// How long any single blocking read in a test may wait.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The defaults on 127.0.0.1:0, but for a short linger: a test that stops
/// its server with clients still connected need not wait two seconds for
/// their EOF.
pub fn loopback_config() -> Config {
    Config {
        linger: Duration::from_millis(200),
        ..Config::loopback()
    }
}

pub fn start<H: Handler + Send>(config: Config, handler: H) -> RunningServer
where
    H::Conn: Send,
{
    let _ = env_logger::builder().is_test(true).try_init();
    frameloop::spawn(config, handler).expect("server starts")
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Runs the `frameloop` command to completion.
pub fn frameloop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_frameloop"))
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("run frameloop")
}

/// Bytes in each frame of a backpressure stream.
pub const FRAME: usize = 64 * 1024;

/// Frame `i` of a backpressure stream: its index, then a fill byte.
pub fn numbered_frame(i: u32, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&(FRAME as u32).to_be_bytes());
    buf.extend_from_slice(&i.to_be_bytes());
    buf.resize(4 + FRAME, i as u8);
}

/// `payload` as a frame, with the library's one encoder.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frameloop::frame::encode_into(&mut out, payload).unwrap();
    out
}

/// One frame, with the library's one decoder (any length a header can say).
pub fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    frameloop::frame::read_frame(stream, u32::MAX as usize)
}

pub fn echo(stream: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    stream.write_all(&frame(payload)).unwrap();
    read_frame(stream).unwrap()
}

/// True once the peer closed: a read returns 0 or a reset (within the timeout).
pub fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                );
            }
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// A payload whose bytes depend on `tag` and position, so any mix-up shows.
pub fn tagged(tag: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (tag as usize).wrapping_mul(31).wrapping_add(i * 7) as u8)
        .collect()
}

/// Resident set size of this process, in KiB.
pub fn rss_kib() -> u64 {
    rss_kib_of(std::process::id())
}

/// Resident set size of process `pid`, in KiB.
pub fn rss_kib_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sets SO_LINGER to 0, so that dropping the socket sends a reset.
pub fn reset_on_close(stream: &TcpStream) {
    socket2::SockRef::from(stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// Sends SIGTERM to a child process.
pub fn terminate(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
}

/// A `frameloop serve` process, killed when dropped (a failing test leaves
/// no server behind).
pub struct ServerProcess(Child);

impl std::ops::Deref for ServerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `frameloop serve` (optionally under `prlimit`), returns the child,
/// its address, and a channel of its stderr lines.
pub fn serve_process(
    prefix: &[&str],
    args: &[&str],
) -> (ServerProcess, SocketAddr, mpsc::Receiver<String>) {
    serve_binary(
        Path::new(env!("CARGO_BIN_EXE_frameloop")),
        prefix,
        &[],
        args,
    )
}

/// Starts `BIN BEFORE.. serve --addr 127.0.0.1:0 ARGS..` (a program built on
/// `frameloop::cli`, optionally under `prefix`), as [`serve_process`] does.
pub fn serve_binary(
    bin: &Path,
    prefix: &[&str],
    before: &[&str],
    args: &[&str],
) -> (ServerProcess, SocketAddr, mpsc::Receiver<String>) {
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    command
        .args(before)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped());
    spawn_server(command)
}

/// Spawns a server command whose stderr says `listening on ADDR`; returns
/// it, that address and a channel of its stderr lines.
pub fn spawn_server(mut command: Command) -> (ServerProcess, SocketAddr, mpsc::Receiver<String>) {
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program()));
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = rx
        .iter()
        .find_map(|l| {
            l.split("listening on ")
                .nth(1)
                .map(|a| a.trim().parse().unwrap())
        })
        .expect("a 'listening on' line");
    (ServerProcess(child), addr, rx)
}

pub fn wait_with_limit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `python3 examples/python/SCRIPT ARGS`; fails loudly if python3 is missing.
pub fn python(script: &str, args: &[&str]) -> std::process::Output {
    let path = format!("{}/examples/python/{script}", env!("CARGO_MANIFEST_DIR"));
    Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for this test (.ci/run installs it): {e}"))
}

/// `target/<profile>/examples/NAME`. Cargo builds the examples for a whole
/// `cargo test` (not for `cargo test --test examples` alone), next to the
/// `deps/` directory this test binary runs from.
pub fn example(name: &str) -> PathBuf {
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

/// CPU time (user + system) used so far by process `pid`, in clock ticks
/// (1/100 s on Linux).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}
