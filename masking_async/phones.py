"""Phone numbers: as people write them turned into E.164, and distinct valid ones for demos.

Spreadsheets hold ``+1 (415) 555-0101``, ``415-555-0102`` or ``+44 20 7946 0958``; the API takes
only E.164. :func:`to_e164` reads them with ``phonenumbers`` (a national number needs a region to
know its country). :func:`party_numbers` builds numbers from a counter inside real mobile and
geographic ranges of a few countries, so they are distinct by construction, each checked with
``phonenumbers`` so the API accepts it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Final

import phonenumbers

__all__ = ["REGION_HELP", "check_region", "party_numbers", "party_pairs", "to_e164"]

#: What a region is, for messages and --help.
REGION_HELP: Final = "a two-letter region code such as US, GB or IN"
#: A number already in E.164, or in it but for the ``+``: the API's own form, left to its rules.
_PLAIN: Final = re.compile(r"\+?[0-9]+")


def check_region(text: str) -> str:
    """A region ``phonenumbers`` knows, upper case; ValueError otherwise."""
    region = text.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{text!r} is not {REGION_HELP}")
    return region


@functools.lru_cache(maxsize=65_536)
def to_e164(text: str, region: str | None) -> str:
    """``text`` in E.164 when it can be read: ``+`` and a country code, or a national number of
    ``region``. Digits alone (``14155550101``) are left as they are, for the API's rules to judge
    as before, unless ``region`` reads them as a valid national number. ValueError says what is
    missing; cached because files repeat parties."""
    text = text.strip()
    if _PLAIN.fullmatch(text) and (region is None or text.startswith("+")):
        return text
    if not text.startswith("+") and region is None:
        if _PLAIN.fullmatch(text):
            return text
        raise ValueError(
            f"{text!r} has no country code: write it as +1 415 555 0101, or give"
            " --default-region (or a default_region column) to read national numbers"
        )
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_valid_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if _PLAIN.fullmatch(text):
        return text  # not a national number of the region: the API's rules judge it as E.164
    where = f" (read as a number of {region})" if region and not text.startswith("+") else ""
    raise ValueError(f"{text!r} is not a valid phone number{where}")


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
