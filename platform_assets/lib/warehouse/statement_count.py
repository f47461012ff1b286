"""Counting the statements work sends the warehouse: how the tests and the range benchmark show
that a range of partitions costs the same statements as one.

Statements are counted where both drivers send them (``execute`` of ADBC's and psycopg's cursors),
by their first two words, in this process only. A diagnostic: nothing in a run uses it.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import psycopg


def _counting(original: Callable[..., Any], counted: Counter[str]) -> Callable[..., Any]:
    def execute(cursor: object, query: object, *args: Any, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else repr(query)
        counted[" ".join(text.split()[:2])] += 1
        return original(cursor, query, *args, **kwargs)

    return execute


@contextmanager
def counted_statements() -> Iterator[Counter[str]]:
    """Every statement sent meanwhile, counted by its first two words."""
    counted: Counter[str] = Counter()
    originals = {cursor: cursor.execute for cursor in (adbc.Cursor, psycopg.Cursor)}
    for cursor, original in originals.items():
        cursor.execute = _counting(original, counted)  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        for cursor, original in originals.items():
            cursor.execute = original  # type: ignore[method-assign]
