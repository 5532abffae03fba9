"""Room members for the compress-once test: N clients with permessage-deflate, M without
and D with permessage-deflate on the route's dedicated mode (URL?dedicated) join
ws://.../room/NAME, print "ready", then each prints the first broadcast it receives with
how its connection compresses (deflate: shared mode, server_no_context_takeover;
dedicated: the server keeps its context; plain), and the script exits.

Usage: python room_clients.py URL N_DEFLATE N_PLAIN [N_DEDICATED]
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
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        if not ws.protocol.extensions:
            kind = "plain"
        elif "server_no_context_takeover" in agreed:
            kind = "deflate"
        else:
            kind = "dedicated"
        results.append((kind, msg))


async def main(url, n_deflate, n_plain, n_dedicated):
    joined = asyncio.Semaphore(0)
    results = []
    tasks = [asyncio.create_task(member(url, "deflate", joined, results)) for _ in range(n_deflate)]
    tasks += [asyncio.create_task(member(url, None, joined, results)) for _ in range(n_plain)]
    tasks += [
        asyncio.create_task(member(url + "?dedicated", "deflate", joined, results))
        for _ in range(n_dedicated)
    ]
    for _ in tasks:
        await asyncio.wait_for(joined.acquire(), 10)
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    for kind, msg in results:
        print(f"{kind} {len(msg)} {msg[:20]}", flush=True)
    print("done", flush=True)


n_dedicated = int(sys.argv[4]) if len(sys.argv) > 4 else 0
asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), n_dedicated))
