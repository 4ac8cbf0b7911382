#!/usr/bin/env bash
# Why a reactor, measured: the notes' servers (examples/blocking.rs,
# threads.rs, busy_loop.rs), examples/tiny_reactor.rs and `frameloop serve`,
# side by side, in one run. Results and their explanation: WHY_REACTOR.md.
#
#   scripts/why_reactor.sh                 # 3 rounds, ~10 min
#   scripts/why_reactor.sh --quick         # 1 round, short windows, 2,000 for 10,000: ~3 min
#   ROUNDS=5 scripts/why_reactor.sh --out docs/why-reactor
#   scripts/why_reactor.sh --syscalls      # which syscalls each server makes per message: ~2 min
#
# Every server is pinned to CPU 0; the load (`frameloop bench`, or this
# script's own idle clients) runs on CPU 1 (taskset). In each round every
# server is measured once, in an order rotated every round; each figure is
# the median of the rounds, and msgs/s also the best round (on a shared
# machine other work only ever slows a round down). Measured, for each server:
#   - CPU used with 100 idle connections over 5 s (utime+stime, /proc/PID/stat);
#   - msgs/s and server CPU per message at 1, 10, 100 and 1,000 connections
#     (64-byte frames, one request in flight per connection), and at 100
#     connections the server's syscalls and context switches per message
#     (perf stat -p PID, all threads, over the same window);
#   - RSS and thread count with 1,000 idle connections (/proc/PID/status);
#   - 10,000 connections (once, in the first round): how many connect within
#     60 s (at most 100 connecting at once; given up after 3 s without one
#     more), how long that took, how many of those get a reply to one frame
#     within 5 s, RSS, threads, and the kernel stacks they pinned
#     (KernelStack, /proc/meminfo).
# Writes OUT/why_reactor.md (the table), OUT/why_reactor.svg (the picture,
# drawn here, no plotting library needed) and OUT/why_reactor.json.
#
# --syscalls: for each server at 1 and 100 connections and 10 busy among
# 1,000 idle, the syscalls it makes per message, by name, and how many
# failed (EAGAIN, mostly): syscall tracepoints counted by `perf stat -p PID`
# (all threads) over 2 s. Messages are counted as the server's successful
# sends in the same window (one per 64-byte reply, at one request in flight).
# Writes OUT/why_reactor_syscalls.md.
#
# Bounded: every server start, bench, connect phase and wait has a time
# limit, and the whole run has one (LIMIT, seconds). No process outlives the
# script on any exit path: every child is killed by the driver on the way out
# and, should the driver itself be killed, by the kernel (PR_SET_PDEATHSIG).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0 OUT=target/why_reactor MODE=compare
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --syscalls) MODE=syscalls ;;
    --out) OUT=${2:?--out needs a directory}; shift ;;
    -h|--help) echo "usage: $0 [--quick] [--syscalls] [--out DIR]"; exit 0 ;;
    *) echo "usage: $0 [--quick] [--syscalls] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-2} IDLE_SECONDS=${IDLE_SECONDS:-2} BIG=${BIG:-2000}
fi
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-3} WARMUP=${WARMUP:-1}
IDLE_SECONDS=${IDLE_SECONDS:-5} BIG=${BIG:-10000} LIMIT=${LIMIT:-3600}

command -v python3 >/dev/null || { echo "$0: python3 is needed" >&2; exit 2; }
command -v taskset >/dev/null || { echo "$0: taskset (util-linux) is needed" >&2; exit 2; }
if [ "$(nproc)" -lt 2 ]; then
  echo "$0: needs 2 CPUs (server on CPU 0, load on CPU 1); this machine has $(nproc)" >&2
  exit 2
fi
PERF_OK=0
command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1 && PERF_OK=1
[ "$PERF_OK" = 1 ] || echo "$0: no usable perf: syscalls and context switches per message are left out (apt-get install linux-perf)" >&2
if [ "$MODE" = syscalls ] && [ "$PERF_OK" = 0 ]; then
  echo "$0: --syscalls needs perf with syscall tracepoints (apt-get install linux-perf; root or perf_event_paranoid <= 1)" >&2
  exit 2
fi

# 10,000 connections need 10,000 descriptors in the server and as many in
# this script's client: raise the soft limit as far as the hard one allows,
# and if that is not enough, measure as many connections as fit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDS=$(ulimit -n)
if [ "$FDS" != unlimited ] && [ "$FDS" -lt $((BIG + 256)) ]; then
  echo "$0: ulimit -n is $FDS (hard limit $(ulimit -Hn)); measuring $((FDS - 256)) connections instead of $BIG" >&2
  BIG=$((FDS - 256))
fi

cargo build --release --quiet --bin frameloop \
  --example blocking --example threads --example busy_loop --example tiny_reactor
mkdir -p "$OUT"

export ROUNDS DURATION WARMUP IDLE_SECONDS BIG QUICK OUT PERF_OK LIMIT MODE
DRIVER=
cleanup() {
  # The driver kills its children itself on SIGTERM; should it be killed
  # outright, PDEATHSIG kills them.
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
    kill -TERM "$DRIVER" 2>/dev/null || true
    wait "$DRIVER" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SCRIPT_PID=$$ python3 - <<'PY' &
import ctypes, json, math, os, re, selectors, signal, socket, statistics, struct, subprocess, sys, threading, time

ROUNDS, DURATION, WARMUP = int(os.environ["ROUNDS"]), float(os.environ["DURATION"]), float(os.environ["WARMUP"])
IDLE_SECONDS, BIG, OUT = float(os.environ["IDLE_SECONDS"]), int(os.environ["BIG"]), os.environ["OUT"]
PERF_OK = os.environ["PERF_OK"] == "1"
TICK = os.sysconf("SC_CLK_TCK")
SERVERS = ["blocking", "threads", "busy_loop", "tiny_reactor", "frameloop"]
LOADS = [1, 10, 100, 1000]   # busy connections, one request in flight on each
MIXED = (10, 1000)           # 10 busy connections among 1,000 idle ones
CONNECT_BUDGET = 60.0      # seconds to open the BIG connections (a thread each takes a while)
REPLY_BUDGET = 5.0         # seconds for them to be answered
REQUEST = struct.pack("!I", 64) + b"x" * 64

# This driver (and the idle clients it holds) runs on CPU 1, with the bench.
os.sched_setaffinity(0, {1})

# --- processes: every child dies with the driver --------------------------
_prctl = ctypes.CDLL(None, use_errno=True).prctl
children = []

def die_with_parent():
    _prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG

def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, preexec_fn=die_with_parent, **kw)
    children.append(p)
    return p

def stop(p):
    if p.poll() is None:
        p.kill()
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    if p in children:
        children.remove(p)

def on_signal(signum, _frame):
    raise SystemExit(128 + signum)

for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, on_signal)
# The whole run's time limit, and a SIGTERM if the shell that started this
# driver dies (even by SIGKILL, which its trap cannot catch).
signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"stopped: the run took longer than LIMIT={os.environ['LIMIT']} s"))
signal.alarm(int(os.environ["LIMIT"]))
_prctl(1, int(signal.SIGTERM))
if os.getppid() != int(os.environ["SCRIPT_PID"]):
    sys.exit("the script that started this driver is gone")

def drain(stream):
    """Keeps reading a child's pipe so it never blocks on a full one."""
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()

def start_server(kind):
    if kind == "frameloop":
        cmd = ["target/release/frameloop", "serve", "--max-connections", str(BIG + 1000)]
    else:
        cmd = [f"target/release/examples/{kind}"]
    p = spawn(["taskset", "-c", "0", *cmd, "--addr", "127.0.0.1:0"],
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
              env={**os.environ, "RUST_LOG": "warn,frameloop::reactor=info"})
    found = []
    def scan():
        for line in p.stderr:
            m = re.search(r"listening on (\S+)", line)
            if m:
                found.append(m.group(1))
                return
    t = threading.Thread(target=scan, daemon=True)
    t.start()
    t.join(30)
    if not found:
        stop(p)
        raise SystemExit(f"{kind} did not print `listening on ADDR` within 30 s")
    drain(p.stderr)
    host, port = found[0].rsplit(":", 1)
    return p, (host, int(port))

# --- /proc ----------------------------------------------------------------
def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])

def status(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0

def kernel_stack_kib():
    for line in open("/proc/meminfo"):
        if line.startswith("KernelStack:"):
            return int(line.split()[1])
    return 0

def loadavg():
    return open("/proc/loadavg").read().split()[0]

# --- idle clients -----------------------------------------------------------
def open_many(addr, n, budget, stall=3.0):
    """Opens up to n connections, at most 100 connecting at once (so a server
    with std's listen backlog of 128 is not flooded), for at most `budget`
    seconds, or until none completed for `stall` seconds (a server that
    stopped accepting: its backlog is full and the kernel drops our SYNs).
    Returns the connected sockets; those still connecting are given up."""
    sel = selectors.DefaultSelector()
    done, pending, started = [], set(), 0
    now = time.monotonic()
    deadline, progress = now + budget, now
    while (started < n or pending) and now < deadline and now - progress < stall:
        while started < n and len(pending) < 100:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(addr)
            sel.register(s, selectors.EVENT_WRITE)
            pending.add(s)
            started += 1
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            sel.unregister(s)
            pending.discard(s)
            progress = time.monotonic()
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done.append(s)
            else:
                s.close()
        now = time.monotonic()
    for s in pending:
        s.close()
    sel.close()
    return done

def close_all(socks):
    for s in socks:
        s.close()

# --- the measurements ---------------------------------------------------------
def idle_cpu(kind):
    """Percent of one core the server used over IDLE_SECONDS with 100 idle clients."""
    server, addr = start_server(kind)
    try:
        socks = open_many(addr, 100, 15)
        time.sleep(1)
        t0, w0 = cpu_ticks(server.pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        t1, w1 = cpu_ticks(server.pid), time.monotonic()
        close_all(socks)
        return {"idle_cpu_pct": (t1 - t0) / TICK / (w1 - w0) * 100, "idle_connected": len(socks)}
    finally:
        stop(server)

def perf_counts(pid, seconds):
    """The server's syscalls and context switches (all its threads) in the
    next `seconds`, or (None, None) without perf."""
    if not PERF_OK:
        time.sleep(seconds)
        return None, None
    events = ["raw_syscalls:sys_enter", "context-switches"]
    r = subprocess.run(["perf", "stat", "-x,", "-e", ",".join(events), "-p", str(pid), "--", "sleep", str(seconds)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=seconds + 30,
                       preexec_fn=die_with_parent)
    counts = {}
    for line in r.stderr.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[0].strip().isdigit():
            counts[parts[2]] = int(parts[0])
    return counts.get(events[0]), counts.get(events[1])

def connect_errors(report):
    """Connections the bench could not open (refused or timed out), from its
    JSON report, whichever way the version at hand spells them."""
    total = 0
    for section in ("setup_errors", "errors"):
        e = report.get(section) or {}
        total += e.get("connect", 0) + e.get("refused", 0) + e.get("connect_timeout", 0)
    return total

def load(kind, conns, idle=0):
    """`frameloop bench` with `conns` connections, depth 1, 64-byte frames,
    after `idle` connections that never send were opened."""
    server, addr = start_server(kind)
    idlers = []
    try:
        idlers = open_many(addr, idle, 15)
        bench = spawn(["taskset", "-c", "1", "target/release/frameloop", "bench", "--addr", f"{addr[0]}:{addr[1]}",
                       "--connections", str(conns), "--size", "64", "--depth", "1",
                       "--warmup", f"{WARMUP}s", "--duration", f"{DURATION}s", "--json"],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The bench prints a progress line a second once every connection is
        # up or given up (against the blocking server, connects beyond its
        # backlog time out after 5 s, and the rest are given up). The window
        # starts after the warm-up's lines.
        seen, lines = [0], []
        def watch():
            for line in bench.stderr:
                lines.append(line)
                seen[0] += line.startswith("[")
                if seen[0] >= max(1, round(WARMUP)):
                    return
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        watcher.join(60 + conns / 50 + WARMUP)
        started = seen[0] >= max(1, round(WARMUP))
        if not started and watcher.is_alive():
            stop(bench)
            raise SystemExit(f"{kind}, {conns} connections: the bench did not start: {''.join(lines)[-500:]}")
        # Else it either started, or already ended (no connection got in).
        drain(bench.stderr)
        window = DURATION * 0.8
        w0, t0 = time.monotonic(), cpu_ticks(server.pid)
        sys_calls, switches = perf_counts(server.pid, window) if started else (None, None)
        w1, t1 = time.monotonic(), cpu_ticks(server.pid)
        try:
            out, _ = bench.communicate(timeout=60 + DURATION)
        except subprocess.TimeoutExpired:
            stop(bench)
            raise SystemExit(f"{kind}, {conns} connections: the bench did not finish")
        children.remove(bench)
        try:
            r = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise SystemExit(f"{kind}, {conns} connections: no report from the bench (exit {bench.returncode})")
        rate = r["msgs_per_sec"] if started else 0.0
        msgs = rate * (w1 - w0)
        res = {"msgs": rate,
               "cpu_us": (t1 - t0) / TICK * 1e6 / msgs if msgs > 0 else None,
               "cpu_pct": (t1 - t0) / TICK / (w1 - w0) * 100,
               "connect_errors": connect_errors(r)}
        if sys_calls is not None and rate > 0:
            res["sys"] = sys_calls / (rate * window)
            res["cs"] = switches / (rate * window)
        return res
    finally:
        close_all(idlers)
        stop(server)

def idle_rss(kind):
    """RSS and threads with 1,000 idle connections."""
    server, addr = start_server(kind)
    try:
        time.sleep(0.3)
        before = status(server.pid, "VmRSS")
        socks = open_many(addr, 1000, 15)
        time.sleep(1)
        res = {"rss_before": before, "rss_1k": status(server.pid, "VmRSS"),
               "threads_1k": status(server.pid, "Threads"), "connected_1k": len(socks)}
        close_all(socks)
        return res
    finally:
        stop(server)

def big(kind):
    """BIG connections: connected, answered, memory, threads."""
    server, addr = start_server(kind)
    socks = []
    try:
        time.sleep(0.3)
        stacks0, rss0 = kernel_stack_kib(), status(server.pid, "VmRSS")
        t = time.monotonic()
        socks = open_many(addr, BIG, CONNECT_BUDGET)
        connect_s = time.monotonic() - t
        time.sleep(1)
        res = {"big_connected": len(socks), "big_connect_s": connect_s,
               "big_rss": status(server.pid, "VmRSS"), "big_rss_before": rss0,
               "big_threads": status(server.pid, "Threads"),
               "big_kstack_mib": (kernel_stack_kib() - stacks0) / 1024}
        # One request on every connection, then count whole replies.
        sel = selectors.DefaultSelector()
        got = {}
        for s in socks:
            try:
                s.send(REQUEST)
                sel.register(s, selectors.EVENT_READ)
                got[s] = 0
            except OSError:
                pass
        replied, last = 0, None
        t0 = time.monotonic()
        c0 = cpu_ticks(server.pid)
        while replied < len(got) and time.monotonic() - t0 < REPLY_BUDGET:
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                try:
                    chunk = s.recv(4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(s)
                    continue
                got[s] += len(chunk)
                if got[s] >= len(REQUEST):
                    sel.unregister(s)
                    replied += 1
                    last = time.monotonic() - t0
        res.update({"big_replied": replied, "big_all_replied_s": last if replied == len(got) and got else None,
                    "big_cpu_s": (cpu_ticks(server.pid) - c0) / TICK})
        sel.close()
        return res
    finally:
        close_all(socks)
        stop(server)

# --- the run ----------------------------------------------------------------------
def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def spread(xs):
    xs = [x for x in xs if x]
    return (max(xs) - min(xs)) / statistics.median(xs) if len(xs) > 1 else 0.0

LOAD_KEYS = [str(c) for c in LOADS] + ["mixed"]

def load_label(key):
    if key == "mixed":
        return f"{MIXED[0]} busy among {MIXED[1]:,} idle connections"
    c = int(key)
    return f"{c:,} connection{'s' if c > 1 else ''}"

def main():
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = loadavg()
    runs = {k: [] for k in SERVERS}
    bigs = {}
    t_start = time.monotonic()
    for rnd in range(ROUNDS):
        # Rotated every round, so no server always runs first (or last).
        order = SERVERS[rnd % len(SERVERS):] + SERVERS[:rnd % len(SERVERS)]
        for kind in order:
            r = idle_cpu(kind)
            for key in LOAD_KEYS:
                r[key] = load(kind, *MIXED) if key == "mixed" else load(kind, int(key))
                print(f"round {rnd + 1}/{ROUNDS} {kind:12} {load_label(key):40} {r[key]['msgs']:9.0f} msgs/s"
                      f"  server CPU {r[key]['cpu_pct']:3.0f}%", file=sys.stderr, flush=True)
            r.update(idle_rss(kind))
            if rnd == 0:
                bigs[kind] = big(kind)
                b = bigs[kind]
                print(f"round 1 {kind:12} {BIG} connections: {b['big_connected']} connected, "
                      f"{b['big_replied']} replied, RSS {b['big_rss'] / 1024:.0f} MiB, {b['big_threads']} threads",
                      file=sys.stderr, flush=True)
            runs[kind].append(r)
    elapsed = time.monotonic() - t_start
    load_after = loadavg()

    med = {}
    for kind, rs in runs.items():
        m = {f: median([r[f] for r in rs])
             for f in ("idle_cpu_pct", "rss_1k", "rss_before", "threads_1k", "connected_1k", "idle_connected")}
        for key in LOAD_KEYS:
            for f in ("msgs", "cpu_us", "cpu_pct", "sys", "cs", "connect_errors"):
                m[f"{f}_{key}"] = median([r[key].get(f) for r in rs])
            # Other work on a shared machine only ever slows a run down, so
            # the best round is the one least disturbed.
            m[f"best_msgs_{key}"] = max(r[key]["msgs"] for r in rs)
        m.update(bigs[kind])
        med[kind] = m
    spreads = [spread([r[key]["msgs"] for r in rs]) for rs in runs.values() for key in LOAD_KEYS]

    def num(v, fmt="{:,.0f}"):
        return "n/a" if v is None else fmt.format(v)
    rows = [("CPU with 100 idle connections, % of a core", lambda m: num(m["idle_cpu_pct"], "{:.0f}%"))]
    for key in LOAD_KEYS:
        rows.append((f"msgs/s, {load_label(key)}: best round (median)",
                     lambda m, k=key: f"{num(m[f'best_msgs_{k}'])} ({num(m[f'msgs_{k}'])})"))
    for key in LOAD_KEYS:
        rows.append((f"server CPU per message, µs, {load_label(key)}", lambda m, k=key: num(m[f"cpu_us_{k}"], "{:.1f}")))
    if PERF_OK:
        for key in ("1", "100", "mixed"):
            rows.append((f"syscalls per message, {load_label(key)}", lambda m, k=key: num(m[f"sys_{k}"], "{:.2f}")))
        for key in ("1", "100", "mixed"):
            rows.append((f"context switches per message, {load_label(key)}", lambda m, k=key: num(m[f"cs_{k}"], "{:.2f}")))
    rows += [
        ("RSS with 1,000 idle connections, MiB", lambda m: num(m["rss_1k"] / 1024, "{:.1f}")),
        ("threads with 1,000 idle connections", lambda m: num(m["threads_1k"])),
        (f"{BIG:,} connections: connected within {CONNECT_BUDGET:.0f} s", lambda m: num(m["big_connected"])),
        (f"{BIG:,} connections: time to connect them, s", lambda m: num(m["big_connect_s"], "{:.1f}")),
        (f"{BIG:,} connections: answered within {REPLY_BUDGET:.0f} s (one frame each)", lambda m: num(m["big_replied"])),
        (f"{BIG:,} connections: time until the last answer, s",
         lambda m: num(m["big_all_replied_s"], "{:.2f}") if m["big_all_replied_s"] is not None else "never"),
        (f"{BIG:,} connections: RSS, MiB", lambda m: num(m["big_rss"] / 1024, "{:.1f}")),
        (f"{BIG:,} connections: threads", lambda m: num(m["big_threads"])),
        # A machine-wide figure: other processes' threads come and go too.
        (f"{BIG:,} connections: kernel stacks pinned, MiB", lambda m: num(max(m["big_kstack_mib"], 0), "{:.0f}")),
    ]
    lines = ["| | " + " | ".join(f"`{k}`" for k in SERVERS) + " |", "|---|" + "---:|" * len(SERVERS)]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(med[k]) for k in SERVERS) + " |")
    notes = [
        f"Run {started}, {elapsed / 60:.0f} min; {ROUNDS} round(s), medians; each load: {WARMUP:g} s warm-up + "
        f"{DURATION:g} s, 64-byte frames, one request in flight per connection; server on CPU 0, load on CPU 1.",
        f"Load average {load_before} before, {load_after} after (2 CPUs). Round-to-round spread of msgs/s "
        f"((max - min) / median): median {statistics.median(spreads) * 100:.0f}%, worst {max(spreads) * 100:.0f}%. "
        "msgs/s is given for the best round (other work only ever slows a round down) and the median; every other "
        "figure is the median.",
        f"{BIG:,} connections: measured once, in the first round. Kernel stacks: the rise of KernelStack in "
        "/proc/meminfo (machine-wide).",
    ]
    errs = med["blocking"].get(f"connect_errors_{LOADS[-1]}")
    if errs:
        notes.append(f"`blocking`: at {LOADS[-1]:,} connections {errs:,.0f} of the bench's connects timed out (the listen "
                     "backlog, 128, was full); at every load it serves one connection and the others wait.")
    table = "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    print(table)
    open(os.path.join(OUT, "why_reactor.md"), "w").write(table)
    json.dump({"servers": SERVERS, "loads": LOAD_KEYS, "mixed": MIXED, "big": BIG, "medians": med,
               "rounds": runs, "notes": notes}, open(os.path.join(OUT, "why_reactor.json"), "w"), indent=1)
    footer = (f"scripts/why_reactor.sh, {started}: {ROUNDS} round(s) ({WARMUP:g} s warm-up + {DURATION:g} s each); "
              f"{BIG:,} connections once. Load average {load_before} before, {load_after} after, on 2 shared CPUs.")
    open(os.path.join(OUT, "why_reactor.svg"), "w").write(svg(med, footer))
    print(f"wrote {OUT}/why_reactor.md, why_reactor.svg, why_reactor.json", file=sys.stderr)

# --- the picture: six panels of hand-drawn SVG ------------------------------------
COLORS = {"blocking": "#7f7f7f", "threads": "#d62728", "busy_loop": "#ff7f0e",
          "tiny_reactor": "#2ca02c", "frameloop": "#1f77b4"}

def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

def linear_ticks(hi):
    """0 and round steps up to at least `hi`, at most 7 of them."""
    step = 10 ** math.floor(math.log10(hi)) if hi > 0 else 1
    for m in (0.1, 0.2, 0.25, 0.5, 1, 2):
        if hi / (step * m) <= 6:
            step *= m
            break
    n = math.ceil(hi / step - 1e-9)
    return [i * step for i in range(n + 1)]

def fmt_tick(v):
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"

class Panel:
    """One chart in the box (x, y, w, h): title, axis labels, a y axis."""
    def __init__(self, out, box, title, ylabel, xlabel):
        x, y, w, h = box
        self.out, self.l, self.t = out, x + 75, y + 45
        self.w, self.h = w - 100, h - 100
        out.append(f'<text x="{self.l + self.w / 2}" y="{y + 25}" text-anchor="middle" font-weight="bold">{esc(title)}</text>')
        out.append(f'<text transform="translate({x + 18},{self.t + self.h / 2}) rotate(-90)" '
                   f'text-anchor="middle">{esc(ylabel)}</text>')
        if xlabel:
            out.append(f'<text x="{self.l + self.w / 2}" y="{self.t + self.h + 42}" text-anchor="middle">{esc(xlabel)}</text>')

    def y_axis(self, values, log):
        values = [v for v in values if v]
        self.log = log
        if log:
            a = math.floor(math.log10(min(values)))
            b = math.ceil(math.log10(max(values) * 1.3))
            ticks = [10 ** e for e in range(a, b + 1)]
        else:
            ticks = linear_ticks(max(values) * 1.08 if values else 1)
        self.lo, self.hi = ticks[0], ticks[-1]
        for v in ticks:
            py = self.py(v)
            self.out.append(f'<line x1="{self.l}" x2="{self.l + self.w}" y1="{py:.1f}" y2="{py:.1f}" stroke="#ddd"/>')
            self.out.append(f'<text x="{self.l - 6}" y="{py + 4:.1f}" text-anchor="end" font-size="11">{fmt_tick(v)}</text>')
        self.out.append(f'<rect x="{self.l}" y="{self.t}" width="{self.w}" height="{self.h}" fill="none" stroke="#333"/>')

    def py(self, v):
        if self.log:
            v = max(v, self.lo)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.t + self.h * (1 - f)

def line_panel(out, box, title, ylabel, series, log):
    """series: {server: [value at each of LOADS]}, x evenly spaced (log of connections)."""
    p = Panel(out, box, title, ylabel, "busy connections (log scale)")
    p.y_axis([v for vs in series.values() for v in vs], log)
    xs = [p.l + p.w * (0.06 + 0.88 * i / (len(LOADS) - 1)) for i in range(len(LOADS))]
    for x, c in zip(xs, LOADS):
        out.append(f'<text x="{x:.1f}" y="{p.t + p.h + 18}" text-anchor="middle" font-size="11">{c:,}</text>')
    for kind, vs in series.items():
        pts = [(x, p.py(v)) for x, v in zip(xs, vs) if v]
        out.append(f'<polyline fill="none" stroke="{COLORS[kind]}" stroke-width="2.5" points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{COLORS[kind]}"/>')

def bar_panel(out, box, title, ylabel, groups, log, value_fmt):
    """groups: [(label under the cluster, {server: value})]: one bar per server."""
    p = Panel(out, box, title, ylabel, "")
    p.y_axis([v for _, g in groups for v in g.values() if v is not None] + ([] if log else [1]), log)
    gw = p.w / len(groups)
    bw = gw * 0.84 / len(SERVERS)
    base = p.t + p.h
    for gi, (label, g) in enumerate(groups):
        out.append(f'<text x="{p.l + gi * gw + gw / 2:.1f}" y="{base + 20}" text-anchor="middle" '
                   f'font-size="12">{esc(label)}</text>')
        for si, kind in enumerate(SERVERS):
            v = g.get(kind)
            if v is None:
                continue
            x = p.l + gi * gw + gw * 0.08 + si * bw
            y = min(p.py(v), base - 1)
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw * 0.88:.1f}" height="{base - y:.1f}" fill="{COLORS[kind]}"/>')
            out.append(f'<text x="{x + bw * 0.44:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11">'
                       f'{esc(value_fmt(v))}</text>')

def svg(med, footer):
    W, PH = 1200, 400
    H = 110 + 3 * PH
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="28" text-anchor="middle" font-size="18" font-weight="bold">Why a reactor: '
           "the notes' servers, tiny_reactor and frameloop, each on one core, echoing 64-byte frames</text>"]
    lx = W / 2 - 5 * 180 / 2
    for kind in SERVERS:
        out.append(f'<rect x="{lx:.0f}" y="45" width="16" height="16" fill="{COLORS[kind]}"/>')
        out.append(f'<text x="{lx + 22:.0f}" y="58">{kind}</text>')
        lx += 180
    top, half = 80, W / 2
    line_panel(out, (0, top, half, PH), f"Throughput, best of {ROUNDS} round(s) (higher is better)", "messages per second",
               {k: [med[k][f"best_msgs_{c}"] for c in LOADS] for k in SERVERS}, False)
    line_panel(out, (half, top, half, PH), "Server CPU per message, median (lower is better)",
               "µs of CPU per message (log scale)", {k: [med[k][f"cpu_us_{c}"] for c in LOADS] for k in SERVERS}, True)
    bar_panel(out, (0, top + PH, half, PH), f"CPU while 100 connections sit idle ({IDLE_SECONDS:g} s)",
              "% of one core", [("", {k: med[k]["idle_cpu_pct"] for k in SERVERS})], False, lambda v: f"{v:.0f}%")
    bar_panel(out, (half, top + PH, half, PH), f"{MIXED[0]} busy connections among {MIXED[1]:,} idle ones, best round",
              "messages per second", [("", {k: med[k]["best_msgs_mixed"] for k in SERVERS})], False, fmt_tick_round)
    bar_panel(out, (0, top + 2 * PH, half, PH), "Server memory (RSS)", "MiB (log scale)",
              [("1,000 idle connections", {k: med[k]["rss_1k"] / 1024 for k in SERVERS}),
               (f"{BIG:,} connections", {k: med[k]["big_rss"] / 1024 for k in SERVERS})], True,
              lambda v: f"{v:.1f}" if v < 10 else f"{v:.0f}")
    bar_panel(out, (half, top + 2 * PH, half, PH), f"{BIG:,} connections, one frame each",
              f"% answered within {REPLY_BUDGET:g} s",
              [("", {k: 100 * med[k]["big_replied"] / BIG for k in SERVERS})], False,
              lambda v: f"{v:.2f}%" if v < 1 else f"{v:.0f}%")
    out.append(f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle" font-size="11" fill="#555">{esc(footer)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"

def fmt_tick_round(v):
    return fmt_tick(float(f"{v:.2g}")) if v >= 1000 else f"{v:.0f}"

# --- --syscalls: which calls, per message ------------------------------------------
# Counted by name; the rest is "other". Few, because perf opens one counter
# per event per thread: the thread server at 1,010 threads must stay under
# the descriptor limit.
MIX = ["recvfrom", "sendto", "accept4", "epoll_wait", "epoll_ctl", "read", "write"]
FAILS = ["recvfrom", "accept4", "read"]  # where EAGAIN shows up

def syscall_mix(pid, seconds):
    """({syscall: [calls, failed]}, successful sends) for the server (all
    threads) over `seconds`, from syscall tracepoints counted by `perf stat`
    (light enough for 1,000 threads, unlike `perf trace`)."""
    events = [("raw_syscalls:sys_enter", None)]
    events += [(f"syscalls:sys_enter_{n}", None) for n in MIX]
    events += [(f"syscalls:sys_exit_{n}", "ret < 0") for n in FAILS]
    events += [(f"syscalls:sys_exit_{n}", "ret > 0") for n in ("sendto", "write")]
    args = []
    for event, flt in events:
        args += ["-e", event] + (["--filter", flt] if flt else [])
    r = subprocess.run(["perf", "stat", "-x,", *args, "-p", str(pid), "--", "sleep", str(seconds)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=seconds + 30,
                       preexec_fn=die_with_parent)
    counts = []  # in the order asked (names repeat: enter and exit)
    for line in r.stderr.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[2].startswith(("raw_syscalls:", "syscalls:")):
            counts.append(int(parts[0]) if parts[0].strip().isdigit() else 0)
    if len(counts) != len(events):
        raise SystemExit(f"perf stat gave {len(counts)} counts, not {len(events)}: {r.stderr[-500:]}")
    c = dict(zip((f"{e}/{f}" for e, f in events), counts))
    mix = {n: [c[f"syscalls:sys_enter_{n}/None"], c.get(f"syscalls:sys_exit_{n}/ret < 0", 0)] for n in MIX}
    mix["other"] = [counts[0] - sum(n for n, _ in mix.values()), 0]
    return mix, counts[-2] + counts[-1]

def traced(kind, conns, idle=0):
    server, addr = start_server(kind)
    idlers = []
    try:
        idlers = open_many(addr, idle, 15)
        bench = spawn(["taskset", "-c", "1", "target/release/frameloop", "bench", "--addr", f"{addr[0]}:{addr[1]}",
                       "--connections", str(conns), "--size", "64", "--depth", "1",
                       "--warmup", "1s", "--duration", "4s"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        mix = syscall_mix(server.pid, 2)
        stop(bench)
        return mix
    finally:
        close_all(idlers)
        stop(server)

def syscalls():
    loads = [("1 connection", 1, 0), ("100 connections", 100, 0),
             (f"{MIXED[0]} busy among {MIXED[1]:,} idle", *MIXED)]
    lines = ["| server | load | syscalls per message | of which, per message (failed: EAGAIN) |", "|---|---|---:|---|"]
    for kind in SERVERS:
        for label, conns, idle in loads:
            if kind == "blocking" and idle:
                continue  # it never gets past the first idle client
            calls, sends = traced(kind, conns, idle)
            if not sends:
                lines.append(f"| `{kind}` | {label} | n/a | no reply sent in the window |")
                continue
            parts = []
            for name, (n, err) in sorted(calls.items(), key=lambda kv: -kv[1][0]):
                if n / sends >= 0.005:
                    parts.append(f"{name} {n / sends:.2f}" + (f" ({err / sends:.2f} failed)" if err / sends >= 0.005 else ""))
            total = sum(n for n, _ in calls.values()) / sends
            lines.append(f"| `{kind}` | {label} | {total:.2f} | {', '.join(parts)} |")
            print(lines[-1], file=sys.stderr, flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    open(os.path.join(OUT, "why_reactor_syscalls.md"), "w").write(table)

try:
    syscalls() if os.environ["MODE"] == "syscalls" else main()
finally:
    for p in list(children):
        stop(p)
PY
DRIVER=$!
wait "$DRIVER"
