# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a mirror moved, counted once per digest and destination (pure, no I/O).

Tags of one repository share manifests (``1.0`` and ``1.0.1`` at one image) and layers (a base
image). Summed per tag, check mode would count a shared layer once per tag that needs it, while
the real run moves it once; and which tag moves it, and which later tags find it in place, depends
on timing. The rule here is the same for check mode and a real run, at any concurrency:

* per destination (a registry repository; a layout, whose repositories share one blob store), a
  manifest or blob counts **copied** once if any tag of the run copied it (in check mode: would
  copy it), and **mounted** once if any tag mounted it;
* it counts **already present** only if no tag of the run wrote it: it was there before the run
  (a tag that failed after writing a shared layer wrote it: :meth:`MirrorCounts.add_written`);
* bytes are the sizes of those distinct blobs.

A tag that finds in place what another tag of the run wrote therefore adds nothing, whichever of
the two ran first. A check-mode run predicts each tag against the destination as it was, and the
union of those predictions is what the real run writes.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyResult,
    Digests,
)


@dataclass
class _Destination:
    copied: Digests = field(default_factory=Digests)
    present: Digests = field(default_factory=Digests)
    mounted: set[str] = field(default_factory=set)


@dataclass
class MirrorCounts:
    """The distinct digests of a mirror, per destination; :meth:`add` each tag's copy, then read totals."""

    _destinations: dict[Hashable, _Destination] = field(default_factory=dict)

    def add(self, destination: Hashable, outcome: CopyResult) -> None:
        """Count one tag's copy into ``destination`` (any key naming where its blobs live)."""
        into = self._destinations.setdefault(destination, _Destination())
        into.copied.manifests |= outcome.copied_digests.manifests
        into.copied.blobs.update(outcome.copied_digests.blobs)
        into.present.manifests |= outcome.present_digests.manifests
        into.present.blobs.update(outcome.present_digests.blobs)
        into.mounted.update(outcome.mounted)

    def add_written(self, destination: Hashable, written: Mapping[str, tuple[str, int]],
                    manifests: Iterable[str] = ()) -> None:
        """Count the blobs the run wrote into ``destination`` (digest -> ``("copied" | "mounted", size)``)
        and the ``manifests`` it pushed there, a failed tag's among them: what a tag wrote before it
        failed (a shared layer, an index's children) was written by the run all the same."""
        into = self._destinations.setdefault(destination, _Destination())
        into.copied.manifests.update(manifests)
        for digest, (action, size) in written.items():
            if action == "mounted":
                into.mounted.add(digest)
            else:
                into.copied.blobs[digest] = size

    def copied(self) -> dict[str, int]:
        """``{manifests, blobs, bytes}`` copied, each digest once per destination."""
        return _sum(d.copied.counts() for d in self._destinations.values())

    def already_present(self) -> dict[str, int]:
        """``{manifests, blobs, bytes}`` found in place and written by no tag of the run."""
        return _sum(_before(d).counts() for d in self._destinations.values())


def _before(destination: _Destination) -> Digests:
    written = destination.copied.manifests | destination.copied.blobs.keys() | destination.mounted
    return Digests({d for d in destination.present.manifests if d not in written},
                   {d: size for d, size in destination.present.blobs.items() if d not in written})


def _sum(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total = {"manifests": 0, "blobs": 0, "bytes": 0}
    for each in counts:
        for key in total:
            total[key] += each[key]
    return total


def distinct_bytes(outcomes: Iterable[CopyResult], written: Mapping[str, tuple[str, int]] | None = None) -> int:
    """Bytes of the distinct blobs that ``outcomes`` (copies into one destination) copied, and of the
    blobs ``written`` there (see :meth:`MirrorCounts.add_written`) by copies that then failed."""
    blobs: dict[str, int] = {d: size for d, (action, size) in (written or {}).items() if action != "mounted"}
    for outcome in outcomes:
        blobs.update(outcome.copied_digests.blobs)
    return sum(blobs.values())
