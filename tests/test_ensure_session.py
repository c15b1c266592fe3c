"""``MaskingClient.ensure_session``: get-or-create, one session per pair however many ask."""

from __future__ import annotations

import json
import os
import random
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masking_async import MaskingClient
from masking_async.client import ClientOptions, RateLimit
from masking_async.client._redis_server import RedisServer
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    EmulatorConfig,
    SystemClock,
)
from masking_async.emulator.pytest_plugin import EmulatorFactory
from masking_async.errors import RequestValidationError
from masking_async.phones import party_pairs

PAIRS = list(party_pairs(100, countries=("US", "GB"), start=7000))


def _client(emulator: Emulator) -> MaskingClient:
    return MaskingClient(
        DEFAULT_AUTH_ID,
        DEFAULT_AUTH_TOKEN,
        base_url=emulator.base_url,
        options=ClientOptions(rate_limit=RateLimit(None)),
    )


def _active(emulator: Emulator) -> list[tuple[str, str]]:
    records = emulator.store.records(DEFAULT_AUTH_ID)
    return [(r.first_party, r.second_party) for r in records if r.status == "active"]


async def test_200_concurrent_calls_over_100_pairs_make_100_sessions(
    masking_emulator: Emulator,
) -> None:
    """Each pair asked twice at once, on one client: 100 sessions, `created` exactly 100 times."""
    calls = [{"first_party": a, "second_party": b} for a, b in PAIRS] * 2
    random.Random(17).shuffle(calls)
    created: list[bool] = []
    uuids: dict[tuple[str, str], set[str]] = {}
    async with _client(masking_emulator) as client:

        async def one(request: dict[str, str]) -> None:
            ensured = await client.ensure_session(request)
            created.append(ensured.created)
            pair = (ensured.session.first_party or "", ensured.session.second_party or "")
            uuids.setdefault(pair, set()).add(ensured.session.session_uuid)

        async with anyio.create_task_group() as group:
            for request in calls:
                group.start_soon(one, request)
    assert sum(created) == 100
    assert len(created) == 200
    assert len(_active(masking_emulator)) == 100
    assert all(len(found) == 1 for found in uuids.values())


async def test_a_session_that_differs_is_not_reused(masking_emulator: Emulator) -> None:
    """Strict matching: the pair's session with record=false is no answer to record=true."""
    first, second = PAIRS[0]
    async with _client(masking_emulator) as client:
        plain = await client.ensure_session({"first_party": first, "second_party": second})
        again = await client.ensure_session({"first_party": first, "second_party": second})
        recorded = await client.ensure_session(
            {"first_party": first, "second_party": second, "record": True}
        )
        reversed_pair = await client.ensure_session({"first_party": second, "second_party": first})
    assert plain.created
    assert not again.created
    assert again.session.session_uuid == plain.session.session_uuid
    assert recorded.created
    assert recorded.session.session_uuid != plain.session.session_uuid
    assert reversed_pair.created  # the pair is ordered, as the API keeps it


async def test_an_invalid_request_is_refused_before_anything_is_sent(
    masking_emulator: Emulator,
) -> None:
    """A request create_session would refuse is refused the same way, nothing listed or made."""
    async with _client(masking_emulator) as client:
        with pytest.raises(RequestValidationError):
            await client.ensure_session({"first_party": "not a number", "second_party": "+1"})
    assert not masking_emulator.request_log


_WORKER = textwrap.dedent(
    """
    import json, sys
    import anyio
    from masking_async import MaskingClient
    from masking_async.client import RateLimit, RedisLimiter

    async def main() -> None:
        base_url, redis_url, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        limiter = RedisLimiter.from_url(redis_url, account="ensure", limit=RateLimit(5000, 1.0))
        created = []
        async with limiter, MaskingClient(base_url=base_url, limiter=limiter) as client:

            async def one(request):
                created.append((await client.ensure_session(request)).created)

            async with anyio.create_task_group() as group:
                for request in calls:
                    group.start_soon(one, request)
        print(sum(created))

    anyio.run(main)
    """
)


@pytest.mark.slow
async def test_four_processes_sharing_redis_make_one_session_per_pair(
    tmp_path: Path, masking_emulator_factory: EmulatorFactory
) -> None:
    """200 calls over 100 pairs from 4 processes on one Redis: 100 sessions, 100 `created`."""
    emulator = await masking_emulator_factory(clock=SystemClock())
    calls = [{"first_party": a, "second_party": b} for a, b in PAIRS] * 2
    random.Random(4).shuffle(calls)
    env = {**os.environ, "PLIVO_AUTH_ID": DEFAULT_AUTH_ID, "PLIVO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN}
    created: list[int] = []
    with RedisServer() as redis:

        async def process(share: list[dict[str, str]]) -> None:
            command = [sys.executable, "-c", _WORKER, emulator.base_url, redis.url]
            done = await anyio.run_process([*command, json.dumps(share)], env=env, check=False)
            assert done.returncode == 0, done.stderr.decode()[-2000:]
            created.append(int(done.stdout.decode().strip()))

        with anyio.fail_after(90):
            async with anyio.create_task_group() as group:
                for index in range(4):
                    group.start_soon(process, calls[index::4])
    assert sum(created) == 100
    assert len(_active(emulator)) == 100


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from([None, True, False])), min_size=1, max_size=24
    )
)
def test_any_mix_of_concurrent_calls_makes_no_needless_session(
    calls: list[tuple[int, bool | None]],
) -> None:
    """Whatever the mix of pairs and parameters, all at once: each answer matches its request,
    `created` counts exactly the sessions made, and a pair gets at most one session per distinct
    request (a request that a session already made for the pair matches never makes another)."""

    async def main() -> None:
        async with Emulator(EmulatorConfig(rate_limit=None), clock=SystemClock()) as emulator:
            answers: list[tuple[int, bool | None, Any]] = []
            async with _client(emulator) as client:

                async def one(index: int, record: bool | None) -> None:
                    a, b = PAIRS[index]
                    request: dict[str, Any] = {"first_party": a, "second_party": b}
                    if record is not None:
                        request["record"] = record
                    answers.append((index, record, await client.ensure_session(request)))

                async with anyio.create_task_group() as group:
                    for index, record in calls:
                        group.start_soon(one, index, record)
            made = emulator.store.records(DEFAULT_AUTH_ID)
            assert sum(ensured.created for _, _, ensured in answers) == len(made)
            for index, record, ensured in answers:
                assert ensured.session.first_party == PAIRS[index][0]
                assert record is None or ensured.session.record is record
            for index in {i for i, _ in calls}:
                asked = {record for i, record in calls if i == index}
                ours = [r for r in made if r.first_party == PAIRS[index][0]]
                assert len(ours) <= len(asked)

    anyio.run(main)
