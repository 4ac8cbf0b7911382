//! Publish/subscribe: connections subscribe to topics; a message published
//! to a topic goes to every subscriber of it.
//!
//! ```sh
//! cargo run --example pubsub -- --stats-every 10s serve --addr 127.0.0.1:9000
//! ```
//!
//! The command format: one command per frame, words separated by one space;
//! topics are bytes without spaces, messages any bytes.
//!
//! ```text
//! SUBSCRIBE <topic>            ->  "subscribed <topic>"
//! UNSUBSCRIBE <topic>          ->  "unsubscribed <topic>"
//! PUBLISH <topic> <message>    ->  "published <n>"  (n subscribers got it)
//! to each subscriber:              "message <topic> <message>"
//! anything else                ->  "ERR ..."
//! ```
//!
//! What it shows: each connection's subscriptions are its own state
//! (`Handler::Conn`), so closing cleans up with no map keyed by connection;
//! a tick (`LoopCtx::set_tick_every`) logs a stats line. A subscriber too
//! slow to read holds up its publishers while it is behind, and is cut off
//! if it stays behind (`--slow-reader-timeout`) or its backlog passes
//! `--max-output`, exactly as a chat member would be.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use frameloop::{ConnId, Ctx, Handler, LoopCtx, TimerId};

#[derive(Default)]
struct PubSub {
    /// Every topic with a subscriber, and its subscribers.
    topics: HashMap<Vec<u8>, BTreeSet<ConnId>>,
    published: u64,
    stats_every: Option<Duration>,
}

/// Splits at the first space: the word before it, and the rest.
fn word(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[]),
    }
}

/// `prefix` and `topic` as one reply.
fn say(ctx: &mut Ctx<'_, PubSub>, prefix: &[u8], topic: &[u8]) {
    ctx.send_with(|w| {
        w.extend_from_slice(prefix);
        w.extend_from_slice(topic);
    });
}

impl Handler for PubSub {
    /// The topics this connection subscribes to.
    type Conn = BTreeSet<Vec<u8>>;

    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>) {
        if let Some(every) = self.stats_every {
            ctx.set_tick_every(every);
        }
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, request: &[u8]) {
        let (command, rest) = word(request);
        match command {
            b"SUBSCRIBE" if !rest.is_empty() && !rest.contains(&b' ') => {
                ctx.conn().insert(rest.to_vec());
                self.topics
                    .entry(rest.to_vec())
                    .or_default()
                    .insert(ctx.id());
                say(ctx, b"subscribed ", rest);
            }
            b"UNSUBSCRIBE" => {
                ctx.conn().remove(rest);
                if let Some(subscribers) = self.topics.get_mut(rest) {
                    subscribers.remove(&ctx.id());
                }
                say(ctx, b"unsubscribed ", rest);
            }
            b"PUBLISH" => {
                let (topic, message) = word(rest);
                let mut sent = 0;
                for &id in self.topics.get(topic).into_iter().flatten() {
                    sent += usize::from(ctx.send_to_with(id, |w| {
                        w.extend_from_slice(b"message ");
                        w.extend_from_slice(topic);
                        w.push(b' ');
                        w.extend_from_slice(message);
                    }));
                }
                self.published += 1;
                ctx.send(format!("published {sent}").as_bytes());
            }
            _ => ctx.send(
                b"ERR use SUBSCRIBE <topic>, UNSUBSCRIBE <topic> or PUBLISH <topic> <message>",
            ),
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, Self>) {
        for topic in std::mem::take(ctx.conn()) {
            if let Some(subscribers) = self.topics.get_mut(&topic) {
                subscribers.remove(&ctx.id());
                if subscribers.is_empty() {
                    self.topics.remove(&topic);
                }
            }
        }
    }

    fn on_tick(&mut self, _ctx: &mut LoopCtx<'_, Self>, _timer: TimerId) {
        let subscriptions: usize = self.topics.values().map(BTreeSet::len).sum();
        log::info!(
            "pubsub: {} topics, {subscriptions} subscriptions, {} messages published",
            self.topics.len(),
            self.published
        );
    }
}

fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let stats_every = match frameloop::cli::take_flag(&mut args, "--stats-every")
        .and_then(|v| v.map(|v| frameloop::cli::parse_duration(&v)).transpose())
    {
        Ok(every) => every.filter(|every| !every.is_zero()),
        Err(e) => {
            eprintln!("pubsub: --stats-every {e}");
            return std::process::ExitCode::from(2);
        }
    };
    frameloop::cli::Cli::new()
        .handler("pubsub", "topics, subscribers, publishers", move || {
            PubSub {
                stats_every,
                ..PubSub::default()
            }
        })
        .run_with(args)
}
