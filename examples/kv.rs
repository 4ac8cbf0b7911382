//! A key-value store: one handler whose state every connection shares.
//!
//! Each request is one frame holding one command; each gets one reply frame.
//! Words are separated by single spaces; keys and values are bytes, not
//! necessarily text:
//!
//! ```text
//! SET <key> <value>   ->  OK            the value is every byte after the 2nd space
//! GET <key>           ->  VAL <value>   or  NIL
//! DEL <key>           ->  1 (deleted)   or  0 (no such key)
//! anything else       ->  ERR <why>
//! ```
//!
//! ```sh
//! cargo run --example kv -- serve --addr 127.0.0.1:9000
//! cargo run -- client --addr 127.0.0.1:9000 "SET lang rust" "GET lang"   # OK, VAL rust
//! ```
//!
//! The map lives in the handler, with no lock: the reactor is one thread and
//! runs one hook at a time, so a SET on one connection is seen by the next GET
//! on any other, and outlives the connection that made it.

use std::collections::HashMap;

use frameloop::{Ctx, Handler};

/// The store: one map for the whole server.
#[derive(Default)]
struct Store {
    map: HashMap<Vec<u8>, Vec<u8>>,
}

/// Splits `bytes` at its first space: the word before it, and the rest.
fn split_word(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[]),
    }
}

impl Handler for Store {
    type Conn = ();
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, request: &[u8]) {
        let (command, rest) = split_word(request);
        match command {
            b"SET" => {
                let (key, value) = split_word(rest);
                if key.is_empty() {
                    return ctx.send(b"ERR usage: SET <key> <value>");
                }
                self.map.insert(key.to_vec(), value.to_vec());
                ctx.send(b"OK");
            }
            b"GET" => match self.map.get(rest) {
                // Built in place: the value is copied once, into the output.
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

fn main() -> std::process::ExitCode {
    frameloop::cli::Cli::new()
        .handler("kv", "a key-value store", Store::default)
        .run()
}
