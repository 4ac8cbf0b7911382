"""The notes' UDP client, pointed at `frameloop serve --udp`.

    python3 udp_client.py --port 9000        # prints b'hello' (b'HELLO' with --handler upper)
"""
import argparse
import socket

parser = argparse.ArgumentParser()
parser.add_argument('--host', default='127.0.0.1')
parser.add_argument('--port', type=int, default=9000)
args = parser.parse_args()

sk = socket.socket(type=socket.SOCK_DGRAM)
sk.settimeout(5)
sk.sendto(b'hello', (args.host, args.port))
ret = sk.recv(1024)
print(ret)
sk.close()
