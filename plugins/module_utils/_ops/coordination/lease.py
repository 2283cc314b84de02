# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The prune lease's reads and writes: :class:`PruneLease` (held by a prune), :func:`honour_leases` (writers).

The convention and why it closes the prune-versus-push window for this collection's own writers
are in :mod:`.plan` and docs/guide_parallel.md. Cost: a prune that deletes writes the lease and
deletes it (2 writes) and lists the tags twice (expired leases to clear; the released lease really
gone); a writer lists the tags once per repository after its tag writes, and only when it sees a
lease does it wait and read its tags back.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    NotFoundError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    EMPTY_DESCRIPTOR,
    EMPTY_JSON,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    lease_tag,
    parse_lease_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.plan import (
    LEASE_TTL,
    POLL_FIRST,
    POLL_GROWTH,
    POLL_MAX,
    WAIT_CAP,
    active_leases,
    describe_leases,
    expired_leases,
    lease_manifest,
    needs_renewal,
    still_held,
    to_restore,
    wait_deadline,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.written import (
    Written,
)

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )


#: Rounds of :meth:`PruneLease.release` (delete, then see the tag gone) before the lease is left to expire.
RELEASE_ROUNDS = 5


class PruneLease:
    """A prune's hold on one repository: :meth:`acquire` before its first read that decides a
    deletion, :meth:`keep_alive` before each deletion group, :meth:`release` after its last DELETE."""

    def __init__(self, repo: Repository, *, ttl: float = LEASE_TTL, clock: Callable[[], float] = time.time) -> None:
        self.repo = repo
        self.ttl = ttl
        self.clock = clock
        self.tag: str | None = None
        self.digest: str | None = None
        self.expiry = 0
        #: Expired leases (crashed prunes') this one removed.
        self.cleared: list[str] = []

    def _write(self) -> tuple[str, str, int]:
        expiry = int(self.clock() + self.ttl) + 1
        token = secrets.token_hex(8)
        tag = lease_tag(expiry, token)
        digest = self.repo.push_manifest(tag, lease_manifest(token, expiry), mt.OCI_MANIFEST, update_referrers=False)
        return tag, digest, expiry

    def acquire(self) -> None:
        """Write the lease (the empty blob first, when missing), then clear expired leases of crashed prunes."""
        if self.repo.blob_exists(EMPTY_DESCRIPTOR.digest) is None:
            self.repo.push_blob(EMPTY_DESCRIPTOR.digest, len(EMPTY_JSON), EMPTY_JSON)
        self.tag, self.digest, self.expiry = self._write()
        # Clearing crashed prunes' leases is housekeeping: a failure here must not lose track of
        # the lease just written (the caller would then never remove it).
        try:
            self.cleared.extend(clear_expired_leases(self.repo, self.clock))
        except RegistryError:
            pass

    def keep_alive(self) -> bool:
        """Renew the lease when half of it is gone (new lease first, then the old one removed); True if renewed.

        After a renewal a writer that waited for the old lease may have read its tags back already,
        so the next deletion group must read every tag again (the caller does).
        """
        if self.digest is None or not needs_renewal(self.expiry, self.clock(), self.ttl):
            return False
        old = self.digest
        self.tag, self.digest, self.expiry = self._write()
        _delete_digest(self.repo, old)
        return True

    def release(self) -> None:
        """Delete the lease manifest by its digest (unique, so only the lease tag goes), and see the tag go.

        Distribution 2.8 removes the manifest before it walks the tags to untag; a push rewriting
        another tag's link at that moment fails the walk, and the lease tag stays listed, pointing
        at nothing (measured: 1 prune in 12 under the raw pushers of bench/races.py).
        So the tag list is read once more, and a lease tag still listed is written again and deleted
        again. (Writers also treat a listed lease that does not resolve as gone.)
        """
        if self.digest is None or self.tag is None:
            return
        tag, digest = self.tag, self.digest
        for _round in range(RELEASE_ROUNDS):
            _delete_digest(self.repo, digest)
            try:
                if tag not in self.repo.tags():
                    break
            except NotFoundError:
                break
            token = parse_lease_tag(tag)
            if token is None:  # cannot happen: the tag was made by lease_tag
                break
            self.repo.push_manifest(tag, lease_manifest(token.token, token.expiry), mt.OCI_MANIFEST,
                                    update_referrers=False)
        self.tag = self.digest = None


def clear_expired_leases(repo: Repository, clock: Callable[[], float] = time.time) -> list[str]:
    """Remove the leases of crashed prunes (past their expiry) from ``repo``; the tags removed.

    One tag list, then a HEAD and a DELETE per expired lease: what a prune with the lease on sends
    even when it has nothing to delete, so a crashed run's lease never outlives the next such prune.
    """
    cleared = []
    for tag in expired_leases(repo.tags(), clock()):
        if _delete_by_tag(repo, tag):
            cleared.append(tag)
    return cleared


def _delete_digest(repo: Repository, digest: str) -> None:
    """DELETE a lease manifest by digest; gone already is fine.

    Distribution answers a manifest DELETE that reads a tag link a concurrent push is rewriting
    with 400 ``DIGEST_INVALID`` (docs/guide_parallel.md): with pushes running, a lease would be left
    behind now and then. The client's relink retry sends it again; the lease's digest is unique, so
    the retry can only ever remove the lease.
    """
    repo.delete_manifest(digest, missing_ok=True, relink_retry=True)  # already gone counts as removed


def _delete_by_tag(repo: Repository, tag: str) -> bool:
    descriptor = repo.resolve(tag)
    if descriptor is None:
        return False
    _delete_digest(repo, descriptor.digest)
    return True


@dataclass
class LeaseReport:
    """What :func:`honour_leases` saw and did."""

    #: Active leases listed after the writes (empty: nothing else was read or waited for).
    leases: list[str] = field(default_factory=list)
    waited: float = 0.0
    #: Tags a prune took with a DELETE, written again from the bytes held.
    restored: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def honour_leases(repo: Repository, written: Sequence[Written], *, clock: Callable[[], float] = time.time,
                  sleep: Callable[[float], None] = time.sleep, cap: float = WAIT_CAP) -> LeaseReport:
    """After a writer's tag writes in ``repo``: list the tags once; if a prune holds a lease, wait, then restore.

    Call it once per repository, after the writer's last tag write. It never raises: the writes
    it follows stuck, so a registry error here (the list, a read-back, a restoring write) becomes a
    warning that says what could not be checked or written again.
    """
    report = LeaseReport()
    if not written:
        return report
    try:
        _honour(repo, written, report, clock, sleep, cap)
    except RegistryError as err:
        report.warnings.append(f"the check for a concurrent prune's lease in {repo.name} failed ({err}); the tags "
                               "written may have been removed by a prune running now: read them back")
    return report


def _honour(repo: Repository, written: Sequence[Written], report: LeaseReport, clock: Callable[[], float],
            sleep: Callable[[float], None], cap: float) -> None:
    try:
        listed = repo.tags()
    except NotFoundError:
        listed = []
    # A lease tag whose manifest is gone was released (see PruneLease.release): not a lease.
    report.leases = [tag for tag in active_leases(listed, clock()) if repo.resolve(tag) is not None]
    if not report.leases:
        return
    started = clock()
    deadline = wait_deadline(report.leases, started, cap)
    interval = POLL_FIRST
    held = list(report.leases)
    while held and clock() < deadline:
        sleep(min(interval, max(0.0, deadline - clock())))
        interval = min(interval * POLL_GROWTH, POLL_MAX)
        try:
            held = [tag for tag in still_held(held, repo.tags(), clock()) if repo.resolve(tag) is not None]
        except NotFoundError:
            held = []
    report.waited = clock() - started
    if held:
        report.warnings.append(
            f"waited {report.waited:.0f} s (the most a writer waits, prune_lease) for the prune lease "
            f"{describe_leases(held)} in {repo.name}, and it is still there: the tags written were checked now, and "
            "a prune deleting after this could still take them; run the task again after the prune")
    else:
        report.warnings.append(
            f"waited {report.waited:.1f} s for a concurrent prune's lease {describe_leases(report.leases)} in "
            f"{repo.name} to go (prune_lease), then checked the tags written")
    now = {}
    for item in written:
        descriptor = repo.resolve(item.tag)
        now[item.tag] = None if descriptor is None else descriptor.digest
    by_tag = {item.tag: item for item in written}
    for tag in to_restore({item.tag: item.digest for item in written}, now):
        item = by_tag[tag]
        try:
            for digest, raw, media_type in item.children:
                if repo.resolve(digest) is None:
                    repo.push_manifest(digest, raw, media_type)
            repo.push_manifest(tag, item.raw, item.media_type)
        except RegistryError as err:
            report.warnings.append(f"tag {tag} ({item.digest}) was removed by a concurrent prune and could not be "
                                   f"written again: {err}")
            continue
        report.restored.append(tag)
    if report.restored:
        report.warnings.append(
            f"a concurrent prune removed {', '.join(report.restored)} from {repo.name} after they were written; "
            "they were written again (restored_after_prune)")
