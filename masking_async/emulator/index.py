"""Indexes that keep every list page O(log n + limit), at any offset.

Every session gets a per-account sequence number ``seq`` in creation order, and created times
never decrease along it, so a created-time window is a range of ``seq``. Every index is a run of
sessions sorted by ``seq``:

- all, active and expired sessions of an account: a ``SortedKeyList`` (insert, remove and
  positional access in O(log n), from the ``sortedcontainers`` library);
- per value of ``first_party``, ``second_party``, ``virtual_number`` and ``subaccount``, split by
  status (:class:`Buckets`): the session itself when it is alone, a list while there are a few,
  a ``SortedKeyList`` beyond :data:`BUCKET_LIMIT`, so a million parties cost little memory.

A page is then two bisections and ``limit`` positional reads (:class:`Run`); ``status=all`` on a
value merges its active and expired runs with a k-th selection over both (:class:`Union`).
A session that expires moves from the active indexes to the expired ones; retention evicts it.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from sortedcontainers import SortedKeyList

if TYPE_CHECKING:
    from masking_async.emulator.records import SessionRecord

__all__ = ["BUCKET_LIMIT", "Buckets", "Index", "Run", "Source", "Union", "new_index", "seq_of"]

#: Above this many sessions a bucket becomes a SortedKeyList (O(log n) instead of O(n) inserts).
BUCKET_LIMIT: Final = 256

View = Sequence["SessionRecord"]
Index = SortedKeyList["SessionRecord", int]


def seq_of(record: SessionRecord) -> int:
    return record.seq


def new_index() -> Index:
    """An empty run of sessions sorted by ``seq``."""
    return SortedKeyList(key=seq_of)


def rank(view: View, seq: int) -> int:
    """How many sessions of ``view`` have a smaller ``seq``."""
    if isinstance(view, SortedKeyList):
        return int(view.bisect_key_left(seq))
    return bisect_left(view, seq, key=seq_of)


class Buckets:
    """Value -> its sessions sorted by ``seq``: bare when alone, a list, or a SortedKeyList."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    def add(self, key: str, record: SessionRecord) -> None:
        current = self._data.get(key)
        if current is None:
            self._data[key] = record
        elif type(current) is list:
            insort(current, record, key=seq_of)
            if len(current) > BUCKET_LIMIT:
                self._data[key] = SortedKeyList(current, key=seq_of)
        elif isinstance(current, SortedKeyList):
            current.add(record)
        else:
            self._data[key] = sorted((current, record), key=seq_of)

    def remove(self, key: str, record: SessionRecord) -> None:
        current = self._data.get(key)
        if current is record:
            del self._data[key]
        elif type(current) is list:
            index = bisect_left(current, record.seq, key=seq_of)
            if index < len(current) and current[index] is record:
                del current[index]
            if len(current) == 1:
                self._data[key] = current[0]
        elif isinstance(current, SortedKeyList):
            current.discard(record)
            if not current:
                del self._data[key]

    def get(self, key: str) -> View:
        current = self._data.get(key)
        if current is None:
            return ()
        if type(current) is list or isinstance(current, SortedKeyList):
            return current
        return (current,)

    def __len__(self) -> int:
        return len(self._data)


class Source(Protocol):
    """Sessions matching the indexed part of a query, newest first on demand."""

    def __len__(self) -> int: ...

    def newest(self, offset: int, limit: int) -> list[SessionRecord]: ...

    def descending(self) -> Iterator[SessionRecord]: ...


class Run:
    """``view[lo:hi]`` of a run sorted by ``seq``: the sessions in a seq range."""

    __slots__ = ("hi", "lo", "view")

    def __init__(self, view: View, seq_lo: int, seq_hi: int) -> None:
        self.view = view
        self.lo, self.hi = rank(view, seq_lo), rank(view, seq_hi)
        self.hi = max(self.hi, self.lo)

    def __len__(self) -> int:
        return self.hi - self.lo

    def at_newest(self, index: int) -> SessionRecord:
        """The ``index``-th newest session of the run (0: the newest)."""
        return self.view[self.hi - 1 - index]

    def newest(self, offset: int, limit: int) -> list[SessionRecord]:
        stop = self.hi - offset
        start = max(self.lo, stop - limit)
        if stop <= start:
            return []
        if isinstance(self.view, SortedKeyList):
            return list(self.view.islice(start, stop, reverse=True))
        return list(self.view[start:stop])[::-1]

    def descending(self) -> Iterator[SessionRecord]:
        if isinstance(self.view, SortedKeyList):
            return iter(self.view.islice(self.lo, self.hi, reverse=True))
        return (self.view[i] for i in range(self.hi - 1, self.lo - 1, -1))


class Union:
    """Two disjoint runs (a value's active and expired sessions) read as one, newest first."""

    __slots__ = ("a", "b")

    def __init__(self, a: Run, b: Run) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a) + len(self.b)

    def _split(self, k: int) -> int:
        """How many of the ``k`` newest sessions of the union come from ``a`` (binary search)."""
        a, b = self.a, self.b
        lo, hi = max(0, k - len(b)), min(k, len(a))
        while lo < hi:
            x = (lo + hi) // 2  # take x from a and k - x from b: too few from a?
            if a.at_newest(x).seq > b.at_newest(k - x - 1).seq:
                lo = x + 1
            else:
                hi = x
        return lo

    def newest(self, offset: int, limit: int) -> list[SessionRecord]:
        offset = min(offset, len(self))
        x = self._split(offset)
        ia, ib = x, offset - x
        page: list[SessionRecord] = []
        while len(page) < limit and (ia < len(self.a) or ib < len(self.b)):
            take_a = ib >= len(self.b) or (
                ia < len(self.a) and self.a.at_newest(ia).seq > self.b.at_newest(ib).seq
            )
            if take_a:
                page.append(self.a.at_newest(ia))
                ia += 1
            else:
                page.append(self.b.at_newest(ib))
                ib += 1
        return page

    def descending(self) -> Iterator[SessionRecord]:
        return heapq.merge(self.a.descending(), self.b.descending(), key=seq_of, reverse=True)
