"""Interop check with permessage-deflate: the Python `websockets` package with its default
compression (on) against our server.

Usage: python websockets_deflate_client.py ws://127.0.0.1:PORT/echo
Prints the negotiated extension header and "deflate ok"; exits 1 on any mismatch.
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


async def main(url):
    # compression="deflate" is websockets' default; said here so the test cannot lose it.
    async with connect(url, max_size=None, compression="deflate") as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        print(f"extensions: {agreed}")
        check("permessage-deflate negotiated", agreed.startswith("permessage-deflate"), True)
        check("extension active", len(ws.protocol.extensions), 1)
        for i in range(50):
            doc = json.dumps({"seq": i, "user": "ada", "text": "hello " * 40})
            await ws.send(doc)
            check_quiet = await asyncio.wait_for(ws.recv(), 10)
            if check_quiet != doc:
                check(f"json echo {i}", check_quiet, doc)
        print("ok   50 json echoes")
        data = bytes(range(256)) * 64
        await ws.send(data)
        check("binary echo", await asyncio.wait_for(ws.recv(), 10), data)
        await ws.send(["frag" * 100, "ment" * 100, "ed"])
        check("fragmented echo", await asyncio.wait_for(ws.recv(), 10), "frag" * 100 + "ment" * 100 + "ed")
        big = "z" * 300_000
        await ws.send(big)
        check("large text echo", await asyncio.wait_for(ws.recv(), 10), big)
        small = "hi"
        await ws.send(small)
        check("small text echo (under the threshold)", await asyncio.wait_for(ws.recv(), 10), small)
        await ws.close(code=4002, reason="done")
        check("close code echoed", ws.protocol.close_rcvd.code, 4002)
    print("deflate ok")


asyncio.run(main(sys.argv[1]))
