"""``MaskingClient``: every call of the session API, rate-limited, retried, never creating twice."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timezone
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import anyio
import attrs

from masking_async import rules, spec
from masking_async.client._adoption import (
    Lookup,
    create_lane,
    lookup_filters,
    pick,
    settle_until,
)
from masking_async.client._claims import LaneLocks, RecentSessions
from masking_async.client._ensure import Ensured, PairLocks, active_filters, newest_match
from masking_async.client._events import (
    Event,
    Hook,
    RequestAnswered,
    RequestFailed,
    RequestRetried,
    RequestSent,
    RequestThrottled,
)
from masking_async.client._inprocess_limiter import AccountLimiter
from masking_async.client._legacy import legacy_answer, legacy_root
from masking_async.client._limiter_protocol import Limiter, LimiterStats
from masking_async.client._options import (
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    ClientOptions,
    check_base_url,
)
from masking_async.client._pagination import iter_pages
from masking_async.client._retry import (
    RetryBudget,
    is_retryable,
    maybe_applied,
    retry_after_floor,
)
from masking_async.client._traffic import Traffic
from masking_async.client._transport import AiohttpTransport, Response, Transport
from masking_async.errors import (
    ConfigurationError,
    MaskingError,
    OutcomeUnknownError,
    PoolTimeout,
    RateLimitedError,
    RequestValidationError,
    ResponseFormatError,
    ServerError,
    TransportError,
    error_for_status,
)
from masking_async.models import (
    CreateSessionRequest,
    LegacySession,
    Session,
    SessionPage,
    UpdateSessionRequest,
)
from masking_async.retrying import (
    Attempt,
    RetryContext,
    RetryDetails,
    parse_retry_after,
    retry_context,
)
from masking_async.wire import make_converter, read_page, read_session

__all__ = ["CallTrace", "MaskingClient"]

log = logging.getLogger("masking_async.client")
#: A phone number standing alone (not a run of digits inside a session id or another token).
_NUMBER = re.compile(r"(?<![0-9A-Za-z-])(?:\+|%2B)?\d{3,}(\d{4})(?![0-9A-Za-z-])")
_FILTER_TIME = "%Y-%m-%d %H:%M:%S"
_UNSET = object()


def _named_session(body: Any) -> str | None:
    """The ``session_uuid`` a create answer names, in any envelope, if it is one."""
    if not isinstance(body, Mapping):
        return None
    for place in (body, body.get("session"), body.get("response")):
        if isinstance(place, Mapping):
            value = place.get("session_uuid")
            if isinstance(value, str) and not rules.check_session_uuid(value):
                return value
    return None


@attrs.define
class CallTrace:
    """Filled in by the client for one call: how many attempts, and whether a create was adopted.

    ``attempts`` counts sends, ``throttled`` those of them answered 429 (which do not count
    against ``RetryPolicy.attempts``).
    """

    attempts: int = 0
    adopted: bool = False
    last_status: int | None = None
    throttled: int = 0
    #: Wall-clock time (epoch s) the last request left, once it had a connection and a rate
    #: token: what a lookup for a lost create must count from, not when the call began.
    sent_at: float | None = None
    #: The same moment on the monotonic clock: a wait measured from it survives a step of the
    #: wall clock (an NTP correction) between the send and the lookup.
    sent_mono: float | None = None
    #: Awaited with the wall-clock time once the request holds a connection and a rate token,
    #: just before it leaves (each attempt): where a journal records when it really left.
    departing: Callable[[float], Awaitable[None]] | None = attrs.field(default=None, repr=False)
    _called_off: bool = attrs.field(default=False, init=False, repr=False)
    _waiting: anyio.CancelScope | None = attrs.field(default=None, init=False, repr=False)

    def call_off(self) -> None:
        """Never let this call's request leave: if it still waits for a connection or a rate
        token (or has not started), the call raises :class:`CalledOff`. Once a request has
        left, this changes nothing: it cannot be taken back."""
        self._called_off = True
        if self._waiting is not None:
            self._waiting.cancel()


class CalledOff(Exception):
    """The request was called off (:meth:`CallTrace.call_off`) before it left: nothing was sent.

    Not a :class:`MaskingError`: nothing failed, and no retry may send it after all.
    """


def _params(request: Any) -> dict[str, Any]:
    if isinstance(request, (CreateSessionRequest, UpdateSessionRequest)):
        return request.to_params()
    return {k: v for k, v in dict(request).items() if v is not None}


def _checked(
    check: Callable[[Mapping[str, Any]], tuple[dict[str, Any], list[rules.Violation]]],
    params: Mapping[str, Any],
) -> dict[str, Any]:
    clean, violations = check(params)
    if violations:
        raise RequestValidationError(violations)
    return clean


def _query_value(name: str, value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime(_FILTER_TIME)
    text = str(value)
    # The API takes numbers with or without "+"; without, nothing can mistake it for a space.
    return (
        text.removeprefix("+")
        if name in ("first_party", "second_party", "virtual_number")
        else text
    )


class MaskingClient:
    """An async client for the Masking Session API; use it as ``async with MaskingClient() as c``.

    Credentials default to ``PLIVO_AUTH_ID`` / ``PLIVO_AUTH_TOKEN``, the server root to
    ``MASKING_ASYNC_BASE_URL`` or the real API (an empty one counts as unset); a root that is not
    ``https://`` (or ``http://`` to a loopback host) is refused before anything is sent (see
    :func:`check_base_url`). Pass ``limiter`` (any :class:`Limiter`) to share
    one account's rate limit between clients, ``hooks`` to see every request (see ``_events``),
    ``transport`` to swap how bytes move (tests).
    """

    def __init__(
        self,
        auth_id: str | None = None,
        auth_token: str | None = None,
        *,
        base_url: str | None = None,
        options: ClientOptions | None = None,
        transport: Transport | None = None,
        limiter: Limiter | None = None,
        hooks: Iterable[Hook] = (),
    ) -> None:
        auth_id = auth_id or os.environ.get("PLIVO_AUTH_ID")
        auth_token = auth_token or os.environ.get("PLIVO_AUTH_TOKEN")
        if not auth_id or not auth_token:
            raise ConfigurationError(
                "no credentials: pass auth_id and auth_token or set PLIVO_AUTH_ID and"
                " PLIVO_AUTH_TOKEN"
            )
        self.auth_id = auth_id
        self.options = options or ClientOptions()
        # An empty base_url or $MASKING_ASYNC_BASE_URL counts as unset: the real API.
        if base_url:
            self.base_url = check_base_url(base_url)
        else:
            self.base_url = check_base_url(
                os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL, option=f"${BASE_URL_ENV}"
            )
        self._root = self.base_url + spec.SESSION_COLLECTION.format(auth_id=auth_id)
        self._legacy_root = legacy_root(self.base_url, auth_id)
        # The token lives only in this closure and the transport: no attribute to print.
        self._make_transport: Callable[[], Transport] = lambda: AiohttpTransport(
            auth_id, auth_token, self.options
        )
        self._transport = transport
        # A limiter passed in may be shared: only the one made here is closed with the client.
        self._owns_limiter = limiter is None
        self._limiter: Limiter = limiter or AccountLimiter(self.options.rate_limit)
        #: A limiter that can grant a send without awaiting (``AccountLimiter.try_acquire``).
        self._try_acquire: Callable[[], bool] | None = getattr(self._limiter, "try_acquire", None)
        self._hooks = tuple(hooks)
        # A slot is a pooled connection ready to send: taken before the rate token (see _request).
        self._slots = anyio.Semaphore(self.options.max_connections, fast_acquire=True)
        self._budget = RetryBudget(self.options.retry)
        self._backoff = self.options.retry.backoff
        self._converter = make_converter()
        self._rng = random.Random()
        self._returned = RecentSessions()
        self._lanes = LaneLocks()
        self._traffic = Traffic()
        self._closed = False

    @classmethod
    def from_env(cls, *, options: ClientOptions | None = None) -> MaskingClient:
        """A client configured entirely from the environment."""
        return cls(options=options)

    def __repr__(self) -> str:
        return f"<MaskingClient auth_id={self.auth_id} base_url={self.base_url}>"

    async def __aenter__(self) -> MaskingClient:
        if self._transport is None:
            self._transport = self._make_transport()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._closed = True
        if self._transport is not None:
            await self._transport.aclose()
        if self._owns_limiter:
            await self._limiter.aclose()

    @property
    def rate_stats(self) -> LimiterStats:
        """The limiter's ceiling, learned rate, pause and waits (a snapshot)."""
        return self._limiter.stats()

    @property
    def traffic(self) -> Traffic:
        """What came back so far: answers, failures with none, the last answer's time (live)."""
        return self._traffic

    # -- the calls ---------------------------------------------------------------------------

    async def create_session(
        self,
        request: CreateSessionRequest | Mapping[str, Any],
        *,
        trace: CallTrace | None = None,
    ) -> Session:
        """Create a session. Never twice: an unanswered create is looked up before a re-send.

        Raises :class:`OutcomeUnknownError` when the session may exist and no conclusive lookup
        could say which (see ``_adoption``); concurrent creates of one pair run one at a time.
        """
        params = _checked(rules.check_create, _params(request))
        async with self.create_lane(params):
            return await self._create_in_lane(params, trace)

    async def create_legacy_session(
        self, request: Mapping[str, Any], *, trace: CallTrace | None = None
    ) -> LegacySession:
        """Create a session through the first version of the API (``/v1/Account/{id}/Session/``).

        Its own rules (``rules.check_legacy_create``: its own defaults, written into what is
        sent; a call time limit clamped, never refused) checked before sending; then the same
        rate limit, retries and adoption as :meth:`create_session`: never made twice.
        """
        params = _checked(rules.check_legacy_create, _params(request))
        async with self.create_lane(params):
            session = await self._create_in_lane(params, trace, url=self._legacy_root)
        return legacy_answer(session)

    async def expire_legacy_session(
        self, session_uuid: str, *, trace: CallTrace | None = None
    ) -> None:
        """Expire a session now through the first version's DELETE; safe to repeat."""
        url = self._session_url(session_uuid, root=self._legacy_root)
        await self._retrying("DELETE", url, trace=trace)

    async def ensure_session(
        self,
        request: CreateSessionRequest | Mapping[str, Any],
        *,
        trace: CallTrace | None = None,
    ) -> Ensured:
        """The pair's newest active session that matches ``request``, else a new one.

        ``created`` says which. Matching is strict (every parameter given that a session echoes
        must be equal); the pair is the first and second party in order. Concurrent calls for
        one pair on this client make one session; with a limiter that locks across processes
        (``RedisLimiter``), so do calls from several processes. See ``_ensure``.
        """
        params = _checked(rules.check_create, _params(request))

        async def look_then_create() -> Ensured:
            sessions = self.iter_sessions(active_filters(params), concurrency=1)
            found = await newest_match(sessions, params)
            if found is not None:
                return Ensured(found, created=False)
            return Ensured(await self._create_in_lane(params, trace), created=True)

        async with self.create_lane(params):
            if isinstance(self._limiter, PairLocks):
                return await self._limiter.run_locked(create_lane(params), look_then_create)
            return await look_then_create()

    async def _create_in_lane(
        self, params: dict[str, Any], trace: CallTrace | None, *, url: str | None = None
    ) -> Session:
        """Create checked ``params`` at ``url`` (either API's collection), the pair's lane held:
        retried, and a lost answer looked up before any re-send."""
        trace = trace if trace is not None else CallTrace()
        url = url or self._root
        self._budget.on_request()
        async for attempt in self._attempts("POST", url):
            trace.attempts = attempt.number
            try:
                return await self.attempt_create(params, trace=trace, url=url)
            except MaskingError as error:
                if maybe_applied(error) and self.options.retry.attempts > 1:
                    found = await self._conclude(params, trace, error)
                    if found is not None:
                        trace.adopted = True
                        return found
                # 429s never reach here (attempt_create waits them out): no trace.
                if not self._may_retry(error, attempt):
                    raise
        raise AssertionError("a retry loop ends by a return or a raise")

    async def attempt_create(
        self,
        params: Mapping[str, Any],
        *,
        trace: CallTrace | None = None,
        url: str | None = None,
    ) -> Session:
        """One create of checked ``params`` (a 429, never applied, is waited out and re-sent).

        A 2xx whose session cannot be read is resolved through the ``session_uuid`` it names;
        failing that it raises :class:`OutcomeUnknownError` carrying that id. ``url``: the
        collection to post to (the legacy one's short answer reads as a session of two fields).
        """
        trace = trace if trace is not None else CallTrace()
        body = await self._unthrottled(
            "POST", url or self._root, json_body=dict(params), trace=trace
        )
        try:
            return self._returned.add(read_session(self._converter, body))
        except ResponseFormatError:
            named = _named_session(body)
            if named is None:
                raise
        try:
            return self._returned.add(await self.get_session(named))
        except MaskingError as error:
            raise OutcomeUnknownError(
                f"session {named} was created but could not be read ({error})",
                session_uuid=named,
            ) from error

    async def attempt_update(
        self, session_uuid: str, params: Mapping[str, Any], *, trace: CallTrace | None = None
    ) -> Session | None:
        """One update of checked ``params``; ``None`` when the 2xx answer cannot be read (it was
        still applied)."""
        body = await self._unthrottled(
            "POST",
            self._session_url(session_uuid),
            json_body=dict(params),
            trace=trace or CallTrace(),
        )
        try:
            return read_session(self._converter, body)
        except ResponseFormatError:
            return None

    async def attempt_expire(self, session_uuid: str, *, trace: CallTrace | None = None) -> None:
        """One expire (DELETE), a 429 waited out; safe to repeat."""
        await self._unthrottled(
            "DELETE",
            self._session_url(session_uuid),
            json_body={"session_uuid": session_uuid},
            trace=trace or CallTrace(),
        )

    @property
    def settle(self) -> float:
        """Seconds the server may take to finish a create it was sent (``adopt_settle``)."""
        return self.options.adopt_settle

    @property
    def lookup_delay(self) -> float:
        """Seconds after a create left before a lookup for it is conclusive: timeout + settle."""
        return self.options.timeouts.total + self.options.adopt_settle

    def create_lane(self, params: Mapping[str, Any]) -> AbstractAsyncContextManager[None]:
        """Hold the lane of a create's parties: no other create of the pair on this client sends
        or looks up meanwhile, so a lookup never mistakes another's session for its own."""
        return self._lanes.hold(create_lane(params))

    async def lookup_create(
        self,
        params: Mapping[str, Any],
        *,
        sent_at: float,
        claimed: Callable[[str], bool] | None = None,
        not_before: float | None = None,
        named: str | None = None,
        ready: float | None = None,
    ) -> Lookup:
        """Conclusively, did the create of ``params`` sent at ``sent_at`` (epoch s) make a session?

        ``named``: the session a 2xx we could not read named; it is read back, nothing searched.
        Otherwise waits until ``sent_at + timeout + settle`` (or ``not_before``, if later: the
        wait of the client that sent it), and until ``ready`` on the monotonic clock when the
        caller knows it (the wall clock may be stepped meanwhile); sessions this client returned,
        or that ``claimed`` says belong to someone else, are never candidates.
        """
        if named is None:
            await settle_until(max(sent_at + self.lookup_delay, not_before or 0.0), ready)
        return await self.find_created(params, sent_at=sent_at, claimed=claimed, named=named)

    async def find_created(
        self,
        params: Mapping[str, Any],
        *,
        sent_at: float,
        claimed: Callable[[str], bool] | None = None,
        named: str | None = None,
    ) -> Lookup:
        """:meth:`lookup_create` without its wait: a session found is the create's, but finding
        none is conclusive only once ``sent_at + timeout + settle`` has passed (the caller's
        to know). The batch engine waits on its own timers, so that a waiting row holds nothing.
        """
        if named is not None:
            session = self._returned.add(await self.get_session(named))
            return Lookup(session, (session.session_uuid,))
        sessions = self.iter_sessions(lookup_filters(params, sent_at))
        found = await pick(
            sessions,
            params,
            claimed=lambda uuid: uuid in self._returned or (claimed is not None and claimed(uuid)),
        )
        if found.session is not None:  # the caller adopts it: never a candidate again
            self._returned.add(found.session)
        return found

    async def get_session(self, session_uuid: str, *, trace: CallTrace | None = None) -> Session:
        body = await self._retrying("GET", self._session_url(session_uuid), trace=trace)
        return read_session(self._converter, body)

    async def update_session(
        self,
        session_uuid: str,
        request: UpdateSessionRequest | Mapping[str, Any],
        *,
        trace: CallTrace | None = None,
    ) -> Session:
        """Change an active session; only the fields the spec allows (checked before sending)."""
        params = _checked(rules.check_update, _params(request))
        params.pop("session_uuid", None)
        body = await self._retrying(
            "POST", self._session_url(session_uuid), json_body=params, trace=trace
        )
        return read_session(self._converter, body)

    async def expire_session(self, session_uuid: str, *, trace: CallTrace | None = None) -> None:
        """Expire a session now (DELETE); expiring an expired session is not an error."""
        await self._retrying(
            "DELETE",
            self._session_url(session_uuid),
            json_body={"session_uuid": session_uuid},
            trace=trace,
        )

    async def list_sessions(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        limit: int = spec.PAGE_SIZE,
        offset: int = 0,
    ) -> SessionPage:
        """One page of sessions (at most :data:`~masking_async.spec.PAGE_SIZE`), newest first."""
        query = {
            name: _query_value(name, value)
            for name, value in {**(filters or {}), "limit": limit, "offset": offset}.items()
            if value is not None
        }
        _checked(rules.check_list_filters, query)
        body = await self._retrying("GET", self._root, params=query)
        return read_page(self._converter, body)

    def iter_sessions(
        self, filters: Mapping[str, Any] | None = None, *, concurrency: int = 8
    ) -> AsyncIterator[Session]:
        """Every matching session, each once, pages fetched ``concurrency`` at a time."""

        async def fetch(window: Mapping[str, Any], offset: int) -> SessionPage:
            return await self.list_sessions(window, offset=offset)

        return iter_pages(
            fetch, dict(filters or {}), concurrency=concurrency, now=datetime.now(timezone.utc)
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _session_url(self, session_uuid: str, *, root: str | None = None) -> str:
        if violations := rules.check_session_uuid(session_uuid):
            raise RequestValidationError(violations)
        return f"{root or self._root}{session_uuid}/"

    async def _unthrottled(
        self, method: str, url: str, *, json_body: Any = None, trace: CallTrace
    ) -> Any:
        """One request, sent again after each 429 (never applied) until the server takes it."""
        for _ in range(self.options.retry.max_throttled):
            try:
                return await self._request(method, url, json_body=json_body, trace=trace)
            except RateLimitedError:
                continue  # the limiter holds every caller until Retry-After has passed
        return await self._request(method, url, json_body=json_body, trace=trace)

    async def _conclude(
        self, params: Mapping[str, Any], trace: CallTrace, error: MaskingError
    ) -> Session | None:
        """After a maybe-applied create: the session it made, or ``None`` if surely none."""
        named = error.session_uuid if isinstance(error, OutcomeUnknownError) else None
        ready = None if trace.sent_mono is None else trace.sent_mono + self.lookup_delay
        try:
            found = await self.lookup_create(
                params, sent_at=trace.sent_at or time.time(), named=named, ready=ready
            )
        except MaskingError as failure:
            raise OutcomeUnknownError(
                f"a create got no answer ({error}) and the lookup failed ({failure})",
                session_uuid=named,
            ) from failure
        if found.ambiguous:
            raise OutcomeUnknownError(
                f"a create got no answer ({error}) and {len(found.candidates)} sessions match",
                candidates=found.candidates,
            ) from error
        if found.session is not None:
            log.info("adopted session %s made by an unanswered create", found.session.session_uuid)
        return found.session

    def _may_retry(
        self, error: MaskingError, attempt: Attempt, trace: CallTrace | None = None
    ) -> bool:
        """Whether to send again after ``error`` (then ``attempt`` knows how long to wait).

        A 429 is not a failure: it spends no budget and, given the call's ``trace``, no attempt
        (the limiter holds the call until Retry-After, so no wait of its own); only
        ``max_throttled`` of them bound it. A pool timeout is not retried here: the pool was full
        for ``Timeouts.pool`` seconds. After a 503 the wait is never under its Retry-After.
        """
        policy = self.options.retry
        if isinstance(error, RateLimitedError):
            if trace is not None:
                return trace.throttled <= policy.max_throttled and attempt.retry(
                    error, counts=False, wait=0.0
                )
            return attempt.retry(error, wait=0.0)
        if isinstance(error, PoolTimeout) or not is_retryable(error):
            return False
        floor = retry_after_floor(policy, error)
        return attempt.retry(error, floor=floor) and self._budget.try_spend()

    def _attempts(self, method: str, url: str) -> RetryContext:
        """The attempts of one call, by the policy; each wait is logged and seen by the hooks."""
        policy = self.options.retry

        def retrying(details: RetryDetails) -> None:
            error = type(details.error).__name__
            log.warning("retrying %s %s after %s", method, self._mask(url), error)
            if self._hooks:
                now = time.monotonic()
                self._emit(RequestRetried(method, url, details.attempt, error, details.wait, now))

        return retry_context(
            self._backoff,
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait=policy.wait,
            hook=retrying,
            rng=self._rng,
        )

    async def _retrying(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        trace: CallTrace | None = None,
    ) -> Any:
        """A call that is safe to repeat (read, update, expire), retried by the policy."""
        trace = trace if trace is not None else CallTrace()
        self._budget.on_request()
        async for attempt in self._attempts(method, url):
            trace.attempts = attempt.number
            try:
                return await self._request(
                    method, url, params=params, json_body=json_body, trace=trace
                )
            except MaskingError as error:
                if not self._may_retry(error, attempt, trace):
                    raise
        raise AssertionError("a retry loop ends by a return or a raise")

    def _emit(self, event: Event) -> None:
        for hook in self._hooks:
            hook(event)

    async def _take_slot(self, method: str, url: str) -> None:
        """Wait for one of ``max_connections`` slots, so the send that follows waits for no pool.

        Waiting for a slot is bounded by ``Timeouts.pool`` and fails with :class:`PoolTimeout`:
        nothing was sent, so no create is ever mistaken for one that may have reached the server.
        (A free slot with a free token is taken by ``_turn_now`` without awaiting.)
        """
        try:
            with anyio.fail_after(self.options.timeouts.pool):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolTimeout(
                f"no connection free within {self.options.timeouts.pool:g} s",
                method=method,
                url=url,
            ) from None

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        trace: CallTrace,
    ) -> Any:
        """One request, in layers as httpx's ``send``: take a turn, :meth:`_send`, :meth:`_read`.

        The turn is a connection slot, then a rate token: the token is taken only once a slot
        is held, so the limiter's timetable is the time requests leave, not the time they
        started to queue for a connection. A free slot and a free token are taken at once
        (:meth:`_turn_now`: no await, nothing to call off); otherwise :meth:`_wait_for_turn`.
        The slot is released once the send is over, before the answer is read.
        """
        transport = self._transport
        if self._closed or transport is None:
            raise ConfigurationError("the client is closed or was never opened (use async with)")
        asked = time.monotonic()
        if trace._called_off:
            raise CalledOff(f"{method} {url} was called off before it was sent")
        if not self._turn_now():
            await self._wait_for_turn(method, url, trace)
        try:
            if trace.departing is not None or trace._called_off:
                await self._depart(method, url, trace)
            response = await self._send(transport, method, url, params, json_body, trace, asked)
        finally:
            self._slots.release()
        return await self._read(method, url, response, trace)

    def _turn_now(self) -> bool:
        """Take a free slot and a free rate token together, without awaiting (the fast path)."""
        if self._slots.value > 0 and self._try_acquire is not None and self._try_acquire():
            self._slots.acquire_nowait()  # no await since the check: still free
            return True
        return False

    async def _wait_for_turn(self, method: str, url: str, trace: CallTrace) -> None:
        """Wait for a slot, then a rate token; returns holding a slot, or raises holding none.

        Only this wait may be called off (:meth:`CallTrace.call_off`), never the send.
        """
        holding = False
        try:
            with anyio.CancelScope() as trace._waiting:
                await self._take_slot(method, url)
                holding = True
                await self._limiter.acquire()
            trace._waiting = None
            if trace._called_off:
                raise CalledOff(f"{method} {url} was called off before it was sent")
        except BaseException:
            if holding:
                self._slots.release()
            raise

    async def _depart(self, method: str, url: str, trace: CallTrace) -> None:
        """The ``departing`` hook; a call called off meanwhile (or before) is never sent."""
        if trace.departing is not None and not trace._called_off:
            await trace.departing(time.time())
        if trace._called_off:
            raise CalledOff(f"{method} {url} was called off before it was sent")

    async def _send(
        self,
        transport: Transport,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        trace: CallTrace,
        asked: float,
    ) -> Response:
        """The bytes through the transport, counted as traffic and told to the hooks."""
        trace.sent_at, started = time.time(), time.monotonic()
        trace.sent_mono = started
        if self._hooks:
            self._emit(RequestSent(method, url, trace.attempts, started - asked, started))
        try:
            response = await transport.send(method, url, params=params, json_body=json_body)
        except TransportError as error:
            now = time.monotonic()
            self._traffic.failure(str(error), now)
            if self._hooks:
                failed = type(error).__name__
                self._emit(RequestFailed(method, url, trace.attempts, failed, now - started, now))
            raise
        answered = time.monotonic()
        self._traffic.answer(answered)
        trace.last_status = status = response.status
        if self._hooks:
            took = answered - started
            self._emit(RequestAnswered(method, url, trace.attempts, status, took, answered))
        if log.isEnabledFor(logging.DEBUG):  # masking costs a regex: only when it is shown
            shown = self._mask(f"{url}?{urlencode(params)}" if params else url)
            log.debug("%s %s -> %d in %.1f ms", method, shown, status, (answered - started) * 1000)
        return response

    async def _read(self, method: str, url: str, response: Response, trace: CallTrace) -> Any:
        """The answer's JSON, or its error: a 429 first pauses the limiter for every caller."""
        status = response.status
        retry_after = None
        if status == 429 or status == 503:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if status == 429:  # before anything else can run: no caller let through the pause
                await self._throttled(method, url, retry_after, trace)
        try:
            # Empty or blank means no body (isspace: no copy, as strip would make).
            body = (
                json.loads(response.body) if response.body and not response.body.isspace() else {}
            )
        except ValueError:
            body = _UNSET
        if status >= 400:
            raise self._error(method, url, status, body, retry_after)
        if body is _UNSET:
            raise ResponseFormatError("answer is not JSON", method=method, url=url, status=status)
        return body

    async def _throttled(
        self, method: str, url: str, retry_after: float | None, trace: CallTrace
    ) -> None:
        """A 429: every caller paused until its Retry-After (capped by the policy)."""
        cap = self.options.retry.retry_after_cap
        await self._limiter.throttled(None if retry_after is None else min(retry_after, cap))
        trace.throttled += 1
        if self._hooks:
            stats = self._limiter.stats()
            self._emit(
                RequestThrottled(
                    method, url, retry_after, stats.paused_until, stats.rate, time.monotonic()
                )
            )

    def _error(
        self, method: str, url: str, status: int, body: Any, retry_after: float | None
    ) -> MaskingError:
        message = body.get("error") if isinstance(body, dict) else None
        api_id = body.get("api_id") if isinstance(body, dict) else None
        text = str(message) if message else f"HTTP {status}"
        if status == 429:
            return RateLimitedError(
                text,
                retry_after=retry_after,
                status=status,
                api_id=api_id,
                method=method,
                url=url,
            )
        kind = error_for_status(status)
        if issubclass(kind, ServerError):
            return kind(
                text, retry_after=retry_after, status=status, api_id=api_id, method=method, url=url
            )
        return kind(text, status=status, api_id=api_id, method=method, url=url)

    def _mask(self, text: str) -> str:
        if not self.options.mask_numbers_in_logs:
            return text
        return _NUMBER.sub(lambda m: "***" + m.group(1), text)
