"""Fault rules: per operation, kind, phase, probability and count, installed at runtime."""

from __future__ import annotations

import asyncio
import logging
from itertools import islice

import aiohttp
import pytest

from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    Emulator,
    EmulatorConfig,
    FaultRule,
    Faults,
)
from masking_async.emulator.faults import rules_from_faults
from masking_async.phones import party_numbers
from masking_async.retrying import parse_retry_after

A, B = islice(party_numbers("US", start=1400), 2)
PAIR = {"first_party": A, "second_party": B}


@pytest.fixture
def with_rules(masking_emulator_factory, emulator_http_for):
    """Start an emulator with the given fault rules and return raw HTTP to it."""

    async def start(*rules: FaultRule, seed: int | None = None):
        emulator = await masking_emulator_factory(
            EmulatorConfig(rate_limit=None, fault_rules=rules, seed=seed)
        )
        return emulator_http_for(emulator)

    return start


def _count(emulator: Emulator) -> int:
    return emulator.store.list(DEFAULT_AUTH_ID, {}).total_count


async def _settled(emulator: Emulator, entries: int) -> None:
    """Wait (bounded) until the first ``entries`` requests have a recorded status."""
    for _ in range(200):
        log = emulator.request_log.entries()
        if len(log) >= entries and all(entry.status is not None for entry in log[:entries]):
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"requests never settled: {emulator.request_log.entries()}")


async def test_a_rule_targets_one_operation(with_rules):
    """An update rule fails updates only; creates and gets are untouched."""
    api = await with_rules(FaultRule(kind="error", operation="update", status=503))
    created = await api.create(**PAIR)
    uuid = created["session_uuid"]
    assert (await api.call("GET", uuid))[0] == 200
    status, body, _ = await api.call("POST", uuid, json={"record": True})
    assert (status, set(body)) == (503, {"api_id", "error"})


@pytest.mark.parametrize(("phase", "recorded"), [("before", False), ("after", True)])
async def test_error_status_before_or_after_the_update(with_rules, phase, recorded):
    """An error rule answers its status; 'after' keeps the update, 'before' never applies it."""
    api = await with_rules(FaultRule(kind="error", operation="update", status=502, phase=phase))
    uuid = (await api.create(**PAIR))["session_uuid"]
    assert (await api.call("POST", uuid, json={"record": True}))[0] == 502
    options = api.emulator.store.get(DEFAULT_AUTH_ID, uuid).options or {}
    assert options.get("record", False) is recorded


async def test_throttle_is_never_applied_and_says_when_to_retry(with_rules):
    """A throttle rule answers 429 with its Retry-After and the create does not happen."""
    api = await with_rules(FaultRule(kind="throttle", operation="create", retry_after=7))
    status, body, headers = await api.call("POST", json=PAIR)
    assert (status, headers["Retry-After"], set(body)) == (429, "7", {"api_id", "error"})
    assert _count(api.emulator) == 0


@pytest.mark.parametrize(("phase", "expired"), [("before", False), ("after", True)])
async def test_drop_after_the_expire_applies_it_silently(with_rules, phase, expired):
    """A drop closes the connection; in the after phase the expire was applied all the same."""
    api = await with_rules(FaultRule(kind="drop", operation="expire", phase=phase))
    uuid = (await api.create(**PAIR))["session_uuid"]
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("DELETE", uuid)
    record = api.emulator.store.get(DEFAULT_AUTH_ID, uuid)
    assert (record.status == "expired") is expired
    assert api.emulator.request_log.entries()[-1].status == 0


async def test_before_stall_applies_the_request_after_the_client_left(with_rules, caplog):
    """A stalled create whose client timed out is still applied, and is no emulator failure."""
    api = await with_rules(FaultRule(kind="stall", operation="create", stall_seconds=0.4))
    caplog.set_level(logging.DEBUG, logger="masking_async")
    with pytest.raises(asyncio.TimeoutError):
        await api.call("POST", json=PAIR, timeout=aiohttp.ClientTimeout(total=0.05))
    assert _count(api.emulator) == 0  # still held: nothing applied yet
    await _settled(api.emulator, 1)
    entry = api.emulator.request_log.entries()[0]
    assert (entry.status, entry.fault, entry.client_gone) == (201, "stall", True)
    assert _count(api.emulator) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_after_stall_applies_first_then_holds_the_answer(with_rules):
    """An after-phase stall has applied the create by the time the client gives up."""
    api = await with_rules(FaultRule(kind="stall", phase="after", stall_seconds=5.0))
    with pytest.raises(asyncio.TimeoutError):
        await api.call("POST", json=PAIR, timeout=aiohttp.ClientTimeout(total=0.2))
    assert _count(api.emulator) == 1


async def test_count_caps_how_many_requests_a_rule_hits(with_rules):
    """A rule with count=2 fails the first two lists and then lets the rest through."""
    api = await with_rules(FaultRule(kind="error", operation="list", count=2))
    statuses = [(await api.call("GET"))[0] for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    (active,) = api.emulator.fault_rules()
    assert (active.hits, active.exhausted) == (2, True)


async def test_rules_repeat_for_a_seed(with_rules):
    """Two emulators with the same seed and rules fail the same requests; another seed differs."""
    rules = (
        FaultRule(kind="error", operation="list", probability=0.3),
        FaultRule(kind="throttle", operation="list", probability=0.2),
    )

    async def statuses(seed):
        api = await with_rules(*rules, seed=seed)
        return [(await api.call("GET"))[0] for _ in range(30)]

    first = await statuses(3)
    assert first == await statuses(3)
    assert first != await statuses(4)
    assert {200, 429, 500} <= set(first)


async def test_rules_are_added_listed_and_removed_at_runtime(masking_emulator, emulator_http):
    """add_fault takes effect on the next request; remove_fault and clear_faults undo it."""
    emulator = masking_emulator
    first = emulator.add_fault(FaultRule(kind="error", status=504))
    second = emulator.add_fault(FaultRule(kind="throttle", operation="create"))
    assert [(a.id, a.rule.kind) for a in emulator.fault_rules()] == [
        (first.id, "error"),
        (second.id, "throttle"),
    ]
    assert (await emulator_http.call("GET"))[0] == 504
    assert emulator.remove_fault(first.id) is True
    assert emulator.remove_fault(first.id) is False
    assert (await emulator_http.call("GET"))[0] == 200
    assert (await emulator_http.call("POST", json=PAIR))[0] == 429
    emulator.clear_faults()
    assert emulator.fault_rules() == []
    assert (await emulator_http.call("POST", json=PAIR))[0] == 201


def test_legacy_faults_map_onto_rules():
    """Faults rates become one rule per kind and operation; a throttle is always 'before'."""
    faults = Faults(error_rate=0.1, throttle_rate=0.2, phase="after", operations={"create"})
    assert rules_from_faults(faults) == [
        FaultRule(kind="error", operation="create", phase="after", probability=0.1),
        FaultRule(kind="throttle", operation="create", phase="before", probability=0.2),
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "error", "status": 429},
        {"kind": "error", "status": 200},
        {"kind": "throttle", "phase": "after"},
        {"kind": "stall", "probability": 1.5},
        {"kind": "drop", "operation": "teleport"},
        {"kind": "error", "count": 0},
        {"kind": "explode"},
        {"kind": "stall", "stall_seconds": -1.0},
    ],
)
def test_fault_rule_refuses_nonsense(fields):
    """A 429 error, an applied throttle, odd probabilities, operations, counts or kinds fail."""
    with pytest.raises(ValueError):  # noqa: PT011 - the messages differ per rule
        FaultRule(**fields)


@pytest.mark.parametrize(
    "data",
    [{"kind": "error", "colour": "red"}, {"kind": "error", "status": "500"}, {"operation": "get"}],
)
def test_fault_rule_from_json_names_what_is_wrong(data):
    """Unknown keys, wrong types and a missing kind are refused by name."""
    with pytest.raises(ValueError, match=r"colour|status|kind"):
        FaultRule.from_json(data)


def test_fault_rule_json_round_trips():
    """A rule survives to_json/from_json unchanged (the control plane's wire form)."""
    rule = FaultRule(kind="stall", operation="get", phase="after", count=3, stall_seconds=2.5)
    assert FaultRule.from_json(rule.to_json()) == rule


def test_an_error_rule_may_say_retry_after_in_seconds_or_as_a_date():
    """An error rule carries Retry-After only when it names one, as seconds or an HTTP date;
    a throttle's stays 1 s by default; the new fields survive --fault and the JSON form."""
    now = 1_700_000_000.0
    rule = FaultRule.parse("kind=error,status=503,retry_after=30,retry_after_as=date")
    assert FaultRule.from_json(rule.to_json()) == rule
    assert parse_retry_after(rule.retry_after_header(now)["Retry-After"], now=now) == 30.0
    assert FaultRule(kind="error", status=503, retry_after=4).retry_after_header(now) == {
        "Retry-After": "4"
    }
    assert FaultRule(kind="error", status=503).retry_after_header(now) == {}
    assert FaultRule(kind="throttle").retry_after_header(now) == {"Retry-After": "1"}
    with pytest.raises(ValueError, match="retry_after_as"):
        FaultRule(kind="error", retry_after_as="minutes")  # type: ignore[arg-type]
