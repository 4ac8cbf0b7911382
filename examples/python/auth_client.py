"""An authenticating frameloop client: the notes' hmac check, made exact.

    client                                   server (frameloop serve --key-file key)
      | <------ challenge: 32 random bytes ---- |   unframed
      | ------ hmac(key, challenge, sha256) --> |   32 bytes, unframed
      | <============ frames ================>  |   right answer; a wrong one: closed

The notes call hmac.new(key, msg) with no digest, which Python 3.8 and later
refuse; frameloop uses SHA-256. The key is the key file's bytes with one
trailing newline (\\n or \\r\\n) removed, the same rule as the server's
load_key, so `frameloop keygen > key` works for both sides.

    python3 auth_client.py --port 9000 --key-file key hello

Exit status: 0 if every reply equals what was sent, 1 if the server refused
the key or a reply differs, 2 if the server cannot be reached.
"""
import argparse
import hashlib
import hmac
import socket
import sys

from echo_client import recv_exact, request

CHALLENGE_LEN = 32


def read_key(path):
    """The key file's bytes, less one trailing newline."""
    with open(path, 'rb') as f:
        key = f.read()
    if key.endswith(b'\r\n'):
        return key[:-2]
    if key.endswith(b'\n'):
        return key[:-1]
    return key


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=9000)
    parser.add_argument('--key-file', required=True)
    parser.add_argument('messages', nargs='*', default=['authenticated hello'])
    args = parser.parse_args()
    key = read_key(args.key_file)
    try:
        sock = socket.create_connection((args.host, args.port), timeout=10)
    except OSError as e:
        print(f'cannot connect to {args.host}:{args.port}: {e}', file=sys.stderr)
        return 2
    with sock:
        try:
            challenge = recv_exact(sock, CHALLENGE_LEN)
            sock.sendall(hmac.new(key, challenge, hashlib.sha256).digest())
        except (ConnectionError, socket.timeout) as e:
            print(f'no challenge from the server (does it have a key?): {e}',
                  file=sys.stderr)
            return 1
        for i, message in enumerate(args.messages):
            payload = message.encode('utf-8')
            try:
                reply = request(sock, payload)
            except (ConnectionError, socket.timeout) as e:
                # The server says nothing to a wrong answer: it just closes.
                why = 'the server refused the answer: wrong key?' if i == 0 else 'no reply'
                print(f'{why} ({e})', file=sys.stderr)
                return 1
            if reply != payload:
                print(f'mismatch: sent {payload[:40]!r}, got {reply[:40]!r}', file=sys.stderr)
                return 1
            print(reply.decode('utf-8'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
