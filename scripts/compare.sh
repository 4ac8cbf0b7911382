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
# within each round (interleaved), and each cell reports the median of the
# rounds. Per message: server CPU (utime+stime from /proc/PID/stat over the
# measured window), server syscalls (perf stat -e raw_syscalls:sys_enter),
# epoll_ctl calls. Needs perf (linux-perf) and, for --callgrind, valgrind.
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
cargo build --release --quiet --bin frameloop --example peer_tokio
FRAMELOOP=target/release/frameloop
PEER=target/release/examples/peer_tokio
ulimit -n 65536 2>/dev/null || true

export FRAMELOOP PEER QUICK ROUNDS DURATION WARMUP MODE
exec python3 - <<'PY'
import json, os, re, signal, statistics, subprocess, sys, time

FRAMELOOP, PEER = os.environ["FRAMELOOP"], os.environ["PEER"]
ROUNDS, DURATION, WARMUP = int(os.environ["ROUNDS"]), float(os.environ["DURATION"]), float(os.environ["WARMUP"])
TICK = os.sysconf("SC_CLK_TCK")

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
    for line in stream:
        m = re.search(r"listening on (\S+)", line)
        if m:
            # keep draining so the server never blocks on a full pipe
            import threading
            threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
            return p, m.group(1)
    raise SystemExit(f"{kind} did not start")

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
    p.wait()

def one_run(kind, conns, size, depth):
    server, addr = start_server(kind)
    pid = server.pid
    bench = subprocess.Popen(
        ["taskset", "-c", "1", FRAMELOOP, "bench", "--addr", addr, "--connections", str(conns),
         "--size", str(size), "--depth", str(depth), "--warmup", f"{WARMUP}s",
         "--duration", f"{DURATION}s", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The bench prints a progress line a second, counted from when all its
    # connections are up; the measured window starts after WARMUP of them.
    seen = 0
    for line in bench.stderr:
        seen += line.startswith("[")
        if seen >= max(1, round(WARMUP)):
            break
    import threading
    threading.Thread(target=lambda: [None for _ in bench.stderr], daemon=True).start()
    t0 = cpu_ticks(pid)
    perf = subprocess.run(
        ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_epoll_wait",
         "-p", str(pid), "--", "sleep", str(DURATION * 0.9)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t1 = cpu_ticks(pid)
    out, _ = bench.communicate(timeout=120 + conns / 100)
    rss = rss_kib(pid, "VmHWM")
    stop(server)
    counts = {}
    for line in perf.stderr.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[0].strip().isdigit():
            counts[parts[2]] = int(parts[0])
    r = json.loads(out.strip().splitlines()[-1])
    msgs_in_window = r["msgs_per_sec"] * DURATION * 0.9
    errors = sum(r["errors"].values())
    return {
        "msgs": r["msgs_per_sec"], "p99": r["latency_us"]["p99"],
        "cpu_us": (t1 - t0) / TICK * 1e6 / max(msgs_in_window, 1),
        "sys": counts.get("raw_syscalls:sys_enter", 0) / max(msgs_in_window, 1),
        "ctl": counts.get("syscalls:sys_enter_epoll_ctl", 0),
        "wait": counts.get("syscalls:sys_enter_epoll_wait", 0) / max(msgs_in_window, 1),
        "rss": rss, "errors": errors,
    }

def matrix():
    if os.environ.get("CELLS"):  # e.g. CELLS="100x64x1 10000x16x1"
        cells = [tuple(int(x) for x in c.split("x")) for c in os.environ["CELLS"].split()]
    elif os.environ["QUICK"] == "1":
        cells = [(100, 64, 1), (100, 64, 16)]
    else:
        cells = [(c, s, d) for c in (1, 100, 1000, 10000) for s in (16, 512, 4096) for d in (1, 16)]
    print(f"# {ROUNDS} interleaved rounds, {WARMUP}s warm-up + {DURATION}s each; medians. "
          "fl = frameloop, tk = tokio peer; ratio = fl/tk")
    print("| conns | size | depth | fl msgs/s | tk msgs/s | ratio | fl p99 us | tk p99 us "
          "| fl cpu us/msg | tk cpu us/msg | cpu ratio | fl sys/msg | tk sys/msg | fl epoll_wait/msg "
          "| fl epoll_ctl | fl RSS KiB | tk RSS KiB | errors |")
    print("|" + "---|" * 18)
    for conns, size, depth in cells:
        runs = {"frameloop": [], "tokio": []}
        for _ in range(ROUNDS):
            for kind in ("frameloop", "tokio"):
                runs[kind].append(one_run(kind, conns, size, depth))
        med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
        fl, tk = med["frameloop"], med["tokio"]
        errs = sum(r["errors"] for v in runs.values() for r in v)
        print(f"| {conns} | {size} | {depth} | {fl['msgs']:.0f} | {tk['msgs']:.0f} | {fl['msgs']/tk['msgs']:.2f} "
              f"| {fl['p99']:.0f} | {tk['p99']:.0f} | {fl['cpu_us']:.2f} | {tk['cpu_us']:.2f} "
              f"| {fl['cpu_us']/max(tk['cpu_us'],1e-9):.2f} | {fl['sys']:.3f} | {tk['sys']:.3f} | {fl['wait']:.3f} "
              f"| {fl['ctl']:.0f} | {fl['rss']:.0f} | {tk['rss']:.0f} | {errs} |", flush=True)

CLIENT = r'''
import socket, struct, sys
n, port, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
req = struct.pack("!I", 64) + b"x" * 64
for _ in range(n // batch):
    s.sendall(req * batch)
    want = len(req) * batch
    got = 0
    while got < want:
        got += len(s.recv(want - got))
s.close()
'''

def callgrind_total(kind, n, batch):
    out = f"/tmp/callgrind.{kind}.{n}.{batch}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    if kind == "frameloop":
        cmd += [FRAMELOOP, "serve", "--addr", "127.0.0.1:0"]
        p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        stream = p.stderr
    else:
        cmd += [PEER, "--addr", "127.0.0.1:0"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        stream = p.stdout
    for line in stream:
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            port = m.group(1)
            break
    subprocess.run([sys.executable, "-c", CLIENT, str(n), port, str(batch)], check=True)
    p.send_signal(signal.SIGINT if kind == "frameloop" else signal.SIGTERM)
    p.wait()
    summary = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", summary)
    return int(m.group(1).replace(",", ""))

def callgrind():
    # One 64-byte echo per round trip (depth 1), and 100 pipelined per write.
    # N and 2N echoes: the difference divided by N leaves out start-up.
    n = 10000
    print("| server | frames per write | instructions, N=10,000 echoes | instructions, 2N | per echoed message |")
    print("|---|---|---|---|---|")
    for batch in (1, 100):
        for kind in ("frameloop", "tokio"):
            a, b = callgrind_total(kind, n, batch), callgrind_total(kind, 2 * n, batch)
            print(f"| {kind} | {batch} | {a:,} | {b:,} | {(b - a) / n:.0f} |", flush=True)

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
            socks.append(socket.create_connection((host, int(port))))
        time.sleep(1.0)
        after = rss_kib(server.pid)
        for s in socks:
            s.close()
        stop(server)
        print(f"| {kind} | {before} | {after} | {(after - before) * 1024 / n:.0f} |", flush=True)

{"matrix": matrix, "callgrind": callgrind, "idle-rss": idle_rss}[os.environ["MODE"]]()
PY
