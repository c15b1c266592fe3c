"""The virtual number pool and the choice of a number for a new session.

A number may carry any number of active sessions at once, as long as no party is in two of them:
an incoming call is routed by (caller, virtual number). So a create only has to avoid the numbers
its own two parties are busy (or cooling off) on, and the search is bounded by those few numbers,
never by the size of the pool or the count of sessions: each group of numbers is an ordered tuple
walked from a rotating cursor, and the first number neither party is busy on wins.
"""

from __future__ import annotations

from collections.abc import Callable

import phonenumbers

from masking_async.emulator.config import PoolConfig
from masking_async.rules import normalize_party

__all__ = ["Allocator", "NumberPool", "PoolExhausted"]

#: (subaccount or None for the shared pool, region or None for any country)
GroupKey = tuple[str | None, str | None]

#: Digits of a number that decide its country, for the lookup cache (``+`` and 7 digits).
_REGION_PREFIX = 8


class PoolExhausted(Exception):
    """No number can be given; the message says why, for the 400 answer."""


class NumberPool:
    """Every configured number, grouped by owner and country; built once, shared by accounts."""

    def __init__(self, config: PoolConfig) -> None:
        groups: dict[GroupKey, list[str]] = {}
        owners: list[tuple[str | None, tuple[str, ...]]] = [(None, config.numbers)]
        owners += config.subaccount_numbers.items()
        seen: set[str] = set()
        for owner, numbers in owners:
            for raw in numbers:
                number = _valid(raw)
                if number in seen:
                    raise ValueError(f"virtual number {number} is configured twice")
                seen.add(number)
                region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
                groups.setdefault((owner, region), []).append(number)
                groups.setdefault((owner, None), []).append(number)
        self._groups = {key: tuple(numbers) for key, numbers in groups.items()}
        self._regions: dict[str, str | None] = {}

    def region_of(self, number: str) -> str | None:
        """The country (ISO code) of an E.164 number; cached by its leading digits for speed."""
        prefix = number[:_REGION_PREFIX]
        if prefix not in self._regions:
            self._regions[prefix] = phonenumbers.region_code_for_number(phonenumbers.parse(number))
        return self._regions[prefix]

    def group(self, subaccount: str | None, region: str | None) -> tuple[GroupKey, tuple[str, ...]]:
        """The numbers a session may get: the subaccount's own if it has any, else the shared."""
        owner = subaccount if (subaccount, None) in self._groups else None
        key = (owner, region)
        numbers = self._groups.get(key)
        if numbers:
            return key, numbers
        where = f" reserved to subaccount {owner}" if owner else ""
        if region is None:
            raise PoolExhausted(f"the pool has no virtual numbers{where}")
        raise PoolExhausted(
            f"no virtual number in {region} (the first_party's country) in the pool{where};"
            " geomatch=false accepts a number of another country"
        )


def _valid(number: str) -> str:
    try:
        return normalize_party(number)
    except Exception as exc:  # rules raise a private error type; keep the message
        raise ValueError(f"virtual number {number!r}: {exc}") from exc


class Allocator:
    """One account's cursors over the pool's groups, so numbers are handed out in turn."""

    __slots__ = ("_cursors", "_pool")

    def __init__(self, pool: NumberPool) -> None:
        self._pool = pool
        self._cursors: dict[GroupKey, int] = {}

    def pick(self, subaccount: str | None, region: str | None, busy: Callable[[str], bool]) -> str:
        """The first number from the cursor on which ``busy`` is false.

        ``busy`` is true only for numbers the session's parties already use, so the walk stops
        after at most that many steps plus one; it covers the whole group only to report
        exhaustion.
        """
        key, numbers = self._pool.group(subaccount, region)
        start = self._cursors.get(key, 0)
        size = len(numbers)
        for step in range(size):
            index = (start + step) % size
            number = numbers[index]
            if not busy(number):
                self._cursors[key] = (index + 1) % size
                return number
        where = f"in {region} " if region else ""
        raise PoolExhausted(
            f"no virtual number available {where}for these parties: first_party or second_party"
            f" is already in an active session (or cool-off) on each of the {size} numbers"
        )
