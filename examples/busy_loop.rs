//! The notes' non-blocking server (8.4.1, "使用tcp实现非阻塞"): every socket
//! `setblocking(False)`, the clients in a list, `BlockingIOError` caught, and
//! the loop spun over all of them forever. Standard library only.
//!
//! ```sh
//! cargo run --release --example busy_loop -- --addr 127.0.0.1:9000
//! top    # one core at 100%, with no client connected at all
//! ```
//!
//! What to notice:
//! - One thread serves every client, with no thread per connection and no
//!   blocking: the step from `threads.rs` towards a reactor.
//! - Nothing ever waits. With no client, the loop calls `accept` millions of
//!   times a second and burns a whole core; with clients, every pass asks
//!   *every* socket for bytes, idle or not, so a pass costs one system call
//!   per connection even when one of them has something to say.
//! - As in the notes, clients are served only when `accept` found nobody new
//!   (the `except BlockingIOError` branch), so a flood of connects stalls
//!   everyone already connected.
//! - What the notes left out, and this version must add to echo correctly:
//!   `recv` returns arbitrary pieces of the byte stream (sticky packets), so
//!   each client keeps the bytes of an unfinished frame; and a non-blocking
//!   `send` may take only part of a reply, so each client keeps the rest for
//!   the next pass.
//!
//! The step after this one is to ask the kernel *which* sockets are ready
//! and sleep until one is: `tiny_reactor.rs`.
//!
//! Wire format as in `blocking.rs`: 4-byte big-endian length, then payload;
//! each frame is echoed back.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// The largest payload accepted, as in `frameloop serve`.
const MAX_FRAME: usize = 1 << 20;

/// One connected client: the notes' `con`, plus the two buffers a
/// non-blocking socket needs.
struct Client {
    stream: TcpStream,
    /// Bytes received that do not yet make a whole frame.
    input: Vec<u8>,
    /// Replies the kernel has not taken yet.
    output: Vec<u8>,
}

fn main() {
    let addr = addr_from_args();
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| fail(&format!("{addr}: {e}")));
    let local = listener.local_addr().unwrap_or(addr);
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| fail(&e.to_string()));
    eprintln!("listening on {local}");

    let mut users: Vec<Client> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // `WouldBlock` means nobody new. (Any other error, such as running out
        // of file descriptors, would end the notes' program; this one serves
        // the clients it has and tries `accept` again on the next pass.)
        if let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                let _ = stream.set_nodelay(true);
                users.push(Client {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                });
            }
            // Back to `accept`: the clients wait while anyone is connecting.
            continue;
        }
        // The notes' `for i in user: ... del_user`: one pass over everyone.
        users.retain_mut(|client| client.serve(&mut buf));
    }
}

impl Client {
    /// One non-blocking read, the frames it completed echoed, one
    /// non-blocking write. False when the client is gone.
    fn serve(&mut self, buf: &mut [u8]) -> bool {
        match self.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => self.input.extend_from_slice(&buf[..n]),
            // The notes' `except BlockingIOError: pass`: nothing there (yet).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        // Sticky packets: `input` holds whatever arrived so far; move every
        // whole frame (header and payload, the reply is the same bytes) to
        // `output`, and keep an unfinished one for later passes.
        let mut used = 0;
        while let Some(header) = self.input.get(used..used + 4) {
            let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if len > MAX_FRAME {
                return false;
            }
            let Some(frame) = self.input.get(used..used + 4 + len) else {
                break;
            };
            self.output.extend_from_slice(frame);
            used += 4 + len;
        }
        self.input.drain(..used);
        if !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// `--addr HOST:PORT` (default 127.0.0.1:9000; port 0 picks a free port).
fn addr_from_args() -> SocketAddr {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match args.as_slice() {
        [] => "127.0.0.1:9000",
        [flag, addr] if flag == "--addr" => addr,
        _ => fail("usage: busy_loop [--addr HOST:PORT]"),
    };
    addr.parse()
        .unwrap_or_else(|_| fail(&format!("not an address: {addr:?} (want HOST:PORT)")))
}

/// One line on stderr, exit code 2: the server could not run.
fn fail(message: &str) -> ! {
    eprintln!("busy_loop: {message}");
    std::process::exit(2)
}
