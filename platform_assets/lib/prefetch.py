"""Running a producer ahead of its consumer in a thread, with a bounded queue between them.

Reading, validating and hashing the next chunk then overlaps the driver sending the previous one
(pyarrow kernels and the ADBC driver both release the GIL for their heavy work), while memory
stays bounded by ``depth`` items in flight.
"""

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
_POLL_S = 0.1


@dataclass(frozen=True)
class _Raised:
    error: BaseException


_DONE = object()


class Prefetcher(Iterator[T]):
    """Iterates ``source`` in a background thread, at most ``depth`` items ahead.

    An exception in ``source`` is raised to the consumer at the point it happened. ``close()``
    stops the producer and waits for it, so nothing runs on after the consumer is done.
    """

    def __init__(self, source: Iterator[T], depth: int = 2, name: str = "prefetch") -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=self._produce, args=(source,), name=name, daemon=True
        )
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue  # the consumer is behind: wait again, unless it has stopped meanwhile
        return False

    def _produce(self, source: Iterator[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as error:
            self._put(_Raised(error))
        finally:
            # Stopped early: close the source here, so what it holds open (a file, a database
            # connection) is released now, not whenever the garbage collector gets to it.
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self._finished = True
            raise StopIteration
        if isinstance(item, _Raised):
            self._finished = True
            raise item.error
        return item

    def close(self) -> None:
        """Stop the producer (if it is still running) and wait for it to end."""
        self._finished = True
        self._stop.set()
        self._thread.join()
