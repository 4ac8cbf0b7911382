"""A framed echo client for frameloop, standard library only.

Each message is sent as struct.pack('!I', len(payload)) + payload, and each
reply is read the same way. recv() may return fewer bytes than asked (TCP is a
stream), so recv_exact() loops: that is the notes' "sticky packet" fix, done
on the receiving side too.

    python3 echo_client.py --port 9000 hello world
"""
import argparse
import socket
import struct
import sys


def recv_exact(sock, n):
    data = b''
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError('server closed the connection')
        data += chunk
    return data


def request(sock, payload):
    sock.sendall(struct.pack('!I', len(payload)) + payload)
    (length,) = struct.unpack('!I', recv_exact(sock, 4))
    return recv_exact(sock, length)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=9000)
    parser.add_argument('messages', nargs='*', default=['hello', '', 'x' * 70000])
    args = parser.parse_args()
    with socket.create_connection((args.host, args.port), timeout=10) as sock:
        for message in args.messages:
            payload = message.encode('utf-8')
            reply = request(sock, payload)
            if reply != payload:
                print(f'mismatch: sent {len(payload)} bytes, got {len(reply)}', file=sys.stderr)
                return 1
            print(reply.decode('utf-8')[:60])
    return 0


if __name__ == '__main__':
    sys.exit(main())
