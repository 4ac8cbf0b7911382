//! A key-value store: one handler, its state shared by every connection.
//!
//! Each request is one frame of text commands; each gets one reply frame:
//!
//! ```text
//! SET <key> <value>   ->  OK            (the value is every byte after the 2nd space)
//! GET <key>           ->  VAL <value>   or  NIL
//! DEL <key>           ->  1 (deleted)   or  0 (no such key)
//! anything else       ->  ERR <why>
//! ```
//!
//! ```sh
//! cargo run --example kv -- 127.0.0.1:9000
//! cargo run -- client --addr 127.0.0.1:9000 "SET lang rust" "GET lang"   # OK, VAL rust
//! ```
//!
//! The map lives in the handler. No lock: the reactor is one thread, so only
//! one hook runs at a time, and a SET on one connection is seen by the next GET
//! on any other.

use std::collections::HashMap;

use frameloop::{Config, Ctx, Handler, Server};

#[derive(Default)]
struct Store {
    map: HashMap<Vec<u8>, Vec<u8>>,
}

/// Splits off the first space-separated word.
fn word(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[]),
    }
}

impl Handler for Store {
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, request: &[u8]) {
        let (command, rest) = word(request);
        match command {
            b"SET" => {
                let (key, value) = word(rest);
                if key.is_empty() {
                    return ctx.send(b"ERR usage: SET <key> <value>");
                }
                self.map.insert(key.to_vec(), value.to_vec());
                ctx.send(b"OK");
            }
            b"GET" => match self.map.get(rest) {
                Some(value) => ctx.send_with(|out| {
                    out.extend_from_slice(b"VAL ");
                    out.extend_from_slice(value);
                }),
                None => ctx.send(b"NIL"),
            },
            b"DEL" => match self.map.remove(rest) {
                Some(_) => ctx.send(b"1"),
                None => ctx.send(b"0"),
            },
            _ => ctx.send(b"ERR unknown command (use SET, GET or DEL)"),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:9000".into());
    let config = Config {
        addr: addr.parse()?,
        ..Config::default()
    };
    let server = Server::bind(config, Store::default())?;
    println!("listening on {}", server.local_addr());
    server.run()?;
    Ok(())
}
