"""The party check's shortcut through phonenumbers gives what ``phonenumbers.parse`` gives."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from masking_async import rules
from masking_async.rules import _is_valid, _normalize_text, _parsed, _split_international


def _outcome(parse: object, digits: str) -> object:
    """The parsed number, or the kind of error parsing raised."""
    try:
        return parse(digits)  # type: ignore[operator]
    except phonenumbers.NumberParseException as exc:
        return ("error", exc.error_type)


def _samples() -> list[str]:
    """Digit strings after every country code: national prefixes, leading zeros, all lengths."""
    rng = random.Random(19)
    found = []
    for code in sorted(COUNTRY_CODE_TO_REGION_CODE):
        for length in range(0, 16):
            for prefix in ("", "0", "00", "1", "9"):
                tail = "".join(rng.choice("0123456789") for _ in range(length))
                found.append(f"{code}{prefix}{tail}")
    return [*found, "", "1", "12", "0", "00441234", "999123456", "٠١٢٣٤٥٦٧٨٩"]


def test_shortcut_parses_as_parse_does() -> None:
    """Every sample parses to the same number, or fails the same way, both ways."""
    differ = [
        digits
        for digits in _samples()
        if _outcome(_split_international, digits) != _outcome(_parsed, digits)
    ]
    assert differ == []


def _as_the_library_does(text: str) -> object:
    """A party as phonenumbers alone normalises it: parse, is_valid_number, format as E.164."""
    try:
        number = phonenumbers.parse(text)
    except phonenumbers.NumberParseException:
        return "unparsable"
    if not phonenumbers.is_valid_number(number):
        return "invalid"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_parties_normalised_as_the_library_does() -> None:
    """The party check gives phonenumbers' own E.164 form, or refuses as it would."""

    def ours(text: str) -> object:
        try:
            return _normalize_text.__wrapped__(text)
        except rules._Invalid as exc:
            return "invalid" if "valid phone" in str(exc) else "unparsable"

    texts = ["+" + digits for digits in _samples() if digits.isascii() and digits.isdigit()]
    texts += [
        phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164) for n in _examples()
    ]
    differ = [text for text in texts if ours(text) != _as_the_library_does(text)]
    assert differ == []


def _examples() -> list[phonenumbers.PhoneNumber]:
    """A valid example of every region's every number type, as the library ships them."""
    found = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in phonenumbers.PhoneNumberType.values():
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append(number)
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            found.append(number)
    return found


def test_validity_as_the_library_says() -> None:
    """Valid examples and random samples are valid both ways, or invalid both ways."""
    numbers = _examples()
    for digits in _samples():
        parsed = _outcome(lambda d: phonenumbers.parse("+" + d), digits)
        if isinstance(parsed, phonenumbers.PhoneNumber):
            numbers.append(parsed)
    assert sum(phonenumbers.is_valid_number(n) for n in numbers) > 1000  # both kinds are tested
    differ = [
        n
        for n in numbers
        if n.country_code is None
        or _is_valid(n.country_code, phonenumbers.national_significant_number(n))
        != phonenumbers.is_valid_number(n)
    ]
    assert differ == []


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("+14155552345", "+14155552345"),
        ("14155552345", "+14155552345"),
        ("+919800000000", "+919800000000"),
        ("+4402071234567", "+442071234567"),  # the national prefix after the country code
        ("+390612345678", "+390612345678"),  # Italy keeps its leading zero
    ],
)
def test_party_normalised(given: str, normalised: str) -> None:
    """Parties come out in E.164, as before the shortcut."""
    assert rules.normalize_party(given) == normalised
