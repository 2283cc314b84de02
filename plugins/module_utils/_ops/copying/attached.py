# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cosign tag-scheme artifacts that travel with an image: ``sha256-<hex>.sig``, ``.att``, ``.sbom``.

The copy engine moves OCI 1.1 referrers by walking the graph (:mod:`.graph`); cosign's own
artifacts are not referrers (nothing in them names the image; only the tag does), so with
``referrers`` the engine calls :func:`copy_attached` for every manifest of the copied graph.

Merging, not overwriting: cosign appends one layer per signature to the ``.sig`` manifest, so the
destination may already hold signatures the source lacks (a mirror signed again, a second
signer). When both sides hold a different manifest under the tag, the destination gets the union
(its own layers first, :func:`~.graph.merge_attached`), which has a new digest by nature; when the
destination already holds every layer, nothing is written.

Local layouts store them like skopeo and oras do, as named entries ``repository:sha256-<hex>.sig``,
so they travel in a bundle; a docker archive cannot hold them (a note says so).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    compute_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ManifestError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
    Manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    COSIGN_KINDS,
    cosign_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.graph import (
    merge_attached,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    read_small_blob,
)

#: Subjects examined per copy (the graph's manifests, then the attachments' own attachments, such
#: as the ``.sig`` of an ``.sbom``): anyone who can push can add tags, and the walk must stay bounded.
MAX_SUBJECTS = 1024
#: cosign configs list one diff_id per signature: a few KiB.
CONFIG_CAP = 1024 * 1024

if TYPE_CHECKING:  # a protocol for the type checker only
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.store import (
        ImageStore,
    )

PlaceBlobs = Callable[[Sequence[Descriptor]], None]


def copy_attached(src: ImageStore, dest: ImageStore, subjects: Sequence[str], check_mode: bool, result: Any,
                  place_blobs: PlaceBlobs) -> None:
    """Copy (or merge in) the cosign artifacts of every digest in ``subjects`` from ``src`` to ``dest``.

    ``place_blobs`` makes blobs present at ``dest`` (the engine's streamed, verified transfer,
    which counts them in ``result``); this function pushes the manifests under their tags and
    records one entry per artifact in ``result.attached``: ``{tag, digest, action}`` with action
    ``copied``, ``merged`` or ``present`` (the destination already had every layer). In check mode
    nothing is written and the actions are what a run would do.
    """
    if not getattr(getattr(dest, "store", None), "holds_artifacts", True):
        result.notes.append("cosign signatures, attestations and SBOMs were not copied: a docker archive cannot "
                            "hold them")
        return
    queue = list(dict.fromkeys(subjects))
    seen = set(queue)
    while queue:
        subject = queue.pop(0)
        for suffix in COSIGN_KINDS:
            tag = cosign_tag(subject, suffix)
            found = src.resolve(tag) if tag is not None else None
            if tag is None or found is None:
                continue
            manifest = src.fetch_manifest(found.digest)
            action, digest = _place(src, dest, tag, manifest, check_mode, place_blobs)
            result.attached.append({"tag": tag, "digest": digest, "action": action})
            if action != "present":
                result.changed = True
                result.copied_digests.manifests.add(digest)
            if manifest.digest not in seen and len(seen) < MAX_SUBJECTS:
                seen.add(manifest.digest)
                queue.append(manifest.digest)  # a signed attachment: cosign sign --attachment sbom


def _place(src: Any, dest: Any, tag: str, manifest: Manifest, check_mode: bool,
           place_blobs: PlaceBlobs) -> tuple[str, str]:
    """Put ``manifest`` under ``tag`` at ``dest``, merging with what is there; return (action, digest after)."""
    if manifest.is_index:
        raise ManifestError(f"{tag} in the source is an index; cosign attachments are image manifests")
    there = dest.resolve(tag)
    if there is not None and there.digest == manifest.digest:
        return "present", manifest.digest
    if there is None:
        place_blobs(manifest.blobs())
        if not check_mode:
            dest.push_manifest(tag, manifest.raw, manifest.media_type)
        return "copied", manifest.digest
    current = dest.fetch_manifest(there.digest)
    merged = merge_attached(current, manifest, _config(dest, current), _config(src, manifest))
    if merged is None:
        return "present", current.digest
    place_blobs(merged.new_layers)
    if not check_mode:
        if merged.config is not None:
            dest.push_blob(compute_digest(merged.config), len(merged.config), merged.config)
        dest.push_manifest(tag, merged.raw, merged.media_type)
    return "merged", compute_digest(merged.raw)


def _config(repo: Any, manifest: Manifest) -> bytes | None:
    config = manifest.config
    if config is None:
        return None
    return read_small_blob(repo, config.digest, config.size, CONFIG_CAP,
                           lambda size: f"the config {config.digest} of a cosign attachment is {size} bytes")
