"""Latency measurement: one call per argument, timed with ``perf_counter_ns``, summarised as median and p99."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class Stats:
    """Latency of repeated calls, in milliseconds."""

    median_ms: float
    p99_ms: float
    count: int

    @classmethod
    def of(cls, durations_ns: Sequence[int]) -> Stats:
        ms = np.asarray(durations_ns, dtype="float64") / NS_PER_MS
        # to the nanosecond the clock gives: the percentile's interpolation adds meaningless digits
        return cls(round(float(np.median(ms)), 6), round(float(np.percentile(ms, 99)), 6), len(ms))


@contextmanager
def no_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector out of the timed calls (as ``timeit`` does): a collection
    pass over a million-row frame would land on one unlucky query and inflate p99."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def once(fn: Callable[[], T]) -> tuple[float, T]:
    """Milliseconds taken by one call, and its result."""
    with no_gc():
        start = time.perf_counter_ns()
        result = fn()
        elapsed = time.perf_counter_ns() - start
    return elapsed / NS_PER_MS, result


def each(fn: Callable[[Any], T], args: Sequence[Any], warmup: int = 0) -> tuple[Stats, list[T]]:
    """Time ``fn(arg)`` for every argument; return the latency statistics and the results in order.

    ``warmup`` calls on the first arguments run untimed first, so that one-off costs (caches,
    lazily created transformers) do not count as a query's latency.
    """
    durations, results = timed(fn, args, warmup)
    return Stats.of(durations), results


def timed(fn: Callable[[Any], T], args: Sequence[Any], warmup: int = 0) -> tuple[np.ndarray, list[T]]:
    """As :func:`each`, but every call's nanoseconds rather than their statistics."""
    for arg in args[:warmup]:
        fn(arg)
    durations = np.empty(len(args), dtype="int64")
    results: list[T] = []
    with no_gc():
        for i, arg in enumerate(args):
            start = time.perf_counter_ns()
            result = fn(arg)
            durations[i] = time.perf_counter_ns() - start
            results.append(result)
    return durations, results
