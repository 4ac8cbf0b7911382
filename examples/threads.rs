//! The notes' `socketserver.ThreadingTCPServer` (8.4.3): the blocking server
//! of `blocking.rs`, with one thread per connection. Standard library only.
//!
//! ```sh
//! cargo run --release --example threads -- --addr 127.0.0.1:9000
//! cargo run --release -- bench --addr 127.0.0.1:9000 --connections 100
//! ```
//!
//! What to notice:
//! - `serve` is the blocking server's, line for line; only `main` changed.
//!   That is the appeal: code that blocks, and yet many clients at once.
//! - The kernel does the multiplexing. Each thread sleeps in its own `read`;
//!   when bytes arrive the scheduler wakes that thread, so every message
//!   costs a context switch in and out on top of its three system calls.
//! - Every connection is a thread: a stack reserved in virtual memory (2 MiB
//!   by default in Rust; for a C or Python thread glibc reserves `ulimit -s`,
//!   usually 8 MiB), a few pages of it touched, and a kernel stack and task
//!   of its own, whether the client talks or sits idle. At 10,000
//!   connections that is 10,000 threads.
//!
//! Wire format as in `blocking.rs`: 4-byte big-endian length, then payload;
//! each frame is echoed back.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

/// The largest payload accepted, as in `frameloop serve`.
const MAX_FRAME: usize = 1 << 20;

fn main() {
    let addr = addr_from_args();
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| fail(&format!("{addr}: {e}")));
    let local = listener.local_addr().unwrap_or(addr);
    eprintln!("listening on {local}");
    for stream in listener.incoming().flatten() {
        // `Builder::spawn` reports failure (out of memory, or the system's
        // thread limit) instead of panicking: that client is hung up on, the
        // others are served on.
        if let Err(e) = thread::Builder::new().spawn(move || serve(stream)) {
            eprintln!("threads: cannot start a thread for a connection: {e}");
        }
    }
}

/// Echoes frames until the client leaves (or breaks the protocol).
fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut header = [0u8; 4];
    loop {
        match stream.read_exact(&mut header) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_FRAME {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let mut reply = vec![0u8; 4 + len];
        reply[..4].copy_from_slice(&header);
        stream.read_exact(&mut reply[4..])?;
        stream.write_all(&reply)?;
    }
}

/// `--addr HOST:PORT` (default 127.0.0.1:9000; port 0 picks a free port).
fn addr_from_args() -> SocketAddr {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match args.as_slice() {
        [] => "127.0.0.1:9000",
        [flag, addr] if flag == "--addr" => addr,
        _ => fail("usage: threads [--addr HOST:PORT]"),
    };
    addr.parse()
        .unwrap_or_else(|_| fail(&format!("not an address: {addr:?} (want HOST:PORT)")))
}

/// One line on stderr, exit code 2: the server could not run.
fn fail(message: &str) -> ! {
    eprintln!("threads: {message}");
    std::process::exit(2)
}
