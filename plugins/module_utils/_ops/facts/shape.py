# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure shapers: manifests, descriptors, configs and layers as the plain dicts modules return.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ManifestError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Platform,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Descriptor,
        ImageConfig,
        Manifest,
    )


#: The platform BuildKit gives attestation manifests inside an index.
ATTESTATION_PLATFORM = "unknown/unknown"


# -- pure: shaping -----------------------------------------------------------------------
_EMPTY_INCLUDES: dict[str, dict[str, Any]] = {
    "config": {"config": None},
    "layers": {"layers": [], "total_size": None},
    "referrers": {"referrers": []},
    "tags": {"tags": []},
    "raw": {"raw": None},
}


def platform_string(platform: Platform | Mapping[str, Any] | str | None) -> str | None:
    """``os/arch[/variant]`` for a platform (None when unknown or incomplete)."""
    if platform is None:
        return None
    if isinstance(platform, str):
        return platform or None
    if isinstance(platform, Mapping):
        os_name, arch = platform.get("os"), platform.get("architecture")
        if not os_name or not arch:
            return None
        return "/".join(str(p) for p in (os_name, arch, platform.get("variant")) if p)
    return str(platform)


def shape_descriptor(descriptor: Descriptor) -> dict[str, Any]:
    """``digest`` / ``media_type`` / ``size`` of a descriptor."""
    return {"digest": descriptor.digest, "media_type": descriptor.media_type, "size": descriptor.size}


def shape_child(descriptor: Descriptor) -> dict[str, Any]:
    """One entry of ``manifests``: an index child with its platform string."""
    return {
        **shape_descriptor(descriptor),
        "platform": platform_string(descriptor.platform),
        "annotations": dict(descriptor.annotations or {}),
        "artifact_type": descriptor.artifact_type,
    }


def shape_referrer(descriptor: Descriptor) -> dict[str, Any]:
    """One entry of ``referrers``."""
    return {
        **shape_descriptor(descriptor),
        "artifact_type": descriptor.artifact_type,
        "annotations": dict(descriptor.annotations or {}),
    }


def shape_manifest(manifest: Manifest) -> dict[str, Any]:
    """The facts every result has, read from the manifest alone (no extra request)."""
    children = list(manifest.manifests or ()) if manifest.is_index else []
    platforms: list[str] = []
    for child in children:
        text = platform_string(child.platform)
        # unknown/unknown children are build attestations (BuildKit), not images to run.
        if text and text not in platforms and not text.startswith(ATTESTATION_PLATFORM):
            platforms.append(text)
    return {
        "exists": True,
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "size": manifest.size,
        "schema_version": manifest.schema_version,
        "manifests": [shape_child(child) for child in children],
        "platforms": platforms,
        "annotations": dict(manifest.annotations or {}),
        "artifact_type": manifest.artifact_type,
        "subject": shape_descriptor(manifest.subject) if manifest.subject is not None else None,
        "index_digest": None,
    }


def shape_config(config: ImageConfig, descriptor: Descriptor | None = None) -> dict[str, Any]:
    """``config`` of a result: the runtime facts of an image config blob."""
    shaped = {
        "digest": descriptor.digest if descriptor is not None else None,
        "architecture": config.architecture,
        "os": config.os,
        "variant": getattr(config, "variant", None),
        "created": config.created,
        "labels": dict(config.labels or {}),
        "env": list(config.env or []),
        "entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
        "cmd": list(config.cmd) if config.cmd is not None else None,
        "user": config.user,
        "working_dir": config.working_dir,
        "exposed_ports": sorted(config.exposed_ports or []),
        "history_length": config.history_length,
    }
    return shaped


def shape_layers(manifest: Manifest) -> tuple[list[dict[str, Any]], int]:
    """``layers`` and ``total_size`` (sum of the layer blob sizes, as stored: compressed)."""
    layers = [shape_descriptor(layer) for layer in (manifest.layers or ())]
    return layers, sum(layer["size"] or 0 for layer in layers)


def missing_result(reference: str, include: Sequence[str] = ()) -> dict[str, Any]:
    """The result for a reference that does not exist: every key present, values empty."""
    result: dict[str, Any] = {
        "reference": reference,
        "exists": False,
        "digest": None,
        "media_type": None,
        "size": None,
        "schema_version": None,
        "manifests": [],
        "platforms": [],
        "annotations": {},
        "artifact_type": None,
        "subject": None,
        "index_digest": None,
    }
    for item in include:
        result.update(_EMPTY_INCLUDES[item])
    return result


def manifest_text(manifest: Manifest) -> str:
    """The manifest bytes as text (manifests are JSON, so UTF-8)."""
    try:
        return manifest.raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"manifest {manifest.digest} is not UTF-8 text, so it is not a JSON manifest") from None


def manifest_document(manifest: Manifest) -> dict[str, Any]:
    """The manifest JSON as data (what the lookup's ``query=manifest`` returns)."""
    return json.loads(manifest_text(manifest))
