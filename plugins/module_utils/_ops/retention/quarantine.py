# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An undo window for a prune: each deletion group is copied somewhere safe, and verified, before its DELETE.

The target is an OCI layout (``oci:PATH``), an oci-archive (``oci-archive:PATH``) or a holding
repository (``host/repository``), spelled as skopeo and regctl spell them. The copy is the copy
engine's (:func:`~.._ops.copying.image.copy_image`, byte-exact, with referrers and cosign
artifacts), so a quarantined image comes back byte-exact with ``registry_copy``:

- in a layout or archive an image is named ``REPOSITORY:TAG`` (``team/app:1.0``), the way
  ``registry_copy`` exports, so one layout holds several repositories; an image that had no tag is
  named ``REPOSITORY:untagged-<hex>``;
- in a holding repository it keeps its tags (``untagged-<hex>`` for one that had none).

After the copy every digest of the group (but a referrers fallback index, which the destination
writes for itself) is read back from the target (a HEAD in a registry, the hashed bytes in a
layout); only then may the group be deleted. A copy or check that fails raises
:class:`QuarantineError`: the executor then leaves the group in place.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.transport_ref import (
    OCI,
    OCI_ARCHIVE,
    is_local,
    join_name,
    parse_local_ref,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    PlanEntry,
)

#: Cascade relation of a referrers fallback index: the destination writes its own (its digest may differ).
_FALLBACK_INDEX = "referrers_index"
#: The name prefix of a quarantined image that had no tag.
UNTAGGED_PREFIX = "untagged-"


class QuarantineError(RegistryError):
    """The quarantine copy of a deletion group failed or could not be read back: the group must stay."""


def _copying() -> Any:
    """The copy engine and the local stores, imported on first use: every prune imports this room,
    and one without ``quarantine`` must not load them (``tests/unit/plugins/modules/test_import_lists.py``)."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying import image
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local import archive, layout
    return SimpleNamespace(MAX_CONCURRENCY=image.MAX_CONCURRENCY, CopyOptions=image.CopyOptions,
                           copy_image=image.copy_image, OciArchive=archive.OciArchive,
                           LayoutDir=layout.LayoutDir, LayoutView=layout.LayoutView)


def quarantine_names(entry: PlanEntry) -> list[str]:
    """The tags a quarantined image is stored under: its own, or ``untagged-<hex>`` when it had none."""
    if entry.tags:
        return list(entry.tags)
    return [UNTAGGED_PREFIX + entry.digest.partition(":")[2]]


def group_roots(group: Sequence[PlanEntry]) -> list[PlanEntry]:
    """The group's digests no other digest of the group owns: copied with their referrers, they bring the rest."""
    members = {entry.digest for entry in group}
    return [entry for entry in group if not members.intersection(entry.cascaded_from)]


def fallback_indexes(group: Sequence[PlanEntry]) -> set[str]:
    """Referrers fallback indexes of the group: rewritten by the destination, so not read back by digest."""
    return {c.digest for entry in group for c in entry.cascaded if c.relation == _FALLBACK_INDEX}


class Quarantine:
    """Where a prune copies each deletion group before deleting it (the ``quarantine.dest`` option).

    ``open_repository`` opens a holding repository (with the credentials for writing); a local
    target is opened here and not touched until the first copy, so check mode creates nothing.
    """

    def __init__(self, dest: str, open_repository: Callable[[Reference], Any] | None = None, *,
                 concurrency: int = 4) -> None:
        if not isinstance(dest, str) or not dest.strip():
            raise InvalidInputError("quarantine.dest is empty: give oci:PATH, oci-archive:PATH or a holding "
                                    "repository host/repository")
        self.copying = _copying()
        # The copy engine's bounds; a prune's max_concurrency may be set outside them.
        self.concurrency = max(1, min(concurrency, self.copying.MAX_CONCURRENCY))
        self.store: Any = None
        self.holding: Any = None
        if is_local(dest):
            local = parse_local_ref(dest)
            if local.transport not in (OCI, OCI_ARCHIVE):
                raise InvalidInputError(f"quarantine.dest {dest!r}: a {local.transport} cannot hold an image "
                                        "byte-exact; use oci:PATH or oci-archive:PATH")
            if local.name is not None:
                raise InvalidInputError(f"quarantine.dest {dest!r} names an image: give the layout or archive "
                                        f"alone ({local.transport}:{local.path}); images are named "
                                        "REPOSITORY:TAG inside it")
            self.text = f"{local.transport}:{local.path}"
            self.store = (self.copying.LayoutDir(local.path) if local.transport == OCI
                          else self.copying.OciArchive(local.path))
        else:
            ref = Reference.parse(dest)
            if ref.tag is not None or ref.digest is not None:
                raise InvalidInputError(f"quarantine.dest {dest!r} carries a tag or digest: give a holding "
                                        "repository host/repository; images keep their tags in it")
            if open_repository is None:
                raise InvalidInputError("a holding repository needs a way to open it")
            self.ref = ref
            self.text = f"{ref.registry}/{ref.repository}"
            self._open = open_repository

    def check_not_pruned(self, host: str, names: Sequence[str]) -> None:
        """Refuse a holding repository that this run prunes: its DELETEs would remove the quarantined copies too."""
        if self.local or self.ref.registry != host or self.ref.repository not in names:
            return
        raise InvalidInputError(f"quarantine.dest {self.text} is a repository this run prunes, so deleting an image "
                                "would delete its quarantined copy too: give a holding repository outside "
                                "repository/repositories, exclude it (a catalog glob such as '*' selects it too: "
                                f"exclude_repositories: ['{self.ref.repository}']), or a layout")

    @property
    def local(self) -> bool:
        """True for a layout or an archive, False for a holding repository."""
        return self.store is not None

    def where(self, repository: str, entry: PlanEntry, named: bool) -> str:
        """How the result names a quarantined digest: by name for a group's root, else by digest."""
        if named:
            tag = quarantine_names(entry)[0]
            return f"{self.text}:{join_name(repository, tag)}" if self.local else f"{self.text}:{tag}"
        return f"{self.text}@{entry.digest}"

    def planned(self, repository: str, group: Sequence[PlanEntry]) -> dict[str, str]:
        """Digest -> where it goes (what a check-mode run reports; nothing is read or written)."""
        roots = {entry.digest for entry in group_roots(group)}
        return {entry.digest: self.where(repository, entry, entry.digest in roots) for entry in group}

    def _target(self, repository: str) -> Any:
        if self.local:
            return self.copying.LayoutView(self.store, repository)
        if self.holding is None:
            self.holding = self._open(self.ref)
        return self.holding

    def keep(self, source: Any, repository: str, group: Sequence[PlanEntry]) -> dict[str, str]:
        """Copy ``group`` (of ``source``, repository path ``repository``) to the target and read it back.

        Returns digest -> where it went. Raises :class:`QuarantineError` with one line when the copy
        or the read-back fails; the caller then leaves the group in place.
        """
        options = self.copying.CopyOptions(referrers=True, concurrency=self.concurrency)
        roots = group_roots(group)
        what = ", ".join(f"{repository}:{tag}" if root.tags else f"{repository}@{root.digest}"
                         for root in roots for tag in (root.tags or ("",)))
        skip = fallback_indexes(group)
        try:
            target = self._target(repository)
            for root in roots:
                self.copying.copy_image(source, root.digest, target, quarantine_names(root), options)
            target = self._sealed(target, repository)
            missing = _unread(target, [e.digest for e in group if e.digest not in skip])
            # A member the roots' copies did not bring along (a kind of cascade the engine does not
            # follow) is copied by its digest alone, and read back once more.
            for digest in missing:
                self.copying.copy_image(source, digest, target, [],
                                        self.copying.CopyOptions(concurrency=self.concurrency))
            if missing:
                missing = _unread(self._sealed(target, repository), missing)
        except (RegistryError, OSError) as err:
            raise QuarantineError(f"the quarantine copy of {what} to {self.text} failed ({_reason(err)})") from None
        if missing:
            raise QuarantineError(f"the quarantine copy of {what} to {self.text} could not be read back: "
                                  f"{', '.join(missing)} missing there")
        return self.planned(repository, group)

    def _sealed(self, target: Any, repository: str) -> Any:
        """Write an archive out (a layout is written as it goes) and return a view that reads what is there now."""
        if self.local and self.store.finish():
            return self.copying.LayoutView(self.store, repository)
        return target


def _unread(target: Any, digests: Sequence[str]) -> list[str]:
    """The digests the target does not hold, read back by digest (a HEAD, or a layout's hashed bytes)."""
    missing = []
    for digest in digests:
        descriptor = target.resolve(digest)
        if descriptor is None or descriptor.digest != digest:
            missing.append(digest)
    return missing


def _reason(err: BaseException) -> str:
    if isinstance(err, RegistryError):
        return err.message
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err)
