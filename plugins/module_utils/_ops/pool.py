# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A bounded thread pool shared by operations that fan out requests.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    pass


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


def map_bounded(function: Callable[[_T], _R], items: Sequence[_T], max_concurrency: int | None = None) -> list[_R]:
    """``[function(item) for item in items]`` on at most ``max_concurrency`` threads, in input order.

    If calls fail, the error of the first failing item (in input order) is
    raised after the running calls finish; calls not yet started are dropped.
    """
    workers = min(check_concurrency(max_concurrency), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocireg-inspect") as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
