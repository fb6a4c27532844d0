"""Opaque cursors for the API's lists: where the next page starts, and the query it belongs to.

A cursor carries the query (filters and sort) and a position: how many rows came before, and the last row shown.
When rows were added or removed before that point since, the next page starts after that last row wherever it is
now, so that no row is shown twice or skipped; only when that row is gone does the count alone decide. Cursors are
signed (SECRET_KEY): the query inside one is the dashboard's own, never a caller's edit of it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.core import signing

SALT = "api.cursors"


class CursorError(ValueError):
    """A cursor this API did not make (or made for another list)."""


@dataclass(frozen=True)
class Cursor:
    query: dict
    offset: int = 0
    last: str | int | None = None

    def encode(self) -> str:
        return signing.dumps({"q": self.query, "o": self.offset, "l": self.last}, salt=SALT, compress=True)


def decode(value: str, kind: str) -> Cursor:
    try:
        data = signing.loads(value, salt=SALT)
        cursor = Cursor(dict(data["q"]), int(data["o"]), data["l"])
    except (signing.BadSignature, ValueError, TypeError, KeyError):
        raise CursorError("The cursor is not one this API gave out; start again without it.") from None
    if cursor.query.get("kind") != kind or cursor.offset < 0:
        raise CursorError("The cursor belongs to another list; start again without it.")
    return cursor


def page[T](
    ordered: Sequence[T], limit: int, cursor: Cursor | None, key: Callable[[T], str | int]
) -> tuple[list[T], int, bool]:
    """The `limit` rows after the cursor's position in `ordered` (a list or a queryset: only a window of it is read
    when nothing moved), the offset of the first one, and whether more follow."""
    start = 0
    if cursor is not None:
        start = cursor.offset
        window = list(ordered[max(start - 1, 0) : start + limit + 1])
        if start and window and key(window[0]) == cursor.last:
            return window[1 : limit + 1], start, len(window) > limit + 1
        keys = [key(row) for row in ordered]  # rows moved: find the last one shown
        if cursor.last in keys:
            start = keys.index(cursor.last) + 1
    rows = list(ordered[start : start + limit + 1])
    return rows[:limit], start, len(rows) > limit
