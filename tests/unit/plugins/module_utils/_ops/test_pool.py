"""The bounded pool (_ops/pool.py): the max_concurrency check, map_bounded, and SharedPool, one bound for
many fan-outs (a registry's repositories read at once)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    DEFAULT_MAX_CONCURRENCY,
    MAX_CONCURRENCY_LIMIT,
    SharedPool,
    check_concurrency,
    map_bounded,
)


class Gauge:
    """Counts calls running at once, overall (``*``) and per tenant, and lets a test wait for a count."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def enter(self, key: str) -> None:
        with self.changed:
            for k in (key, "*"):
                self.now[k] = self.now.get(k, 0) + 1
                self.peak[k] = max(self.peak.get(k, 0), self.now[k])
            self.changed.notify_all()

    def leave(self, key: str) -> None:
        with self.changed:
            for k in (key, "*"):
                self.now[k] -= 1
            self.changed.notify_all()

    def running_when(self, total: int) -> dict[str, int]:
        """Block until ``total`` calls run at once; what runs then, per tenant and overall."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.now.get("*") == total, timeout=30), (
                f"never {total} calls at once: {self.now}")
            return dict(self.now)


def test_results_come_in_input_order_on_the_shared_workers() -> None:
    # Each call waits until the next one has finished, so they complete in reverse input order.
    finished = [threading.Event() for _n in range(8)]

    def call(n: int) -> int:
        if n + 1 < len(finished):
            assert finished[n + 1].wait(30), f"call {n + 1} never finished"
        finished[n].set()
        return n * n

    with SharedPool(8) as pool:
        out = map_bounded(call, list(range(8)), pool=pool)
    assert out == [n * n for n in range(8)]


def test_many_tenants_never_exceed_the_one_bound_and_each_keeps_to_its_share() -> None:
    gauge = Gauge()
    gate = threading.Event()
    tenants = 4
    registered = threading.Barrier(tenants)

    def tenant(pool: SharedPool, name: str) -> list[int]:
        def call(n: int) -> int:
            gauge.enter(name)
            try:
                assert gate.wait(30), "the gate never opened"
            finally:
                gauge.leave(name)
            return n
        with pool.tenant():
            registered.wait(30)  # every tenant counts before any asks for its share: 8 // 4 = 2
            return pool.map(call, list(range(12)))

    with SharedPool(8) as pool, ThreadPoolExecutor(tenants) as outer:
        futures = [outer.submit(tenant, pool, f"r{i}") for i in range(tenants)]
        busy = gauge.running_when(8)  # every worker holds a call that waits at the gate
        gate.set()
        results = [future.result(timeout=30) for future in futures]
    # Each tenant holds exactly its share of the workers; without shares the first would hold all eight.
    assert busy == {"*": 8, **{f"r{i}": 2 for i in range(tenants)}}
    assert results == [list(range(12))] * tenants
    assert gauge.peak["*"] == 8  # 4 repositories x 8 reads would be 32 without the shared bound


def test_a_slow_tenant_does_not_stall_the_others() -> None:
    slow_gate = threading.Event()
    registered = threading.Barrier(4)

    def tenant(pool: SharedPool, name: str) -> str:
        def call(n: int) -> None:
            if name == "slow":
                assert slow_gate.wait(30), "the slow tenant was never released"
        with pool.tenant():
            registered.wait(30)  # four tenants on four workers: a share of one each
            pool.map(call, list(range(6)))
        return name

    with SharedPool(4) as pool, ThreadPoolExecutor(4) as outer:
        slow = outer.submit(tenant, pool, "slow")
        fast = [outer.submit(tenant, pool, f"fast{i}") for i in range(3)]
        try:
            # The slow tenant's calls block until released, and it holds at most its share (one worker):
            # the fast tenants finish all their calls meanwhile. Were it to hold all four, they never would.
            assert [future.result(timeout=30) for future in fast] == ["fast0", "fast1", "fast2"]
            assert not slow.done()
        finally:
            slow_gate.set()
        assert slow.result(timeout=30) == "slow"


def test_the_first_failure_in_input_order_is_raised_and_later_items_are_not_started() -> None:
    started: list[int] = []

    def call(n: int) -> int:
        started.append(n)
        if n in (3, 5):
            raise ValueError(f"item {n}")
        return n

    with SharedPool(2) as pool, pool.tenant(), pool.tenant(), pytest.raises(ValueError, match="item 3"):
        pool.map(call, list(range(50)))  # two tenants: a share of one call at a time
    assert started == [0, 1, 2, 3]  # one at a time, and nothing after the failure


def test_a_worker_that_maps_again_runs_inline_rather_than_deadlock() -> None:
    with SharedPool(1) as pool:
        assert pool.map(lambda n: sum(pool.map(lambda m: m, list(range(n)))), [3, 4]) == [3, 6]


# -- max_concurrency and map_bounded ------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, MAX_CONCURRENCY_LIMIT + 1, True, 2.5, "8"])
def test_concurrency_outside_limits_is_refused(value):
    with pytest.raises(InvalidInputError, match="max_concurrency"):
        check_concurrency(value)


def test_concurrency_default_and_valid_values():
    assert check_concurrency(None) == DEFAULT_MAX_CONCURRENCY
    assert check_concurrency(1) == 1


def test_map_bounded_keeps_input_order_and_raises_the_first_failure():
    assert map_bounded(lambda x: x * 2, list(range(50)), 4) == [x * 2 for x in range(50)]

    def boom(x):
        if x in (3, 7):
            raise ValueError(f"item {x}")
        return x

    with pytest.raises(ValueError, match="item 3"):
        map_bounded(boom, list(range(10)), 4)


def test_map_bounded_never_runs_more_than_the_bound_at_once():
    import threading

    lock = threading.Lock()
    running = {"now": 0, "peak": 0}
    release = threading.Event()

    def work(_index):
        with lock:
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
            if running["now"] == 3:
                release.set()
        release.wait()  # hold the first workers until the pool is full
        with lock:
            running["now"] -= 1

    map_bounded(work, list(range(20)), 3)
    assert running["peak"] == 3
