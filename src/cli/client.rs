//! `frameloop client`: send messages, print replies.

use std::path::PathBuf;

use anyhow::Context;

use super::args::{self, DurationArg};
use crate::client::{Client, DEFAULT_TIMEOUT, UdpClient};
use crate::config::MAX_TIMEOUT;

#[derive(clap::Args)]
pub(crate) struct ClientArgs {
    /// Server address, host:port.
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: String,
    /// Answer the server's challenge (or seal datagrams) with this key.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Send each message as a UDP datagram instead.
    #[arg(long)]
    udp: bool,
    /// How long to wait for each reply (and for the challenge).
    #[arg(long, default_value_t = DurationArg(DEFAULT_TIMEOUT))]
    timeout: DurationArg,
    /// Messages to send, one frame (or datagram) each.
    #[arg(required = true)]
    messages: Vec<String>,
}

pub(crate) fn run(args: ClientArgs) -> anyhow::Result<()> {
    let timeout = args.timeout.0;
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        anyhow::bail!(
            "--timeout must be above zero and at most a year ({} s)",
            MAX_TIMEOUT.as_secs()
        );
    }
    let key = args::key(args.key_file.as_deref())?;
    if args.udp {
        let client = UdpClient::connect(args.addr.as_str(), key, timeout)?;
        for message in &args.messages {
            let reply = client
                .request(message.as_bytes())
                .with_context(|| args.addr.clone())?;
            println!("{}", String::from_utf8_lossy(&reply));
        }
        return Ok(());
    }
    let mut client = Client::connect_with(args.addr.as_str(), key.as_ref(), timeout)?;
    for message in &args.messages {
        let reply = client
            .request(message.as_bytes())
            .with_context(|| args.addr.clone())?;
        println!("{}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}
