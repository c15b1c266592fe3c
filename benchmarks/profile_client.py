"""Where the CPU goes: cProfile of the client's create path, or of the batch engine's run.

``python benchmarks/profile_client.py [client|engine] [--top N]`` creates sessions on an emulator
in a child process (as the benchmarks do) and prints the top entries by own time and by
cumulative time. ``client``: ``create_session`` with every feature on (``bench_client.FULL``,
an event hook), 32 in flight. ``engine``: ``run_batch`` over a CSV file, 32 workers, no journal,
no rate limit (``bench_batch``'s unlimited side). Not a suite of ``run_all.py``: a profile is
read, not compared.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
from pathlib import Path
from typing import Any

import anyio
from _support import AUTH, emulator_process
from bench_batch import FAST_WORKERS, _prepare
from bench_client import FULL, MEASURE, Pairs, _pool

from masking_async import Event, MaskingClient
from masking_async.batch import BatchOptions, run_batch


async def _client(url: str, pairs: list[tuple[str, str]], profile: cProfile.Profile) -> None:
    events: list[Event] = []
    async with MaskingClient(**AUTH, base_url=url, options=FULL, hooks=[events.append]) as client:

        async def create(pair: tuple[str, str]) -> None:
            await client.create_session({"first_party": pair[0], "second_party": pair[1]})

        profile.enable()
        await _pool(pairs, 32, create)
        profile.disable()


async def _engine(url: str, pairs: list[tuple[str, str]], profile: cProfile.Profile) -> None:
    with tempfile.TemporaryDirectory() as name:
        source, _ = _prepare(Path(name), pairs)
        options = BatchOptions(
            op="create", concurrency=FAST_WORKERS, progress=False, out=Path(name) / "out.jsonl"
        )
        async with MaskingClient(**AUTH, base_url=url, options=MEASURE) as client:
            profile.enable()
            await run_batch(source, client=client, options=options, report=lambda _: None)
            profile.disable()


def profile(what: str, count: int = 2000) -> pstats.Stats:
    """A profile of ``count`` creates by the client or the engine (after a warm-up run)."""
    run: Any = {"client": _client, "engine": _engine}[what]
    with emulator_process("--rate-limit", "off") as url:
        pairs = Pairs()
        anyio.run(run, url, pairs.take(300), cProfile.Profile())
        result = cProfile.Profile()
        anyio.run(run, url, pairs.take(count), result)
    return pstats.Stats(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", nargs="?", choices=("client", "engine"), default="client")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    stats = profile(args.what)
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats(args.top)
        print(out.getvalue().replace(str(Path.cwd().parent) + "/", ""))


if __name__ == "__main__":
    main()
