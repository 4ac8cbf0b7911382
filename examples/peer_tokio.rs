//! The peer frameloop is measured against: the echo server a careful Rust
//! user would write with tokio instead of a hand-rolled reactor.
//!
//! One thread (`current_thread` runtime, like frameloop), tokio-util's
//! `LengthDelimitedCodec` with the same 4-byte big-endian header and the same
//! 1 MiB limit, and replies batched: every frame already decoded is fed into
//! the sink before one flush, so pipelined requests cost one write, as in
//! frameloop. `--raw` echoes bytes as read.
//!
//! ```sh
//! cargo run --release --example peer_tokio -- --addr 127.0.0.1:9001
//! cargo run --release -- bench --addr 127.0.0.1:9001
//! ```
//! Used by `scripts/compare.sh`; a dev-dependency only: the library itself
//! has no async runtime.

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut raw = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--raw" => raw = true,
            _ => {
                return Err(format!(
                    "unknown argument {arg}; usage: peer_tokio [--addr A] [--raw]"
                )
                .into());
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
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
