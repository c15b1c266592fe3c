"""Distinct, valid phone numbers for demos, load tests and benchmarks.

Numbers are built from a counter inside real mobile and geographic ranges of a few countries, so
they are distinct by construction, and each is checked with ``phonenumbers`` so the API accepts it.
"""

from __future__ import annotations

from collections.abc import Iterator

import phonenumbers

__all__ = ["party_numbers", "party_pairs"]

#: (prefix, digits after it): US geographic, GB mobile, IN mobile.
_RANGES = {
    "US": ("+1415", 7),
    "GB": ("+447700", 6),
    "IN": ("+9198", 8),
}
_US_FIRST_LOCAL = 2_000_000  # a local number may not start with 0 or 1


def party_numbers(country: str = "US", *, start: int = 0) -> Iterator[str]:
    """Yield distinct valid E.164 numbers of one country, in a stable order."""
    prefix, width = _RANGES[country]
    offset = _US_FIRST_LOCAL if country == "US" else 0
    for counter in range(start + offset, 10**width):
        number = f"{prefix}{counter:0{width}d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            yield number


def party_pairs(
    count: int, *, countries: tuple[str, ...] = ("US",), start: int = 0
) -> Iterator[tuple[str, str]]:
    """Yield ``count`` pairs of distinct parties, both of the same country, round-robin."""
    streams = [party_numbers(country, start=2 * start) for country in countries]
    for index in range(count):
        stream = streams[index % len(streams)]
        yield next(stream), next(stream)
