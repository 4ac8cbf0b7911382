//! `frameloop serve`: flags to a [`Config`], a registered handler, signals.

use std::path::PathBuf;
use std::sync::LazyLock;

use anyhow::Context;

use super::args::{self, CodecName, DurationArg, off_if_zero, or_zero};
use crate::client::resolve;
use crate::config::Config;
use crate::handler::Handler;
use crate::server::{Server, ServerHandle};
use crate::stats::Stats;
use crate::trace::Window;

use super::trace::TraceFile;

/// Where the flags take their defaults from (the help text shows them).
static DEFAULTS: LazyLock<Config> = LazyLock::new(Config::default);

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on, host:port (port 0 picks a free port).
    #[arg(long, default_value_t = DEFAULTS.addr.to_string())]
    addr: String,
    /// What to do with each frame (see --help for the list).
    #[arg(long)]
    handler: String,
    /// Length-prefixed frames, or raw bytes as read.
    #[arg(long, value_enum, default_value = "frame")]
    codec: CodecName,
    /// Largest frame payload in bytes.
    #[arg(long, default_value_t = DEFAULTS.max_frame)]
    max_frame: usize,
    /// Require every client (TCP and UDP) to prove it knows this key.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Time a client has to answer the challenge.
    #[arg(long, default_value_t = DurationArg(DEFAULTS.handshake_timeout))]
    handshake_timeout: DurationArg,
    /// Close a connection when no byte went either way for this long (0: never).
    #[arg(long, default_value_t = or_zero(DEFAULTS.idle_timeout))]
    idle_timeout: DurationArg,
    /// A started frame must complete within this (0: no limit).
    #[arg(long, default_value_t = or_zero(DEFAULTS.frame_timeout))]
    frame_timeout: DurationArg,
    /// Stop reading a connection with more unsent output than this (bytes).
    #[arg(long, default_value_t = DEFAULTS.high_water)]
    high_water: usize,
    /// Resume reading once its unsent output is down to this (bytes).
    #[arg(long, default_value_t = DEFAULTS.low_water)]
    low_water: usize,
    /// Disconnect a connection whose output from others exceeds this (bytes).
    #[arg(long, default_value_t = DEFAULTS.max_output)]
    max_output: usize,
    /// Disconnect a connection whose output from others stays over
    /// --high-water this long.
    #[arg(long, default_value_t = DurationArg(DEFAULTS.slow_reader_timeout))]
    slow_reader_timeout: DurationArg,
    /// Bytes all connections may hold in buffers; past it, the connections
    /// holding the most are disconnected [default: a quarter of memory].
    #[arg(long, default_value_t = DEFAULTS.max_buffered, hide_default_value = true)]
    max_buffered: usize,
    /// Most connections at once [default: fd soft limit - 32, at most 10000].
    #[arg(long, default_value_t = DEFAULTS.max_connections, hide_default_value = true)]
    max_connections: usize,
    /// On SIGINT/SIGTERM, time allowed to flush replies.
    #[arg(long, default_value_t = DurationArg(DEFAULTS.shutdown_timeout))]
    shutdown_timeout: DurationArg,
    /// How long a closing connection waits for the peer's EOF after its
    /// last reply.
    #[arg(long, default_value_t = DurationArg(DEFAULTS.linger))]
    linger: DurationArg,
    /// Log the counters this often (0: never).
    #[arg(long, default_value_t = or_zero(DEFAULTS.stats_interval))]
    stats_interval: DurationArg,
    /// Also serve UDP datagrams on the same address and port.
    #[arg(long)]
    udp: bool,
    /// Event loops (threads), each with its own listener on the port: a
    /// number, or `auto` for one per CPU this process may use.
    #[arg(long, default_value = "1", value_parser = parse_reactors)]
    reactors: usize,
    /// Pin reactor i to CPU i.
    #[arg(long)]
    pin: bool,
    /// Record the loop's turns into FILE, a Chrome trace (open it in
    /// https://ui.perfetto.dev): every poll wait, read, dispatch and write.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// How many turns to record (each reactor) [default: 1000].
    #[arg(long, conflicts_with = "trace_for", requires = "trace")]
    trace_turns: Option<u64>,
    /// How long to record, instead of a number of turns.
    #[arg(long, requires = "trace")]
    trace_for: Option<DurationArg>,
}

fn parse_reactors(text: &str) -> Result<usize, String> {
    match text {
        "auto" => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => match n.parse::<usize>() {
            Ok(0) | Err(_) => Err(format!(
                "'{n}' is not a number of reactors (1 or more, or auto)"
            )),
            Ok(n) => Ok(n),
        },
    }
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        Ok(Config {
            addr: resolve(&self.addr)?[0],
            codec: self.codec.into(),
            max_frame: self.max_frame,
            key: args::key(self.key_file.as_deref())?,
            handshake_timeout: self.handshake_timeout.0,
            idle_timeout: off_if_zero(self.idle_timeout),
            frame_timeout: off_if_zero(self.frame_timeout),
            high_water: self.high_water,
            low_water: self.low_water,
            max_output: self.max_output,
            slow_reader_timeout: self.slow_reader_timeout.0,
            max_buffered: self.max_buffered,
            max_connections: self.max_connections,
            shutdown_timeout: self.shutdown_timeout.0,
            linger: self.linger.0,
            stats_interval: off_if_zero(self.stats_interval),
            udp: self.udp,
            ..Config::clone(&DEFAULTS)
        })
    }
}

/// How a server is started, beyond its `Config`.
pub(crate) struct Launch {
    reactors: usize,
    pin: bool,
    /// Where to write a trace, and of what window.
    trace: Option<(PathBuf, Window)>,
}

/// Binds and runs a server with one registered handler type.
type Serve = Box<dyn Fn(Config, &Launch) -> anyhow::Result<Stats>>;

/// A handler registered by name, with what it takes to serve it.
pub(crate) struct Registered {
    pub name: String,
    pub about: String,
    serve: Serve,
}

impl Registered {
    pub fn new<H>(name: &str, about: &str, make: impl Fn() -> H + 'static) -> Registered
    where
        H: Handler + Send,
        H::Conn: Send,
    {
        Registered {
            name: name.to_string(),
            about: about.to_string(),
            serve: Box::new(move |config, launch| {
                serve(
                    Server::bind_each(config, launch.reactors, |_| make())?,
                    launch,
                )
            }),
        }
    }
}

pub(crate) fn run(args: ServeArgs, handlers: &[Registered]) -> anyhow::Result<()> {
    let registered = handlers
        .iter()
        .find(|h| h.name == args.handler)
        .with_context(|| format!("no handler named {}", args.handler))?;
    let config = args.config()?;
    let window = match (args.trace_turns, args.trace_for) {
        (_, Some(every)) => Window::Duration(every.0),
        (Some(turns), None) => Window::Turns(turns),
        (None, None) => Window::Turns(1000),
    };
    let launch = Launch {
        reactors: args.reactors,
        pin: args.pin,
        trace: args.trace.clone().map(|path| (path, window)),
    };
    let stats = (registered.serve)(config, &launch)?;
    eprintln!("summary: {stats}");
    Ok(())
}

/// Runs a bound server until SIGINT/SIGTERM.
fn serve<H: Handler + Send>(mut server: Server<H>, launch: &Launch) -> anyhow::Result<Stats>
where
    H::Conn: Send,
{
    if launch.pin {
        server = server.on_thread_start(pin_to_core);
    }
    let mut trace = None;
    if let Some((path, window)) = launch.trace.clone() {
        let file = TraceFile::create(path, server.reactors())?;
        server = server.record(window, file.sink());
        trace = Some(file);
    }
    shut_down_on_signals(server.handle())?;
    let stats = server.run().context("event loop failed")?;
    if let Some(file) = trace {
        log::info!("{}", file.finish()?);
    }
    Ok(stats)
}

/// First SIGINT/SIGTERM: graceful shutdown. Second: the person means it.
fn shut_down_on_signals(handle: ServerHandle) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut received = signals.forever();
            if received.next().is_some() {
                handle.shutdown();
            }
            if received.next().is_some() {
                eprintln!("frameloop: second signal; exiting without flushing");
                std::process::exit(130);
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Pins the calling thread (reactor `index`) to CPU `index`.
fn pin_to_core(index: usize) {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    match cores.get(index % cores.len().max(1)) {
        Some(&core) if core_affinity::set_for_current(core) => {
            log::debug!("reactor {index} pinned to CPU {}", core.id);
        }
        _ => log::warn!("reactor {index}: cannot pin to a CPU"),
    }
}
