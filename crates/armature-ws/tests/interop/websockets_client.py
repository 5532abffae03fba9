"""Interop check: the Python `websockets` package (not ours, not Rust) against our /echo.

Usage: python websockets_client.py ws://127.0.0.1:PORT/echo
Exits 0 and prints "interop ok" when every exchange matched; otherwise exits 1.
"""

import asyncio
import sys

from websockets.asyncio.client import connect


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


async def main(url):
    async with connect(url, max_size=None, compression=None) as ws:
        await ws.send("héllo, wörld")
        check("text echo", await asyncio.wait_for(ws.recv(), 10), "héllo, wörld")

        data = bytes(range(256)) * 4
        await ws.send(data)
        check("binary echo", await asyncio.wait_for(ws.recv(), 10), data)

        # A fragmented message: websockets sends an iterable as fragments.
        await ws.send(["frag", "ment", "ed"])
        check("fragmented text echo", await asyncio.wait_for(ws.recv(), 10), "fragmented")

        big = "z" * 300_000
        await ws.send(big)
        check("large text echo", await asyncio.wait_for(ws.recv(), 10), big)

        pong = await ws.ping(b"py-ping")
        latency = await asyncio.wait_for(pong, 10)
        check("ping answered", latency >= 0, True)

        await ws.close(code=4002, reason="done")
        check("close code echoed by the server", ws.protocol.close_rcvd.code, 4002)
        check("close sent", ws.protocol.close_sent.code, 4002)

    # A second connection: the server's pings are answered by websockets, messages flow.
    async with connect(url, compression=None) as ws:
        for i in range(100):
            await ws.send(f"n{i}")
        for i in range(100):
            check_quiet = await asyncio.wait_for(ws.recv(), 10)
            if check_quiet != f"n{i}":
                check(f"in-order echo {i}", check_quiet, f"n{i}")
        print("ok   100 pipelined messages in order")
    print("interop ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
