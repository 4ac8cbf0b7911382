"""SIGTERM while one client floods the server: the others must still get
every reply the server handled for them, then a clean end of stream.

    python3 shutdown_flood.py /path/to/frameloop

Five clients pipeline 10,000 frames each behind 4 KiB receive buffers and
read slowly, so the server has paused them, with replies queued, when the
signal comes. Three more, connected first (so shutdown reads them first),
stream empty frames without pause and read their echoes. Prints one JSON object:
how each slow client's stream ended, and the server's exit code and time.
"""
import json, socket, struct, subprocess, sys, threading, time, re, os

binary = sys.argv[1]
server = subprocess.Popen([binary, "serve", "--addr", "127.0.0.1:0", "--shutdown-timeout", "20s"],
                          stderr=subprocess.PIPE, text=True, env=dict(os.environ, RUST_LOG="info"))
port = None
for line in server.stderr:
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if m:
        port = int(m.group(1))
        break
threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()

def frame(payload):
    return struct.pack("!I", len(payload)) + payload

stop = [False]
blob = frame(b"") * 16384
def flood(flooder):
    try:
        while not stop[0]:
            flooder.sendall(blob)
    except OSError:
        pass
def drain(flooder):
    try:
        while flooder.recv(1 << 20):
            pass
    except OSError:
        pass
for _ in range(3):
    flooder = socket.create_connection(("127.0.0.1", port))
    threading.Thread(target=flood, args=(flooder,), daemon=True).start()
    threading.Thread(target=drain, args=(flooder,), daemon=True).start()

results = {}
def client(i):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    frames = 10000
    data = b"".join(frame(b"c%03d-%06d" % (i, k) + b"." * 190) for k in range(frames))
    threading.Thread(target=lambda: s.sendall(data), daemon=True).start()
    got, buf, end = 0, b"", "timeout"
    s.settimeout(20)
    try:
        while got < frames:
            chunk = s.recv(4096)
            if not chunk:
                end = "eof"
                break
            buf += chunk
            while len(buf) >= 4:
                (n,) = struct.unpack("!I", buf[:4])
                if len(buf) < 4 + n:
                    break
                if buf[4:4 + n] != b"c%03d-%06d" % (i, got) + b"." * 190:
                    end = "mismatch"
                buf = buf[4 + n:]
                got += 1
            time.sleep(0.002)
        else:
            end = "all"
    except OSError as e:
        end = type(e).__name__
    results[i] = {"echoes": got, "end": end}

threads = [threading.Thread(target=client, args=(i,)) for i in range(5)]
for t in threads:
    t.start()
time.sleep(1.0)
started = time.time()
server.terminate()
for t in threads:
    t.join(30)
stop[0] = True
code = server.wait(30)
print(json.dumps({"clients": results, "exit": code, "seconds": round(time.time() - started, 2)}))
