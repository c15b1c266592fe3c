"""Start an aiohttp application on a TCP port: the one start-up the emulator and the callback
receiver share."""

from __future__ import annotations

from aiohttp import web

__all__ = ["serve"]


async def serve(runner: web.AppRunner, host: str, port: int) -> int:
    """Set ``runner`` up on ``host:port`` (0: a free port) and return the port it is bound to.

    If it cannot bind (the port is taken, say), the runner is cleaned up before the error
    leaves: nothing half-started stays open.
    """
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                return int(address[1])
        raise RuntimeError(f"bound no TCP address: {runner.addresses!r}")
    except BaseException:
        await runner.cleanup()
        raise
