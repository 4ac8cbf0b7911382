#!/usr/bin/env bash
# Side-by-side: frameloop vs. the tokio peer (examples/peer_tokio.rs), in one run.
#
#   scripts/compare.sh --quick        # 100 conns x 64 B x depth {1,16}: ~2 min
#   scripts/compare.sh                # full matrix (24 cells): ~15 min
#   scripts/compare.sh --callgrind    # user-space instructions per echoed message
#   scripts/compare.sh --idle-rss     # server RSS growth for 10,000 idle connections
#   CELLS="100x64x1 10000x16x16" ROUNDS=5 scripts/compare.sh   # chosen cells (conns x size x depth)
#   scripts/compare.sh --reactors 1,2 # scaling: N reactors vs. the tokio peer with N workers
#   REACTORS=1,2,4,8 CELLS="1000x64x1" scripts/compare.sh       # the same, as an environment list
#   BASELINE=/path/to/old/frameloop scripts/compare.sh --quick  # this build vs. another build
#
# Server pinned to CPU 0, bench to CPU 1 (taskset); the two servers alternate
# within each round (interleaved, the order swapped every round), and each cell
# reports the median of the rounds. Per message: server CPU (utime+stime from
# /proc/PID/stat over the measured window, all of its threads), server
# syscalls (perf stat -e raw_syscalls:sys_enter), epoll_ctl calls. Needs perf
# (linux-perf) and, for --callgrind, valgrind. If perf cannot read
# tracepoints, syscalls are counted with `strace -c -f -p PID` instead, and the
# table says so: strace slows the server, so that run's msgs/s and CPU figures
# are then not comparable.
#
# Scaling (--reactors LIST, or REACTORS=LIST; comma-separated): for each N in
# the list, frameloop runs `serve --reactors N --pin` and the tokio peer
# `--workers N` (a multi_thread runtime; N = 1 is its current_thread runtime,
# the peer above). Cells: 1000x64x1 and 1000x64x16 (--quick: 100
# connections; CELLS as above). Every (server, N) alternates within each
# round, the order reversed every round; medians. CPUs are handed out in order
# from CPUS (a list such as "0-15"; default: every CPU this script may use):
# the server gets the first N and the bench all the others when there are at
# least N others (on two cores, N = 1: server on CPU 0, bench on CPU 1, as
# above); with fewer, server and bench are both given all of them and share
# them, and the header says so. SHARE_CORES=1 shares them for every N, N = 1
# included. The bench runs one thread per CPU it was given (BENCH_THREADS
# overrides). Reactor i is pinned to the i-th CPU of the server's set; the
# tokio workers are left to the kernel within that set. `scale` = msgs/s over
# the same server's msgs/s at the first N of the list; `busy srv/bench` = the
# server's and the bench's CPU seconds per second over the measured window
# (how many cores each kept busy: a server well under N beside a bench near
# its CPU count means the bench, not the server, set the pace). `others` =
# the cores kept busy by everything else over the same windows (the larger of
# the two servers' medians; it includes kernel threads such as ksoftirqd doing
# loopback work): on a quiet machine near 0, and the figures of a row with a
# large one were taken on a busy machine.
#
# BASELINE=BINARY (the msgs/s comparison only): the other server is that
# frameloop binary's `serve` instead of the tokio peer (its columns are still
# headed tk), loaded by this build's bench, so a change is measured against
# the code before it with the same client: build the old commit in a git
# worktree and pass its target/release/frameloop.
#
# Bounded: every server, bench and client run has a time limit; a stuck one
# is killed and the script stops with an error.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=matrix QUICK=0 ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-3} WARMUP=${WARMUP:-1}
BASELINE=${BASELINE:-} REACTORS=${REACTORS:-} CPUS=${CPUS:-} SHARE_CORES=${SHARE_CORES:-0} BENCH_THREADS=${BENCH_THREADS:-}
usage="usage: $0 [--quick|--callgrind|--idle-rss] [--reactors N,N,...]"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    --callgrind) MODE=callgrind ;;
    --idle-rss) MODE=idle-rss ;;
    --reactors) [ $# -ge 2 ] || { echo "--reactors needs a list, such as 1,2" >&2; exit 2; }
                REACTORS=$2; shift ;;
    --reactors=*) REACTORS=${1#--reactors=} ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$REACTORS" ]; then
  [[ "$REACTORS" =~ ^[1-9][0-9]{0,3}(,[1-9][0-9]{0,3})*$ ]] \
    || { echo "--reactors: '$REACTORS' is not a list of reactor counts, such as 1,2,4" >&2; exit 2; }
  [ "$MODE" = matrix ] || { echo "--reactors goes with the msgs/s comparison, not --callgrind or --idle-rss" >&2; exit 2; }
  MODE=scaling
fi
if [ -n "$BASELINE" ]; then
  [ -x "$BASELINE" ] || { echo "BASELINE: '$BASELINE' is not an executable (a frameloop binary)" >&2; exit 2; }
  [ "$MODE" = matrix ] || { echo "BASELINE goes with the msgs/s comparison, not --reactors, --callgrind or --idle-rss" >&2; exit 2; }
  BASELINE=$(realpath "$BASELINE")
fi
[[ -z "$BENCH_THREADS" || "$BENCH_THREADS" =~ ^[1-9][0-9]{0,3}$ ]] \
  || { echo "BENCH_THREADS: '$BENCH_THREADS' is not a number of threads" >&2; exit 2; }
[[ -z "$CPUS" || "$CPUS" =~ ^[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*$ ]] \
  || { echo "CPUS: '$CPUS' is not a CPU list, such as 0-7,16-23" >&2; exit 2; }

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

export FRAMELOOP PEER BASELINE QUICK ROUNDS DURATION WARMUP MODE PERF_OK REACTORS CPUS SHARE_CORES BENCH_THREADS
exec python3 - <<'PY'
import json, math, os, re, signal, statistics, subprocess, sys, threading, time

FRAMELOOP, PEER = os.environ["FRAMELOOP"], os.environ["PEER"]
BASELINE = os.environ["BASELINE"]  # another frameloop build in the peer's place
ROUNDS, DURATION, WARMUP = int(os.environ["ROUNDS"]), float(os.environ["DURATION"]), float(os.environ["WARMUP"])
TICK = os.sysconf("SC_CLK_TCK")
PERF_OK = os.environ["PERF_OK"] == "1"

def drain(stream):
    """Keeps reading a child's pipe so it never blocks on a full one."""
    def read():
        try:
            for _ in stream:
                pass
        except (ValueError, OSError):
            # communicate() read the rest and closed the pipe under us (the
            # bench's stderr): nothing was left to drain.
            pass
    threading.Thread(target=read, daemon=True).start()

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

def start_server(kind, extra=(), cpus="0"):
    cmd = ["taskset", "-c", cpus]
    if kind == "frameloop" or BASELINE:
        binary = FRAMELOOP if kind == "frameloop" else BASELINE
        cmd += [binary, "serve", "--addr", "127.0.0.1:0", "--max-connections", "20000", *extra]
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

def busy_ticks():
    """Every CPU's non-idle ticks so far (user, nice, system, irq, softirq,
    steal), for what else ran beside the server and the bench."""
    f = open("/proc/stat").readline().split()
    return sum(int(f[i]) for i in (1, 2, 3, 6, 7, 8))

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

def one_run(kind, conns, size, depth, extra=(), server_cpus="0", bench_cpus="1", threads=1):
    """One bench run against a fresh server. Whatever fails on the way (perf,
    strace, the bench), neither the server nor the bench is left running."""
    server, addr = start_server(kind, extra, server_cpus)
    bench = None
    try:
        pid = server.pid
        bench = subprocess.Popen(
            ["taskset", "-c", bench_cpus, FRAMELOOP, "bench", "--addr", addr, "--connections", str(conns),
             "--size", str(size), "--depth", str(depth), "--warmup", f"{WARMUP}s",
             "--duration", f"{DURATION}s", "--threads", str(threads), "--json"],
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
        w0, t0, b0, m0 = time.monotonic(), cpu_ticks(pid), cpu_ticks(bench.pid), busy_ticks()
        counts = syscall_counts(pid, window)
        w1, t1, b1, m1 = time.monotonic(), cpu_ticks(pid), cpu_ticks(bench.pid), busy_ticks()
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
            "busy": (t1 - t0) / TICK / (w1 - w0),
            "bench_busy": (b1 - b0) / TICK / (w1 - w0),
            "others": max(0, (m1 - m0) - (t1 - t0) - (b1 - b0)) / TICK / (w1 - w0),
        }
    finally:
        if bench is not None and bench.poll() is None:
            bench.kill()
            bench.wait(timeout=30)
        if server.poll() is None:
            stop(server)

def chosen_cells(default):
    if os.environ.get("CELLS"):  # e.g. CELLS="100x64x1 10000x16x1"
        return [tuple(int(x) for x in c.split("x")) for c in os.environ["CELLS"].split()]
    if os.environ["QUICK"] == "1":
        return [(100, 64, 1), (100, 64, 16)]
    return default

def matrix():
    cells = chosen_cells([(c, s, d) for c in (1, 100, 1000, 10000) for s in (16, 512, 4096) for d in (1, 16)])
    print(f"# {ROUNDS} interleaved rounds, {WARMUP}s warm-up + {DURATION}s each; medians. "
          f"fl = frameloop, tk = {'baseline ' + BASELINE if BASELINE else 'tokio peer'}; "
          "ratio = fl/tk; syscalls from "
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

def refuse(message):
    """A setting the run cannot use: one line, exit 2, as the shell part does."""
    print(message, file=sys.stderr)
    sys.exit(2)

def cpu_list(text):
    """ "0-3,8" -> [0, 1, 2, 3, 8], in the order given."""
    cpus = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus

def placement(n, cpus, share):
    """(server CPUs, bench CPUs, words for the header) for N reactors: the
    server on the first N, the bench on all the others when there are at
    least N of them (a client weaker than the server would measure itself);
    both on all of them otherwise."""
    if not share and len(cpus) >= 2 * n:
        server, bench = cpus[:n], cpus[n:]
        words = f"server on CPU {','.join(map(str, server))}, bench on CPU {','.join(map(str, bench))}"
    else:
        server = bench = cpus
        words = f"server and bench share CPUs {','.join(map(str, cpus))}"
    return ",".join(map(str, server)), ",".join(map(str, bench)), words

def scaling():
    counts = [int(n) for n in os.environ["REACTORS"].split(",")]
    cpus = cpu_list(os.environ["CPUS"]) if os.environ["CPUS"] else sorted(os.sched_getaffinity(0))
    allowed = os.sched_getaffinity(0)
    if any(n > 1024 for n in counts):
        refuse("--reactors: at most 1024 (as serve --reactors)")
    if not cpus or not set(cpus) <= allowed or len(set(cpus)) != len(cpus):
        refuse(f"CPUS: {os.environ['CPUS']} is not a list of distinct CPUs this script may use "
                 f"({','.join(map(str, sorted(allowed)))})")
    share = os.environ["SHARE_CORES"] == "1"
    cells = chosen_cells([(1000, 64, 1), (1000, 64, 16)])
    places = {n: placement(n, cpus, share) for n in counts}
    # One bench thread per CPU the bench may use: on two cores, 1 for N = 1
    # (as in the matrix) and 2 for N = 2.
    threads = {n: int(os.environ["BENCH_THREADS"] or len(places[n][1].split(","))) for n in counts}
    load = lambda: " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"# scaling: {ROUNDS} interleaved rounds, {WARMUP}s warm-up + {DURATION}s each; medians. "
          f"fl = frameloop serve --reactors N --pin, tk = tokio peer --workers N; "
          f"{len(cpus)} CPUs; load average at start {load()}")
    for n in counts:
        print(f"# N={n}: {places[n][2]}; bench --threads {threads[n]}")
    print("| conns | size | depth | N | fl msgs/s | tk msgs/s | ratio | fl scale | tk scale "
          "| fl cpu us/msg | tk cpu us/msg | cpu ratio | fl busy srv/bench | tk busy srv/bench | fl p99 us | tk p99 us "
          "| fl sys/msg | tk sys/msg | others | errors |")
    print("|" + "---|" * 20)
    for conns, size, depth in cells:
        runs = {(kind, n): [] for n in counts for kind in ("frameloop", "tokio")}
        for round in range(ROUNDS):
            order = list(runs) if round % 2 == 0 else list(reversed(runs))
            for kind, n in order:
                extra = ["--reactors", str(n), "--pin"] if kind == "frameloop" else ["--workers", str(n)]
                server_cpus, bench_cpus, _ = places[n]
                runs[kind, n].append(one_run(kind, conns, size, depth, extra, server_cpus, bench_cpus, threads[n]))
        med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
        base = {kind: med[kind, counts[0]]["msgs"] for kind in ("frameloop", "tokio")}
        for n in counts:
            fl, tk = med["frameloop", n], med["tokio", n]
            errs = sum(r["errors"] for kind in ("frameloop", "tokio") for r in runs[kind, n])
            print(f"| {conns} | {size} | {depth} | {n} | {fl['msgs']:.0f} | {tk['msgs']:.0f} "
                  f"| {fl['msgs']/tk['msgs']:.2f} | {fl['msgs']/base['frameloop']:.2f} | {tk['msgs']/base['tokio']:.2f} "
                  f"| {fl['cpu_us']:.2f} | {tk['cpu_us']:.2f} | {fl['cpu_us']/max(tk['cpu_us'],1e-9):.2f} "
                  f"| {fl['busy']:.2f}/{fl['bench_busy']:.2f} | {tk['busy']:.2f}/{tk['bench_busy']:.2f} "
                  f"| {fl['p99']:.0f} | {tk['p99']:.0f} "
                  f"| {fl['sys']:.3f} | {tk['sys']:.3f} | {max(fl['others'], tk['others']):.2f} | {errs} |", flush=True)
    print(f"# load average at end {load()}")

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
    if kind == "frameloop" or BASELINE:
        binary = FRAMELOOP if kind == "frameloop" else BASELINE
        cmd += [binary, "serve", "--addr", "127.0.0.1:0"]
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

{"matrix": matrix, "scaling": scaling, "callgrind": callgrind, "idle-rss": idle_rss}[os.environ["MODE"]]()
PY
