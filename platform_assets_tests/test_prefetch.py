"""The prefetch thread: order kept, errors raised where they happened, sources closed."""

from collections.abc import Iterator

import pytest

from platform_assets.lib.prefetch import Prefetcher


def test_items_arrive_in_order_and_errors_where_they_happened() -> None:
    def source() -> Iterator[int]:
        yield from range(5)
        raise ValueError("the sixth item is broken")

    prefetcher = Prefetcher(source(), depth=2)
    received = []
    with pytest.raises(ValueError, match="sixth item"):
        for item in prefetcher:
            received.append(item)
    assert received == [0, 1, 2, 3, 4]
    prefetcher.close()


def test_closing_early_stops_the_producer_and_closes_its_source() -> None:
    released = []

    def source() -> Iterator[int]:
        try:
            yield from range(1_000_000)
        finally:
            released.append(True)

    prefetcher = Prefetcher(source(), depth=2)
    assert next(prefetcher) == 0
    prefetcher.close()

    assert released == [True]
    with pytest.raises(StopIteration):
        next(prefetcher)
