//! The notes' first server (8.3, "TCP信息传输" with the 4-byte header of
//! "TCP黏包问题"): `accept`, then `recv` and `send` on that one client until
//! it leaves, then the next `accept`. Standard library only.
//!
//! ```sh
//! cargo run --release --example blocking -- --addr 127.0.0.1:9000
//! cargo run --release -- bench --addr 127.0.0.1:9000 --connections 2   # one is never answered
//! ```
//!
//! What to notice:
//! - Every call blocks, so the code reads top to bottom like the Python, and
//!   the thread is asleep in the kernel whenever nothing happens: it burns no
//!   CPU.
//! - While one client is connected, every other client waits. Its connect
//!   succeeds (the kernel completes the handshake and queues it in the
//!   listen backlog), its request is sent, and nobody reads it until the
//!   client before it has left.
//! - Each message costs three system calls: `read` the 4-byte header,
//!   `read` the payload, `write` the reply.
//!
//! The wire format is frameloop's: a 4-byte big-endian length, then the
//! payload (Python: `struct.pack('!I', len(payload)) + payload`). Each frame
//! is echoed back as it came.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// The largest payload accepted, as in `frameloop serve`: a header claiming
/// more closes the connection instead of allocating what it claims.
const MAX_FRAME: usize = 1 << 20;

fn main() {
    let addr = addr_from_args();
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| fail(&format!("{addr}: {e}")));
    let local = listener.local_addr().unwrap_or(addr);
    eprintln!("listening on {local}");
    // A failed accept is skipped. A client is served to the end before the
    // loop comes back to accept anyone else.
    for stream in listener.incoming().flatten() {
        let _ = serve(stream);
    }
}

/// Echoes frames until the client leaves (or breaks the protocol).
fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut header = [0u8; 4];
    loop {
        // `read_exact` loops over `read` for us: TCP may hand the header over
        // in pieces (the notes' sticky packets, the other way round).
        match stream.read_exact(&mut header) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_FRAME {
            return Err(io::ErrorKind::InvalidData.into());
        }
        // The reply is the frame itself: read the payload in behind its
        // header, so the reply goes out in one `write`.
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
        _ => fail("usage: blocking [--addr HOST:PORT]"),
    };
    addr.parse()
        .unwrap_or_else(|_| fail(&format!("not an address: {addr:?} (want HOST:PORT)")))
}

/// One line on stderr, exit code 2: the server could not run.
fn fail(message: &str) -> ! {
    eprintln!("blocking: {message}");
    std::process::exit(2)
}
