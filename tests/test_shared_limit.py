"""The Redis-backed shared limit against a real redis-server: window, pause, AIMD, outages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from masking_async.cli import main as cli_main
from masking_async.client import RateLimit, RedisLimiter, SharedLimitOptions
from masking_async.client._limiter_state import HOLD_SHARE, most_in_window
from masking_async.client._redis_limiter import limit_arguments
from masking_async.client._redis_link import TRANSITIONS, Link, LinkState, Reconnect
from masking_async.client._redis_script import SCRIPT
from masking_async.client._redis_server import RedisServer, free_port
from masking_async.emulator import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from masking_async.emulator.process import emulator_process
from masking_async.errors import ConfigurationError, LimiterUnavailableError

FAST = Reconnect(initial=0.01, maximum=0.05)
#: Each test states its margin in its RateLimit.
OPTIONS = SharedLimitOptions(reconnect=FAST, min_margin=0.0)


def _account() -> str:
    return f"TEST{uuid.uuid4().hex[:12]}"


def _limiter(url: str, account: str, limit: RateLimit) -> RedisLimiter:
    return RedisLimiter.from_url(url, account=account, limit=limit, options=OPTIONS)


# -- the link's state machine -------------------------------------------------------------------


async def test_link_walks_every_transition() -> None:
    """Each row of the link's table happens as written, and a closed link refuses calls."""
    link = Link("redis://test", Reconnect(initial=0.001, maximum=0.002))
    answers: list[bool] = []

    async def call() -> str:
        if not answers.pop(0):
            raise redis.ConnectionError("refused")
        return "ok"

    async def step(*outcomes: bool) -> None:
        answers.extend(outcomes)
        assert await link.run(call) == "ok"

    answers.append(False)
    with pytest.raises(LimiterUnavailableError, match="cannot reach Redis at redis://test"):
        await link.run(call)  # NEW, call fails: a clear error, still NEW
    assert link.state is LinkState.NEW
    await step(True)  # NEW -> UP
    assert link.state is LinkState.UP
    await step(True)  # UP -> UP
    await step(False, False, True)  # UP -> DOWN -> DOWN -> UP
    assert link.state is LinkState.UP
    assert link.down_since is None
    every = {(s, ok) for s in (LinkState.UP, LinkState.DOWN) for ok in (True, False)}
    assert set(TRANSITIONS) == every | {(LinkState.NEW, True)}
    link.close()
    with pytest.raises(ConfigurationError, match="closed"):
        await step(True)


async def test_link_gives_up_after_max_outage() -> None:
    """With ``max_outage`` set, an outage longer than it ends in a clear error, not a hang."""
    link = Link("redis://test", Reconnect(initial=0.01, maximum=0.01, max_outage=0.05))
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise redis.ConnectionError("refused")

    await link.run(call)
    with pytest.raises(LimiterUnavailableError, match=r"unreachable for over 0\.05 s"):
        await link.run(call)
    assert link.state is LinkState.DOWN


# -- at start ----------------------------------------------------------------------------------


async def test_unreachable_redis_is_one_clear_error_without_the_password() -> None:
    """Nothing listening: connect() raises one line naming Redis, never its password."""
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    limiter = _limiter(url, _account(), RateLimit(10, 1.0))
    with pytest.raises(LimiterUnavailableError) as caught:
        await limiter.connect()
    message = str(caught.value)
    assert "cannot reach Redis at redis://127.0.0.1:" in message
    assert "s3cret" not in message
    assert "\n" not in message
    assert "s3cret" not in repr(limiter)
    with pytest.raises(LimiterUnavailableError):
        await limiter.acquire()  # the first acquire fails the same way, it never sends unlimited
    await limiter.aclose()


async def test_a_redis_that_refuses_the_script_is_one_clear_error(
    redis_server: RedisServer,
) -> None:
    """An ACL user without scripting: connect() says Redis refused, in one line, no password."""
    with redis.Redis(port=redis_server.port) as admin:
        admin.acl_setuser(
            "noscript",
            enabled=True,
            passwords=["+s3cret"],
            keys=["*"],
            commands=["+@all", "-@scripting"],
        )
    url = redis_server.url.replace("redis://", "redis://noscript:s3cret@")
    limiter = _limiter(url, _account(), RateLimit(10, 1.0))
    with pytest.raises(ConfigurationError, match="refused") as caught:
        await limiter.connect()
    assert "s3cret" not in str(caught.value)
    assert "\n" not in str(caught.value)
    await limiter.aclose()


def test_shared_limit_needs_a_limit(redis_server: RedisServer) -> None:
    """``RateLimit.off()`` cannot be shared: refused at construction."""
    with pytest.raises(ConfigurationError, match="needs a limit"):
        RedisLimiter.from_url(redis_server.url, account="A", limit=RateLimit.off())


# -- the script's guarantee, searched by hypothesis ---------------------------------------------

_LIMIT = RateLimit(3, 0.015, margin=0.005, decrease=0.5, increase=0.5, quiet=0.02)
_N, _WINDOW_US = 3, 20_000
_ARGS = limit_arguments(_LIMIT)


class SharedWindowMachine(RuleBasedStateMachine):
    """Random reserves, claims, abandoned slots, 429s and waits on the real script.

    Invariant: the slots actually granted (a reserve or claim answered "go now") never put more
    than N in any window, however the operations interleave, on Redis' own clock. And a slot is
    taken back only after a 429 or a claim over half the margin late, never otherwise.
    """

    server: RedisServer

    @initialize()
    def start(self) -> None:
        self.client = redis.Redis(port=self.server.port)
        self.script = self.client.register_script(SCRIPT)
        self.keys = [f"t:{{{_account()}}}:log", f"t:{{{_account()}}}:state"]
        self.keys[1] = self.keys[0].replace(":log", ":state")
        self.waiting: dict[str, tuple[int, int, int]] = {}
        self.throttles = 0
        self.granted: list[int] = []
        self.counter = 0

    def _run(
        self, op: str, member: str = "", slot: int = 0, epoch: int = 0, pause: int = 0
    ) -> list[int]:
        raw = self.script(keys=self.keys, args=[op, member, slot, epoch, pause, *_ARGS])
        return [int(float(v)) for v in raw]

    @rule()
    def reserve(self) -> None:
        self.counter += 1
        member = f"m{self.counter}"
        delay, slot, epoch, _, _ = self._run("reserve", member)
        if delay == 0:
            self.granted.append(slot)
        else:
            self.waiting[member] = (slot, epoch, self.throttles)

    def _pick(self, index: int) -> str | None:
        """A waiting member; drawn as a plain index, since who waits depends on Redis' clock."""
        members = sorted(self.waiting)
        return members[index % len(members)] if members else None

    @rule(index=st.integers(0, 63))
    def claim(self, index: int) -> None:
        member = self._pick(index)
        if member is None:
            return
        slot, epoch, throttles = self.waiting[member]
        delay, *_ = self._run("claim", member, slot, epoch)
        seconds, micros = self.client.time()
        late = seconds * 1_000_000 + micros - slot > _ARGS[-1]
        assert delay >= 0 or self.throttles > throttles or late, "a slot was lost for nothing"
        if delay == 0:
            self.granted.append(slot)
        if delay <= 0:
            del self.waiting[member]

    @rule(index=st.integers(0, 63))
    def abandon(self, index: int) -> None:
        """A caller cancelled while it waited: its slot is never claimed."""
        member = self._pick(index)
        if member is not None:
            del self.waiting[member]

    @rule(pause_ms=st.integers(0, 30))
    def throttle(self, pause_ms: int) -> None:
        self.throttles += 1
        self._run("throttle", pause=pause_ms * 1000)

    @rule(ms=st.integers(1, 25))
    def wait(self, ms: int) -> None:
        time.sleep(ms / 1000)

    @invariant()
    def never_over_the_limit(self) -> None:
        assert most_in_window(sorted(self.granted), _WINDOW_US) <= _N, self.granted

    def teardown(self) -> None:
        self.client.close()


def test_granted_slots_never_exceed_the_window(redis_server: RedisServer) -> None:
    """Hypothesis: no interleaving of reserve/claim/abandon/429/wait grants N + 1 in a window."""
    SharedWindowMachine.server = redis_server
    run = settings(
        max_examples=40,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )(SharedWindowMachine).TestCase
    run("runTest").runTest()


# -- processes (limiters) sharing one account ---------------------------------------------------


async def _gather_times(count: int, acquire: Callable[[], Awaitable[None]]) -> list[float]:
    times: list[float] = []

    async def one() -> None:
        await acquire()
        times.append(time.monotonic())

    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(one)
    return sorted(times)


async def test_limiters_share_one_window(redis_server: RedisServer) -> None:
    """Three limiters on one account: together never more than N per window, all N used."""
    account = _account()
    limiters = [
        _limiter(redis_server.url, account, RateLimit(5, 0.2, margin=0.1)) for _ in range(3)
    ]
    times: list[float] = []
    async with anyio.create_task_group() as group:
        for limiter in limiters:

            async def run(limiter: RedisLimiter = limiter) -> None:
                times.extend(await _gather_times(5, limiter.acquire))

            group.start_soon(run)
    times.sort()
    assert len(times) == 15
    # Measured here, after the answer came back: the margin covers this process's jitter.
    assert most_in_window(times, 0.2) <= 5, times
    assert sum(limiter.stats().acquired for limiter in limiters) == 15
    for limiter in limiters:
        await limiter.aclose()


async def test_accounts_share_one_redis_client(redis_server: RedisServer) -> None:
    """Limiters given one client keep a state each; closing one leaves the client to the other."""
    client = redis.asyncio.Redis(port=redis_server.port)
    accounts = [_account(), _account()]
    first, second = (
        RedisLimiter(client, account=account, limit=RateLimit(1000, 1.0), options=OPTIONS)
        for account in accounts
    )
    for limiter in (first, second):
        await limiter.acquire()
    for account in accounts:
        assert await client.exists(f"masking_async:{{{account}}}:state")
    await first.aclose()
    await second.acquire()  # the client is still open
    await second.aclose()
    assert await client.ping()
    await client.aclose()


async def test_a_429_in_one_limiter_holds_every_other(redis_server: RedisServer) -> None:
    """A throttles with Retry-After 0.6 s: none of B's queued callers goes before it ends."""
    account = _account()
    a, b = (_limiter(redis_server.url, account, RateLimit(4, 0.1)) for _ in range(2))
    await a.acquire()
    throttled_at = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(a.throttled, 0.6)
        await anyio.lowlevel.checkpoint()  # the 429 goes first; B's callers queue behind it
        times = await _gather_times(8, b.acquire)
    assert min(times) >= throttled_at + 0.6 - 0.02, min(times) - throttled_at
    assert (a.stats().throttled, b.stats().throttled) == (1, 0)
    assert b.stats().total_wait > 8 * 0.5
    for limiter in (a, b):
        await limiter.aclose()


async def test_the_adaptive_rate_is_shared_held_and_climbs_back(redis_server: RedisServer) -> None:
    """A's 429 halves the shared rate; B's climb holds under the refused rate, then recovers."""
    account = _account()
    limit = RateLimit(10, 0.1, margin=0.02, decrease=0.5, increase=0.5, quiet=0.05)
    a, b = (_limiter(redis_server.url, account, limit) for _ in range(2))
    await _gather_times(10, a.acquire)
    await a.throttled(0.0)
    refused = 2 * a.stats().rate
    assert 10 <= refused <= 10 / 0.12 + 1e-6  # A's sends in the last 0.1 s, per second
    assert a.stats().mode == "recovering"
    await anyio.sleep(0.12)  # two quiet periods: climbing, but held under the refused rate
    await b.acquire()
    assert b.stats().rate == pytest.approx(HOLD_SHARE * refused)
    await anyio.sleep(0.5)  # past HOLD_PERIODS quiet periods: back to the ceiling
    await b.acquire()
    assert b.stats().rate == pytest.approx(10 / 0.12)
    assert b.stats().mode == "steady"
    for limiter in (a, b):
        await limiter.aclose()


async def test_redis_restart_holds_every_request_then_resumes() -> None:
    """Redis stopped mid-run: nothing goes while it is away, the pause shows, all finish after."""
    with RedisServer() as server:
        limiter = _limiter(server.url, _account(), RateLimit(5, 0.2, margin=0.1))
        await limiter.connect()
        times: list[float] = []
        stopped_at = restarted_at = 0.0

        async def worker() -> None:
            for _ in range(4):
                await limiter.acquire()
                times.append(time.monotonic())

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(worker)
            while len(times) < 7:  # noqa: ASYNC110 - polling a plain list, bounded by the test
                await anyio.sleep(0.01)
            await anyio.to_thread.run_sync(server.stop)
            stopped_at = time.monotonic()
            await anyio.sleep(0.5)
            assert limiter.link_state is LinkState.DOWN
            assert limiter.stats().mode == "redis down"
            assert limiter.stats().paused_until > 0
            await anyio.to_thread.run_sync(server.start)
            restarted_at = time.monotonic()
        assert len(times) == 20
        during = [t for t in times if stopped_at + 0.05 < t < restarted_at]
        assert during == []
        # The new Redis knows nothing: it holds everyone until it is one window old.
        after = [t for t in times if t >= restarted_at]
        assert after
        assert min(after) >= restarted_at + 0.3 - 1.0  # uptime counts whole seconds
        assert most_in_window(sorted(times), 0.2) <= 5
        await limiter.aclose()


# -- the command line and the docs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["list"], "cannot reach Redis at redis://127.0.0.1:"),
        (["expire", "--where", "status=active"], "cannot reach Redis at redis://127.0.0.1:"),
        (["create", "rows.csv", "--rate", "off"], "--shared-limit needs a rate limit"),
        (["load", "--requests", "5", "--quiet"], "cannot reach Redis at redis://127.0.0.1:"),
    ],
)
def test_cli_shared_limit_errors_are_one_line(
    command: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--shared-limit with no Redis (or no limit) stops before any work: one line, exit 2."""
    monkeypatch.chdir(tmp_path)  # whatever a command might write lands here, not in the repo
    url = f"redis://:pw@127.0.0.1:{free_port()}/0"
    auth = (
        ["--auth-id", "MAEMULATORDEFAULT001", "--auth-token", "t"] if command[0] != "load" else []
    )
    status = cli_main([*command, *auth, "--shared-limit", url])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert message in err
    assert "\n" not in err
    assert "pw@" not in err
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_a_url_that_is_not_redis(capsys: pytest.CaptureFixture[str]) -> None:
    """A URL of another scheme is refused by the parser, naming the option."""
    with pytest.raises(SystemExit) as stop:
        cli_main(["list", "--shared-limit", "http://127.0.0.1:1/"])
    assert stop.value.code == 2
    assert "--shared-limit" in capsys.readouterr().err


def test_scaling_doc_example_runs(redis_server: RedisServer) -> None:
    """The Python example of docs/scaling.md runs as written against Redis and an emulator."""
    text = (Path(__file__).parent.parent / "docs" / "scaling.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert "redis://127.0.0.1:6379/0" in code
    code = code.replace("redis://127.0.0.1:6379/0", redis_server.url.replace("/0", "/2"))
    with emulator_process("--rate-limit", "off") as base_url:
        env = {
            **os.environ,
            "PLIVO_AUTH_ID": DEFAULT_AUTH_ID,
            "PLIVO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
        }
        env["MASKING_ASYNC_BASE_URL"] = base_url
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("steady")


def test_load_paces_itself_by_the_shared_limit(redis_server: RedisServer) -> None:
    """`load --shared-limit`: 20 requests asked at 50/s take the 2 s that 10 per 1.1 s allows."""
    url = redis_server.url.replace("/0", "/3")
    shared = ["--shared-limit", url, "--shared-rate", "10/1s"]
    started = time.monotonic()
    cli_main(["load", "--requests", "20", "--rate", "50/s", "--warmup", "0", "--quiet", *shared])
    # 20 sends paced 0.11 s apart (the shared margin is 0.1 s) span at least 19 x 0.11 s.
    assert time.monotonic() - started >= 19 * 0.11
    with redis.Redis(port=redis_server.port, db=3) as client:
        assert client.exists(f"masking_async:{{{DEFAULT_AUTH_ID}}}:state")
