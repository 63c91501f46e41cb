"""Reading the account's history back to a moment, whatever its order, page size or `total`.

Neither the list's order nor its largest page is documented, and its `total` may be missing or
written as a string (docs/provider.md). So the search learns what it can from the first page
and then takes one of three ways, each ending only when every row created since the moment has
been seen for sure:

- newest first (the rows' own times say so): on, page after page, until a page reaches back
  past the moment, or an empty page;
- oldest first: the newest rows are on the last pages. The last page is where `total` says, or
  else found by doubling the page number until a page is empty, then halving the gap. From it,
  back until a page reaches past the moment; then on from it until an empty page, for the rows
  that came meanwhile;
- in no order the rows show (times missing, or all alike): every page, until an empty one.

Each page is read once, and the whole search ends by its deadline (then the history "could not
be read", and the caller reads it again later): never by a count of pages, which would fail
for ever once the history grew past it.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sora_relay.domain.provider import GenerationRecord, HistoryPage, ProviderUnavailable

# A page read for this search: its number, and what it has to give before the deadline.
PageReader = Callable[[int, float], HistoryPage]


@dataclass
class HistorySearch:
    read: PageReader  # a page by number, within the seconds given
    since: datetime
    deadline: float  # time.monotonic() at which the search gives up
    pages: dict[int, list[GenerationRecord]] = field(default_factory=dict)
    total: int | None = None

    def run(self) -> list[GenerationRecord]:
        first = self._page(1)
        if first:
            match _order(first):
                case "newest":
                    self._newest_first()
                case "oldest":
                    self._oldest_first(len(first))
                case _:
                    self._every_page()
        seen = {record.uuid: record for page in self.pages.values() for record in page}
        return [r for r in seen.values() if r.created_at is None or r.created_at >= self.since]

    def _newest_first(self) -> None:
        for number in itertools.count(1):
            page = self._page(number)
            if not page or self._all_seen() or _reaches_before(page[-1], self.since):
                return

    def _oldest_first(self, per_page: int) -> None:
        last = self._last_page(per_page)
        for number in range(last, 0, -1):
            page = self._page(number)
            if page and _reaches_before(page[0], self.since):
                break
        # Rows added since the last page was found are on it or after it.
        for number in itertools.count(last + 1):
            if not self._page(number):
                return

    def _every_page(self) -> None:
        for number in itertools.count(1):
            if not self._page(number) or self._all_seen():
                return

    def _last_page(self, per_page: int) -> int:
        """The last page that holds rows: from `total` where the list states it, else found."""
        if self.total is not None:
            return max(1, math.ceil(self.total / per_page))
        full, empty = 1, 2
        while self._page(empty):
            full, empty = empty, empty * 2
        while empty - full > 1:
            middle = (full + empty) // 2
            full, empty = (middle, empty) if self._page(middle) else (full, middle)
        return full

    def _all_seen(self) -> bool:
        seen = {record.uuid for page in self.pages.values() for record in page}
        return self.total is not None and len(seen) >= self.total

    def _page(self, number: int) -> list[GenerationRecord]:
        if number in self.pages:
            return self.pages[number]
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ProviderUnavailable(f"the history could not be read back to {self.since} in time")
        page = self.read(number, left)
        records = page.records
        if number == 1:
            self.total = page.total
        elif records and {r.uuid for r in records} <= {r.uuid for p in self.pages.values() for r in p}:
            # Page after page of rows already read: the list does not page (a `page` ignored).
            raise ProviderUnavailable(f"the history's page {number} repeats rows already read")
        self.pages[number] = records
        return records


def _reaches_before(record: GenerationRecord, since: datetime) -> bool:
    return record.created_at is not None and record.created_at < since


def _order(records: list[GenerationRecord]) -> str | None:
    """Which rows come first, "newest" or "oldest", as their own times show; None when they cannot tell."""
    times = [record.created_at for record in records]
    if len(times) < 2 or None in times:
        return None
    pairs = list(itertools.pairwise(times))
    if all(a == b for a, b in pairs):
        return None  # rows of one moment show no order
    if all(a >= b for a, b in pairs):  # type: ignore[operator]
        return "newest"
    if all(a <= b for a, b in pairs):  # type: ignore[operator]
        return "oldest"
    return None
