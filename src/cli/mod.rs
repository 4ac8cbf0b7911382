//! The `frameloop` command line, as a library: your own binary gets every
//! `serve` flag, the logging, the signals and the graceful shutdown of
//! `frameloop serve`, for handlers you register by name.
//!
//! ```no_run
//! use frameloop::{Ctx, Handler};
//!
//! /// Replies to every frame with its length, as text.
//! struct Length;
//!
//! impl Handler for Length {
//!     type Conn = ();
//!     fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
//!         ctx.send(payload.len().to_string().as_bytes());
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     // my-server serve --handler length --addr 127.0.0.1:7000 --idle-timeout 30s ...
//!     frameloop::cli::Cli::with_builtins()
//!         .handler("length", "replies with each frame's length", || Length)
//!         .run()
//! }
//! ```
//!
//! This module owns parsing flags into a [`crate::Config`] (whose defaults
//! and rules it takes, never repeats), running the chosen command, and
//! turning every error into one line and an exit code: 0 done, 1 the work
//! failed (a bench with errors), 2 it could not start. It holds no logic the
//! library lacks.

mod args;
mod bench;
mod client;
mod serve;
mod trace;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::builder::PossibleValuesParser;
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::handler::Handler;
use crate::{ChatRoom, Echo, Upper};

pub(crate) use args::CodecName;
pub use args::parse_duration;

#[derive(Parser)]
#[command(
    name = "frameloop",
    version,
    about = "A single-threaded event-loop reactor on mio"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server.
    Serve(serve::ServeArgs),
    /// Send each MESSAGE as a frame (or datagram) and print each reply.
    Client(client::ClientArgs),
    /// Drive an echo server with many concurrent clients and report figures.
    Bench(bench::BenchArgs),
    /// Print a fresh 64-hex-character key: `frameloop keygen > key`.
    Keygen,
}

/// The command line, with the handlers `serve --handler NAME` can run.
pub struct Cli {
    handlers: Vec<serve::Registered>,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.handlers.iter().map(|h| h.name.as_str()).collect();
        f.debug_struct("Cli").field("handlers", &names).finish()
    }
}

impl Cli {
    /// A command line with no handlers yet.
    pub fn new() -> Cli {
        Cli {
            handlers: Vec::new(),
        }
    }

    /// A command line with the built-in handlers: `echo` (the default),
    /// `upper` and `chat`.
    pub fn with_builtins() -> Cli {
        Cli::new()
            .handler("echo", "sends every frame back", || Echo)
            .handler("upper", "sends every frame back upper-cased", || Upper)
            .handler("chat", "sends every frame to every other connection", {
                let room = ChatRoom::new(); // one room, however many reactors
                move || room.member()
            })
    }

    /// Registers a handler under `name`: `serve --handler NAME` runs it, with
    /// one instance from `make` per reactor. A later registration of the same
    /// name replaces the earlier one. The first one registered is the default.
    pub fn handler<H>(mut self, name: &str, about: &str, make: impl Fn() -> H + 'static) -> Cli
    where
        H: Handler + Send,
        H::Conn: Send,
    {
        self.handlers.retain(|h| h.name != name);
        self.handlers
            .push(serve::Registered::new(name, about, make));
        self
    }

    /// Runs the command the process arguments name; returns its exit code.
    pub fn run(self) -> ExitCode {
        self.run_with(std::env::args_os())
    }

    /// Runs the command `args` names (the first is the program's name).
    pub fn run_with(self, args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
        let command = match self.parse(args) {
            Ok(command) => command,
            Err(code) => return code,
        };
        // The bench installs a logger of its own: it holds the embedded
        // server's lines back while the progress lines print.
        if !matches!(command, Command::Bench(_)) {
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
                .init();
        }
        let result = match command {
            Command::Serve(args) => serve::run(args, &self.handlers),
            Command::Client(args) => client::run(args),
            Command::Bench(args) => return bench::run(args),
            Command::Keygen => crate::auth::generate_key()
                .map(|key| println!("{key}"))
                .map_err(anyhow::Error::from),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("frameloop: {e:#}");
                ExitCode::from(2)
            }
        }
    }

    /// Parses the flags; help and version print and exit 0, every other
    /// problem is one line and exit code 2.
    fn parse(
        &self,
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<Command, ExitCode> {
        let names: Vec<String> = self.handlers.iter().map(|h| h.name.clone()).collect();
        let list: Vec<String> = self
            .handlers
            .iter()
            .map(|h| format!("{}: {}", h.name, h.about))
            .collect();
        let default = names.first().cloned().unwrap_or_default();
        let command = Args::command().mut_subcommand("serve", |serve| {
            serve.mut_arg("handler", |arg| {
                arg.value_parser(PossibleValuesParser::new(names))
                    .required(false)
                    .default_value(default)
                    .long_help(format!("What to do with each frame. {}", list.join("; ")))
            })
        });
        let matches = command
            .try_get_matches_from(args)
            .and_then(|m| Args::from_arg_matches(&m));
        match matches {
            Ok(args) => Ok(args.command),
            Err(e) => match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    Err(ExitCode::SUCCESS)
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    Err(ExitCode::from(2))
                }
                _ => {
                    // One line: clap's message up to its usage block.
                    let rendered = e.render().to_string();
                    let message: Vec<&str> = rendered
                        .lines()
                        .take_while(|line| !line.trim().is_empty())
                        .map(str::trim)
                        .collect();
                    eprintln!(
                        "frameloop: {}",
                        message.join(" ").trim_start_matches("error: ")
                    );
                    Err(ExitCode::from(2))
                }
            },
        }
    }
}

impl Default for Cli {
    fn default() -> Cli {
        Cli::with_builtins()
    }
}

/// Takes `FLAG VALUE` out of `args` and returns the value: for a flag of your
/// own, before the rest of the command line goes to [`Cli::run_with`].
///
/// ```
/// let mut args: Vec<String> = ["me", "--every", "2s", "serve"].map(String::from).to_vec();
/// assert_eq!(frameloop::cli::take_flag(&mut args, "--every"), Ok(Some("2s".to_string())));
/// assert_eq!(args, ["me", "serve"]);
/// assert_eq!(frameloop::cli::take_flag(&mut args, "--every"), Ok(None));
/// ```
pub fn take_flag(args: &mut Vec<String>, flag: &str) -> Result<Option<String>, String> {
    let Some(at) = args.iter().position(|a| a == flag) else {
        return Ok(None);
    };
    let value = args
        .get(at + 1)
        .cloned()
        .ok_or(format!("{flag} needs a value"))?;
    args.drain(at..at + 2);
    Ok(Some(value))
}

/// What the `frameloop` binary runs: the built-in handlers.
pub fn main() -> ExitCode {
    Cli::with_builtins().run()
}
