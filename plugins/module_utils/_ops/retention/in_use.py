# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What runs, for the retention planner: ``registry_prune``'s ``in_use`` option, parsed and matched (pure).

``in_use`` lists image references (``reg/app:1.4``, ``reg/app@sha256:...``) and bare digests
(``sha256:...``, any repository). They are matched to the repositories being pruned with the
reference rules of ``docker pull`` (``docker.io``, ``index.docker.io`` and
``registry-1.docker.io`` are one registry; ``nginx`` is ``docker.io/library/nginx``; a port is
part of the host, so ``reg:5000`` and ``reg`` are two registries, as Docker has them).

Tags are resolved to digests from the snapshot the plan is made from: it already read every
tag of the repository (one GET each), so protecting what runs costs no request at all, and a
second look at the same tag a moment later would tell nothing more. A reference with a tag
*and* a digest protects the digest (what the runtime pulls).

A tag the repository no longer has is reported (``unresolved`` and one warning), and pruning
goes on: what runs under it cannot be known from the registry, and a node pulling that tag
already fails whatever the prune does. The digest a Pod actually runs
(``status.containerStatuses[].imageID``) protects it; the ``images_in_use`` filter reads it.
References to another registry, or to a repository this run does not plan, are counted and
otherwise ignored.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
    normalize_registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.workload_images import (
    parse_image,
)

#: The one line that says how to give ``in_use`` (every refusal ends with it).
IN_USE_FORM = ("in_use takes a list of image references or digests (reg/app:1.4, reg/app@sha256:..., sha256:...); "
               "turn k8s_info results, inventory variables or files into one with the "
               "ocireg.registry.images_in_use filter")


class _Snapshot(Protocol):
    """What matching needs of a repository snapshot (``retention.plan.RepositorySnapshot``)."""

    @property
    def repository(self) -> str: ...  # noqa: D102  (host/name)

    @property
    def tags(self) -> Mapping[str, str]: ...  # noqa: D102

    @property
    def manifests(self) -> Mapping[str, Any]: ...  # noqa: D102


@dataclass(frozen=True)
class InUse:
    """``in_use`` parsed: references (with a repository) and bare digests, in the order given."""

    references: tuple[Reference, ...] = ()
    digests: tuple[str, ...] = ()

    @property
    def given(self) -> int:
        """How many entries the option had."""
        return len(self.references) + len(self.digests)


def parse_in_use(value: Any) -> InUse:
    """Parse ``in_use`` (None: nothing given); raise :class:`InvalidInputError` in one line on misuse."""
    if value is None:
        return InUse()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise InvalidInputError(f"in_use is a {type(value).__name__}, not a list: {IN_USE_FORM}")
    references: list[Reference] = []
    digests: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidInputError(f"in_use[{index}] is a {type(item).__name__}, not a reference: {IN_USE_FORM}")
        try:
            parsed = parse_image(item)
        except InvalidInputError as exc:
            raise InvalidInputError(f"in_use[{index}]: {exc.message}") from None
        if isinstance(parsed, Reference):
            references.append(parsed)
        else:
            digests.append(parsed)
    return InUse(tuple(references), tuple(digests))


@dataclass
class InUseMatch:
    """``in_use`` matched to the snapshots of one run: what the planner protects, and the report."""

    #: repository (host/name) -> digest -> the references that name it (tags resolved).
    digests: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    given: int = 0
    unresolved: list[str] = field(default_factory=list)
    other_registry: int = 0
    other_repository: int = 0
    not_seen: int = 0
    #: The hosts of the references to other registries (named when nothing else matched).
    other_hosts: list[str] = field(default_factory=list)
    #: The hosts of the planned repositories.
    hosts: list[str] = field(default_factory=list)
    #: How many entries were bare digests (they name no registry).
    bare: int = 0

    @property
    def warnings(self) -> list[str]:
        """One line when some in-use tag no longer resolves, one when every reference names another registry."""
        out = []
        if self.hosts and self.other_registry and self.other_registry == self.given - self.bare:
            # Not one reference names this registry: often the same registry under another name (a mirror, an IP).
            out.append(f"in_use: none of its {self.other_registry} reference(s) names {', '.join(self.hosts)}; they "
                       f"name {', '.join(self.other_hosts[:5])}{', ...' if len(self.other_hosts) > 5 else ''}. If "
                       "workloads pull this registry under another name, give in_use the references as this run "
                       "names the registry, or its digests")
        if self.unresolved:
            out.append(f"in_use: {len(self.unresolved)} tag(s) no longer resolve in the registry, so the image that "
                       f"runs under them is unknown and not protected: {', '.join(self.unresolved)}. A node pulling "
                       "them already fails; give the digests that run (a Pod's status.containerStatuses[].imageID, "
                       "which the images_in_use filter reads) to protect them")
        return out

    def report(self) -> dict[str, Any]:
        """Plain data for the module's ``in_use`` result."""
        return {
            "references": self.given,
            "protected": sum(len(found) for found in self.digests.values()),
            "unresolved": list(self.unresolved),
            "other_registry": self.other_registry,
            "other_repository": self.other_repository,
            "not_seen": self.not_seen,
        }


def _split(repository: str) -> tuple[str, str]:
    host, _slash, name = repository.partition("/")
    return normalize_registry(host), name


def match_in_use(in_use: InUse, snapshots: Sequence[_Snapshot]) -> InUseMatch:
    """Match ``in_use`` to ``snapshots`` (pure): tags become the digests the snapshot read for them.

    A digest-referenced image the planned repository does not hold (``not_seen``) cannot be
    deleted by this run: a prune only deletes what its snapshot saw.
    """
    by_name = {_split(s.repository): s for s in snapshots}
    hosts = {host for host, _name in by_name}
    out = InUseMatch(given=in_use.given, hosts=sorted(hosts), bare=len(in_use.digests))
    other_hosts: set[str] = set()
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for reference in in_use.references:
        snapshot = by_name.get((reference.registry, reference.repository))
        if snapshot is None:
            if reference.registry in hosts:
                out.other_repository += 1
            else:
                out.other_registry += 1
                other_hosts.add(reference.registry)
            continue
        text = str(reference)
        if reference.digest is not None:
            if reference.digest in snapshot.manifests:
                found[snapshot.repository][reference.digest].add(text)
            else:
                out.not_seen += 1
        elif reference.tag is not None and reference.tag in snapshot.tags:  # parse_in_use gives every reference one
            found[snapshot.repository][snapshot.tags[reference.tag]].add(text)
        else:
            out.unresolved.append(text)
    for digest in in_use.digests:
        holders = [s for s in snapshots if digest in s.manifests]
        for snapshot in holders:
            found[snapshot.repository][digest].add(digest)
        if not holders:
            out.not_seen += 1
    out.unresolved = sorted(set(out.unresolved))
    out.other_hosts = sorted(other_hosts)
    out.digests = {repo: {d: tuple(sorted(refs)) for d, refs in sorted(by.items())} for repo, by in sorted(found.items())}
    return out
