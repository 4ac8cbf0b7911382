//! The peer frameloop is measured against: the echo server a careful Rust
//! user would write with tokio instead of a hand-rolled reactor.
//!
//! One thread (`current_thread` runtime, like one frameloop reactor),
//! tokio-util's `LengthDelimitedCodec` with the same 4-byte big-endian header
//! and the same 1 MiB limit, and replies batched: every frame already decoded
//! is fed into the sink before one flush, so pipelined requests cost one
//! write, as in frameloop. `--raw` echoes bytes as read.
//!
//! `--workers N` with N > 1 is the peer of `frameloop serve --reactors N`:
//! tokio's `multi_thread` runtime with N worker threads, one listener, and
//! the connection tasks spread over the workers by tokio's work-stealing
//! scheduler. The protocol and the batching are the same; `--workers 1` (the
//! default) is exactly the `current_thread` peer above, so the one-reactor
//! comparison does not change.
//!
//! ```sh
//! cargo run --release --example peer_tokio -- --addr 127.0.0.1:9001
//! cargo run --release --example peer_tokio -- --addr 127.0.0.1:9001 --workers 2
//! cargo run --release -- bench --addr 127.0.0.1:9001
//! ```
//! Used by `scripts/compare.sh`; a dev-dependency only: the library itself
//! has no async runtime.

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// More workers than this is a typo, not a machine (the same bound as
/// frameloop's reactors).
const MAX_WORKERS: usize = 1024;

const USAGE: &str = "usage: peer_tokio [--addr A] [--raw] [--workers N]";

/// A bad flag or a port in use: one line and exit 2, as `frameloop` does.
fn main() {
    if let Err(e) = run() {
        eprintln!("peer_tokio: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut raw = false;
    let mut workers = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--raw" => raw = true,
            "--workers" => {
                let n = args.next().ok_or("--workers needs a value")?;
                workers = match n.parse::<usize>() {
                    Ok(n @ 1..=MAX_WORKERS) => n,
                    _ => {
                        return Err(format!(
                            "'{n}' is not a number of workers (1 to {MAX_WORKERS})"
                        )
                        .into());
                    }
                };
            }
            _ => return Err(format!("unknown argument {arg}; {USAGE}").into()),
        }
    }
    // One worker stays the current_thread runtime: the peer of one reactor
    // is the one every earlier figure was measured against. (A multi_thread
    // runtime with one worker is a different server: accepts on the calling
    // thread, connections on the worker.)
    let runtime = match workers {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    runtime.block_on(serve(addr, raw))
}

async fn serve(addr: String, raw: bool) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let _ = if raw {
                echo_raw(stream).await
            } else {
                echo_frames(stream).await
            };
        });
    }
}

async fn echo_frames(stream: TcpStream) -> std::io::Result<()> {
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(1 << 20)
        .new_codec();
    let mut framed = Framed::new(stream, codec);
    while let Some(frame) = framed.next().await {
        framed.feed(frame?.freeze()).await?;
        // Batch: everything already buffered goes out with one flush.
        while let Some(Some(frame)) = framed.next().now_or_never() {
            framed.feed(frame?.freeze()).await?;
        }
        SinkExt::<bytes::Bytes>::flush(&mut framed).await?;
    }
    Ok(())
}

async fn echo_raw(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}
