# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The retry policy: given what went wrong and how often, wait how long, or stop.

A pure decision (like oras-go's ``retry.Policy``): the transport asks
:meth:`RetryPolicy.delay_after` with a status (and its ``Retry-After``) or
with ``status=None`` for a failure without an answer (connection error,
timeout, a body that broke off), and sleeps the delay it gets or stops on
``None``. Whether a request *may* be sent again (a one-shot body) is the
transport's business, not the policy's.
"""
from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass, field

#: Statuses that mean "try again later" rather than "you asked wrong".
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def full_jitter(high: float) -> float:
    """A delay drawn uniformly from ``[0, high]`` (AWS's "full jitter")."""
    return random.uniform(0.0, high)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP-date); ``None`` if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and after how long, a failed request is sent again.

    ``retries`` is the number of sends after the first. Delays are
    exponential (``backoff * 2**attempt``) with full jitter, capped at
    ``backoff_max``, so clients that failed together do not come back
    together; a server's ``Retry-After`` wins over that, capped at
    ``retry_after_cap`` so a hostile server cannot park the run.
    ``jitter`` and ``clock`` exist so tests get exact numbers.
    """

    retries: int = 3
    backoff: float = 0.5
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0
    jitter: Callable[[float], float] = field(default=full_jitter, repr=False, compare=False)
    clock: Callable[[], float] = field(default=lambda: 0.0, repr=False, compare=False)

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """How long to sleep before retry number ``attempt`` (0-based).

        A server's ``Retry-After`` wins, capped by ``retry_after_cap``;
        otherwise exponential backoff with full jitter.
        """
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return self.jitter(min(self.backoff_max, self.backoff * (2 ** attempt)))

    def delay_after(self, attempt: int, status: int | None = None, retry_after: str | None = None) -> float | None:
        """The delay before sending again after failure number ``attempt`` (0-based), or None to stop.

        ``status`` is the HTTP status of the answer, or None when there was
        no (complete) answer; a status outside :data:`RETRY_STATUSES` stops.
        ``retry_after`` is the raw ``Retry-After`` header of that answer.
        """
        if attempt >= self.retries:
            return None
        if status is None:
            return self.backoff_delay(attempt)
        if status not in RETRY_STATUSES:
            return None
        return self.backoff_delay(attempt, parse_retry_after(retry_after, self.clock()))


#: The policy of a request sent with ``retry=False``: never again.
NO_RETRY = RetryPolicy(retries=0)
