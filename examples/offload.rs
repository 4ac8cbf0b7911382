//! Slow work off the loop: each job runs on a pool of worker threads, and
//! its result comes back to the loop through the reactor's mailbox.
//!
//! ```sh
//! cargo run --example offload -- serve --addr 127.0.0.1:9000
//! cargo run -- client --addr 127.0.0.1:9000 "job 3000 hello" &   # "done hello", 3 s later
//! cargo run -- client --addr 127.0.0.1:9000 ping               # "ping" at once, meanwhile
//! ```
//!
//! ```text
//! "job <ms> <data>"  ->  "done <data>", after <ms> (at most 60,000) of work
//!                        on a worker thread; "ERR busy" if 1,024 wait already
//! "stats"            ->  "done N dropped M": jobs answered, and results whose
//!                        client had left by the time they were ready
//! anything else      ->  echoed at once, however many jobs are running
//! ```
//!
//! What it shows: a handler must never block the loop, so blocking work goes
//! to threads, and its result is *posted* back (`Mailbox::post`): a closure
//! the loop runs with the handler, on its own thread. The result names its
//! requester by `ConnId`; if that connection closed meanwhile, `send_to`
//! says so (the generation rule: never a newcomer in the same slot), and the
//! result is dropped and counted.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use frameloop::{Ctx, Handler, PostError};

/// Worker threads: enough to run many sleeping jobs at once.
const WORKERS: usize = 32;

/// Jobs waiting for a worker, at most; more are refused ("ERR busy"): the
/// queue, like every queue here, is bounded.
const QUEUE: usize = 1024;

/// The longest job accepted.
const LONGEST: u64 = 60_000;

/// Work for a worker thread.
type Job = Box<dyn FnOnce() + Send>;

struct Offload {
    /// Where jobs go; the workers take them from the other end.
    pool: mpsc::SyncSender<Job>,
    done: u64,
    dropped: u64,
}

impl Offload {
    fn new() -> Offload {
        let (pool, jobs) = mpsc::sync_channel::<Job>(QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..WORKERS {
            let jobs = jobs.clone();
            std::thread::spawn(move || {
                // Blocking here is the point: this is not the loop's thread.
                while let Ok(job) = jobs
                    .lock()
                    .map_err(drop)
                    .and_then(|j| j.recv().map_err(drop))
                {
                    job();
                }
            });
        }
        Offload {
            pool,
            done: 0,
            dropped: 0,
        }
    }
}

impl Handler for Offload {
    type Conn = ();

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, payload: &[u8]) {
        if payload == b"stats" {
            let line = format!("done {} dropped {}", self.done, self.dropped);
            return ctx.send(line.as_bytes());
        }
        let Some(job) = payload.strip_prefix(b"job ") else {
            return ctx.send(payload); // the loop answers at once
        };
        let (millis, data) = match job.iter().position(|&b| b == b' ') {
            Some(at) => (&job[..at], job[at + 1..].to_vec()),
            None => (job, Vec::new()),
        };
        let Some(millis) = std::str::from_utf8(millis)
            .ok()
            .and_then(|m| m.parse().ok())
            .filter(|&m| m <= LONGEST)
        else {
            return ctx.send(b"ERR usage: job <ms> <data>, at most 60000 ms");
        };
        let (requester, mailbox) = (ctx.id(), ctx.mailbox());
        let job = Box::new(move || {
            std::thread::sleep(Duration::from_millis(millis)); // the slow part
            let mut posted = mailbox.post(move |offload, ctx| {
                let mut reply = b"done ".to_vec();
                reply.extend_from_slice(&data);
                match ctx.send_to(requester, &reply) {
                    true => offload.done += 1,
                    false => {
                        log::info!("job for {requester} dropped: its client left");
                        offload.dropped += 1;
                    }
                }
            });
            // A full mailbox hands the result back: this thread may wait.
            while let Err(refused) = posted {
                if refused.reason() == PostError::Stopped {
                    break; // the server is gone
                }
                std::thread::sleep(Duration::from_millis(1));
                posted = refused.retry(&mailbox);
            }
        });
        if self.pool.try_send(job).is_err() {
            ctx.send(b"ERR busy"); // never wait on the loop's thread
        }
    }
}

fn main() -> std::process::ExitCode {
    frameloop::cli::Cli::new()
        .handler("offload", "runs jobs on worker threads", Offload::new)
        .run()
}
