# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reads that several operations share: a manifest that may be missing, an image config.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    NotFoundError,
    TooLargeError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    parse_config,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.mediatypes import (
    is_config,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.shape import (
    shape_config,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Descriptor,
        Manifest,
    )


#: Image configs are a few KiB (a long build history makes them tens of KiB).
#: 4 MiB is the cap Distribution and containerd put on manifests and oras-go
#: on metadata: anything bigger is not an image config, and reading it whole
#: into memory (we parse JSON) must not be open-ended.
CONFIG_SIZE_CAP = 4 * 1024 * 1024


def fetch_manifest_or_none(repo: Repository, identifier: str) -> Manifest | None:
    """The manifest at a tag or digest, or None if it (or the whole repository) does not exist."""
    try:
        return repo.fetch_manifest(identifier)
    except NotFoundError:
        return None


def fetch_config(repo: Repository, manifest: Manifest) -> dict[str, Any] | None:
    """The shaped image config of an image manifest, or None when it has none.

    Artifacts (empty or custom config types), indexes and schema 1 manifests
    have no image config. The blob is size-capped (:data:`CONFIG_SIZE_CAP`)
    and verified against its digest while it streams.
    """
    return fetch_config_of(repo, None if manifest.is_index else manifest.config)


def fetch_config_of(repo: Repository, descriptor: Descriptor | None) -> dict[str, Any] | None:
    """The shaped image config a config descriptor points at, or None when it is no image config.

    For callers that keep descriptors rather than whole manifests (retention reads thousands).
    """
    if descriptor is None or not is_config(descriptor.media_type):
        return None
    data = read_small_blob(repo, descriptor.digest, descriptor.size, CONFIG_SIZE_CAP,
                           lambda size: _config_too_large(descriptor.digest, size))
    return shape_config(parse_config(data), descriptor)


def read_small_blob(repo: Repository, digest: str, size: int | None, cap: int,
                    too_large: Callable[[int], str]) -> bytes:
    """A blob read whole into memory, verified against ``digest``: at most ``cap`` bytes.

    For blobs that are parsed, not streamed (configs, signature payloads): a size announced above
    the cap fails before the download, an unannounced one as soon as it passes the cap.
    :class:`TooLargeError` carries ``too_large(size)`` as its message.
    """
    if size is not None and size > cap:
        raise TooLargeError(too_large(size))
    data = bytearray()
    with repo.fetch_blob(digest, size=size) as chunks:
        for chunk in chunks:
            data += chunk
            if len(data) > cap:
                raise TooLargeError(too_large(len(data)))
    return bytes(data)


def _config_too_large(digest: str, size: int) -> str:
    return (
        f"image config {digest} is {size} bytes, more than the {CONFIG_SIZE_CAP // (1024 * 1024)} MiB "
        "an image config can reasonably be; leave 'config' out of include for this image"
    )
