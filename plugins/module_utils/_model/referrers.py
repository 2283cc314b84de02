# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Referrers: the pure parts of the referrers API and of its tag-schema fallback.

Registries without the OCI 1.1 referrers API (Distribution 2.8 among them)
keep the list of manifests whose ``subject`` is digest ``D`` in an image index
tagged ``<alg>-<hex>`` (distribution-spec "Referrers Tag Schema"). Clients
that push or delete such manifests maintain that index. These helpers decide
what the index should hold; :class:`~.registry.Repository` does the I/O.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
    Manifest,
)


def referrer_descriptor(manifest: Manifest) -> Descriptor:
    """How a manifest with a ``subject`` is listed among its subject's referrers.

    The spec: ``artifactType`` is the manifest's own, else (for an image
    manifest) its config's media type, and is omitted for an index without
    one; the manifest's annotations are copied.
    """
    artifact_type = manifest.artifact_type
    if not artifact_type and not manifest.is_index and manifest.config is not None:
        artifact_type = manifest.config.media_type
    return Descriptor(manifest.media_type, manifest.digest, manifest.size,
                      annotations=dict(manifest.annotations), artifact_type=artifact_type or None)


def filter_referrers(descriptors: Iterable[Descriptor], artifact_type: str | None) -> list[Descriptor]:
    """Keep the descriptors of ``artifact_type`` (all of them when it is None)."""
    return [d for d in descriptors if artifact_type is None or d.artifact_type == artifact_type]


def empty_index() -> dict[str, Any]:
    """A new, empty referrers index document."""
    return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}


def encode_index(document: Mapping[str, Any]) -> bytes:
    """The bytes pushed for a referrers index (compact, stable key order)."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")


def with_referrer(document: Mapping[str, Any], descriptor: Descriptor) -> dict[str, Any] | None:
    """``document`` plus ``descriptor``; None when it is already listed (nothing to push).

    Existing entries are kept exactly as they are, unknown fields included.
    """
    entries = list(document.get("manifests") or [])
    if any(isinstance(entry, dict) and entry.get("digest") == descriptor.digest for entry in entries):
        return None
    updated = dict(document)
    updated["manifests"] = entries + [descriptor.to_oci()]
    return updated


def without_referrer(document: Mapping[str, Any], digest: str) -> dict[str, Any] | None:
    """``document`` without entries for ``digest``; None when none was listed (nothing to push)."""
    entries = list(document.get("manifests") or [])
    kept = [entry for entry in entries if not (isinstance(entry, dict) and entry.get("digest") == digest)]
    if len(kept) == len(entries):
        return None
    updated = dict(document)
    updated["manifests"] = kept
    return updated


def fallback_refusal(subject: str, found_digest: str, is_index: bool,
                     entry_subjects: Mapping[str, str | None] | None = None) -> str | None:
    """Why the manifest found under ``subject``'s fallback tag is not its referrers index; None when it is one.

    Some registries answer a missing ``<alg>-<hex>`` tag with the manifest
    ``<alg>:<hex>`` itself (GitLab, recorded in oras-project/oras-go #1396),
    so reading the fallback tag of an index gives the subject, whose children
    would pass for its referrers. What was found is no referrers index when it
    is no index, when its digest is the subject's own, or when the entries
    that can be judged (``entry_subjects``: entry digest -> that manifest's
    ``subject`` digest, for the manifests the caller holds) all name another
    subject or none. Entries the caller does not hold are not judged.
    """
    if not is_index:
        return "it is not an index"
    if found_digest == subject:
        return "it is the subject itself (the registry resolved the tag to the digest)"
    return entries_refusal(subject, entry_subjects or {})


def entries_refusal(subject: str, entry_subjects: Mapping[str, str | None]) -> str | None:
    """Why a list of ``subject``'s referrers is not one, judged by the listed manifests; None when it may be.

    ``entry_subjects`` maps the listed manifests the caller holds to their
    ``subject`` digest (None: they have none). When some are held and none
    names ``subject``, the list is another document (an index's children).
    """
    if entry_subjects and not any(named == subject for named in entry_subjects.values()):
        return "none of its entries names it as their subject"
    return None
