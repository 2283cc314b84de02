# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the copy engine needs from either side of a copy: :class:`ImageStore`.

A registry repository (:class:`~.registry.Repository`) and a local layout
(:class:`~.local.layout.LayoutView`) both satisfy it. The protocol is for the type
checker only: nothing checks it at run time (no ``isinstance``, no
``runtime_checkable``), so it costs nothing on the hot path. Extras a store may
have are probed with ``getattr`` where they are used: ``local`` (a layout),
``registry`` (a registry repository: mounts within one host), ``complete`` (a
layout that can say its graph under a digest is whole) and ``store``.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
    Manifest,
)


class ImageStore(Protocol):
    """One repository's manifests, tags and blobs, as the copy engine reads and writes them."""

    name: str

    def tags(self) -> list[str]:
        """Every tag."""

    def resolve(self, reference: str) -> Descriptor | None:
        """The descriptor a tag or digest points at; None when absent."""

    def fetch_manifest(self, reference: str) -> Manifest:
        """The manifest a tag or digest points at, verified."""

    def push_manifest(self, reference: str, raw: bytes, media_type: str, *, update_referrers: bool = True) -> str:
        """Store a manifest under a tag or its digest; return its digest."""

    def blob_exists(self, digest: str) -> int | None:
        """The blob's size when present, else None."""

    def fetch_blob(self, digest: str, size: int | None = None) -> AbstractContextManager[Iterator[bytes]]:
        """A context giving the blob's chunks, verified as they stream."""

    def push_blob(self, digest: str, size: int | None, chunks: Any) -> None:
        """Store a blob from bytes, chunks, or an opener ``(offset) -> chunks``."""

    def mount_blob(self, digest: str, from_repository: str) -> bool:
        """Mount a blob from another repository of the same store; False when it could not."""

    def discard_uploads(self) -> None:
        """Cancel upload sessions left open (mounts that did not happen)."""

    def referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """The manifests whose subject is ``digest``."""
