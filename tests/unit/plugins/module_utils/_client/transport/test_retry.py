"""The retry policy alone: status or failure + attempt -> delay or stop (pure, no network)."""
from __future__ import annotations

from email.utils import formatdate

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.retry import (
    NO_RETRY,
    RETRY_STATUSES,
    RetryPolicy,
    full_jitter,
)

NOW = 1_800_000_000.0


def policy(**fields: object) -> RetryPolicy:
    """A policy whose jitter is the upper bound and whose clock is fixed, so delays are exact."""
    return RetryPolicy(**{"jitter": lambda high: high, "clock": lambda: NOW, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize("status", sorted(RETRY_STATUSES))
def test_retryable_statuses_back_off_exponentially_until_the_budget_is_spent(status: int) -> None:
    p = policy(retries=3, backoff=0.5, backoff_max=30.0)
    assert [p.delay_after(n, status) for n in range(4)] == [0.5, 1.0, 2.0, None]


@pytest.mark.parametrize("status", [200, 201, 301, 400, 401, 403, 404, 405, 413, 501])
def test_other_statuses_stop_at_once(status: int) -> None:
    assert policy().delay_after(0, status) is None


def test_failures_without_an_answer_back_off_like_retryable_statuses() -> None:
    p = policy(retries=2, backoff=1.0)
    assert [p.delay_after(n) for n in range(3)] == [1.0, 2.0, None]


def test_backoff_is_capped() -> None:
    p = policy(retries=10, backoff=1.0, backoff_max=5.0)
    assert [p.delay_after(n, 503) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    p = policy(retries=3, backoff=0.5, retry_after_cap=60.0)
    assert p.delay_after(0, 429, "7") == 7.0
    assert p.delay_after(0, 503, "3600") == 60.0
    assert p.delay_after(1, 503, formatdate(NOW + 30, usegmt=True)) == 30.0
    assert p.delay_after(0, 503, formatdate(NOW - 30, usegmt=True)) == 0.0
    # Garbage is ignored (the backoff applies), and the budget still stops.
    assert p.delay_after(0, 503, "soon") == 0.5
    assert p.delay_after(3, 429, "1") is None


def test_jitter_draws_from_zero_to_the_bound() -> None:
    drawn: list[float] = []
    p = policy(retries=5, backoff=1.0, jitter=lambda high: drawn.append(high) or 0.25)
    assert p.delay_after(2, 500) == 0.25
    assert drawn == [4.0]
    assert all(0.0 <= full_jitter(2.0) <= 2.0 for _attempt in range(100))


def test_no_retry_never_retries() -> None:
    assert NO_RETRY.delay_after(0) is None
    assert NO_RETRY.delay_after(0, 503, "1") is None
