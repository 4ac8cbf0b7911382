//! Flag types shared by the commands: durations, codecs, keys.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum;

use crate::auth::Key;
use crate::config::Codec;

/// A duration flag: `250ms`, `5s`, `2m`, `1h 30m` (humantime), or a bare
/// number of seconds (`5`, `0.5`). Shown in help in the same form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

impl FromStr for DurationArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<f64>() {
            return Duration::try_from_secs_f64(seconds)
                .map(DurationArg)
                .map_err(|_| format!("'{text}' is not a duration of zero or more seconds"));
        }
        humantime::parse_duration(text)
            .map(DurationArg)
            .map_err(|e| format!("'{text}' is not a duration ({e}; try 250ms, 5s or 2m)"))
    }
}

impl fmt::Display for DurationArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.is_zero() {
            true => f.write_str("0"),
            false => write!(f, "{}", humantime::format_duration(self.0)),
        }
    }
}

/// An optional duration: zero on the command line means "off".
pub fn off_if_zero(arg: DurationArg) -> Option<Duration> {
    (!arg.0.is_zero()).then_some(arg.0)
}

/// How an optional duration is shown as a default ("0" when off).
pub fn or_zero(duration: Option<Duration>) -> DurationArg {
    DurationArg(duration.unwrap_or_default())
}

/// `--codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecName {
    /// Length-prefixed frames.
    Frame,
    /// Bytes as read, replies as written.
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

/// Reads `--key-file`, if given.
pub fn key(path: Option<&Path>) -> Result<Option<Key>, crate::Error> {
    path.map(Key::from_file).transpose()
}

/// Parses a duration as every `frameloop` flag does: `250ms`, `5s`, `2m`,
/// `1h 30m`, or a bare number of seconds. For flags of your own.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(frameloop::cli::parse_duration("1.5"), Ok(Duration::from_millis(1500)));
/// assert!(frameloop::cli::parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    text.parse::<DurationArg>().map(|d| d.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        let parse = |t: &str| t.parse::<DurationArg>().map(|d| d.0);
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse("-1").is_err());
        assert!(parse("soon").is_err());
        assert_eq!(DurationArg(Duration::from_secs(300)).to_string(), "5m");
        assert_eq!(DurationArg(Duration::ZERO).to_string(), "0");
    }
}
