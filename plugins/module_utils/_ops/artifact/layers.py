# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The artifact manifest, both ways: pure.

Pushing: :func:`artifact_manifest` lays files out as oras does (image-spec 1.1 "artifact"
guidance): an OCI image manifest with ``artifactType``, the empty config unless one is given,
one layer per file titled ``org.opencontainers.image.title``, directories as tar+gzip layers
marked ``io.deis.oras.content.unpack``. No creation time is added, so the same files give the
same bytes and the same digest (oras adds one; that is why oras pushes are never idempotent).

Pulling: :func:`file_targets` turns a manifest's layers back into safe names under a directory,
and :func:`newest_referrer` picks one artifact among a subject's referrers.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    EMPTY_DESCRIPTOR,
    Descriptor,
    Manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.safe_paths import (
    name_parts,
)

TITLE = "org.opencontainers.image.title"
CREATED = "org.opencontainers.image.created"
#: oras-go's annotations on a directory packed as tar+gzip (the archive's root is the title).
UNPACK = "io.deis.oras.content.unpack"
CONTENT_DIGEST = "io.deis.oras.content.digest"
#: What oras uses when neither an artifact type nor a config is given.
UNKNOWN_ARTIFACT_TYPE = "application/vnd.unknown.artifact.v1"
#: oras' default media type for a file layer.
DEFAULT_FILE_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
DIRECTORY_MEDIA_TYPE = mt.OCI_LAYER_GZIP


@dataclass(frozen=True)
class Target:
    """One layer of an artifact as a file (or directory, ``unpack``) under the pull directory."""

    parts: tuple[str, ...]
    descriptor: Descriptor
    unpack: bool

    @property
    def name(self) -> str:
        """The relative name, ``/``-separated."""
        return "/".join(self.parts)


def file_layer(title: str, digest: str, size: int, media_type: str | None = None,
               annotations: Mapping[str, str] | None = None) -> Descriptor:
    """The layer descriptor of one file (its title checked like a name written on pull)."""
    name_parts(title, "file title")
    return Descriptor(media_type or DEFAULT_FILE_MEDIA_TYPE, digest, size,
                      annotations={**(annotations or {}), TITLE: title})


def directory_layer(title: str, digest: str, size: int, tar_digest: str,
                    annotations: Mapping[str, str] | None = None) -> Descriptor:
    """The layer descriptor of a directory packed as reproducible tar+gzip."""
    name_parts(title, "directory title")
    return Descriptor(DIRECTORY_MEDIA_TYPE, digest, size, annotations={
        **(annotations or {}), TITLE: title, UNPACK: "true", CONTENT_DIGEST: tar_digest})


def artifact_manifest(layers: Sequence[Descriptor], *, artifact_type: str | None = None,
                      config: Descriptor | None = None, annotations: Mapping[str, str] | None = None,
                      subject: Descriptor | None = None) -> bytes:
    """The manifest bytes (compact JSON, fixed key order) for these layers."""
    titles = [layer.annotations.get(TITLE) for layer in layers]
    duplicates = sorted({t for t in titles if t and titles.count(t) > 1})
    if duplicates:
        raise InvalidInputError(f"two files have the same title {duplicates[0]!r}: titles name files on pull and "
                                "must be unique")
    if config is None and not artifact_type:
        artifact_type = UNKNOWN_ARTIFACT_TYPE
    document: dict[str, object] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}
    if artifact_type:
        document["artifactType"] = artifact_type
    document["config"] = (config or EMPTY_DESCRIPTOR).to_oci()
    # An artifact without files still needs a layer (image-spec: use the empty descriptor).
    document["layers"] = [layer.to_oci() for layer in layers] or [EMPTY_DESCRIPTOR.to_oci()]
    if subject is not None:
        document["subject"] = Descriptor(subject.media_type, subject.digest, subject.size).to_oci()
    if annotations:
        document["annotations"] = dict(sorted(annotations.items()))
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def file_targets(manifest: Manifest) -> tuple[list[Target], list[str]]:
    """The titled layers of an artifact as safe targets, and the digests of untitled layers skipped.

    A title that is absolute, climbs with ``..`` or repeats another is refused before anything is written.
    """
    targets: list[Target] = []
    skipped: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for layer in manifest.layers:
        title = layer.annotations.get(TITLE)
        if not title:
            skipped.append(layer.digest)
            continue
        parts = name_parts(title, f"layer {layer.digest} title")
        if parts in seen:
            raise InvalidInputError(f"artifact {manifest.digest} has two layers titled {title!r}")
        clash = [t.name for t in targets if t.parts[:len(parts)] == parts or parts[:len(t.parts)] == t.parts]
        if clash:
            raise InvalidInputError(f"artifact {manifest.digest}: title {title!r} overlaps {clash[0]!r}")
        seen.add(parts)
        targets.append(Target(parts, layer, layer.annotations.get(UNPACK) == "true"))
    return targets, skipped


def newest_referrer(referrers: Sequence[Descriptor], subject: str, artifact_type: str) -> Descriptor:
    """The newest referrer (``org.opencontainers.image.created``, then list order); refuse an empty list."""
    if not referrers:
        raise InvalidInputError(f"{subject} has no referrer of artifact type {artifact_type}; push one first or "
                                "check artifact_type")
    ranked = sorted(enumerate(referrers), key=lambda item: (item[1].annotations.get(CREATED, ""), item[0]))
    return ranked[-1][1]
