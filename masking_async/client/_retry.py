"""When to try again and how long to wait: backoff with full jitter, and a retry budget."""

from __future__ import annotations

import random

import anyio

from masking_async.client._options import RetryPolicy
from masking_async.errors import (
    MaskingError,
    OutcomeUnknownError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

__all__ = ["RetryBudget", "backoff", "is_retryable", "maybe_applied"]


def is_retryable(error: MaskingError) -> bool:
    """429, 5xx, lost connections and timeouts may pass; the rest will fail again."""
    return isinstance(error, (RateLimitedError, ServerError, TransportError))


def maybe_applied(error: MaskingError) -> bool:
    """Could the server have applied the request anyway? Then a create must be looked up."""
    return isinstance(
        error, (ServerError, TransportError, ResponseFormatError, OutcomeUnknownError)
    ) and getattr(error, "maybe_sent", True)


async def backoff(
    policy: RetryPolicy, attempt: int, error: MaskingError, rng: random.Random
) -> None:
    """Sleep before attempt ``attempt + 1``: the server's Retry-After, else full jitter."""
    if not policy.wait:
        return
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        delay = min(error.retry_after, policy.retry_after_cap)
    else:
        ceiling = min(policy.maximum, policy.initial * policy.multiplier ** (attempt - 1))
        delay = rng.uniform(0, ceiling)
    await anyio.sleep(delay)


class RetryBudget:
    """A token bucket of retries: each request adds ``ratio`` of a token, each retry takes one."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._ratio = policy.budget_ratio
        self._cap = float(policy.budget_floor)
        self._tokens = self._cap

    def on_request(self) -> None:
        self._tokens = min(self._cap + self._ratio * 100, self._tokens + self._ratio)

    def try_spend(self) -> bool:
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
