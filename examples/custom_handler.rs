//! The smallest new handler: the README's "Writing a handler" walkthrough, runnable.
//!
//! ```sh
//! cargo run --example custom_handler -- --addr 127.0.0.1:9000
//! cargo run -- client --addr 127.0.0.1:9000 hello ""    # prints 5, then 0
//! ```
//!
//! A handler is one `impl Handler`: `on_frame` gets the payload and a context
//! to reply through. Accepting, framing, buffering, writing and closing are
//! the reactor's job, so there is nothing else to write.

use frameloop::{Config, Ctx, Handler, Server};

/// Replies to every frame with its length in decimal.
struct Length;

impl Handler for Length {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        ctx.send(payload.len().to_string().as_bytes());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = match (args.next().as_deref(), args.next()) {
        (None, _) => "127.0.0.1:9000".to_string(),
        (Some("--addr"), Some(addr)) => addr,
        _ => return Err("usage: custom_handler [--addr HOST:PORT]".into()),
    };
    let config = Config {
        addr: addr.parse()?,
        ..Config::default()
    };
    let server = Server::bind(config, Length)?;
    // The first line of output, so a script (or a test) can find the port.
    println!("listening on {}", server.local_addr());
    server.run()?;
    Ok(())
}
