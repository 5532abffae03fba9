"""Room members for the compress-once test: N clients with permessage-deflate and M without
join ws://.../room/NAME, print "ready", then each prints the first broadcast it receives
with whether its connection compresses, and the script exits.

Usage: python room_clients.py URL N_DEFLATE N_PLAIN
"""

import asyncio
import sys

from websockets.asyncio.client import connect


async def member(url, compression, joined, results):
    async with connect(url, compression=compression, max_size=None) as ws:
        hello = await asyncio.wait_for(ws.recv(), 10)
        assert hello.startswith("joined"), hello
        joined.release()
        msg = await asyncio.wait_for(ws.recv(), 30)
        results.append((bool(ws.protocol.extensions), msg))


async def main(url, n_deflate, n_plain):
    joined = asyncio.Semaphore(0)
    results = []
    tasks = [asyncio.create_task(member(url, "deflate", joined, results)) for _ in range(n_deflate)]
    tasks += [asyncio.create_task(member(url, None, joined, results)) for _ in range(n_plain)]
    for _ in tasks:
        await asyncio.wait_for(joined.acquire(), 10)
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    for compressed, msg in results:
        print(f"{'deflate' if compressed else 'plain'} {len(msg)} {msg[:20]}", flush=True)
    print("done", flush=True)


asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
