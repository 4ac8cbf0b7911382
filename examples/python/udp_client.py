"""The notes' UDP client, pointed at `frameloop serve --udp`.

The notes' four lines, with the address made a flag and a timeout added:
UDP promises no delivery, so a client that waits for a reply must not wait
forever. With --key-file (a server started with the same --key-file), each
datagram is sealed as frameloop's UDP authentication requires (see
src/auth/datagram.rs): time, nonce, payload, HMAC-SHA256 tag.

    python3 udp_client.py --port 9000               # b'hello'  (b'HELLO' with --handler upper)
    python3 udp_client.py --port 9000 --key-file key
"""
import argparse
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

REQUEST_LABEL = b'frameloop udp request v1'
REPLY_LABEL = b'frameloop udp reply v1'


def seal(key, payload):
    """time (u64 ms, big-endian) + 16-byte nonce + payload + tag."""
    header = struct.pack('!Q', int(time.time() * 1000)) + os.urandom(16)
    tag = hmac.new(key, REQUEST_LABEL + header + payload, hashlib.sha256).digest()
    return header + payload + tag, header[8:24]


def open_reply(key, datagram, nonce):
    """The reply's payload, if its tag is right and it answers our nonce."""
    if len(datagram) < 56:
        return None
    sealed, tag = datagram[:-32], datagram[-32:]
    want = hmac.new(key, REPLY_LABEL + sealed, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, want) or sealed[8:24] != nonce:
        return None
    return sealed[24:]


parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
parser.add_argument('--host', default='127.0.0.1')
parser.add_argument('--port', type=int, default=9000)
parser.add_argument('--key-file', help='seal datagrams with this key')
parser.add_argument('--message', default='hello')
parser.add_argument('--timeout', type=float, default=5, help='seconds to wait for the reply')
args = parser.parse_args()

sk = socket.socket(type=socket.SOCK_DGRAM)
sk.settimeout(args.timeout)
if args.key_file is None:
    sk.sendto(args.message.encode(), (args.host, args.port))
else:
    key = open(args.key_file, 'rb').read()
    key = key[:-2] if key.endswith(b'\r\n') else key[:-1] if key.endswith(b'\n') else key
    datagram, nonce = seal(key, args.message.encode())
    sk.sendto(datagram, (args.host, args.port))
try:
    ret = sk.recv(65535)
except socket.timeout:
    sys.exit(f'no reply from {args.host}:{args.port} in {args.timeout} s (is the server running with --udp?'
             + (' does it use --key-file?)' if args.key_file is None else ' the same key?)'))
if args.key_file is not None:
    ret = open_reply(key, ret, nonce)
    if ret is None:
        sys.exit('the reply failed authentication: wrong key, or the server runs without --key-file')
print(ret)
sk.close()
