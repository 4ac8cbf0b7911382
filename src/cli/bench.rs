//! `frameloop bench`: flags to a [`BenchConfig`], the report to stdout.
//!
//! Every default comes from `BenchConfig::default()`; this file only parses,
//! resolves the address (once, before any clock starts), chooses the output
//! (text, `--json`, `--csv`, `--hdr-log`, `--plot`) and the exit code.

use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{CodecName, parse_duration};
use crate::bench::sweep::{self, Sweep};
use crate::bench::{self, BenchConfig, IntervalView, Report, Verify, hdr_log, plot};

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Server to load, HOST:PORT (resolved once, before the clock)
    /// [default: an embedded frameloop on 127.0.0.1:0, on a core of its own].
    #[arg(long)]
    addr: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = defaults().connections)]
    connections: usize,
    /// Payload bytes per request.
    #[arg(long, default_value_t = defaults().size)]
    size: usize,
    /// Requests in flight per connection (closed loop).
    #[arg(long, default_value_t = defaults().depth)]
    depth: usize,
    /// How long to measure (with --requests: at most this long).
    #[arg(long, default_value_t = Span(defaults().duration))]
    duration: Span,
    /// How long to run before measuring (not counted).
    #[arg(long, default_value_t = Span(defaults().warmup))]
    warmup: Span,
    /// Stop after this many verified replies in the measured window.
    #[arg(long)]
    requests: Option<u64>,
    /// Client threads, each with its own poll loop.
    #[arg(long, default_value_t = defaults().threads)]
    threads: usize,
    /// Length-prefixed frames, or raw byte echo (for any echo server).
    #[arg(long, value_enum, default_value = "frame")]
    codec: CodecName,
    /// How replies are checked: echo (byte for byte), upper (ASCII
    /// upper-cased, `serve --handler upper`) or none (any reply counts).
    #[arg(long, value_enum, default_value = "echo")]
    verify: VerifyName,
    /// Answer the server's challenge with this key.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Open loop: total requests per second (latency from each request's
    /// scheduled send time).
    #[arg(long)]
    rate: Option<f64>,
    /// A request unanswered this long fails its connection (also the
    /// connect and challenge timeout).
    #[arg(long, default_value_t = Span(defaults().timeout))]
    timeout: Span,
    /// Latency percentiles to report; `max` is the maximum.
    #[arg(long, default_value_t = Percentiles(defaults().percentiles))]
    percentiles: Percentiles,
    /// Run once per value, e.g. connections=1,10,100 (also size=, depth=),
    /// and print one table.
    #[arg(long)]
    sweep: Option<Sweep>,
    /// Draw an SVG: throughput and p50/p99 against the swept value, or for
    /// one run the latency percentile spectrum.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write the measured intervals as an HdrHistogram interval log.
    #[arg(long)]
    hdr_log: Option<PathBuf>,
    /// Print the summary as one JSON object (configuration, summary,
    /// per-second series).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print the summary as CSV: a header and one row per run (per cell).
    #[arg(long)]
    csv: bool,
    /// Do not pin the embedded server and the bench threads to cores.
    #[arg(long)]
    no_pin: bool,
}

fn defaults() -> BenchConfig {
    BenchConfig::default()
}

/// A duration flag: `250ms`, `5s`, `2m`, or a bare number of seconds.
#[derive(Clone, Copy)]
struct Span(Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(text: &str) -> Result<Span, String> {
        parse_duration(text).map(Span)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// `50,90,99,99.9,99.99,max`.
#[derive(Clone)]
struct Percentiles(Vec<f64>);

impl FromStr for Percentiles {
    type Err = String;
    fn from_str(text: &str) -> Result<Percentiles, String> {
        text.split(',')
            .map(|p| match p.trim() {
                "max" => Ok(100.0),
                p => p
                    .parse::<f64>()
                    .ok()
                    .filter(|p| *p > 0.0 && *p <= 100.0)
                    .ok_or_else(|| format!("'{p}' is not a percentile in (0, 100] or max")),
            })
            .collect::<Result<_, _>>()
            .map(Percentiles)
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .0
            .iter()
            .map(|&p| match p >= 100.0 {
                true => "max".into(),
                false => p.to_string(),
            })
            .collect();
        f.write_str(&names.join(","))
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum VerifyName {
    Echo,
    Upper,
    None,
}

impl From<VerifyName> for Verify {
    fn from(name: VerifyName) -> Verify {
        match name {
            VerifyName::Echo => Verify::Echo,
            VerifyName::Upper => Verify::Upper,
            VerifyName::None => Verify::None,
        }
    }
}

/// Resolves `HOST:PORT` once; the first address wins.
fn resolve(text: &str) -> Result<SocketAddr, String> {
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("--addr {text}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("--addr {text}: no address found"))
}

/// Log records held back while the progress lines print, so that the
/// embedded server's lines never land among them; written out after.
#[derive(Clone, Default)]
struct HeldLog(Arc<Mutex<Vec<u8>>>);

impl Write for HeldLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut held) = self.0.lock() {
            held.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl HeldLog {
    /// Installs it as the logger (`RUST_LOG` as usual, `info` by default).
    fn install() -> HeldLog {
        let held = HeldLog::default();
        let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
            .target(env_logger::Target::Pipe(Box::new(held.clone())))
            .try_init();
        held
    }

    /// Writes what was held to stderr.
    fn release(&self) {
        if let Ok(mut held) = self.0.lock()
            && !held.is_empty()
        {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(b"server log during the run:\n");
            let _ = stderr.write_all(&held);
            held.clear();
        }
    }
}

/// Exit 0 if every reply checked out, 1 on any error or no verified reply,
/// 2 if it could not run.
pub(crate) fn run(args: BenchArgs) -> ExitCode {
    let held = HeldLog::install();
    let result = run_with(args, &held);
    held.release();
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("frameloop: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_with(args: BenchArgs, held: &HeldLog) -> Result<ExitCode, String> {
    let key = match &args.key_file {
        Some(path) => Some(crate::Key::from_file(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let addr = match &args.addr {
        Some(text) => Some(resolve(text)?),
        None => None,
    };
    let config = BenchConfig {
        addr,
        connections: args.connections,
        size: args.size,
        depth: args.depth,
        duration: args.duration.0,
        warmup: args.warmup.0,
        threads: args.threads,
        codec: args.codec.into(),
        key,
        rate: args.rate,
        requests: args.requests,
        verify: args.verify.into(),
        timeout: args.timeout.0,
        percentiles: args.percentiles.0.clone(),
        pin: !args.no_pin,
        progress: true,
    };
    let cells = match &args.sweep {
        None => vec![(None, config)],
        Some(sweep) => sweep
            .cells(&config)
            .into_iter()
            .map(|(v, c)| (Some(v), c))
            .collect(),
    };
    let total = cells.len();
    let mut reports: Vec<(Option<u64>, Report)> = Vec::new();
    let mut run_all = |sink: &mut hdr_log::Sink<'_>| -> Result<(), String> {
        for (n, (value, config)) in cells.iter().enumerate() {
            let tag = value
                .map(|v| format!("{}={v}", args.sweep.as_ref().map_or("", |s| s.param.name())));
            if let Some(tag) = &tag {
                eprintln!("sweep {tag} ({}/{total})", n + 1);
            }
            let report = bench::run_observed(config, &mut |view: &IntervalView<'_>| {
                sink(view, tag.as_deref())
            })
            .map_err(|e| e.to_string())?;
            // The embedded server's log of this cell, before its summary.
            held.release();
            if args.sweep.is_some() && !args.json && !args.csv {
                eprintln!("{report}");
            }
            reports.push((*value, report));
        }
        Ok(())
    };
    match &args.hdr_log {
        Some(path) => hdr_log::record(path, |sink| run_all(sink))??,
        None => run_all(&mut |_, _| {})?,
    }

    let swept = args.sweep.as_ref().map(|s| s.param.name());
    if args.json {
        println!("{}", sweep::to_json(args.sweep.as_ref(), &reports));
    } else if args.csv {
        println!("{}", Report::csv_header(&config_percentiles(&args), swept));
        for (value, report) in &reports {
            println!("{}", report.csv_row(*value));
        }
    } else if let Some(sweep) = &args.sweep {
        print!("{}", sweep::table(sweep, &reports));
    } else if let Some((_, report)) = reports.first() {
        println!("{report}");
    }
    if let Some(path) = &args.plot {
        match &args.sweep {
            Some(sweep) => plot::sweep(path, sweep, &reports)?,
            None => plot::spectrum(path, &reports[0].1)?,
        }
        eprintln!("wrote {}", path.display());
    }

    let mut code = ExitCode::SUCCESS;
    for (value, report) in &reports {
        let cell = value
            .map(|v| format!(" ({}={v})", swept.unwrap_or_default()))
            .unwrap_or_default();
        // No reply at all is a failure too: a server that accepts and
        // never answers must not pass as error-free.
        if report.messages == 0 {
            eprintln!("frameloop: no verified reply arrived in the measured window{cell}");
            code = ExitCode::from(1);
        } else if report.all_errors() > 0 {
            code = ExitCode::from(1);
        }
    }
    Ok(code)
}

fn config_percentiles(args: &BenchArgs) -> Vec<f64> {
    args.percentiles.0.clone()
}
