"""What a batch run is given: its options, and what it needs of a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Final, Protocol

import attrs

from masking_async.client import CallTrace, LimiterStats, Lookup, RetryPolicy, Traffic
from masking_async.models import Session

__all__ = ["MAX_UNREACHABLE", "BatchOptions", "SessionAPI"]

#: The longest ``unreachable_after``: a server that never answers is known within half a minute.
MAX_UNREACHABLE: Final = 30.0


class SessionAPI(Protocol):
    """What the engine needs of a client (``MaskingClient`` has it)."""

    async def attempt_create(
        self, params: Mapping[str, Any], *, trace: CallTrace | None = None
    ) -> Session: ...
    async def attempt_update(
        self, session_uuid: str, params: Mapping[str, Any], *, trace: CallTrace | None = None
    ) -> Session | None: ...
    async def attempt_expire(
        self, session_uuid: str, *, trace: CallTrace | None = None
    ) -> None: ...
    async def find_created(
        self,
        params: Mapping[str, Any],
        *,
        sent_at: float,
        claimed: Callable[[str], bool] | None = None,
        named: str | None = None,
    ) -> Lookup: ...
    @property
    def settle(self) -> float: ...
    @property
    def lookup_delay(self) -> float: ...
    @property
    def traffic(self) -> Traffic: ...
    def create_lane(self, params: Mapping[str, Any]) -> AbstractAsyncContextManager[None]: ...
    def iter_sessions(
        self, filters: Mapping[str, Any] | None = None, *, concurrency: int = 8
    ) -> AsyncIterator[Session]: ...
    @property
    def rate_stats(self) -> LimiterStats: ...


@attrs.frozen(kw_only=True)
class BatchOptions:
    """How to run rows; ``op=None`` takes each row's operation from its ``op`` column."""

    op: str | None = None
    format: str | None = None
    concurrency: int = 16
    out: Path | None = None
    journal: Path | None = None
    dry_run: bool = False
    strict: bool = False
    progress: bool = True
    #: Seconds rows in flight may take to finish after a stop before they are cancelled.
    grace: float = 10.0
    #: Send again the rows an earlier run on this journal ended ``failed``.
    retry_failed: bool = False
    #: Seconds a row keeps retrying transient failures before it ends unresolved/unprocessed.
    deadline: float = 900.0
    #: Seconds from the start with no answer at all, only failures, before the run stops as
    #: unable to reach the server (every row unprocessed); later outages are ``deadline``'s.
    unreachable_after: float = attrs.field(
        default=20.0, validator=[attrs.validators.gt(0), attrs.validators.le(MAX_UNREACHABLE)]
    )
    #: The shape of the waits between those retries (attempt counts do not apply).
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    #: List the active sessions first; a create whose pair has one ends ``skipped``.
    skip_active: bool = False
    #: For mappings given to :func:`run_batch`: the field holding each row's unique key.
    key_field: str = "key"
    #: A CSV file's delimiter; None sniffs it (``,`` ``;`` or tab).
    delimiter: str | None = None
    #: A file's columns to the API's names they mean (``{"Customer Phone": "first_party"}``);
    #: headers that differ only in case and spacing need none. ``"-"`` keeps a column as the
    #: user's own however like a parameter it looks.
    columns: Mapping[str, str] = attrs.field(factory=dict)
    #: The region national phone numbers are read in (``US``); a ``default_region`` column
    #: overrides it per row. None: numbers need their country code.
    default_region: str | None = None
