"""End to end: the batch engine creates sessions with callback URLs, calls are placed on them,
our receiver gets the callbacks, and the events match the calls and the sessions' totals."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from masking_async.batch import BatchOptions, run_batch
from masking_async.callbacks import CallbackServer, RecordingEvent, SessionEvent
from masking_async.client import ClientOptions, MaskingClient, RateLimit
from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    Emulator,
    ManualClock,
    Phone,
)
from masking_async.phones import party_pairs

SCRIPTS = {
    "talk": (Phone(hangup_after=45), Phone(answer_after=5)),
    "busy": (Phone(), Phone(busy=True)),
    "no-answer": (Phone(), Phone(answer_after=None)),
}
EXPECTED = {
    "talk": [
        "SessionFirstPartyAnswer",
        "SessionSecondPartyRing",
        "SessionSecondPartyAnswer",
        "SessionRecordingInitiated",
        "SessionFirstPartyHangup",
        "SessionRecordingCompleted",
        "SessionSecondPartyHangup",
        "SessionPartiesHangup",
    ],
    "busy": [
        "SessionFirstPartyAnswer",
        "SessionSecondPartyRing",
        "SessionSecondPartyHangup",
        "SessionFirstPartyHangup",
        "SessionPartiesHangup",
    ],
    "no-answer": [
        "SessionFirstPartyAnswer",
        "SessionSecondPartyRing",
        "SessionSecondPartyHangup",
        "SessionFirstPartyHangup",
        "SessionPartiesHangup",
    ],
}


async def test_batch_sessions_calls_and_callbacks_agree(
    masking_emulator: Emulator, callback_server: CallbackServer, tmp_path: Path
) -> None:
    """Twelve sessions from a CSV through run_batch; a call on each (both directions, three
    scripts); every session's callbacks arrive complete, numbered 1..n, naming the call's
    numbers, and its retrieved totals count the call's legs."""
    pairs = list(party_pairs(12))
    source = tmp_path / "sessions.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "ref",
                "first_party",
                "second_party",
                "callback_url",
                "callback_method",
                "record",
                "recording_callback_url",
            ]
        )
        for index, (first, second) in enumerate(pairs):
            method = "GET" if index % 2 else "POST"
            writer.writerow(
                [
                    f"r{index}",
                    first,
                    second,
                    callback_server.url,
                    method,
                    "true",
                    callback_server.url,
                ]
            )
    options = ClientOptions(rate_limit=RateLimit.off())
    async with MaskingClient(
        DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN, base_url=masking_emulator.base_url, options=options
    ) as client:
        summary = await run_batch(
            source,
            client=client,
            options=BatchOptions(op="create", progress=False, out=tmp_path / "created.jsonl"),
        )
        assert summary.exit_status == 0
        results = [
            json.loads(line) for line in (tmp_path / "created.jsonl").read_text().splitlines()
        ]
        assert len(results) == 12
        plan: dict[str, tuple[str, str, str]] = {}
        for index, result in enumerate(sorted(results, key=lambda r: int(r["ref"][1:]))):
            first, second = pairs[index]
            caller, callee = (first, second) if index % 3 else (second, first)
            kind = list(SCRIPTS)[index % 3]
            caller_phone, callee_phone = SCRIPTS[kind]
            call = masking_emulator.calls.call(
                caller,
                result["virtual_number"],
                caller_phone=caller_phone,
                callee_phone=callee_phone,
            )
            assert call.session_uuid == result["session_uuid"]
            plan[result["session_uuid"]] = (kind, caller, callee)
        assert isinstance(masking_emulator.clock, ManualClock)
        masking_emulator.clock.advance(600)
        await masking_emulator.calls.settle()

        by_session: dict[str, list[SessionEvent | RecordingEvent]] = defaultdict(list)
        for event in callback_server.events:
            by_session[event.session_uuid].append(event)
        assert set(by_session) == set(plan)
        for uuid, (kind, caller, callee) in plan.items():
            events = by_session[uuid]
            assert [e.event_name for e in events] == EXPECTED[kind]
            assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
            assert {(e.from_number, e.to_number) for e in events[1:]} == {(caller, callee)}
            session = await client.get_session(uuid)
            assert session.status == "active"
            assert session.total_call_count == 2
            assert len(session.interaction) == 1
            recorded = session.interaction[0].recording_resource_url
            assert (recorded is not None) == (kind == "talk")
            final = events[-1]
            assert isinstance(final, SessionEvent)
            assert final.billed_duration == session.total_call_billed_duration
            assert final.amount == session.total_call_amount
