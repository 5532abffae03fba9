"""A Python `websockets` client for a server handler that only sends (never reads).

Usage: python send_only_client.py ws://127.0.0.1:PORT/ticker SECONDS
Reads for SECONDS without sending anything itself (its own keepalive pings are off; it only
answers the server's pings, as websockets does while it reads), then closes with 1000.
Prints "ticks N" and "still open", or "closed CODE REASON" and exits 1 if the server closed
the connection first.
"""

import asyncio
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def main(url, seconds):
    ticks = 0
    async with connect(url, ping_interval=None, compression=None) as ws:
        deadline = time.monotonic() + seconds
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    message = await asyncio.wait_for(ws.recv(), left)
                except asyncio.TimeoutError:
                    break
                if isinstance(message, str) and message.startswith("tick"):
                    ticks += 1
        except ConnectionClosed as closed:
            rcvd = closed.rcvd
            print(f"ticks {ticks}")
            print(f"closed {rcvd.code if rcvd else None} {rcvd.reason if rcvd else ''}")
            sys.exit(1)
        print(f"ticks {ticks}")
        print("still open")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
