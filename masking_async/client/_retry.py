"""When the client tries again and how long it waits: the policy's backoff, and a retry budget.

The wait is :class:`~masking_async.retrying.Backoff`'s, the one formula of every retry; after a
503 it is never under the server's ``Retry-After`` (capped by ``RetryPolicy.retry_after_cap``).
A 429 is not a failure here: the limiter holds every caller until its Retry-After has passed, so
the call is sent again with no delay of its own, and it spends neither an attempt nor the budget
(see ``MaskingClient._may_retry``).
"""

from __future__ import annotations

import random

from masking_async.client._options import RetryPolicy
from masking_async.errors import (
    ConnectError,
    MaskingError,
    OutcomeUnknownError,
    PoolTimeout,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

__all__ = [
    "RetryBudget",
    "is_retryable",
    "maybe_applied",
    "outcome_unknown",
    "retry_after_floor",
    "retry_delay",
]


def is_retryable(error: MaskingError) -> bool:
    """429, 5xx, lost connections, timeouts and pool timeouts may pass; the rest will fail again."""
    return isinstance(error, (RateLimitedError, ServerError, TransportError, PoolTimeout))


def outcome_unknown(error: MaskingError) -> bool:
    """Whether the server may have acted on a request that failed this way (a create: look first).

    No answer, or a 5xx, after the request was sent. A 429 was refused, and a request that found
    no connection (:class:`ConnectError`, a pool timeout) was never sent: none needs a lookup.
    """
    return isinstance(error, (TransportError, ServerError)) and not isinstance(error, ConnectError)


def retry_after_floor(policy: RetryPolicy, error: MaskingError) -> float:
    """The least wait before retrying after ``error``: a 5xx's ``Retry-After``, capped; else 0."""
    after = error.retry_after if isinstance(error, ServerError) else None
    return 0.0 if after is None else min(after, policy.retry_after_cap)


def retry_delay(
    policy: RetryPolicy, failures: int, error: MaskingError, rng: random.Random
) -> float:
    """Seconds to wait after failure number ``failures``: the policy's backoff (never under a
    503's Retry-After, see :func:`retry_after_floor`); 0 after a 429 (see above).

    For a caller that waits on its own timer (the batch engine); the client's loops get the same
    wait from :func:`~masking_async.retrying.retry_context`.
    """
    if not policy.wait or isinstance(error, RateLimitedError):
        return 0.0
    return policy.backoff.delay(failures, rng, floor=retry_after_floor(policy, error))


def maybe_applied(error: MaskingError) -> bool:
    """Could the server have applied the request anyway? Then a create must be looked up.

    :func:`outcome_unknown`, plus a 2xx we could not read and a create left unresolved.
    """
    return outcome_unknown(error) or isinstance(error, (ResponseFormatError, OutcomeUnknownError))


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
