//! The load generator checks what it measures: a correct server gives zero
//! errors, a corrupting one is caught, and impossible runs are refused.

mod common;

use std::time::Duration;

use common::*;
use frameloop::bench::{self, BenchConfig, BenchError};
use frameloop::{Codec, Config, Ctx, Handler};

fn quick(addr: Option<std::net::SocketAddr>) -> BenchConfig {
    BenchConfig {
        addr,
        connections: 20,
        depth: 4,
        duration: Duration::from_millis(500),
        warmup: Duration::from_millis(100),
        threads: 2,
        progress: false,
        ..BenchConfig::default()
    }
}

#[test]
fn embedded_run_checks_every_reply_and_finds_no_errors() {
    let report = bench::run(&quick(None)).unwrap();
    assert!(report.messages > 100, "{report}");
    assert_eq!(report.errors.total(), 0, "{report}");
    assert!(report.latency_us[0] > 0.0 && report.latency_us[0] <= report.latency_us[4]);
    assert!(report.to_json().contains("\"mismatch\":0"));
}

#[test]
fn raw_codec_and_open_loop_rate_work_against_a_raw_echo_server() {
    let server = start(
        Config {
            codec: Codec::Raw,
            ..loopback_config()
        },
        frameloop::Echo,
    );
    let config = BenchConfig {
        codec: Codec::Raw,
        rate: Some(2000.0),
        ..quick(Some(server.addr()))
    };
    let report = bench::run(&config).unwrap();
    assert_eq!(report.errors.total(), 0, "{report}");
    // 2000/s for 0.5 s: about 1000 replies.
    assert!((700..=1300).contains(&report.messages), "{report}");
}

/// Echoes, but flips one byte in every 100th frame.
#[derive(Default)]
struct Corrupting {
    frames: u64,
}

impl Handler for Corrupting {
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]) {
        self.frames += 1;
        let flip = self.frames.is_multiple_of(100);
        ctx.send_with(|out| {
            let start = out.len();
            out.extend_from_slice(payload);
            if flip && payload.len() > 20 {
                out[start + 20] ^= 0xFF;
            }
        });
    }
}

#[test]
fn a_server_that_corrupts_bytes_is_caught_as_mismatches() {
    let server = start(loopback_config(), Corrupting::default());
    let report = bench::run(&quick(Some(server.addr()))).unwrap();
    assert!(report.errors.mismatch > 0, "{report}");
}

#[test]
fn more_connections_than_descriptors_is_refused_naming_ulimit() {
    let config = BenchConfig {
        connections: 10_000_000,
        threads: 1,
        ..quick(None)
    };
    let err = bench::run(&config).unwrap_err();
    assert!(matches!(err, BenchError::FdLimit { .. }));
    assert!(err.to_string().contains("ulimit -n"), "{err}");
}
