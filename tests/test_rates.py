"""One rate grammar (masking_async.rates) for every option that takes a rate (issue 20, item 3)."""

from __future__ import annotations

import argparse

import pytest

from masking_async import spec
from masking_async.cli._common import rate_limit
from masking_async.client import RateLimit
from masking_async.emulator import ServerRateLimit
from masking_async.load.timetable import TimetableError, parse_rate, parse_stages
from masking_async.rates import MAX_LIMIT_REQUESTS, parse_limit, parse_per_second

#: Every spelling of a limit, and the requests per window it means.
LIMITS = [
    (spec.DOCUMENTED_RATE.text, spec.DOCUMENTED_RATE),
    ("10/s", spec.Rate(10, 1.0)),
    ("10/sec", spec.Rate(10, 1.0)),
    ("1200/min", spec.Rate(1200, 60.0)),
    ("60/1m", spec.Rate(60, 60.0)),
    ("2/500ms", spec.Rate(2, 0.5)),
    ("100/h", spec.Rate(100, 3600.0)),
    ("10/d", spec.Rate(10, 86400.0)),
    ("10/2", spec.Rate(10, 2.0)),
    (" 7 / 1.5s ", spec.Rate(7, 1.5)),
    ("5/S", spec.Rate(5, 1.0)),
]


@pytest.mark.parametrize(("text", "expected"), LIMITS)
def test_every_limit_option_reads_every_spelling_alike(text: str, expected: spec.Rate) -> None:
    """The client's --rate, the emulator's --rate-limit and load's --cleanup-rate read one way."""
    assert parse_limit(text) == expected
    assert rate_limit(text) == RateLimit(expected.requests, expected.per)
    assert ServerRateLimit.parse(text) == ServerRateLimit(expected.requests, expected.per)


@pytest.mark.parametrize(("text", "expected"), LIMITS)
def test_every_arrival_rate_option_reads_the_same_spellings(text: str, expected: spec.Rate) -> None:
    """load --rate, --stages and callbacks load --rate take the limits' spellings, per second."""
    per_second = expected.requests / expected.per
    assert parse_per_second(text) == pytest.approx(per_second)
    assert parse_rate(text) == pytest.approx(per_second)
    assert parse_stages(f"1d:{text}")[0].target == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["off", "OFF", "none", "0"])
def test_off_is_no_limit(text: str) -> None:
    """``off`` (or none, or 0) is no limit for a limit option."""
    assert parse_limit(text) is None
    assert rate_limit(text) == RateLimit.off()
    assert ServerRateLimit.parse(text) is None


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("300", "a limit names its window"),
        ("fast", "must look like"),
        ("2.5/s", "whole requests"),
        ("0/s", "at least 1 request"),
        ("3/0s", "longer than zero"),
        (f"{MAX_LIMIT_REQUESTS + 1}/s", "at most 1,000,000"),
        ("9" * 400 + "/s", "too long"),
        ("10/fortnight", "must look like"),
    ],
)
def test_a_bad_limit_names_the_option_and_the_rule(text: str, rule: str) -> None:
    """The error starts with the option's name and the text, then says the rule broken."""
    with pytest.raises(ValueError, match=rule) as caught:
        parse_limit(text, what="--cleanup-rate")
    assert str(caught.value).startswith(f"--cleanup-rate {text!r}")
    with pytest.raises(argparse.ArgumentTypeError, match=rule):
        rate_limit(text)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("off", "cannot be off"),
        ("0/s", "above zero"),
        ("-5/s", "must look like"),
        ("1e12", "must look like"),
        ("100001/s", "at most 100,000"),
    ],
)
def test_a_bad_arrival_rate_names_the_option_and_the_rule(text: str, rule: str) -> None:
    """Arrival rates refuse off and zero (a stage may be zero) and name their option."""
    with pytest.raises(TimetableError, match=rule) as caught:
        parse_rate(text, option="--rate")
    assert str(caught.value).startswith(f"--rate {text!r}")


def test_a_bare_count_is_per_second_only_for_arrival_rates() -> None:
    """``50`` is 50/s for a load, but a limit must say its window (300 may mean 300/5s)."""
    assert parse_per_second("50") == 50.0
    assert parse_per_second("0", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="names its window"):
        parse_limit("50")
