# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One ``registry_copy`` run: turn ``src`` / ``dest`` (registry references or local targets) into
copy targets and run the engine, a single copy or a mirror, in any direction.

Registry repositories come from the caller (``open_repository``: the module
builds them with the user's credentials); local targets are opened here. The
engine (:mod:`.image` for one image, :func:`..sync.run.run_mirror` for a mirror)
sees the same interface on both, so options, check mode, verification and
result shapes are the same in every direction.

Names in a layout (see :mod:`..._model.transport_ref`): an export writes
``repository:tag`` (``team/app:1.0``), so one bundle holds several
repositories; a mirror out of a bundle recreates each repository under
``dest`` (a registry host, optionally with a path prefix).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    is_attached_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.transport_ref import (
    DOCKER_ARCHIVE,
    OCI,
    REF_NAME,
    LocalRef,
    is_local,
    join_name,
    parse_local_ref,
    split_name,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
    CopyResult,
    copy_image,
    store_name,
)

if TYPE_CHECKING:  # annotations only: a single copy between registries loads neither the layout nor the mirror engine
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.layout import (
        LayoutView,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
        MirrorPair,
        MirrorResult,
        SyncOptions,
        TagPatterns,
    )

OpenRepository = Callable[[Reference, str], Any]


@dataclass
class Transfer:
    """What one run did: a single copy or a mirror, and how ``src`` / ``dest`` were understood."""

    src: str
    dest: str
    copy: CopyResult | None = None
    mirror: MirrorResult | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything was (or in check mode would be) written."""
        return bool((self.copy and self.copy.changed) or (self.mirror and self.mirror.changed))


def open_store(ref: LocalRef) -> Any:
    """The store behind a local target (nothing is read or created yet)."""
    if ref.transport == OCI:
        # pylint: disable=import-outside-toplevel
        from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.layout import (
            LayoutDir,
        )

        return LayoutDir(ref.path)
    # The archive stores (and tarfile) are imported only by a run that reads or writes an archive.
    if ref.transport == DOCKER_ARCHIVE:
        from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.docker_archive import (
            DockerArchive,
        )

        return DockerArchive(ref.path)
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.archive import (
        OciArchive,
    )

    return OciArchive(ref.path)


def _view(store: Any, repository: str | None) -> LayoutView:
    """One repository's images in a local store (the layout code is loaded only by a run with a local side)."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.layout import (
        LayoutView,
    )

    return LayoutView(store, repository)


def open_source(ref: LocalRef) -> Any:
    """The store behind a local source, which must exist: a typo in its path is named as one, not
    reported as an empty layout or a missing image."""
    if not os.path.lexists(ref.path):
        kind = "directory (an OCI layout)" if ref.transport == OCI else "file"
        raise NotFoundError(f"src {ref}: {ref.path} does not exist: no such {kind}; check the path")
    if ref.transport == OCI and not os.path.isdir(ref.path):
        raise InvalidInputError(f"src {ref}: {ref.path} is a file, not an OCI layout directory (an archive is "
                                "read with oci-archive: or docker-archive:)")
    if ref.transport != OCI and os.path.isdir(ref.path):
        raise InvalidInputError(f"src {ref}: {ref.path} is a directory, not an archive file (a layout directory "
                                "is read with oci:)")
    return open_store(ref)


def destination_tags(src_tag: str | None, dest: Reference) -> list[str]:
    """The tags to write in a registry: the destination's own, else the source's, else none (by digest)."""
    if dest.digest is not None:
        raise InvalidInputError(
            f"dest {dest} names a digest: the destination digest is always the source's, so give a "
            "repository, or a repository with a tag")
    if dest.tag is not None:
        return [dest.tag]
    return [src_tag] if src_tag is not None else []


def _plain_repository(side: str, ref: Reference) -> None:
    if ref.tag is not None or ref.digest is not None:
        raise InvalidInputError(
            f"with tags (mirror mode) {side} must be a repository without tag or digest, got {ref}; "
            "drop the tags option to copy a single image")


def _plain_local(side: str, text: str, fix: str) -> LocalRef:
    """A local side of mirror mode: the whole layout or archive, so it must not name one image."""
    local = parse_local_ref(text)
    if local.name is not None:
        raise InvalidInputError(f"with tags (mirror mode) {side} must be a layout or archive without a name, got "
                                f"{local}: {fix}")
    return local


def _only_entry(store: Any) -> tuple[LayoutView, str]:
    """A source named by its path alone: the layout must hold exactly one image (as skopeo requires)."""
    entries = [e for e in store.read_index().get("manifests", []) if isinstance(e, dict)
               and "artifactType" not in e and not _names_attachment(e)]
    if len(entries) != 1:
        names = sorted(str((e.get("annotations") or {}).get(REF_NAME, e.get("digest"))) for e in entries)
        raise InvalidInputError(
            f"{store.describe()} holds {len(entries)} images ({', '.join(names) or 'none'}): name one, "
            f"{store.describe()}:NAME, or mirror them with the tags option")
    entry = entries[0]
    name = (entry.get("annotations") or {}).get(REF_NAME)
    if isinstance(name, str):
        repository, tag = split_name(name)
        return _view(store, repository), tag
    return _view(store, None), str(entry.get("digest"))


def docker_in_layout_warning(target: LocalRef, named: Sequence[tuple[str, str]]) -> str | None:
    """The warning for Docker-typed images stored byte for byte in an OCI layout; None when there are none.

    ``named`` is (name in the layout, media type) per image written. containers/image finds an
    ``index.json`` entry by name only among OCI media types (skopeo 1.9 to 1.18 answer ``no descriptor
    found for reference``), so its readers cannot take these entries; readers that keep bytes can.
    """
    if target.transport == DOCKER_ARCHIVE:
        return None
    # Loaded here: only a run that writes a local layout asks (start-up compiles less).
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.convert import (
        is_docker_typed,
    )

    docker = [f"{name} ({media_type})" for name, media_type in named if is_docker_typed(media_type)]
    if not docker:
        return None
    return (f"{target.transport}:{target.path} holds {', '.join(docker)} with Docker media types, byte for byte "
            "(digests kept): skopeo, podman, buildah and other containers/image readers cannot read these entries "
            "(they look names up among OCI-typed entries only: 'no descriptor found for reference'); crane, "
            "regctl, oras and this collection can. Set format: oci to convert them to OCI media types (their "
            "digests change)")


def _names_attachment(entry: dict[str, Any]) -> bool:
    """True for an entry named like a cosign artifact or fallback index: it belongs to another image."""
    name = (entry.get("annotations") or {}).get(REF_NAME)
    if not isinstance(name, str):
        return False
    try:
        return is_attached_tag(split_name(name)[1])
    except InvalidInputError:
        return False


def _finish(store: Any, options: CopyOptions) -> bool:
    """Seal a local destination (an archive is written here); never in check mode."""
    return False if options.check_mode else bool(store.finish())


def registry_written_to(dest: str) -> str | None:
    """The registry host a copy to ``dest`` writes to; None for a local target (a layout or an archive)."""
    return None if is_local(dest) else Reference.parse(dest).registry


def run_transfer(src: str, dest: str, options: CopyOptions, open_repository: OpenRepository, *,
                 tag_patterns: Sequence[str] | None = None, keep_going: bool = False,
                 concurrency: int | None = None,
                 describe: Callable[[RegistryError], str] | None = None) -> Transfer:
    """Copy ``src`` to ``dest`` (or mirror with ``tag_patterns``), either side a registry or a local target.

    A mirror copies ``concurrency`` tags at a time on the mirror engine's pool (``options.concurrency``,
    blob streams per image, is then chosen by the engine); ``describe`` tells its per-tag failures
    (see :class:`~.sync.run.SyncOptions`).
    """
    if tag_patterns is not None:
        return _mirror(src, dest, options, open_repository, tag_patterns, keep_going, concurrency, describe)
    src_repository: str | None
    if is_local(src):
        src_local = parse_local_ref(src)
        src_store = open_source(src_local)
        if src_local.name is not None:
            source, src_id = _view(src_store, src_local.repository), str(src_local.tag)
        else:
            source, src_id = _only_entry(src_store)
        by_digest = src_id.startswith("sha") and ":" in src_id
        src_repository, src_tag = source.repository, (None if by_digest else src_id)
        src_text = str(src_local)
    else:
        src_ref = Reference.parse(src)
        source, src_id = open_repository(src_ref, "src"), src_ref.identifier
        src_repository, src_tag, src_text = src_ref.repository, src_ref.tag, str(src_ref)
    if is_local(dest):
        dest_local = parse_local_ref(dest)
        store = open_store(dest_local)
        if dest_local.name is not None:
            target, tags = _view(store, dest_local.repository), [str(dest_local.tag)]
        elif src_tag is not None:
            target, tags = _view(store, src_repository), [src_tag]
        else:
            raise InvalidInputError(
                f"{src} has no tag to name the image by in {dest_local}: give a name, {dest_local}:NAME "
                "(a tag, or repository:tag)")
        if dest_local.transport == DOCKER_ARCHIVE and target.repository is None:
            raise InvalidInputError(
                f"{dest_local}: a docker archive names images repository:tag (docker load needs it), not a bare "
                f"tag: write {dest_local.transport}:{dest_local.path}:REPOSITORY:{tags[0]}")
        result = copy_image(source, src_id, target, tags, options)
        if _finish(store, options):
            result.changed = True
        result.notes.extend(getattr(store, "notes", []))
        warning = docker_in_layout_warning(dest_local, [(join_name(target.repository, tag), result.media_type)
                                                        for tag in tags])
        if warning:
            result.notes.append(warning)
        return Transfer(src_text, str(dest_local), copy=result, warnings=[warning] if warning else [])
    dest_ref = Reference.parse(dest)
    tags = destination_tags(src_tag, dest_ref)
    result = copy_image(source, src_id, open_repository(dest_ref, "dest"), tags, options)
    return Transfer(src_text, str(dest_ref), copy=result)


def _layout_warnings(target: LocalRef, summary: MirrorResult, repository: str | None = None) -> list[str]:
    """The Docker-types warning for a mirror into a layout; ``repository`` names tags reported without one."""
    warning = docker_in_layout_warning(target, [(join_name(repository, name), outcome.media_type)
                                                for name, outcome in summary.tags.items()])
    return [warning] if warning else []


def _repositories(store: Any) -> list[str | None]:
    found: set[str | None] = set()
    for entry in store.read_index().get("manifests", []):
        name = (entry.get("annotations") or {}).get(REF_NAME) if isinstance(entry, dict) else None
        if isinstance(name, str):
            try:
                found.add(split_name(name)[0])
            except InvalidInputError:
                continue
    return sorted(found, key=lambda r: r or "")


def _pair(source: Any, target: Any, choice: TagPatterns, label: str = "") -> MirrorPair:
    # pylint: disable=import-outside-toplevel
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
        MirrorPair,
    )

    return MirrorPair(store_name(source), store_name(target), source, target, choice, label=label)


def _mirror(src: str, dest: str, options: CopyOptions, open_repository: OpenRepository,
            tag_patterns: Sequence[str], keep_going: bool, concurrency: int | None,
            describe: Callable[[RegistryError], str] | None) -> Transfer:
    """Every tag matching ``tag_patterns`` of a repository, or of each repository of a bundle, on the
    mirror engine: one pair per repository, one pool for all their tags."""
    # The mirror engine is loaded by a mirror only: a single copy does not pay for it.
    # pylint: disable=import-outside-toplevel
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
        DEFAULT_SYNC_CONCURRENCY,
        SyncOptions,
        TagPatterns,
    )

    choice = TagPatterns(tag_patterns, skip_referrer_tags=options.referrers)
    engine = SyncOptions(concurrency=DEFAULT_SYNC_CONCURRENCY if concurrency is None else concurrency,
                         platforms=options.platforms, referrers=options.referrers,
                         check_mode=options.check_mode, verify=options.verify, prune_lease=options.honour_leases,
                         allow_index_rewrite=options.allow_index_rewrite, to_oci=options.to_oci,
                         keep_going=keep_going, describe=describe)
    engine.check()  # before a store is opened or a request sent
    dest_store = None
    if is_local(dest):
        dest_local = _plain_local("dest", dest, "every tag keeps its own name, repository:tag")
        dest_store = open_store(dest_local)
        dest_text = str(dest_local)
    if not is_local(src):
        src_ref = Reference.parse(src)
        _plain_repository("src", src_ref)
        source = open_repository(src_ref, "src")
        if dest_store is not None:
            target = _view(dest_store, src_ref.repository)
        else:
            dest_ref = Reference.parse(dest)
            _plain_repository("dest", dest_ref)
            target, dest_text = open_repository(dest_ref, "dest"), str(dest_ref)
        summary = _run(engine, [_pair(source, target, choice)])
        if dest_store is not None and _finish(dest_store, options):
            summary.changed = True
        layout_warnings = _layout_warnings(dest_local, summary, src_ref.repository) if dest_store is not None else []
        summary.notes.extend(layout_warnings)
        return Transfer(str(src_ref), dest_text, mirror=summary, warnings=layout_warnings)

    src_local = _plain_local("src", src, "drop the name, or drop tags to copy that one image")
    src_store = open_source(src_local)
    repositories = _repositories(src_store)
    if not repositories:
        raise NotFoundError(f"{src_local} holds no named image to mirror", status=404)
    warnings: list[str] = []
    named = [r for r in repositories if r is not None]
    if dest_store is None and not named:
        dest_ref = Reference.parse(dest)
        _plain_repository("dest", dest_ref)
        summary = _run(engine, [_pair(_view(src_store, None), open_repository(dest_ref, "dest"), choice)])
        return Transfer(str(src_local), str(dest_ref), mirror=summary)
    if dest_store is None:
        dest_text = dest.rstrip("/")
        if None in repositories:
            warnings.append(
                f"{src_local} also holds images named by a bare tag; they were not restored (their repository is "
                f"unknown): copy each with src {src_local}:TAG and a dest repository")
    pairs = []
    for repository in repositories:
        if dest_store is None and repository is None:
            continue
        if dest_store is not None:
            target = _view(dest_store, repository)
        else:
            target = open_repository(Reference.parse(f"{dest_text}/{repository}"), "dest")
        pairs.append(_pair(_view(src_store, repository), target, choice,
                           label=f"{repository}:" if repository else ""))
    summary = _run(engine, pairs)
    if dest_store is not None:
        if _finish(dest_store, options):
            summary.changed = True
        warnings.extend(_layout_warnings(dest_local, summary))
    summary.notes.extend(warnings)
    return Transfer(str(src_local), dest_text, mirror=summary, warnings=warnings)


def _run(options: SyncOptions, pairs: list[MirrorPair]) -> MirrorResult:
    """The engine over ``pairs``; a source that cannot be listed fails the task as a single copy would,
    its error carrying the mirror's result keys (``partial``), which ``select`` and ``mirror_spec`` return."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
        run_mirror,
    )

    summary = run_mirror(pairs, options)
    if summary.errors:
        error = summary.errors[0]
        error.partial = summary.partial()
        raise error
    return summary
