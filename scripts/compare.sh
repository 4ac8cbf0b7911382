#!/usr/bin/env bash
# Side-by-side: frameloop vs. the tokio peer (examples/peer_tokio.rs), in one run.
#
#   scripts/compare.sh --quick        # 100 conns x 64 B x depth {1,16}: ~2 min
#   scripts/compare.sh                # full matrix (24 cells): ~15 min
#   scripts/compare.sh --callgrind    # user-space instructions per echoed message
#   scripts/compare.sh --idle-rss     # server RSS growth for 10,000 idle connections
#   CELLS="100x64x1 10000x16x16" ROUNDS=5 scripts/compare.sh   # chosen cells (conns x size x depth)
#
# Server pinned to CPU 0, bench to CPU 1 (taskset); the two servers alternate
# within each round (interleaved, the order swapped every round), and each cell
# reports the median of the rounds. Per message: server CPU (utime+stime from
# /proc/PID/stat over the measured window), server syscalls (perf stat -e
# raw_syscalls:sys_enter), epoll_ctl calls. Needs perf (linux-perf) and, for
# --callgrind, valgrind. If perf cannot read tracepoints, syscalls are counted
# with `strace -c -f -p PID` instead, and the table says so: strace slows the
# server, so that run's msgs/s and CPU figures are then not comparable.
#
# Bounded: every server, bench and client run has a time limit; a stuck one
# is killed and the script stops with an error.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=matrix QUICK=0 ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-3} WARMUP=${WARMUP:-1}
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --callgrind) MODE=callgrind ;;
    --idle-rss) MODE=idle-rss ;;
    *) echo "usage: $0 [--quick|--callgrind|--idle-rss]" >&2; exit 2 ;;
  esac
done

command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf; }
if [ "$MODE" = callgrind ]; then
  command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
fi
PERF_OK=0
perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1 && PERF_OK=1
if [ "$PERF_OK" = 0 ]; then
  echo "perf cannot read tracepoints here; counting syscalls with strace -c (slows the server)" >&2
  command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace; }
fi
cargo build --release --quiet --bin frameloop --example peer_tokio
FRAMELOOP=target/release/frameloop
PEER=target/release/examples/peer_tokio
ulimit -n 65536 2>/dev/null || true

export FRAMELOOP PEER QUICK ROUNDS DURATION WARMUP MODE PERF_OK
exec python3 - <<'PY'
import json, math, os, re, signal, statistics, subprocess, sys, threading, time

FRAMELOOP, PEER = os.environ["FRAMELOOP"], os.environ["PEER"]
ROUNDS, DURATION, WARMUP = int(os.environ["ROUNDS"]), float(os.environ["DURATION"]), float(os.environ["WARMUP"])
TICK = os.sysconf("SC_CLK_TCK")
PERF_OK = os.environ["PERF_OK"] == "1"

def drain(stream):
    """Keeps reading a child's pipe so it never blocks on a full one."""
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()

def wait_for_address(p, stream, kind, pattern=r"listening on (\S+)"):
    """The address a server prints on start-up; gives up after 30 s."""
    found = []
    def scan():
        for line in stream:
            m = re.search(pattern, line)
            if m:
                found.append(m.group(1))
                return
    t = threading.Thread(target=scan, daemon=True)
    t.start()
    t.join(30)
    if not found:
        p.kill()
        raise SystemExit(f"{kind} did not print its address within 30 s")
    drain(stream)
    return found[0]

def start_server(kind, extra=()):
    cmd = ["taskset", "-c", "0"]
    if kind == "frameloop":
        cmd += [FRAMELOOP, "serve", "--addr", "127.0.0.1:0", "--max-connections", "20000", *extra]
        p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                             env={**os.environ, "RUST_LOG": "warn,frameloop::reactor=info"})
        stream = p.stderr
    else:
        cmd += [PEER, "--addr", "127.0.0.1:0", *extra]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        stream = p.stdout
    return p, wait_for_address(p, stream, kind)

def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])

def rss_kib(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0

def stop(p):
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)

def syscall_counts(pid, seconds):
    """Syscalls the server made in the next `seconds`, by name, plus "total"."""
    if PERF_OK:
        events = ["raw_syscalls:sys_enter", "syscalls:sys_enter_epoll_ctl",
                  "syscalls:sys_enter_epoll_wait"]
        perf = subprocess.run(
            ["perf", "stat", "-x,", "-e", ",".join(events), "-p", str(pid), "--", "sleep", str(seconds)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=seconds + 30)
        if perf.returncode != 0:
            raise RuntimeError(f"perf stat failed (exit {perf.returncode}): {perf.stderr.strip()[-300:]}")
        counts = {}
        for line in perf.stderr.splitlines():
            parts = line.split(",")
            if len(parts) > 2 and parts[0].strip().isdigit():
                counts[parts[2]] = int(parts[0])
        return {"total": counts.get(events[0], 0), "epoll_ctl": counts.get(events[1], 0),
                "epoll_wait": counts.get(events[2], 0)}
    out = f"/tmp/compare.strace.{pid}"
    subprocess.run(["timeout", "-s", "INT", str(seconds), "strace", "-c", "-f", "-o", out, "-p", str(pid)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 30)
    counts = {}
    for line in open(out):
        parts = line.split()
        if len(parts) >= 5 and parts[3].isdigit():
            counts[parts[-1]] = int(parts[3])
    return {"total": counts.get("total", 0), "epoll_ctl": counts.get("epoll_ctl", 0),
            "epoll_wait": counts.get("epoll_wait", 0) + counts.get("epoll_pwait", 0)}

def one_run(kind, conns, size, depth):
    """One bench run against a fresh server. Whatever fails on the way (perf,
    strace, the bench), neither the server nor the bench is left running."""
    server, addr = start_server(kind)
    bench = None
    try:
        pid = server.pid
        bench = subprocess.Popen(
            ["taskset", "-c", "1", FRAMELOOP, "bench", "--addr", addr, "--connections", str(conns),
             "--size", str(size), "--depth", str(depth), "--warmup", f"{WARMUP}s",
             "--duration", f"{DURATION}s", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The bench prints a progress line a second, counted from when all its
        # connections are up; the measured window starts after WARMUP of them.
        # Wait (at most a minute plus the connects) for WARMUP of those lines,
        # rounded up: a 1.5 s warm-up prints two (at 1 s and at 1.5 s), and
        # the measured window starts after the second.
        warmup_lines = max(1, math.ceil(WARMUP))
        seen, lines, deadline = [0], [], time.monotonic() + 60 + conns / 100 + WARMUP
        def watch():
            for line in bench.stderr:
                lines.append(line)
                seen[0] += line.startswith("[")
                if seen[0] >= warmup_lines:
                    return
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        watcher.join(max(1, deadline - time.monotonic()))
        if seen[0] < warmup_lines:
            bench.kill(); stop(server)
            raise SystemExit(f"{kind} {conns}x{size}x{depth}: the bench did not start: {''.join(lines)}")
        drain(bench.stderr)
        window = DURATION * 0.9
        w0, t0 = time.monotonic(), cpu_ticks(pid)
        counts = syscall_counts(pid, window)
        w1, t1 = time.monotonic(), cpu_ticks(pid)
        try:
            out, _ = bench.communicate(timeout=60 + conns / 100 + DURATION)
        except subprocess.TimeoutExpired:
            bench.kill(); stop(server)
            raise SystemExit(f"{kind} {conns}x{size}x{depth}: the bench did not finish")
        rss = rss_kib(pid, "VmHWM")
        stop(server)
        try:
            r = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise SystemExit(f"{kind} {conns}x{size}x{depth}: no report from the bench (exit {bench.returncode})")
        rate = max(r["msgs_per_sec"], 1e-9)
        # CPU: over the wall time between the two /proc samples. Syscalls: over
        # the counting window (perf attaches a little after w0, so this errs
        # towards more syscalls per message, never fewer).
        return {
            "msgs": r["msgs_per_sec"], "p99": r["latency_us"]["p99"],
            "cpu_us": (t1 - t0) / TICK * 1e6 / (rate * (w1 - w0)),
            "sys": counts["total"] / (rate * window),
            "ctl": counts["epoll_ctl"],
            "wait": counts["epoll_wait"] / (rate * window),
            "rss": rss, "errors": sum(r["errors"].values()),
        }
    finally:
        if bench is not None and bench.poll() is None:
            bench.kill()
            bench.wait(timeout=30)
        if server.poll() is None:
            stop(server)

def matrix():
    if os.environ.get("CELLS"):  # e.g. CELLS="100x64x1 10000x16x1"
        cells = [tuple(int(x) for x in c.split("x")) for c in os.environ["CELLS"].split()]
    elif os.environ["QUICK"] == "1":
        cells = [(100, 64, 1), (100, 64, 16)]
    else:
        cells = [(c, s, d) for c in (1, 100, 1000, 10000) for s in (16, 512, 4096) for d in (1, 16)]
    print(f"# {ROUNDS} interleaved rounds, {WARMUP}s warm-up + {DURATION}s each; medians. "
          "fl = frameloop, tk = tokio peer; ratio = fl/tk; syscalls from "
          + ("perf stat" if PERF_OK else "strace -c (slows the server: msgs/s and CPU distorted)"))
    print("| conns | size | depth | fl msgs/s | tk msgs/s | ratio | fl p99 us | tk p99 us "
          "| fl cpu us/msg | tk cpu us/msg | cpu ratio | fl sys/msg | tk sys/msg | fl epoll_wait/msg "
          "| fl epoll_ctl | fl RSS KiB | tk RSS KiB | errors |")
    print("|" + "---|" * 18)
    for conns, size, depth in cells:
        runs = {"frameloop": [], "tokio": []}
        for round in range(ROUNDS):
            # Swapped every round, so neither server always runs on a cooler
            # (or warmer) machine than the other.
            order = ("frameloop", "tokio") if round % 2 == 0 else ("tokio", "frameloop")
            for kind in order:
                runs[kind].append(one_run(kind, conns, size, depth))
        med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
        fl, tk = med["frameloop"], med["tokio"]
        errs = sum(r["errors"] for v in runs.values() for r in v)
        print(f"| {conns} | {size} | {depth} | {fl['msgs']:.0f} | {tk['msgs']:.0f} | {fl['msgs']/tk['msgs']:.2f} "
              f"| {fl['p99']:.0f} | {tk['p99']:.0f} | {fl['cpu_us']:.2f} | {tk['cpu_us']:.2f} "
              f"| {fl['cpu_us']/max(tk['cpu_us'],1e-9):.2f} | {fl['sys']:.3f} | {tk['sys']:.3f} | {fl['wait']:.3f} "
              f"| {fl['ctl']:.0f} | {fl['rss']:.0f} | {tk['rss']:.0f} | {errs} |", flush=True)

# One connection: `batch` 64-byte frames per write, `n` echoes in all.
CLIENT = r'''
import socket, struct, sys
n, port, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=60)
req = struct.pack("!I", 64) + b"x" * 64
for _ in range(n // batch):
    s.sendall(req * batch)
    want = len(req) * batch
    got = 0
    while got < want:
        chunk = s.recv(want - got)
        if not chunk:
            sys.exit("server closed")
        got += len(chunk)
s.close()
'''

# `conns` connections, one 64-byte request in flight on each (the bench's
# depth 1), `n` echoes in all: the server finds many connections ready per
# wake-up, as in the 100-connection benchmark.
CLIENT_MANY = r'''
import selectors, socket, struct, sys
n, port, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
req = struct.pack("!I", 64) + b"x" * 64
sel = selectors.DefaultSelector()
got = {}
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    sel.register(s, selectors.EVENT_READ)
    got[s] = 0
sent = 0
for s in got:
    s.sendall(req)
    sent += 1
done = 0
while done < n:
    ready = sel.select(timeout=60)
    if not ready:
        sys.exit("no reply within 60 s")
    for key, _ in ready:
        s = key.fileobj
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("server closed")
        got[s] += len(chunk)
        while got[s] >= len(req):
            got[s] -= len(req)
            done += 1
            if sent < n:
                s.sendall(req)
                sent += 1
for s in got:
    s.close()
'''

def callgrind_total(kind, n, batch, conns=1):
    out = f"/tmp/callgrind.{kind}.{n}.{batch}.{conns}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    if kind == "frameloop":
        cmd += [FRAMELOOP, "serve", "--addr", "127.0.0.1:0"]
        p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        stream = p.stderr
    else:
        cmd += [PEER, "--addr", "127.0.0.1:0"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        stream = p.stdout
    port = wait_for_address(p, stream, kind, r"listening on 127\.0\.0\.1:(\d+)")
    client = [CLIENT, str(n), port, str(batch)] if conns == 1 else [CLIENT_MANY, str(n), port, str(conns)]
    try:
        subprocess.run([sys.executable, "-c", *client], check=True, timeout=600)
    finally:
        p.send_signal(signal.SIGINT if kind == "frameloop" else signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            raise SystemExit(f"{kind} under valgrind did not stop")
    summary = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", summary)
    return int(m.group(1).replace(",", ""))

def callgrind():
    # One connection, one 64-byte echo per round trip (depth 1); one
    # connection, 100 pipelined per write; 100 connections at depth 1.
    # N and 2N echoes: the difference divided by N leaves out start-up.
    n = 10000
    print("| server | load | instructions, N=10,000 echoes | instructions, 2N | per echoed message |")
    print("|---|---|---|---|---|")
    loads = [("1 connection, 1 frame per write", 1, 1),
             ("1 connection, 100 frames per write", 100, 1),
             ("100 connections, depth 1", 1, 100)]
    for label, batch, conns in loads:
        for kind in ("frameloop", "tokio"):
            a = callgrind_total(kind, n, batch, conns)
            b = callgrind_total(kind, 2 * n, batch, conns)
            print(f"| {kind} | {label} | {a:,} | {b:,} | {(b - a) / n:.0f} |", flush=True)

def idle_rss():
    import socket
    n = 10000
    print("| server | RSS before KiB | RSS with 10,000 idle connections KiB | growth per connection, bytes |")
    print("|---|---|---|---|")
    for kind in ("frameloop", "tokio"):
        server, addr = start_server(kind)
        host, port = addr.rsplit(":", 1)
        time.sleep(0.3)
        before = rss_kib(server.pid)
        socks = []
        for _ in range(n):
            socks.append(socket.create_connection((host, int(port)), timeout=30))
        time.sleep(1.0)
        after = rss_kib(server.pid)
        for s in socks:
            s.close()
        stop(server)
        print(f"| {kind} | {before} | {after} | {(after - before) * 1024 / n:.0f} |", flush=True)

{"matrix": matrix, "callgrind": callgrind, "idle-rss": idle_rss}[os.environ["MODE"]]()
PY
