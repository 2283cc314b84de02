"""SharedPool: one bound for many fan-outs (issue 18 phase 2: a registry's repositories read at once)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    SharedPool,
    map_bounded,
)


class Gauge:
    """Counts calls running at once, overall and per tenant."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def enter(self, key: str) -> None:
        with self.lock:
            for k in (key, "*"):
                self.now[k] = self.now.get(k, 0) + 1
                self.peak[k] = max(self.peak.get(k, 0), self.now[k])

    def leave(self, key: str) -> None:
        with self.lock:
            for k in (key, "*"):
                self.now[k] -= 1


def test_results_come_in_input_order_on_the_shared_workers() -> None:
    with SharedPool(4) as pool:
        out = map_bounded(lambda n: (time.sleep(0.001 * (n % 3)), n * n)[1], list(range(40)), pool=pool)
    assert out == [n * n for n in range(40)]


def test_many_tenants_never_exceed_the_one_bound_and_each_keeps_to_its_share() -> None:
    gauge = Gauge()

    def tenant(pool: SharedPool, name: str) -> list[int]:
        def call(n: int) -> int:
            gauge.enter(name)
            time.sleep(0.002)
            gauge.leave(name)
            return n
        with pool.tenant():
            return pool.map(call, list(range(12)))

    with SharedPool(8) as pool, ThreadPoolExecutor(8) as outer:
        results = list(outer.map(lambda i: tenant(pool, f"r{i}"), range(16)))
    assert results == [list(range(12))] * 16
    assert gauge.peak["*"] <= 8  # 8 repositories x 8 reads would be 64 without the shared bound
    # With 8 tenants at once each may have one call queued or running; the last ones grow to the whole pool.
    assert min(v for k, v in gauge.peak.items() if k != "*") == 1


def test_a_slow_tenant_does_not_stall_the_others() -> None:
    done: dict[str, float] = {}
    start = time.monotonic()

    def tenant(pool: SharedPool, name: str, delay: float) -> None:
        with pool.tenant():
            pool.map(lambda n: time.sleep(delay), list(range(6)))
        done[name] = time.monotonic() - start

    with SharedPool(4) as pool, ThreadPoolExecutor(4) as outer:
        futures = [outer.submit(tenant, pool, "slow", 0.25)] + [
            outer.submit(tenant, pool, f"fast{i}", 0.005) for i in range(3)]
        for future in futures:
            future.result()
    # The slow tenant holds at most its share (one of four workers): the fast ones finish long before it.
    assert max(done[f"fast{i}"] for i in range(3)) < 0.5 < done["slow"]


def test_the_first_failure_in_input_order_is_raised_and_later_items_are_not_started() -> None:
    started: list[int] = []

    def call(n: int) -> int:
        started.append(n)
        if n in (3, 5):
            raise ValueError(f"item {n}")
        time.sleep(0.01)
        return n

    with SharedPool(2) as pool, pool.tenant(), pool.tenant(), pytest.raises(ValueError, match="item 3"):
        pool.map(call, list(range(50)))  # two tenants: a share of one call at a time
    assert 5 not in started and len(started) < 50


def test_a_worker_that_maps_again_runs_inline_rather_than_deadlock() -> None:
    with SharedPool(1) as pool:
        assert pool.map(lambda n: sum(pool.map(lambda m: m, list(range(n)))), [3, 4]) == [3, 6]
