"""A bounded memo for values computed from objects that are not hashable (kernel rates, op lists).

A key holds the ids of such objects and the entry holds the objects themselves, so a hit needs those very
objects: an id reused after garbage collection can never return a stale value. When full it empties (the
analytic model refills what it needs within one estimate)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    def __init__(self, size: int = 8192) -> None:
        self._items: dict[tuple[Hashable, tuple[int, ...]], tuple[tuple[object, ...], T]] = {}
        self._size = size

    def get(self, key: Hashable, held: tuple[object, ...], compute: Callable[[], T]) -> T:
        """The value for `key` and the objects `held`, computed once while the memo keeps it."""
        full_key = (key, tuple(map(id, held)))
        found = self._items.get(full_key)
        if found is not None and all(a is b for a, b in zip(found[0], held, strict=True)):
            return found[1]
        if len(self._items) >= self._size:
            self._items.clear()
        value = compute()
        self._items[full_key] = (held, value)
        return value
