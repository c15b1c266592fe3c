"""429s through the transport seam: no attempt or budget spent, the hooks' story, the bound."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from masking_async import (
    AccountLimiter,
    CallTrace,
    ClientOptions,
    Event,
    Limiter,
    MaskingClient,
    RateLimit,
    RateLimitedError,
    RequestAnswered,
    RequestRetried,
    RequestSent,
    RequestThrottled,
    RetryPolicy,
    ServerError,
)
from masking_async.client import Response

_PAGE = (
    b'{"api_id": "b", "response": {"meta": {"limit": 20, "offset": 0, "total_count": 0},'
    b' "objects": []}}'
)


class _Scripted:
    """A transport that answers the given statuses in turn (then 200s), counting sends."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.sent = list(statuses), 0

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        self.sent += 1
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"Retry-After": "0"} if status == 429 else {}
        body = _PAGE if status == 200 else b'{"api_id": "a", "error": "no"}'
        return Response(status, headers, body)

    async def aclose(self) -> None:
        pass


def _client(transport: _Scripted, retry: RetryPolicy, events: list[Event]) -> MaskingClient:
    options = ClientOptions(rate_limit=RateLimit.off(), retry=retry)
    return MaskingClient(
        "MAXXXXXXXXXXXXXXXXXX", "t", transport=transport, options=options, hooks=[events.append]
    )


async def test_429s_spend_neither_attempts_nor_budget() -> None:
    """Six 429s and a 500 with attempts=2 and a budget of one retry: the call still succeeds."""
    transport = _Scripted([429] * 6 + [500])
    retry = RetryPolicy(attempts=2, wait=False, budget_floor=1, budget_ratio=0.0)
    trace = CallTrace()
    async with _client(transport, retry, []) as client:
        await client.expire_session("4189591e-d004-4801-abdf-8893c15e5dcd", trace=trace)
    assert (trace.attempts, trace.throttled, transport.sent) == (8, 6, 8)


async def test_a_second_real_failure_is_still_bounded() -> None:
    """429s aside, attempts still bound real failures: 500, 429, 500 with attempts=2 fails."""
    transport = _Scripted([500, 429, 500])
    async with _client(transport, RetryPolicy(attempts=2, wait=False), []) as client:
        with pytest.raises(ServerError):
            await client.list_sessions()
    assert transport.sent == 3


async def test_endless_429s_end_after_max_throttled() -> None:
    """A server that only answers 429 gets max_throttled + 1 sends, then RateLimitedError."""
    transport = _Scripted([429] * 100)
    async with _client(transport, RetryPolicy(wait=False, max_throttled=4), []) as client:
        with pytest.raises(RateLimitedError):
            await client.list_sessions()
    assert transport.sent == 5


async def test_hooks_tell_sent_answered_throttled_retried_in_order() -> None:
    """One 429 then a 200: the hooks see sent, answered 429, throttled, retried, sent, answered."""
    events: list[Event] = []
    async with _client(_Scripted([429]), RetryPolicy(wait=False), events) as client:
        await client.list_sessions()
    kinds = [type(e) for e in events]
    assert kinds == [
        RequestSent,
        RequestAnswered,
        RequestThrottled,
        RequestRetried,
        RequestSent,
        RequestAnswered,
    ]
    retried = events[3]
    assert isinstance(retried, RequestRetried)
    assert (retried.error, retried.delay) == ("RateLimitedError", 0.0)


async def test_accountlimiter_is_a_limiter_and_a_shared_one_is_not_closed() -> None:
    """AccountLimiter satisfies the Limiter protocol; a limiter passed in outlives the client."""
    shared = AccountLimiter(RateLimit(10, 1.0))
    assert isinstance(shared, Limiter)
    async with MaskingClient("MAXXXXXXXXXXXXXXXXXX", "t", transport=_Scripted([]), limiter=shared):
        pass
    await shared.acquire()  # still open
    assert shared.stats().acquired == 1
    await shared.aclose()
    assert shared.stats().mode == "closed"
    assert str(shared.stats()) == "rate 9.8/s of 10/s (closed), 0 x 429"


def test_the_hooks_example_in_the_docs_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/client.md's hooks example runs as written and counts its three answers."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "client.md").read_text()
    code = text.split("## Hooks", 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0]
    exec(compile(code, "docs/client.md", "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.startswith("{200: 3}")


async def test_retry_none_sends_once_even_after_a_429() -> None:
    """RetryPolicy.none() (load tests) reports a 429 instead of waiting it out and resending."""
    transport = _Scripted([429])
    async with _client(transport, RetryPolicy.none(), []) as client:
        with pytest.raises(RateLimitedError):
            await client.list_sessions()
    assert transport.sent == 1
