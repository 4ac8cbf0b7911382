//! `--hdr-log FILE`: the measured intervals as an HdrHistogram interval log.
//!
//! The format is HdrHistogram's own (one line per interval: start, length,
//! max, the histogram compressed and base64-encoded), so its log processor
//! (`HistogramLogProcessor`) and plotter read the file as they read
//! jHiccup's. Values are nanoseconds; the max column is in milliseconds, as
//! jHiccup writes it. A sweep writes every cell into one log, each line
//! tagged with its cell (`connections=10`). This module only writes files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::IntervalView;

/// What appends one interval to the log: the view and an optional tag.
pub type Sink<'s> = dyn FnMut(&IntervalView<'_>, Option<&str>) + 's;

/// Creates `path`, writes the log's header, runs `body` with a sink that
/// appends each measured interval, and closes the log. The first write
/// error is returned after `body` finished (the run is not cut short).
pub fn record<T>(path: &Path, body: impl FnOnce(&mut Sink<'_>) -> T) -> Result<T, String> {
    let name = path.display();
    let file = File::create(path).map_err(|e| format!("--hdr-log {name}: {e}"))?;
    let mut out = BufWriter::new(file);
    let mut serializer = V2DeflateSerializer::new();
    let log_start = SystemTime::now();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("frameloop bench: latency of verified replies, in nanoseconds")
        .add_comment("measured intervals only (the warm-up is left out); max column in ms")
        .with_start_time(log_start)
        .with_base_time(log_start)
        .with_max_value_divisor(1e6)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| format!("--hdr-log {name}: {e}"))?;
    let mut failed: Option<String> = None;
    let result = body(&mut |view, tag| {
        if !view.measured || failed.is_some() {
            return;
        }
        // Timestamps relative to the log's start (its StartTime header).
        let since = view.started.duration_since(log_start).unwrap_or_default()
            + Duration::from_secs_f64(view.from_s);
        let written = writer.write_histogram(
            view.histogram,
            since,
            Duration::from_secs_f64(view.seconds),
            tag.and_then(Tag::new),
        );
        if let Err(e) = written {
            failed = Some(format!("{e:?}"));
        }
    });
    drop(writer);
    if let Err(e) = out.flush() {
        failed.get_or_insert(e.to_string());
    }
    match failed {
        Some(e) => Err(format!("--hdr-log {name}: {e}")),
        None => Ok(result),
    }
}
