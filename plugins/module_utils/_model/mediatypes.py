# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Media types of OCI and Docker manifests, configs and layers, and questions about them.

Every predicate accepts a ``Content-Type`` header value as is: parameters
(``; charset=utf-8``) and case are ignored, as distribution-spec asks clients to.
"""
from __future__ import annotations

# OCI image-spec (media-types.md)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_DESCRIPTOR = "application/vnd.oci.descriptor.v1+json"
OCI_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

# Docker image manifest v2 (schema 2 and the deprecated schema 1)
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"

#: Accept header values for fetching manifests, most preferred first. Schema 1
#: comes last so a registry only falls back to it for images that have nothing else.
MANIFEST_ACCEPT: tuple[str, ...] = (
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST_V2,
    DOCKER_MANIFEST_V1_SIGNED,
    DOCKER_MANIFEST_V1,
)

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SCHEMA1_TYPES = frozenset({DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED})
IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST_V2}) | SCHEMA1_TYPES
MANIFEST_TYPES = INDEX_TYPES | IMAGE_MANIFEST_TYPES
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
NON_DISTRIBUTABLE_LAYER_TYPES = frozenset({
    OCI_LAYER_NONDISTRIBUTABLE,
    OCI_LAYER_NONDISTRIBUTABLE_GZIP,
    OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
    DOCKER_LAYER_FOREIGN,
})
LAYER_TYPES = frozenset({OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER}) | NON_DISTRIBUTABLE_LAYER_TYPES


def base_type(media_type: str | None) -> str:
    """The bare media type of a ``Content-Type`` value: parameters dropped, lowercased, trimmed."""
    if not isinstance(media_type, str):
        return ""
    return media_type.split(";", 1)[0].strip().lower()


def is_index(media_type: str | None) -> bool:
    """True for an OCI image index or a Docker manifest list."""
    return base_type(media_type) in INDEX_TYPES


def is_image_manifest(media_type: str | None) -> bool:
    """True for a single-image manifest: OCI, Docker schema 2 or Docker schema 1."""
    return base_type(media_type) in IMAGE_MANIFEST_TYPES


def is_manifest(media_type: str | None) -> bool:
    """True for any manifest type this collection reads (index or image manifest)."""
    return base_type(media_type) in MANIFEST_TYPES


def is_schema1(media_type: str | None) -> bool:
    """True for the deprecated Docker schema 1 (signed or unsigned): read-only here."""
    return base_type(media_type) in SCHEMA1_TYPES


def is_config(media_type: str | None) -> bool:
    """True for an OCI or Docker image config."""
    return base_type(media_type) in CONFIG_TYPES


def is_layer(media_type: str | None) -> bool:
    """True for a known OCI or Docker image layer type, distributable or not."""
    return base_type(media_type) in LAYER_TYPES


def is_non_distributable(media_type: str | None) -> bool:
    """True for layers that registries may refuse to store (OCI non-distributable, Docker foreign).

    Copying skips such blobs by default: they are fetched from their ``urls`` instead.
    """
    return base_type(media_type) in NON_DISTRIBUTABLE_LAYER_TYPES
