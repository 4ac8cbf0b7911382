//! The smallest new handler: reply to every frame with its bytes reversed.
//!
//! ```sh
//! cargo run --example custom_handler -- 127.0.0.1:9000
//! cargo run -- client --addr 127.0.0.1:9000 hello     # prints olleh
//! ```
//!
//! A handler is one `impl Handler`: `on_frame` gets the payload and a context
//! to reply through. Everything else (accepting, framing, buffering, writing,
//! closing) is the reactor's job.

use frameloop::{Config, Ctx, Handler, Server};

struct Reverse;

impl Handler for Reverse {
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]) {
        // Build the reply in place, straight into the connection's output.
        ctx.send_with(|out| out.extend(payload.iter().rev()));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:9000".into());
    let config = Config {
        addr: addr.parse()?,
        ..Config::default()
    };
    let server = Server::bind(config, Reverse)?;
    println!("listening on {}", server.local_addr());
    server.run()?;
    Ok(())
}
