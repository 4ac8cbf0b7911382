"""The notes' UDP client, pointed at `frameloop serve --udp`.

The notes' four lines, with the address made a flag and a timeout added:
UDP promises no delivery, so a client that waits for a reply must not wait
forever.

    python3 udp_client.py --port 9000     # b'hello'  (b'HELLO' with --handler upper)
"""
import argparse
import socket
import sys

parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
parser.add_argument('--host', default='127.0.0.1')
parser.add_argument('--port', type=int, default=9000)
args = parser.parse_args()

sk = socket.socket(type=socket.SOCK_DGRAM)
sk.settimeout(5)
sk.sendto(b'hello', (args.host, args.port))
try:
    ret = sk.recv(1024)
except socket.timeout:
    sys.exit(f'no reply from {args.host}:{args.port} in 5 s (is the server running with --udp?)')
print(ret)
sk.close()
