"""Coalescing: requests for the same key (model and settings) that arrive within a batching window
become one batched call, run on one worker thread.

The first request of a key opens its window (``window_s``); every request of that key arriving
before it closes joins the batch, which is then handed to the worker (at once when it holds
``max_batch`` requests). A window that closes while the worker is busy stays open until the worker
is free, so requests arriving during a search join the next one. Batches run one at a time on the
worker thread, so the engine is never used by two threads (llama.cpp is not thread-safe). Each request awaits its own result; a batch
that raises fails every request in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Bucket(Generic[T]):
    items: list[T] = field(default_factory=list)
    futures: list[asyncio.Future] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    ready: bool = False
    """The window closed while the worker was busy: hand it over when the worker is free."""


class Batcher(Generic[T, R]):
    """``await submit(key, item)`` -> the item's result from ``run(key, items)`` (one result per item, in order)."""

    def __init__(
        self,
        run: Callable[[Any, Sequence[T]], Sequence[R]],
        *,
        window_s: float = 0.02,
        max_batch: int = 64,
        executor: Executor | None = None,
    ) -> None:
        if window_s < 0 or max_batch < 1:
            raise ValueError("window_s must be >= 0 and max_batch >= 1")
        self.run, self.window_s, self.max_batch = run, window_s, max_batch
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="slowthink-search")
        self._buckets: dict[Hashable, _Bucket[T]] = {}
        self.batches = 0
        """Batches handed to ``run`` so far."""
        self._running = 0

    async def submit(self, key: Hashable, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        bucket = self._buckets.setdefault(key, _Bucket())
        bucket.items.append(item)
        bucket.futures.append(future)
        if len(bucket.items) >= self.max_batch:
            self._flush(key)
        elif bucket.timer is None and not bucket.ready:
            bucket.timer = loop.call_later(self.window_s, self._flush, key)
        return await asyncio.shield(future)

    def _flush(self, key: Hashable) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return
        if bucket.timer is not None:
            bucket.timer.cancel()
            bucket.timer = None
        if self._running and len(bucket.items) < self.max_batch:
            bucket.ready = True
            return
        del self._buckets[key]
        self.batches += 1
        self._running += 1
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(self.executor, self.run, key, list(bucket.items))
        task.add_done_callback(lambda t: self._finished(t, bucket.futures))

    def _finished(self, task: asyncio.Future, futures: list[asyncio.Future]) -> None:
        self._running -= 1
        _settle(task, futures)
        for key in [k for k, b in self._buckets.items() if b.ready]:
            self._flush(key)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _settle(task: asyncio.Future, futures: list[asyncio.Future]) -> None:
    error = (
        RuntimeError("the search was cancelled (server shutting down)")
        if task.cancelled()
        else task.exception()
    )
    results = None if error is not None else list(task.result())
    if results is not None and len(results) != len(futures):
        error = RuntimeError(f"a batch of {len(futures)} request(s) returned {len(results)} result(s)")
    for i, f in enumerate(futures):
        if f.done():
            continue
        if error is not None:
            f.set_exception(error)
        else:
            f.set_result(results[i])  # type: ignore[index]


__all__ = ["Batcher"]
