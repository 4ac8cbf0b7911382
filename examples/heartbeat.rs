//! Heartbeats: a ping to every connection every N seconds; a connection that
//! misses two pongs in a row is told why and closed.
//!
//! ```sh
//! cargo run --example heartbeat -- --every 2s serve --addr 127.0.0.1:9000
//! ```
//!
//! ```text
//! server -> client   "ping"                  every --every (default 5s)
//! client -> server   "pong"                  answers the last ping
//! client -> server   anything else           echoed
//! server -> client   "bye: missed 2 pongs"   then the connection closes
//! ```
//!
//! What it shows: state kept per connection (`Handler::Conn`: the pings not
//! yet answered) and a timer per connection (`Ctx::set_timer_every`), which
//! the reactor never fires after its connection closed. No map keyed by
//! connection, no thread: the pings come from the loop's own timer heap.

use std::time::Duration;

use frameloop::{Ctx, Handler, TimerId};

/// Pings unanswered before a connection is closed.
const MISSED_ALLOWED: u32 = 2;

struct Heartbeat {
    every: Duration,
}

/// One connection's heartbeat.
#[derive(Default)]
struct Beat {
    /// Pings sent since the last pong.
    unanswered: u32,
}

impl Handler for Heartbeat {
    type Conn = Beat;

    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer_every(self.every);
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        match payload {
            b"pong" => ctx.conn().unanswered = 0,
            _ => ctx.send(payload),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _timer: TimerId) {
        if ctx.conn().unanswered >= MISSED_ALLOWED {
            ctx.send(format!("bye: missed {MISSED_ALLOWED} pongs").as_bytes());
            ctx.close(); // after the goodbye is written
            return;
        }
        ctx.conn().unanswered += 1;
        ctx.send(b"ping");
    }
}

/// `--every DURATION`, taken out of the arguments (the rest are the usual
/// `frameloop` command line).
fn every(args: &mut Vec<String>) -> Result<Duration, String> {
    let every = match frameloop::cli::take_flag(args, "--every")? {
        None => return Ok(Duration::from_secs(5)),
        Some(value) => {
            frameloop::cli::parse_duration(&value).map_err(|e| format!("--every {e}"))?
        }
    };
    match every.is_zero() {
        true => Err("--every must be above zero".into()),
        false => Ok(every),
    }
}

fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let every = match every(&mut args) {
        Ok(every) => every,
        Err(e) => {
            eprintln!("heartbeat: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    frameloop::cli::Cli::new()
        .handler(
            "heartbeat",
            "pings, and closes who stops answering",
            move || Heartbeat { every },
        )
        .run_with(args)
}
