//! `--sweep connections=1,10,100`: one run per value, one table.
//!
//! Each cell is a whole run of its own (its own embedded server, warm-up and
//! measured window), with one setting replaced by the cell's value. This
//! module owns the parameter, the cells and the table; it measures nothing
//! itself.

use std::fmt::Write as _;
use std::str::FromStr;

use serde::Serialize;

use super::report::human_us;
use super::{BenchConfig, Report, thousands};

/// The setting a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Param {
    /// `--connections`.
    Connections,
    /// `--size`.
    Size,
    /// `--depth`.
    Depth,
}

impl Param {
    /// The flag's name, without dashes.
    pub fn name(self) -> &'static str {
        match self {
            Param::Connections => "connections",
            Param::Size => "size",
            Param::Depth => "depth",
        }
    }

    /// The axis label, with its unit.
    pub fn label(self) -> &'static str {
        match self {
            Param::Connections => "connections",
            Param::Size => "payload size (bytes)",
            Param::Depth => "requests in flight per connection",
        }
    }
}

/// A parameter and its values, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sweep {
    /// What is swept.
    pub param: Param,
    /// One cell per value.
    pub values: Vec<u64>,
}

impl FromStr for Sweep {
    type Err = String;

    fn from_str(text: &str) -> Result<Sweep, String> {
        let hint = "write NAME=V1,V2,... with NAME connections, size or depth";
        let (name, list) = text
            .split_once('=')
            .ok_or_else(|| format!("'{text}': {hint}"))?;
        let param = match name.trim() {
            "connections" => Param::Connections,
            "size" => Param::Size,
            "depth" => Param::Depth,
            other => return Err(format!("'{other}' cannot be swept: {hint}")),
        };
        let values = list
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("'{}' is not a whole number: {hint}", v.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sweep { param, values })
    }
}

impl Sweep {
    /// One configuration per value. Threads never exceed connections.
    pub fn cells(&self, base: &BenchConfig) -> Vec<(u64, BenchConfig)> {
        self.values
            .iter()
            .map(|&value| {
                let mut config = base.clone();
                let v = usize::try_from(value).unwrap_or(usize::MAX);
                match self.param {
                    Param::Connections => {
                        config.connections = v;
                        config.threads = config.threads.min(v.max(1));
                    }
                    Param::Size => config.size = v,
                    Param::Depth => config.depth = v,
                }
                (value, config)
            })
            .collect()
    }
}

/// One row per cell, aligned.
pub fn table(sweep: &Sweep, cells: &[(Option<u64>, Report)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>13} {:>10} {:>11} {:>11} {:>11} {:>11} {:>8} {:>8}  errors",
        sweep.param.name(),
        "msgs/s",
        "MB/s recv",
        "p50",
        "p99",
        "p99.9",
        "max",
        "owed",
        "seconds"
    );
    for (value, r) in cells {
        let l = r.latency_us.as_ref();
        let p = |q: f64| {
            l.and_then(|l| l.percentiles.iter().find(|x| x.0 == q))
                .map_or("-".into(), |x| human_us(x.1))
        };
        let _ = writeln!(
            out,
            "{:>12} {:>13} {:>10.2} {:>11} {:>11} {:>11} {:>11} {:>8} {:>8.2}  {}",
            value.unwrap_or_default(),
            thousands(r.msgs_per_sec),
            r.mb_per_sec_received,
            l.map_or("-".into(), |_| p(50.0)),
            p(99.0),
            p(99.9),
            l.map_or("-".into(), |l| human_us(l.max)),
            r.owed.requests,
            r.seconds,
            r.errors
        );
    }
    out
}

/// One run's report, or for a sweep `{"sweep": {...}, "cells": [...]}`.
pub fn to_json(sweep: Option<&Sweep>, cells: &[(Option<u64>, Report)]) -> String {
    match sweep {
        None => cells.first().map(|(_, r)| r.to_json()).unwrap_or_default(),
        Some(sweep) => {
            #[derive(Serialize)]
            struct Cell<'a> {
                value: Option<u64>,
                report: &'a Report,
            }
            #[derive(Serialize)]
            struct Out<'a> {
                sweep: &'a Sweep,
                cells: Vec<Cell<'a>>,
            }
            let out = Out {
                sweep,
                cells: cells
                    .iter()
                    .map(|(value, report)| Cell {
                        value: *value,
                        report,
                    })
                    .collect(),
            };
            serde_json::to_string(&out).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_is_a_name_and_values_and_anything_else_is_refused_with_a_hint() {
        let sweep: Sweep = "connections=1,10,100".parse().unwrap();
        assert_eq!(sweep.param, Param::Connections);
        assert_eq!(sweep.values, [1, 10, 100]);
        assert!(
            "threads=1,2"
                .parse::<Sweep>()
                .unwrap_err()
                .contains("connections, size or depth")
        );
        assert!("size=1,x".parse::<Sweep>().is_err());
        assert!("depth".parse::<Sweep>().is_err());
    }

    #[test]
    fn cells_never_have_more_threads_than_connections() {
        let base = BenchConfig {
            threads: 4,
            ..BenchConfig::default()
        };
        let sweep: Sweep = "connections=1,10".parse().unwrap();
        let cells = sweep.cells(&base);
        assert_eq!((cells[0].1.connections, cells[0].1.threads), (1, 1));
        assert_eq!((cells[1].1.connections, cells[1].1.threads), (10, 4));
    }
}
