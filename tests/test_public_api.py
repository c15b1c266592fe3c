"""The public surface stays curated: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import masking_async
import masking_async.client
import masking_async.emulator


def test_all_names_exist_and_are_sorted() -> None:
    """Every exported name resolves, and the lists are kept in order."""
    for module in (masking_async, masking_async.client, masking_async.emulator):
        assert all(hasattr(module, name) for name in module.__all__)
        assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))


def test_errors_share_one_base() -> None:
    """Every error class exported derives from MaskingError, so one except catches them all."""
    errors = [getattr(masking_async, n) for n in masking_async.__all__ if n.endswith("Error")]
    assert errors
    assert all(issubclass(e, masking_async.MaskingError) for e in errors)
