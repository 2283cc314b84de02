# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The opt-in prune lease convention, its decisions (pure): which leases count, how long to wait, what to put back.

The lease is off unless the ``prune_lease`` option is set (best once, for the whole action group, with
``module_defaults``): by default a prune writes nothing but what its plan deletes or untags, and a
writer sends no request for it.

Why a lease: Distribution has no conditional DELETE, and a manifest DELETE by digest removes every
tag on that digest, so a push landing between a prune's last read and its DELETE is lost without
a trace. A prune therefore writes a lease tag (``ocireg-prune-lease-<expiry>-<token>``,
:mod:`.._model.tag_schemes`) *before* its first read of the tags that decides a deletion, and
removes it *after* its last DELETE. A writer of this collection lists the tags once after its
own tag writes:

- no active lease listed: every tag it wrote was written before that list, so before any later
  lease PUT, so before that prune's reads: the prune sees the tags and keeps their digests
  (this needs the registry's read-after-write consistency for tag writes and the tag list);
- an active lease listed: it waits until those leases are gone (released, renewed away, or
  expired), then reads its tags back and writes again each one a prune took with it.

A lease is renewed (a new lease first, then the old one removed) before it has less than half of
its time left. A writer waits for the leases it listed, never longer than :data:`WAIT_CAP`
(:data:`LEASE_TTL` + :data:`CLOCK_SKEW`: what a killed prune's lease can count for), and says so
in a warning naming each lease and its expiry. An expired lease delays nothing; the next prune
with the lease removes it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    unique_empty_artifact,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    LEASE_ARTIFACT_TYPE,
    LEASE_EXPIRES_ANNOTATION,
    LEASE_ID_ANNOTATION,
    parse_lease_tag,
)

#: How long a lease counts (seconds) after it is written. A prune renews it before a deletion group
#: once half of it is gone, so this bounds how long a killed prune's lease delays writers.
LEASE_TTL = 60
#: Clock disagreement allowed between the prune's host (which wrote the expiry) and a writer's.
CLOCK_SKEW = 15
#: A writer never waits longer than this for leases to go (then it checks its tags anyway); the
#: bound the module documentation states (75 s).
WAIT_CAP = float(LEASE_TTL + CLOCK_SKEW)
#: Tag list polls while waiting: first interval, growth factor, longest interval (seconds).
POLL_FIRST, POLL_GROWTH, POLL_MAX = 0.05, 1.5, 2.0


def active_leases(tags: Iterable[str], now: float, skew: float = CLOCK_SKEW) -> list[str]:
    """The lease tags among ``tags`` that still count at ``now`` (unix seconds), sorted."""
    found = []
    for tag in tags:
        lease = parse_lease_tag(tag)
        if lease is not None and lease.active(now, skew):
            found.append(tag)
    return sorted(found)


def expired_leases(tags: Iterable[str], now: float, skew: float = CLOCK_SKEW) -> list[str]:
    """The lease tags among ``tags`` past their expiry (a crashed prune's): the next prune removes them."""
    found = []
    for tag in tags:
        lease = parse_lease_tag(tag)
        if lease is not None and not lease.active(now, skew):
            found.append(tag)
    return sorted(found)


def wait_deadline(leases: Iterable[str], now: float, cap: float = WAIT_CAP, skew: float = CLOCK_SKEW) -> float:
    """When a writer stops waiting for ``leases``: the last one's expiry (plus skew), at most ``cap`` from now."""
    expiries = [parse_lease_tag(tag) for tag in leases]
    latest = max((lease.expiry + skew for lease in expiries if lease is not None), default=now)
    return min(latest, now + cap)


def still_held(waited_for: Iterable[str], listed: Iterable[str], now: float, skew: float = CLOCK_SKEW) -> list[str]:
    """Which of the leases a writer waits for are still listed and still count (sorted)."""
    present = set(listed)
    return active_leases((tag for tag in waited_for if tag in present), now, skew)


def describe_leases(leases: Iterable[str]) -> str:
    """The leases named with their expiry, for a warning: ``<tag> (expires 2026-12-06T14:00:00Z)``."""
    described = []
    for tag in leases:
        lease = parse_lease_tag(tag)
        if lease is not None:
            when = datetime.fromtimestamp(lease.expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            described.append(f"{tag} (expires {when})")
    return ", ".join(described)


def needs_renewal(expiry: float, now: float, ttl: float = LEASE_TTL) -> bool:
    """True once a lease has less than half of its time left: renew before the next deletion group."""
    return expiry - now < ttl / 2


def to_restore(written: Mapping[str, str], now: Mapping[str, str | None]) -> list[str]:
    """The tags a writer must write again: written by it, and now gone (sorted).

    A tag that now points at another digest was moved by someone else after us, which is not a
    loss (the other writer's word stands); only a tag that is gone was taken by a prune's DELETE.
    """
    return sorted(tag for tag in written if now.get(tag) is None)


def lease_manifest(token: str, expiry: int) -> bytes:
    """The lease's manifest: an OCI artifact on the empty descriptor, unique by its token and expiry.

    Unique bytes give a digest no other tag shares, so deleting the lease by digest removes only
    the lease tag.
    """
    return unique_empty_artifact(LEASE_ARTIFACT_TYPE,
                                 {LEASE_ID_ANNOTATION: token, LEASE_EXPIRES_ANNOTATION: str(int(expiry))})
