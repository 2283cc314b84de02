# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Conversion of a copy graph's Docker-typed manifests to OCI media types (``format: oci``), pure.

A copy is byte-exact by default. Some readers take only OCI-typed images:
containers/image (skopeo, podman, buildah) looks up an OCI layout's
``index.json`` entries by name only among OCI media types, so a Docker
manifest list stored byte for byte in an ``oci-archive:`` cannot be read back
(``no descriptor found for reference``). skopeo's ``--format oci`` converts;
this converts the manifests the same way, but leaves every blob as it is
(skopeo also rewrites the config blob as an OCI image config, so its config
and manifest digests differ from ours):

* a Docker schema 2 manifest becomes an OCI image manifest: its ``mediaType``,
  its config's (``application/vnd.oci.image.config.v1+json``) and its layers'
  (gzip layers, foreign layers as non-distributable) are renamed; the config
  and layer blobs keep their bytes and digests;
* a Docker manifest list becomes an OCI index; every entry naming a converted
  manifest names the new digest, size and type (also in an OCI index);
* the new documents are serialised compactly with their key order kept, so a
  conversion is deterministic: the same source gives the same digests.

Digests of converted manifests change. Referrers (and cosign tag-scheme
artifacts) of a converted manifest name the old digest in their ``subject``
and their signatures cover it, so re-pointing them would forge them: they are
dropped, and the caller says so.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model import mediatypes as mt
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    compute_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.graph import (
    ROLE_REFERRER,
    CopyGraph,
    ManifestNode,
)

#: The names skopeo (containers/image ``manifest/oci.go``) gives Docker types in an OCI manifest.
LAYER_TYPES = {
    mt.DOCKER_LAYER: mt.OCI_LAYER_GZIP,
    mt.DOCKER_LAYER_FOREIGN: mt.OCI_LAYER_NONDISTRIBUTABLE_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": mt.OCI_LAYER,
}
DOCKER_TYPES = frozenset({mt.DOCKER_MANIFEST_V2, mt.DOCKER_MANIFEST_LIST}) | mt.SCHEMA1_TYPES


def is_docker_typed(media_type: str | None) -> bool:
    """True for a Docker manifest or manifest list (schema 1 included)."""
    return media_type in DOCKER_TYPES


@dataclass
class Conversion:
    """What a conversion changed: old digest -> new, and what it dropped."""

    #: [{"from": old digest, "to": new digest, "media_type": new type}] in push order.
    converted: list[dict[str, str]] = field(default_factory=list)
    #: Referrers left out because their subject was converted.
    dropped_referrers: list[str] = field(default_factory=list)

    @property
    def mapping(self) -> dict[str, str]:
        """Old digest -> new digest."""
        return {item["from"]: item["to"] for item in self.converted}


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _image(document: dict[str, Any], digest: str) -> dict[str, Any]:
    config = dict(document.get("config") or {})
    if config.get("mediaType") == mt.DOCKER_CONFIG:
        config["mediaType"] = mt.OCI_CONFIG
    elif config.get("mediaType") not in (mt.OCI_CONFIG, None):
        raise InvalidInputError(f"the Docker manifest {digest} has a config of type {config.get('mediaType')}, "
                                "which has no OCI counterpart: copy it without format: oci")
    layers = []
    for layer in document.get("layers") or []:
        layer = dict(layer)
        media_type = layer.get("mediaType")
        layer["mediaType"] = LAYER_TYPES.get(media_type, media_type) if isinstance(media_type, str) else media_type
        layers.append(layer)
    out = dict(document)
    out["mediaType"] = mt.OCI_MANIFEST
    out["config"] = config
    out["layers"] = layers
    return out


def _index(document: dict[str, Any], converted: dict[str, ManifestNode]) -> dict[str, Any]:
    out = dict(document)
    if out.get("mediaType") == mt.DOCKER_MANIFEST_LIST:
        out["mediaType"] = mt.OCI_INDEX
    entries = []
    for entry in document.get("manifests") or []:
        node = converted.get(str(entry.get("digest"))) if isinstance(entry, dict) else None
        if node is not None:
            entry = {**entry, "mediaType": node.media_type, "digest": node.digest, "size": node.size}
        entries.append(entry)
    out["manifests"] = entries
    return out


def _convert_node(node: ManifestNode, converted: dict[str, ManifestNode]) -> ManifestNode | None:
    """The OCI-typed node for ``node``, or None when it is OCI already and names nothing converted."""
    if node.media_type in mt.SCHEMA1_TYPES:
        raise InvalidInputError(f"{node.digest} is a Docker schema 1 manifest, which cannot be converted to OCI "
                                "(it has no config blob): copy it without format: oci")
    renames_children = any(child in converted for child in node.children)
    if node.media_type not in DOCKER_TYPES and not renames_children:
        return None
    document = json.loads(node.raw)
    if node.media_type in mt.INDEX_TYPES:
        document, media_type = _index(document, converted), mt.OCI_INDEX
    else:
        document, media_type = _image(document, node.digest), mt.OCI_MANIFEST
    raw = _encode(document)
    digest = compute_digest(raw, node.digest.partition(":")[0] or "sha256")
    children = tuple(converted[c].digest if c in converted else c for c in node.children)
    return dataclasses.replace(node, digest=digest, media_type=media_type, raw=raw, children=children,
                               present=False)


def convert_to_oci(graph: CopyGraph) -> tuple[CopyGraph, Conversion]:
    """``graph`` with every Docker-typed manifest converted to OCI media types (see the module docstring).

    Every node must carry its bytes (build the graph without skipping what the
    destination holds). The new graph's nodes are marked absent; the caller
    asks the destination about the new digests.
    """
    conversion = Conversion()
    converted: dict[str, ManifestNode] = {}
    # The walk registers a manifest after its children and before its referrers, so an index is rewritten
    # after its entries and a referrer is met after its subject.
    order = list(graph.nodes.values())
    nodes: dict[str, ManifestNode] = {}
    dropped: set[str] = set()
    for node in order:
        if node.role == ROLE_REFERRER and (node.subject in converted or node.subject in dropped):
            dropped.add(node.digest)
            conversion.dropped_referrers.append(node.digest)
            continue
        if not node.raw:
            raise InvalidInputError(f"internal error: manifest {node.digest} was not read, so it cannot be converted")
        new = _convert_node(node, converted)
        if new is None:
            nodes[node.digest] = node
            continue
        converted[node.digest] = new
        nodes[new.digest] = new
        conversion.converted.append({"from": node.digest, "to": new.digest, "media_type": new.media_type})
    blobs: dict[str, Descriptor] = {}
    for node in nodes.values():
        for blob in node.blobs:
            blobs.setdefault(blob.digest, blob)
    root = converted.get(graph.root.digest, graph.root) if graph.root is not None else None
    new_graph = dataclasses.replace(graph, root=root, nodes=nodes, blobs=blobs, notes=list(graph.notes))
    return new_graph, conversion
