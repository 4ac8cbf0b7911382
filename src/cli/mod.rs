//! The `frameloop` command: parse flags, build a config, call the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{default_max_connections, parse_duration};
use crate::{Chat, Client, Codec, Config, Echo, Handler, Server, Upper, auth};
mod bench;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "frameloop",
    version,
    about = "A single-threaded event-loop reactor on mio"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server.
    Serve(ServeArgs),
    /// Send each MESSAGE as a frame and print each reply.
    Client(ClientArgs),
    /// Drive an echo server with many concurrent clients and report figures.
    Bench(bench::BenchArgs),
    /// Print a fresh 64-hex-character key: `frameloop keygen > key`.
    Keygen,
}

#[derive(Clone, Copy, ValueEnum)]
enum HandlerName {
    Echo,
    Upper,
    Chat,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CodecName {
    Frame,
    Raw,
}

impl From<CodecName> for Codec {
    fn from(name: CodecName) -> Codec {
        match name {
            CodecName::Frame => Codec::Frame,
            CodecName::Raw => Codec::Raw,
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// What to do with each frame.
    #[arg(long, value_enum, default_value = "echo")]
    handler: HandlerName,
    /// Length-prefixed frames, or raw bytes as read.
    #[arg(long, value_enum, default_value = "frame")]
    codec: CodecName,
    /// Largest frame payload in bytes.
    #[arg(long, default_value_t = crate::frame::DEFAULT_MAX_FRAME)]
    max_frame: usize,
    /// Require clients to answer an HMAC-SHA256 challenge with this key.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Time a client has to answer the challenge.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    handshake_timeout: Duration,
    /// Close connections silent for this long (0: never).
    #[arg(long, value_parser = parse_duration, default_value = "300s")]
    idle_timeout: Duration,
    /// A started frame must complete within this (0: no limit).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    frame_timeout: Duration,
    /// Stop reading a connection with more unsent output than this.
    #[arg(long, default_value_t = 64 * 1024)]
    high_water: usize,
    /// Resume reading once its unsent output is below this.
    #[arg(long, default_value_t = 32 * 1024)]
    low_water: usize,
    /// Disconnect a connection whose output from others exceeds this.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    max_output: usize,
    /// Most connections at once [default: fd soft limit - 32, at most 10000].
    #[arg(long)]
    max_connections: Option<usize>,
    /// On SIGINT/SIGTERM, time allowed to flush replies.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    shutdown_timeout: Duration,
    /// Log the counters this often (0: never).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    stats_interval: Duration,
    /// Also serve UDP datagrams on the same address and port.
    #[arg(long)]
    udp: bool,
}

#[derive(clap::Args)]
struct ClientArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// Answer the server's challenge with this key.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Send each message as a UDP datagram instead.
    #[arg(long)]
    udp: bool,
    /// Messages to send, one frame each.
    #[arg(required = true)]
    messages: Vec<String>,
}

/// Runs the `frameloop` command with the process arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The bench installs a logger of its own: it holds the embedded server's
    // lines back while the progress lines print.
    if !matches!(cli.command, Command::Bench(_)) {
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    }
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Client(args) => client(args),
        Command::Bench(args) => return bench::run(args),
        Command::Keygen => auth::generate_key()
            .map(|key| println!("{key}"))
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("frameloop: {message}");
            ExitCode::from(2)
        }
    }
}

/// Zero means "off" for the optional durations.
fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let key = match &args.key_file {
        Some(path) => Some(auth::load_key(path).map_err(|e| e.to_string())?),
        None => None,
    };
    if args.low_water > args.high_water {
        return Err("--low-water must not exceed --high-water".into());
    }
    let config = Config {
        addr: args.addr,
        codec: args.codec.into(),
        max_frame: args.max_frame,
        key,
        handshake_timeout: args.handshake_timeout,
        idle_timeout: nonzero(args.idle_timeout),
        frame_timeout: nonzero(args.frame_timeout),
        high_water: args.high_water,
        low_water: args.low_water,
        max_output: args.max_output,
        max_connections: args.max_connections.unwrap_or_else(default_max_connections),
        shutdown_timeout: args.shutdown_timeout,
        stats_interval: nonzero(args.stats_interval),
        udp: args.udp,
    };
    let handler: Box<dyn Handler + Send> = match args.handler {
        HandlerName::Echo => Box::new(Echo),
        HandlerName::Upper => Box::new(Upper),
        HandlerName::Chat => Box::new(Chat::new()),
    };
    let server = Server::bind(config, handler).map_err(|e| e.to_string())?;
    let handle = server.handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    // First signal: graceful shutdown. Second: the person means it; exit now.
    std::thread::spawn(move || {
        let mut received = signals.forever();
        if received.next().is_some() {
            handle.shutdown();
        }
        if received.next().is_some() {
            eprintln!("frameloop: second signal; exiting without flushing");
            std::process::exit(130);
        }
    });
    let stats = server
        .run()
        .map_err(|e| format!("event loop failed: {e}"))?;
    eprintln!("summary: {stats}");
    Ok(())
}

fn client(args: ClientArgs) -> Result<(), String> {
    if args.udp {
        return udp_client(args);
    }
    let mut client = match &args.key_file {
        Some(path) => {
            let key = auth::load_key(path).map_err(|e| e.to_string())?;
            Client::connect_with_key(args.addr, &key)
        }
        None => Client::connect(args.addr),
    }
    .map_err(|e| e.to_string())?;
    for message in &args.messages {
        let reply = client
            .request(message.as_bytes())
            .map_err(|e| format!("{}: {e}", args.addr))?;
        println!("{}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}

fn udp_client(args: ClientArgs) -> Result<(), String> {
    let bind: SocketAddr = match args.addr {
        SocketAddr::V4(_) => "127.0.0.1:0".parse(),
        SocketAddr::V6(_) => "[::1]:0".parse(),
    }
    .map_err(|e| format!("{e}"))?;
    let socket = std::net::UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; crate::config::MAX_DATAGRAM];
    for message in &args.messages {
        socket
            .send_to(message.as_bytes(), args.addr)
            .map_err(|e| format!("{}: {e}", args.addr))?;
        let n = socket
            .recv(&mut buf)
            .map_err(|e| format!("{}: no reply: {e}", args.addr))?;
        println!("{}", String::from_utf8_lossy(&buf[..n]));
    }
    Ok(())
}
