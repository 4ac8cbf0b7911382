"""An authenticating frameloop client: the notes' hmac check, made exact.

The server sends 32 random bytes; the client answers with
hmac.new(key, challenge, hashlib.sha256).digest() (32 bytes, unframed), then
speaks frames. The key is the key file's bytes less one trailing newline.

    python3 auth_client.py --port 9000 --key-file key hello
"""
import argparse
import hashlib
import hmac
import socket
import sys

from echo_client import recv_exact, request


def read_key(path):
    key = open(path, 'rb').read()
    if key.endswith(b'\r\n'):
        return key[:-2]
    if key.endswith(b'\n'):
        return key[:-1]
    return key


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=9000)
    parser.add_argument('--key-file', required=True)
    parser.add_argument('messages', nargs='*', default=['authenticated hello'])
    args = parser.parse_args()
    key = read_key(args.key_file)
    with socket.create_connection((args.host, args.port), timeout=10) as sock:
        challenge = recv_exact(sock, 32)
        sock.sendall(hmac.new(key, challenge, hashlib.sha256).digest())
        for message in args.messages:
            payload = message.encode('utf-8')
            try:
                reply = request(sock, payload)
            except ConnectionError:
                print('server closed the connection during authentication: wrong key?',
                      file=sys.stderr)
                return 1
            if reply != payload:
                print('mismatch', file=sys.stderr)
                return 1
            print(reply.decode('utf-8'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
