"""A framed echo client for frameloop, standard library only.

Every message travels as a frame: a 4-byte big-endian length, then the bytes.

    offset  0        4
            +--------+---------------------+
            | length | payload (length B)  |      struct.pack('!I', len(payload)) + payload
            +--------+---------------------+

That is the notes' struct.pack fix for "sticky packets", with '!I' instead of
'i': '!' fixes the byte order (big-endian) and I is unsigned, so a Python
client and a Rust server agree on every machine. recv(n) may return fewer
than n bytes (TCP is a stream, not messages), so recv_exact() loops: the same
fix, on the receiving side.

    python3 echo_client.py --port 9000 hello world

Exit status: 0 if every reply equals what was sent, 1 on a mismatch or a
closed connection, 2 if the server cannot be reached.
"""
import argparse
import socket
import struct
import sys


def recv_exact(sock, n):
    """Reads exactly n bytes, or raises ConnectionError if the server closes."""
    data = b''
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError('server closed the connection')
        data += chunk
    return data


def request(sock, payload):
    """Sends one frame and returns the payload of the one reply frame."""
    # One sendall for header and payload: two sends would cost two packets.
    sock.sendall(struct.pack('!I', len(payload)) + payload)
    (length,) = struct.unpack('!I', recv_exact(sock, 4))
    return recv_exact(sock, length)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=9000)
    parser.add_argument('messages', nargs='*', default=['hello', '', 'x' * 70000],
                        help='default: hello, an empty frame, and 70000 bytes')
    args = parser.parse_args()
    try:
        sock = socket.create_connection((args.host, args.port), timeout=10)
    except OSError as e:
        print(f'cannot connect to {args.host}:{args.port}: {e}', file=sys.stderr)
        return 2
    with sock:
        for message in args.messages:
            payload = message.encode('utf-8')
            try:
                reply = request(sock, payload)
            except (ConnectionError, socket.timeout) as e:
                print(f'no reply: {e}', file=sys.stderr)
                return 1
            if reply != payload:
                print(f'mismatch: sent {payload[:40]!r} ({len(payload)} bytes), '
                      f'got {reply[:40]!r} ({len(reply)} bytes)', file=sys.stderr)
                return 1
            # Long replies are cut for the screen; the comparison above was whole.
            print(reply.decode('utf-8')[:60])
    return 0


if __name__ == '__main__':
    sys.exit(main())
