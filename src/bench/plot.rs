//! `--plot FILE.svg`: the pictures, drawn with plotters' SVG backend (no
//! system libraries).
//!
//! - A sweep: throughput against the swept value (top panel) and p50/p99
//!   latency against it (bottom panel, log scale), one point per cell.
//! - One run: the latency percentile spectrum, HdrHistogram's own picture:
//!   latency against percentile, the percentile axis stretched so that 90%,
//!   99%, 99.9% ... are evenly spaced (x = 1 / (1 - q) on a log scale).
//!
//! This module only draws what a report holds.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{micros, percentile_name};
use super::sweep::Sweep;
use super::{Report, thousands};

const SIZE: (u32, u32) = (960, 720);
const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const RED: RGBColor = RGBColor(214, 39, 40);

/// Turns a plotters error into the one-line message a person sees.
fn drawing<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> String + '_ {
    move |e| format!("--plot {}: {e:?}", path.display())
}

/// One line under the title: what was run.
/// The legend box, the same on every chart.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
}

fn subtitle(r: &Report) -> String {
    let c = &r.config;
    let mode = match c.rate {
        Some(rate) => format!("open loop at {} msgs/s", thousands(rate)),
        None => format!("depth {}", c.depth),
    };
    let server = c.addr.clone().unwrap_or_else(|| "embedded server".into());
    format!(
        "{} connections, {} B payloads, {mode}, {} thread(s), {server}, {:.1} s measured",
        c.connections, c.size, c.threads, r.seconds
    )
}

/// `950`, `12k`, `1.5M`.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Microseconds with a unit that fits: `850 us`, `1.2 ms`, `3 s`.
fn us_label(us: f64) -> String {
    let (value, unit) = match us {
        us if us >= 1e6 => (us / 1e6, "s"),
        us if us >= 1e3 => (us / 1e3, "ms"),
        us => (us, "us"),
    };
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

/// What every cell of a sweep shared, for the line under the title.
fn sweep_subtitle(sweep: &Sweep, r: &Report) -> String {
    use super::sweep::Param;
    let c = &r.config;
    let mut parts = Vec::new();
    if sweep.param != Param::Connections {
        parts.push(format!("{} connections", c.connections));
    }
    if sweep.param != Param::Size {
        parts.push(format!("{} B payloads", c.size));
    }
    match c.rate {
        Some(rate) => parts.push(format!("open loop at {} msgs/s", thousands(rate))),
        None if sweep.param != Param::Depth => parts.push(format!("depth {}", c.depth)),
        None => {}
    }
    parts.push(format!("{} thread(s)", c.threads));
    parts.push(c.addr.clone().unwrap_or_else(|| "embedded server".into()));
    format!(
        "{}; each cell {} s warm-up + {} s measured",
        parts.join(", "),
        c.warmup_s,
        c.duration_s
    )
}

/// The sweep picture.
pub fn sweep(path: &Path, sweep: &Sweep, cells: &[(Option<u64>, Report)]) -> Result<(), String> {
    let err = drawing(path);
    let points: Vec<(f64, &Report)> = cells
        .iter()
        .filter_map(|(v, r)| v.map(|v| (v as f64, r)))
        .collect();
    let Some(first) = points.first() else {
        return Err(format!("--plot {}: no cell to draw", path.display()));
    };
    let (xmin, xmax) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), (x, _)| {
            (lo.min(*x), hi.max(*x))
        });
    // Values spanning a decade or more read best on a log axis.
    let log_x = xmin > 0.0 && xmax / xmin >= 10.0;
    let (xlo, xhi) = match log_x {
        true => (xmin / 1.5, xmax * 1.5),
        false => {
            let pad = ((xmax - xmin) * 0.05).max(0.5);
            (xmin - pad, xmax + pad)
        }
    };
    let ymax = points
        .iter()
        .map(|(_, r)| r.msgs_per_sec)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let lat = |r: &Report, p: f64| {
        r.latency_us
            .as_ref()
            .and_then(|l| l.percentiles.iter().find(|x| x.0 == p).map(|x| x.1))
    };
    let lats: Vec<f64> = points
        .iter()
        .flat_map(|(_, r)| [lat(r, 50.0), lat(r, 99.0)])
        .flatten()
        .collect();
    let lmin = lats.iter().copied().fold(f64::MAX, f64::min).max(0.1);
    let lmax = lats.iter().copied().fold(0.0, f64::max).max(lmin * 10.0);

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let root = root
        .titled(
            &format!("frameloop bench: sweep over {}", sweep.param.name()),
            ("sans-serif", 24),
        )
        .map_err(&err)?;
    let (caption, body) = root.split_vertically(24);
    caption
        .draw_text(
            &sweep_subtitle(sweep, first.1),
            &("sans-serif", 15).into_text_style(&caption),
            (60, 2),
        )
        .map_err(&err)?;
    let (top, bottom) = body.split_vertically(SIZE.1 / 2 - 30);

    // Throughput.
    let draw_top = |builder: &mut ChartBuilder<'_, '_, SVGBackend<'_>>| {
        builder
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(80);
    };
    let draw_bottom = draw_top;
    macro_rules! panels {
        ($x:expr) => {{
            let mut b = ChartBuilder::on(&top);
            draw_top(&mut b);
            let mut chart = b.build_cartesian_2d($x, 0.0..ymax).map_err(&err)?;
            chart
                .configure_mesh()
                .x_desc(sweep.param.label())
                .y_desc("throughput (verified msgs/s)")
                .y_label_formatter(&|v| short(*v))
                .x_label_formatter(&|v| short(*v))
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(&err)?;
            let line: Vec<(f64, f64)> = points.iter().map(|(x, r)| (*x, r.msgs_per_sec)).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), BLUE.stroke_width(2)))
                .map_err(&err)?
                .label("msgs/s")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            chart
                .draw_series(line.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
                .map_err(&err)?;
            legend(&mut chart).map_err(&err)?;

            // Latency.
            let mut b = ChartBuilder::on(&bottom);
            draw_bottom(&mut b);
            let mut chart = b
                .build_cartesian_2d(
                    $x,
                    (lmin / 1.5..lmax * 1.5)
                        .log_scale()
                        .with_key_points(one_two_five(lmin / 1.5, lmax * 1.5)),
                )
                .map_err(&err)?;
            chart
                .configure_mesh()
                .x_desc(sweep.param.label())
                .y_desc("latency (log scale)")
                .y_label_formatter(&|v| us_label(*v))
                .x_label_formatter(&|v| short(*v))
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(&err)?;
            for (p, color) in [(50.0, BLUE), (99.0, RED)] {
                let line: Vec<(f64, f64)> = points
                    .iter()
                    .filter_map(|(x, r)| lat(r, p).map(|us| (*x, us.max(0.1))))
                    .collect();
                chart
                    .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                    .map_err(&err)?
                    .label(format!("{} latency", percentile_name(p)))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(line.iter().map(|&pt| Circle::new(pt, 4, color.filled())))
                    .map_err(&err)?;
            }
            legend(&mut chart).map_err(&err)?;
        }};
    }
    match log_x {
        true => panels!((xlo..xhi).log_scale()),
        false => panels!(xlo..xhi),
    }
    root.present().map_err(&err)
}

/// Ticks for a log axis: 1, 2, 5, 10, 20, 50 ... within `lo..hi`.
fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-3).log10().floor());
    while decade <= hi {
        for step in [1.0, 2.0, 5.0] {
            let tick = decade * step;
            if tick >= lo && tick <= hi {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// The percentile axis: x = 1 / (1 - q), so 90% is 10, 99% is 100.
fn stretch(q: f64) -> f64 {
    1.0 / (1.0 - q).max(1e-7)
}

/// The latency percentile spectrum of one run.
pub fn spectrum(path: &Path, report: &Report) -> Result<(), String> {
    let err = drawing(path);
    let h = &report.histogram;
    if h.is_empty() {
        return Err(format!(
            "--plot {}: no verified reply to draw",
            path.display()
        ));
    }
    // The curve: every step of the histogram up to its last value.
    let mut curve: Vec<(f64, f64)> = h
        .iter_quantiles(5)
        .map(|v| {
            (
                stretch(v.quantile_iterated_to()),
                micros(v.value_iterated_to()),
            )
        })
        .filter(|(x, _)| x.is_finite())
        .collect();
    curve.dedup_by(|a, b| a.0 == b.0);
    let xmax = curve.iter().map(|p| p.0).fold(10.0, f64::max).min(1e6) * 1.5;
    let ymax = micros(h.max()) * 1.1;
    let marks: Vec<(f64, f64, String)> = report
        .latency_us
        .iter()
        .flat_map(|l| l.percentiles.iter())
        .map(|&(p, us)| {
            let x = match p >= 100.0 {
                true => curve.last().map_or(xmax, |c| c.0),
                false => stretch(p / 100.0),
            };
            (x, us, format!("{} {}", percentile_name(p), us_label(us)))
        })
        .collect();

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let root = root
        .titled("frameloop bench: latency by percentile", ("sans-serif", 24))
        .map_err(&err)?;
    let (caption, body) = root.split_vertically(24);
    caption
        .draw_text(
            &subtitle(report),
            &("sans-serif", 15).into_text_style(&caption),
            (60, 2),
        )
        .map_err(&err)?;
    // A tail a hundred times the median flattens everything else on a
    // linear axis: then the latency axis is logarithmic.
    let ymin = micros(h.min()).max(0.1);
    let log_y = ymax > 100.0 * micros(h.value_at_quantile(0.5)).max(0.1);
    macro_rules! chart {
        ($y:expr, $desc:expr) => {{
            let mut chart = ChartBuilder::on(&body)
                .margin(16)
                .x_label_area_size(50)
                .y_label_area_size(90)
                .build_cartesian_2d((1.0..xmax).log_scale(), $y)
                .map_err(&err)?;
            chart
                .configure_mesh()
                .x_desc("percentile")
                .y_desc($desc)
                .x_label_formatter(&|x| {
                    let pct = 100.0 * (1.0 - 1.0 / x);
                    let text = format!("{pct:.4}");
                    let text = text.trim_end_matches('0').trim_end_matches('.');
                    format!("{text}%")
                })
                .y_label_formatter(&|v| us_label(*v))
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(&err)?;
            chart
                .draw_series(LineSeries::new(curve, BLUE.stroke_width(2)))
                .map_err(&err)?
                .label("latency of verified replies")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            chart
                .draw_series(
                    marks
                        .iter()
                        .map(|(x, y, _)| Circle::new((*x, *y), 5, ORANGE.filled())),
                )
                .map_err(&err)?
                .label("--percentiles")
                .legend(|(x, y)| Circle::new((x + 10, y), 5, ORANGE.filled()));
            chart
                .draw_series(marks.iter().enumerate().map(|(i, (x, y, text))| {
                    // Labels right of their point, but the last one (the maximum,
                    // at the right edge) to its left.
                    let h = match i + 1 == marks.len() {
                        true => HPos::Right,
                        false => HPos::Left,
                    };
                    let style = ("sans-serif", 13)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(h, VPos::Top));
                    Text::new(format!(" {text} "), (*x, *y), style)
                }))
                .map_err(&err)?;
            legend(&mut chart).map_err(&err)?;
        }};
    }
    match log_y {
        true => chart!(
            (ymin / 1.5..ymax * 1.5)
                .log_scale()
                .with_key_points(one_two_five(ymin / 1.5, ymax * 1.5)),
            "latency (log scale)"
        ),
        false => chart!(0.0..ymax, "latency"),
    }
    root.present().map_err(&err)
}
