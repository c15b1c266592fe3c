"""Rate adherence: how close the client runs to the account limit, and whether it ever hits 429.

The documented limit is 300 requests per 5 s; it is scaled to 60 per 1 s (the same rate, a window
five times shorter) so the run takes seconds. The emulator enforces it; the client is told it.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import anyio
from _support import AUTH, emulator_process, row
from bench_client import Pairs, _pool

from masking_async import ClientOptions, MaskingClient, RateLimit
from masking_async.client import AiohttpTransport, Response

LIMIT, PER = 60, 1.0


class CountingTransport:
    """The client's transport seam, wrapped to count every answer by status."""

    def __init__(self, inner: AiohttpTransport) -> None:
        self.inner, self.statuses = inner, Counter[int]()

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        response = await self.inner.send(method, url, params=params, json_body=json_body)
        self.statuses[response.status] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def adherence(url: str, pairs: list[tuple[str, str]]) -> tuple[float, int]:
    options = ClientOptions(rate_limit=RateLimit(LIMIT, PER))
    transport = CountingTransport(AiohttpTransport(AUTH["auth_id"], AUTH["auth_token"], options))
    async with MaskingClient(**AUTH, base_url=url, options=options, transport=transport) as client:

        async def create(pair: tuple[str, str]) -> None:
            await client.create_session({"first_party": pair[0], "second_party": pair[1]})

        started = time.perf_counter()
        await _pool(pairs, 16, create)
        elapsed = time.perf_counter() - started
    return len(pairs) / elapsed, transport.statuses[429]


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = LIMIT * (3 if quick else 10)
    with emulator_process("--rate-limit", f"{LIMIT}/{PER:g}s") as url:
        achieved, throttled = anyio.run(adherence, url, Pairs().take(count))
    allowed = LIMIT / PER
    return [
        row(
            "rate",
            f"achieved creates/s (limit {LIMIT}/{PER:g}s = 300/5s scaled)",
            achieved,
            "req/s",
        ),
        row("rate", "achieved / allowed", achieved / allowed, "x"),
        row("rate", "429 answers", throttled, ""),
    ]


if __name__ == "__main__":
    from run_all import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
