//! The embedded echo server (no `--addr`), on a core of its own.
//!
//! With two or more cores the server's thread is pinned to the first core
//! the process may use and the bench threads to the others, so the client
//! and the server do not take turns on one core and the figures say what
//! the server does with a core. The server thread is spawned from a helper
//! thread pinned first: a new thread inherits its creator's affinity, and
//! the library's `spawn` needs no knowledge of cores. With one core, nothing
//! is pinned. This module never touches the bench's sockets.

use std::net::SocketAddr;

use core_affinity::CoreId;

use super::{BenchConfig, BenchError};
use crate::frame::DEFAULT_MAX_FRAME;
use crate::{Config, Echo, RunningServer};

/// A running embedded server and where the bench threads should run.
pub(crate) struct Embedded {
    pub server: RunningServer,
    /// Cores for the bench threads (empty: not pinned).
    pub bench_cores: Vec<CoreId>,
    /// `server on core 0, bench on core 1`, if pinned.
    pub pinning: Option<String>,
}

pub(crate) fn start(config: &BenchConfig) -> Result<Embedded, BenchError> {
    let server_config = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        codec: config.codec,
        key: config.key.clone(),
        max_frame: config.size.max(DEFAULT_MAX_FRAME),
        max_connections: config.connections + 16,
        ..Config::default()
    };
    let cores = match config.pin {
        true => core_affinity::get_core_ids().unwrap_or_default(),
        false => Vec::new(),
    };
    let spawn = |server_config| {
        crate::spawn(server_config, Echo).map_err(|e| BenchError::Setup(e.to_string()))
    };
    let [server_core, bench_cores @ ..] = cores.as_slice() else {
        return Ok(Embedded {
            server: spawn(server_config)?,
            bench_cores: Vec::new(),
            pinning: None,
        });
    };
    if bench_cores.is_empty() {
        return Ok(Embedded {
            server: spawn(server_config)?,
            bench_cores: Vec::new(),
            pinning: None,
        });
    }
    let server_core = *server_core;
    let server = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                core_affinity::set_for_current(server_core);
                spawn(server_config)
            })
            .join()
            .map_err(|_| BenchError::Setup("the embedded server's start panicked".into()))?
    })?;
    let ids: Vec<String> = bench_cores.iter().map(|c| c.id.to_string()).collect();
    Ok(Embedded {
        server,
        bench_cores: bench_cores.to_vec(),
        pinning: Some(format!(
            "server on core {}, bench on core {}",
            server_core.id,
            ids.join(",")
        )),
    })
}
