#!/usr/bin/env python3
"""Draws a `frameloop serve --trace` file as an SVG timeline, no browser needed.

    python3 scripts/trace_svg.py trace.json trace.svg [--from MS] [--span MS]

One lane per reactor: grey where the loop sleeps in `poll`, then, for each
connection it serves in that turn, its read (blue), dispatch (green) and write
(orange), one after another; accepts, timers, datagrams and messages in their
own colours. Below, the connections open. `--from` and `--span` choose the
window shown (default: the first 5 ms of activity). For the whole recording,
zoomable, open the file in https://ui.perfetto.dev instead.
"""
import argparse
import html
import json

COLOURS = {
    "poll": "#d0d0d0", "read": "#4e79a7", "dispatch": "#59a14f", "write": "#f28e2b",
    "accept": "#b07aa1", "timers": "#e15759", "datagrams": "#76b7b2", "messages": "#edc948",
}

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("trace")
parser.add_argument("svg")
parser.add_argument("--from", dest="start", type=float, help="window start, ms")
parser.add_argument("--span", type=float, default=5.0, help="window length, ms")
args = parser.parse_args()

try:
    with open(args.trace) as f:
        events = json.load(f)["traceEvents"]
except (OSError, ValueError, KeyError, TypeError) as e:
    raise SystemExit(f"trace_svg.py: cannot read a trace from {args.trace}: {e}")
spans = [e for e in events if e.get("ph") == "X"]
if not spans:
    raise SystemExit("no spans in the trace")
busy = [e for e in spans if e["name"] != "poll"]
start_us = args.start * 1e3 if args.start is not None else min(e["ts"] for e in (busy or spans))
end_us = start_us + args.span * 1e3
lanes = sorted({e["tid"] for e in spans})

W, LEFT, LANE, TOP = 1200, 90, 70, 40
x = lambda us: LEFT + (us - start_us) / (end_us - start_us) * (W - LEFT - 20)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{TOP + LANE * len(lanes) + 110}" '
       'font-family="sans-serif" font-size="11">',
       '<rect width="100%" height="100%" fill="white"/>',
       f'<text x="{LEFT}" y="20" font-size="14">frameloop turns, {args.span:g} ms from '
       f'{start_us / 1e3:.3f} ms (time in ms on the axis)</text>']
for i, tid in enumerate(lanes):
    y = TOP + i * LANE
    out.append(f'<text x="8" y="{y + 28}">reactor {tid}</text>')
    for e in spans:
        if e["tid"] != tid or e["ts"] + e["dur"] < start_us or e["ts"] > end_us:
            continue
        x0, x1 = max(x(e["ts"]), LEFT), min(x(e["ts"] + e["dur"]), W - 20)
        height, dy = (36, 4) if e["name"] == "poll" else (28, 8)
        conn = e.get("args", {}).get("conn", "")
        title = html.escape(f'{e["name"]} {conn} {e["dur"]:.1f} us (turn {e["args"].get("turn")})')
        out.append(f'<rect x="{x0:.2f}" y="{y + dy}" width="{max(x1 - x0, 0.6):.2f}" height="{height}" '
                   f'fill="{COLOURS.get(e["name"], "#999")}"><title>{title}</title></rect>')
# The time axis.
axis_y = TOP + LANE * len(lanes) + 5
out.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{W - 20}" y2="{axis_y}" stroke="black"/>')
for k in range(11):
    us = start_us + k * (end_us - start_us) / 10
    out.append(f'<line x1="{x(us):.1f}" y1="{axis_y}" x2="{x(us):.1f}" y2="{axis_y + 5}" stroke="black"/>')
    out.append(f'<text x="{x(us):.1f}" y="{axis_y + 18}" text-anchor="middle">{us / 1e3:.2f}</text>')
out.append(f'<text x="{(LEFT + W) / 2}" y="{axis_y + 34}" text-anchor="middle">time since the recording began (ms)</text>')
# The legend.
lx = LEFT
for name, colour in COLOURS.items():
    out.append(f'<rect x="{lx}" y="{axis_y + 48}" width="12" height="12" fill="{colour}"/>')
    out.append(f'<text x="{lx + 16}" y="{axis_y + 58}">{name}</text>')
    lx += 100
out.append("</svg>")
open(args.svg, "w").write("\n".join(out))
shown = sum(1 for e in spans if start_us <= e["ts"] <= end_us)
print(f"{args.svg}: {shown} spans between {start_us / 1e3:.3f} and {end_us / 1e3:.3f} ms")
