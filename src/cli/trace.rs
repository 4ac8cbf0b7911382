//! `serve --trace FILE`: the reactors' recordings as one Chrome trace.
//!
//! The Trace Event Format (the JSON that `chrome://tracing` and Perfetto
//! read): a "complete" event (`ph: X`) per span, on one track per reactor;
//! a counter event (`ph: C`) per turn for connections open, bytes buffered,
//! frames and bytes written; a metadata event naming each track.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::Context;
use serde_json::{Value, json};

use crate::trace::{Recording, Sink};

/// Collects one recording per reactor on a thread of its own, and writes
/// them as one file when all have come (or the server stopped).
pub(crate) struct TraceFile {
    sink: Sink,
    writer: JoinHandle<anyhow::Result<String>>,
}

impl TraceFile {
    /// Creates the file now (a path that cannot be written is an error at
    /// start-up, not after a whole run); it is written once the reactors
    /// have handed in their recordings.
    pub fn create(path: PathBuf, reactors: usize) -> anyhow::Result<TraceFile> {
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create trace file {}", path.display()))?;
        let (tx, rx) = mpsc::channel::<Recording>();
        let tx = std::sync::Mutex::new(tx);
        let sink: Sink = std::sync::Arc::new(move |recording| {
            if let Ok(tx) = tx.lock() {
                let _ = tx.send(recording);
            }
        });
        let writer = std::thread::spawn(move || {
            let recordings: Vec<Recording> = rx.iter().take(reactors).collect();
            let spans: usize = recordings.iter().map(|r| r.spans.len()).sum();
            let turns: u64 = recordings.iter().map(|r| r.turns).sum();
            let truncated = recordings.iter().any(|r| r.truncated);
            write_chrome_trace(&mut std::io::BufWriter::new(file), &recordings)
                .with_context(|| format!("cannot write trace file {}", path.display()))?;
            Ok(format!(
                "trace: {spans} spans over {turns} turns written to {}{}",
                path.display(),
                if truncated {
                    " (the span limit ended it early)"
                } else {
                    ""
                }
            ))
        });
        Ok(TraceFile { sink, writer })
    }

    /// Where the reactors hand their recordings.
    pub fn sink(&self) -> Sink {
        self.sink.clone()
    }

    /// Waits for the file to be written (every reactor has stopped by now,
    /// so every recording has come); returns what to tell the person.
    pub fn finish(self) -> anyhow::Result<String> {
        drop(self.sink);
        self.writer
            .join()
            .map_err(|_| anyhow::anyhow!("the trace writer panicked"))?
    }
}

/// Writes these recordings in the Trace Event Format, one event at a time
/// (a long window holds millions). Times are microseconds.
fn write_chrome_trace(out: &mut impl Write, recordings: &[Recording]) -> anyhow::Result<()> {
    let micros = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    let mut first = true;
    let mut event = |out: &mut dyn Write, event: Value| -> anyhow::Result<()> {
        out.write_all(if first { b"\n" } else { b",\n" })?;
        first = false;
        serde_json::to_writer(&mut *out, &event)?;
        Ok(())
    };
    out.write_all(b"{\"displayTimeUnit\": \"ms\", \"traceEvents\": [")?;
    for recording in recordings {
        let tid = recording.reactor;
        event(
            out,
            json!({
                "name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
                "args": { "name": format!("reactor {tid}") }
            }),
        )?;
        for span in &recording.spans {
            let mut args = json!({ "turn": span.turn });
            if let Some(conn) = span.conn {
                args["conn"] = json!(conn.to_string());
            }
            event(
                out,
                json!({
                    "name": span.kind.name(), "cat": "loop", "ph": "X", "pid": 1, "tid": tid,
                    "ts": micros(span.start), "dur": micros(span.duration), "args": args
                }),
            )?;
        }
        for sample in &recording.samples {
            let ts = micros(sample.at);
            for (name, value) in [
                ("connections open", sample.open),
                ("bytes buffered", sample.buffered),
                ("frames handled", sample.frames),
                ("bytes written", sample.bytes_out),
            ] {
                event(
                    out,
                    json!({
                        "name": format!("{name} (reactor {tid})"), "ph": "C", "pid": 1, "tid": tid,
                        "ts": ts, "args": { "value": value }
                    }),
                )?;
            }
        }
    }
    out.write_all(b"\n]}\n")?;
    out.flush()?;
    Ok(())
}
