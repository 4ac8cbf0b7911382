//! The smallest new handler, served with the whole `frameloop serve` command
//! line: the README's "Writing a handler" walkthrough, runnable.
//!
//! ```sh
//! cargo run --example custom_handler -- serve --addr 127.0.0.1:9000   # every serve flag works
//! cargo run -- client --addr 127.0.0.1:9000 hello ""                  # prints 5, then 0
//! ```
//!
//! A handler is one `impl Handler`: `on_frame` gets the payload and a context
//! to reply through. Accepting, framing, buffering, writing and closing are
//! the reactor's job; flags, logging, signals and graceful shutdown are
//! `frameloop::cli`'s. There is nothing else to write.

use frameloop::{Ctx, Handler};

/// Replies to every frame with its length in decimal.
struct Length;

impl Handler for Length {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        ctx.send(payload.len().to_string().as_bytes());
    }
}

fn main() -> std::process::ExitCode {
    frameloop::cli::Cli::new()
        .handler("length", "replies with each frame's length", || Length)
        .run()
}
