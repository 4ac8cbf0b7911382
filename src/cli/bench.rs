//! `frameloop bench`: flags to a [`BenchConfig`], the report to stdout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::CodecName;
use super::parse_duration;
use crate::bench::BenchConfig;

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Server to load [default: an embedded frameloop on 127.0.0.1:0].
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Payload bytes per request.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// How long to measure.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// How long to run before measuring.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    warmup: Duration,
    /// Client threads, each with its own poll loop.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Length-prefixed frames, or raw byte echo (for any echo server).
    #[arg(long, value_enum, default_value = "frame")]
    codec: CodecName,
    /// Answer the server's challenge with this key.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Open loop: total requests per second (latency from scheduled send time).
    #[arg(long)]
    rate: Option<f64>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Exit 0 if every reply checked out, 1 on any error, 2 if it could not run.
pub(crate) fn run(args: BenchArgs) -> ExitCode {
    let key = match &args.key_file {
        Some(path) => match crate::Key::from_file(path) {
            Ok(key) => Some(key),
            Err(e) => {
                eprintln!("frameloop: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let config = BenchConfig {
        addr: args.addr,
        connections: args.connections,
        size: args.size,
        depth: args.depth,
        duration: args.duration,
        warmup: args.warmup,
        threads: args.threads,
        codec: args.codec.into(),
        key,
        rate: args.rate,
        progress: true,
    };
    match crate::bench::run(&config) {
        Err(e) => {
            eprintln!("frameloop: {e}");
            ExitCode::from(2)
        }
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                println!("{report}");
            }
            // No reply at all is a failure too: a server that accepts and
            // never answers must not pass as error-free.
            if report.messages == 0 {
                eprintln!("frameloop: no reply arrived in the measured window");
                return ExitCode::from(1);
            }
            match report.errors.total() {
                0 => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            }
        }
    }
}
