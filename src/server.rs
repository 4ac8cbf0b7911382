//! A server: its reactors, the threads they run on, and handles to them.
//!
//! A [`Server`] is one reactor (the default) or several, each a
//! single-threaded loop with its own `Poll`, listener, connections, buffers,
//! timers and handler instance, like nginx's workers or Seastar's shards.
//! With more than one, every reactor listens on the same port
//! (`SO_REUSEPORT`: the kernel spreads new connections, and datagrams, over
//! them); they share nothing but a stop flag, the server-wide connection
//! count (one atomic add per accept and per close, never per frame), and the
//! mailboxes they use to reach each other's connections.
//!
//! This module owns binding (after [`Config::validate`]), starting the
//! reactors' threads, and the [`ServerHandle`] that stops them and sums
//! their counters. It never touches a connection.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use log::{info, warn};
use mio::Waker;

use crate::config::Config;
use crate::error::Error;
use crate::handler::Handler;
use crate::mailbox::Mailbox;
use crate::reactor::{Reactor, Shared};
use crate::stats::{Counters, Stats};

/// A callback run first thing on each reactor's thread, with the reactor's
/// index (to pin it to a core, name it, set its priority).
type ThreadStart = Arc<dyn Fn(usize) + Send + Sync>;

/// A frameloop server: bound, not yet running. [`Server::run`] runs it on the
/// calling thread (and, with several reactors, threads of its own);
/// [`crate::spawn`] runs it on a thread of its own.
pub struct Server<H: Handler> {
    reactors: Vec<Reactor<H>>,
    local_addr: SocketAddr,
    handle: ServerHandle,
    thread_start: Option<ThreadStart>,
}

impl<H: Handler> fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("reactors", &self.reactors.len())
            .finish_non_exhaustive()
    }
}

impl<H: Handler> Server<H> {
    /// Checks `config` ([`Config::validate`]) and binds the listener (and
    /// the UDP socket with `config.udp`) for one reactor serving `handler`.
    ///
    /// For several reactors, each needs a handler of its own: use
    /// [`Server::bind_each`].
    pub fn bind(config: Config, handler: H) -> Result<Server<H>, Error> {
        Server::bind_reactors(config, std::iter::once(handler))
    }

    /// Checks `config` and binds `reactors` reactors on `config.addr`, each
    /// with the handler `make(index)` returns. State the handlers share
    /// travels between them as messages ([`crate::LoopCtx::post_to`]).
    pub fn bind_each(
        config: Config,
        reactors: usize,
        make: impl FnMut(usize) -> H,
    ) -> Result<Server<H>, Error> {
        Server::bind_reactors(config, (0..reactors).map(make))
    }

    fn bind_reactors(
        config: Config,
        handlers: impl ExactSizeIterator<Item = H>,
    ) -> Result<Server<H>, Error> {
        let count = handlers.len();
        config.validate()?;
        if !(1..=MAX_REACTORS).contains(&count) {
            return Err(crate::config::ConfigError {
                flag: "reactors",
                problem: format!("must be between 1 and {MAX_REACTORS}"),
            }
            .into());
        }
        let shared = Arc::new(Shared {
            congested: (0..count).map(|_| AtomicBool::new(false)).collect(),
            udp_guard: config
                .key
                .as_ref()
                .filter(|_| config.udp)
                .map(crate::auth::datagram::Guard::new),
            ..Shared::default()
        });
        let budget = config.max_buffered.div_ceil(count);
        let several = count > 1;
        if several && config.addr.port() != 0 {
            refuse_taken_port(&config)?;
        }
        let mut reactors = Vec::with_capacity(count);
        let mut addr = config.addr;
        for (index, handler) in handlers.enumerate() {
            let reactor = Reactor::bind(
                index,
                &config,
                addr,
                several,
                budget,
                handler,
                shared.clone(),
            )?;
            // Port 0 is resolved by the first bind; the others join it.
            addr = reactor.local_addr();
            reactors.push(reactor);
        }
        let mailboxes: Vec<Mailbox<H>> = reactors.iter().map(|r| r.mailbox().clone()).collect();
        for reactor in &mut reactors {
            reactor.meet(&mailboxes);
        }
        let handle = ServerHandle {
            shared,
            wakers: mailboxes.iter().map(|m| m.waker()).collect(),
            counters: reactors.iter().map(|r| r.counters().clone()).collect(),
        };
        Ok(Server {
            reactors,
            local_addr: addr,
            handle,
            thread_start: None,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many reactors it has.
    pub fn reactors(&self) -> usize {
        self.reactors.len()
    }

    /// A handle to stop the server and read its counters from another thread.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// The mailbox of reactor `index` (0 with one reactor): other threads
    /// post messages to its handler through it.
    pub fn mailbox(&self, index: usize) -> Option<Mailbox<H>> {
        self.reactors.get(index).map(|r| r.mailbox().clone())
    }

    /// Records a window of each reactor's turns (see [`crate::trace`]); each
    /// reactor hands its [`crate::trace::Recording`] to `sink` when its
    /// window is over, or when it stops.
    pub fn record(mut self, window: crate::trace::Window, sink: crate::trace::Sink) -> Self {
        for reactor in &mut self.reactors {
            reactor.record(window, sink.clone());
        }
        self
    }

    /// Runs `start(index)` first thing on each reactor's thread (the calling
    /// thread is reactor 0's): to pin reactor `i` to core `i`, say.
    pub fn on_thread_start(mut self, start: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.thread_start = Some(Arc::new(start));
        self
    }
}

/// Several reactors bind with `SO_REUSEPORT`, and so may any other process
/// of the same user: without this check, a second server on a port already
/// served would silently share its connections. A bind without the option
/// fails as any bind on a taken port does.
fn refuse_taken_port(config: &Config) -> Result<(), Error> {
    let addr = config.addr;
    drop(std::net::TcpListener::bind(addr).map_err(|e| Error::bind(addr, e))?);
    if config.udp {
        drop(std::net::UdpSocket::bind(addr).map_err(|e| Error::bind(addr, e))?);
    }
    Ok(())
}

/// More reactors than this is a typo, not a machine.
const MAX_REACTORS: usize = 1024;

impl<H: Handler + Send> Server<H>
where
    H::Conn: Send,
{
    /// Runs until a shutdown completes ([`ServerHandle::shutdown`]); returns
    /// the final counters, summed over the reactors. Reactor 0 runs on the
    /// calling thread, the others on threads of their own.
    pub fn run(self) -> io::Result<Stats> {
        let Server {
            reactors,
            handle,
            thread_start,
            ..
        } = self;
        let mut reactors = reactors.into_iter();
        let Some(first) = reactors.next() else {
            return Ok(Stats::default());
        };
        let mut threads: Vec<JoinHandle<io::Result<Stats>>> = Vec::new();
        for (i, reactor) in reactors.enumerate() {
            let start = thread_start.clone();
            let thread = std::thread::Builder::new()
                .name(format!("frameloop-{}", i + 1))
                .spawn(move || {
                    if let Some(start) = start {
                        start(i + 1);
                    }
                    reactor.run()
                });
            match thread {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    handle.shutdown();
                    return Err(e);
                }
            }
        }
        if let Some(start) = &thread_start {
            start(0);
        }
        let mut result = first.run();
        if result.is_err() {
            handle.shutdown(); // the others must not run on alone
        }
        for thread in threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a reactor thread panicked")));
            match (&mut result, outcome) {
                (Ok(total), Ok(stats)) => total.absorb(&stats),
                (Ok(_), Err(e)) => result = Err(e),
                (Err(_), _) => {}
            }
        }
        if let Ok(stats) = &result {
            info!("stopped: {stats}");
        }
        result
    }
}

/// Controls a running server from another thread: stop it, read its counters.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    wakers: Vec<Arc<Waker>>,
    counters: Vec<Arc<Counters>>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("reactors", &self.wakers.len())
            .field("stopping", &self.shared.stop.load(Ordering::Relaxed))
            .finish()
    }
}

impl ServerHandle {
    /// Begins a graceful shutdown of every reactor: take in the connections
    /// already in the listen queue, close the listener, answer what already
    /// arrived, flush replies (up to `shutdown_timeout`), close
    /// everything, return.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for waker in &self.wakers {
            if let Err(e) = waker.wake() {
                warn!("cannot wake an event loop for shutdown: {e}");
            }
        }
    }

    /// The counters now, summed over the reactors.
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for counters in &self.counters {
            total.absorb(&counters.snapshot());
        }
        total
    }

    /// The counters of each reactor.
    pub fn stats_per_reactor(&self) -> Vec<Stats> {
        self.counters.iter().map(|c| c.snapshot()).collect()
    }
}

/// A server running on a thread of its own (tests, benchmarks, embedding).
/// Dropping it shuts the server down and waits for it.
pub struct RunningServer {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<io::Result<Stats>>>,
}

impl fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .field("handle", &self.handle)
            .finish()
    }
}

/// Binds a one-reactor server on the calling thread (so bind errors come back
/// here), then runs it on a new thread.
///
/// # Examples
///
/// ```
/// use frameloop::{Client, Config, Echo};
///
/// let server = frameloop::spawn(Config::loopback(), Echo)?;
/// let mut client = Client::connect(server.addr())?;
/// assert_eq!(client.request(b"ping")?, b"ping");
/// let stats = server.stop()?; // graceful: replies flushed, then closed
/// assert_eq!(stats.frames, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spawn<H: Handler + Send>(config: Config, handler: H) -> Result<RunningServer, Error>
where
    H::Conn: Send,
{
    RunningServer::start(Server::bind(config, handler)?)
}

impl RunningServer {
    /// Runs a bound server on a thread of its own.
    pub fn start<H: Handler + Send>(server: Server<H>) -> Result<RunningServer, Error>
    where
        H::Conn: Send,
    {
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("frameloop".into())
            .spawn(move || server.run())?;
        Ok(RunningServer {
            addr,
            handle,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its handle: counters, shutdown.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Shuts it down gracefully and waits; returns the final counters.
    pub fn stop(mut self) -> io::Result<Stats> {
        self.handle.shutdown();
        self.join()
    }

    /// Waits for the loop to end (after a shutdown from elsewhere).
    pub fn join(&mut self) -> io::Result<Stats> {
        match self.thread.take() {
            None => Ok(self.handle.stats()),
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the server thread panicked"))),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.handle.shutdown();
            let _ = self.join();
        }
    }
}
