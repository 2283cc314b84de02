# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bounded thread pools for operations that fan out requests.

:func:`map_bounded` is one fan-out on its own threads; :class:`SharedPool` is one bound shared by many
fan-outs (several repositories read at once).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)

#: Parallel requests for ``references`` / tag digests: enough to hide round
#: trips, few enough that registries with per-client rate limits stay calm.
DEFAULT_MAX_CONCURRENCY = 8


#: The most a user may ask for: more threads only queue inside the registry.
MAX_CONCURRENCY_LIMIT = 64


_T = TypeVar("_T")


_R = TypeVar("_R")


def check_concurrency(value: int | None) -> int:
    """``max_concurrency`` as a usable worker count (default when None)."""
    if value is None:
        return DEFAULT_MAX_CONCURRENCY
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY_LIMIT:
        raise InvalidInputError(
            f"max_concurrency must be a whole number from 1 to {MAX_CONCURRENCY_LIMIT}, got {value!r}"
        )
    return value


def map_bounded(function: Callable[[_T], _R], items: Sequence[_T], max_concurrency: int | None = None,
                pool: SharedPool | None = None) -> list[_R]:
    """``[function(item) for item in items]`` on at most ``max_concurrency`` threads, in input order.

    If calls fail, the error of the first failing item (in input order) is
    raised after the running calls finish; calls not yet started are dropped.
    With ``pool``, the calls run on that shared pool instead (its bound, its fair share).
    """
    if pool is not None:
        return pool.map(function, items)
    workers = min(check_concurrency(max_concurrency), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocireg-inspect") as executor:
        futures = [executor.submit(function, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


class SharedPool:
    """One bounded set of worker threads that several fan-outs share (the repositories of one prune run).

    Nesting :func:`map_bounded` (a pool of repositories, each with a pool of
    reads) would multiply the bound: 8 repositories x 8 reads is 64 requests
    in flight. Here the reads of every *tenant* (one repository being read)
    run on the same ``max_concurrency`` workers, and each tenant may have at
    most its fair share (``workers // tenants``, at least one) queued or
    running at once, so a slow repository holds at most its share of the
    workers and the others keep moving. As tenants finish, the share of those
    still running grows: the last large repository gets every worker.

    Use as a context manager; :meth:`map` from a thread that is itself one of
    the pool's workers runs inline (a worker waiting on its own pool would
    deadlock).
    """

    def __init__(self, max_concurrency: int | None = None) -> None:
        self.workers = check_concurrency(max_concurrency)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ocireg-shared")
        self._cond = threading.Condition()
        self._tenants = 0
        self._local = threading.local()

    def __enter__(self) -> SharedPool:  # noqa: PYI034 - a final class; typing.Self needs 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (after the calls already queued)."""
        self._executor.shutdown(wait=True)

    @contextmanager
    def tenant(self) -> Iterator[None]:
        """Count the calling fan-out as one tenant while the block runs (the fair share divides by tenants)."""
        with self._cond:
            self._tenants += 1
        try:
            yield
        finally:
            with self._cond:
                self._tenants -= 1
                self._cond.notify_all()

    def share(self) -> int:
        """How many calls one tenant may have queued or running now."""
        return max(1, self.workers // max(1, self._tenants))

    def _run(self, function: Callable[[_T], _R], item: _T) -> _R:
        self._local.inside = True
        return function(item)

    def map(self, function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``[function(item) for item in items]`` on the shared workers, in input order.

        Same error rule as :func:`map_bounded`: after a failure no further
        item is started, and the error of the first failing item (in input
        order) is raised once the started calls finish.
        """
        items = list(items)
        if getattr(self._local, "inside", False) or len(items) <= 1:
            return [function(item) for item in items]
        state = {"in_flight": 0, "failed": False}

        def finished(future: Future[_R]) -> None:
            with self._cond:
                state["in_flight"] -= 1
                if future.exception() is not None:
                    state["failed"] = True
                self._cond.notify_all()

        futures: list[Future[_R]] = []
        for item in items:
            with self._cond:
                while not state["failed"] and state["in_flight"] >= self.share():
                    self._cond.wait()
                if state["failed"]:
                    break
                state["in_flight"] += 1
            future = self._executor.submit(self._run, function, item)
            future.add_done_callback(finished)
            futures.append(future)
        return [future.result() for future in futures]
