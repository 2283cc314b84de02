"""Unit tests for _ops/copying/convert.py: Docker-typed manifests of a copy graph converted to OCI (format: oci).

Graphs are built with the real walker over the rig's image builders; the
converted documents are parsed with the real ``parse_manifest``.
"""
from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.convert import (
    convert_to_oci,
    is_docker_typed,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.graph import build_graph
from tests.rig import images

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def graph_of(root, *others, referrers=None):
    manifests = {}
    for content in (root, *others, *(r for rs in (referrers or {}).values() for r in rs)):
        for item in images.iter_content(content):
            manifests[item.digest] = parse_manifest(item.data, item.media_type)
    listed = referrers or {}
    return build_graph(
        manifests[root.digest], lambda d: manifests[d.digest],
        referrers=(lambda digest: [manifests[r.digest].descriptor() for r in listed.get(digest, [])])
        if referrers is not None else None,
        present=lambda _d: False)


def test_a_docker_manifest_list_becomes_an_oci_index_of_oci_manifests():
    content = images.make_multiarch("conv", docker=True)
    graph, conversion = convert_to_oci(graph_of(content))
    mapping = conversion.mapping
    assert set(mapping) == {content.digest} | {c.digest for c in content.children}
    assert graph.root.digest == mapping[content.digest] and graph.root.media_type == OCI_INDEX
    index = json.loads(graph.root.raw)
    assert index["mediaType"] == OCI_INDEX
    for entry, child in zip(index["manifests"], content.children):
        node = graph.nodes[entry["digest"]]
        assert entry["digest"] == mapping[child.digest] and entry["mediaType"] == OCI_MANIFEST
        assert entry["size"] == len(node.raw) and entry["platform"] == child.index_descriptor()["platform"]
        assert node.digest == "sha256:" + hashlib.sha256(node.raw).hexdigest()
        manifest = parse_manifest(node.raw, OCI_MANIFEST)  # a valid OCI manifest
        assert manifest.config.media_type == OCI_CONFIG and manifest.config.digest == child.config.digest
        assert [(l.digest, l.media_type) for l in manifest.layers] == [(l.digest, OCI_GZIP) for l in child.layers]
    # Blobs keep their digests; the index comes after its entries.
    assert set(graph.blobs) == {b.digest for c in content.children for b in c.blobs()}
    assert [item["from"] for item in conversion.converted][-1] == content.digest


def test_conversion_is_deterministic():
    content = images.make_multiarch("same", docker=True)
    assert convert_to_oci(graph_of(content))[1].converted == convert_to_oci(graph_of(content))[1].converted


def test_an_oci_graph_is_left_as_it_is():
    content = images.make_multiarch("oci")
    graph, conversion = convert_to_oci(graph_of(content))
    assert conversion.converted == [] and graph.root.digest == content.digest
    assert set(graph.nodes) == {content.digest} | {c.digest for c in content.children}


def test_an_oci_index_listing_docker_manifests_is_rewritten_to_name_the_new_digests():
    children = [images.make_image(f"mixed-{n}", docker=True, platform=p)
                for n, p in enumerate(("linux/amd64", "linux/arm64"))]
    content = images.make_index(children)
    graph, conversion = convert_to_oci(graph_of(content))
    assert graph.root.digest != content.digest
    assert [e["digest"] for e in json.loads(graph.root.raw)["manifests"]] == [
        conversion.mapping[c.digest] for c in children]


def test_referrers_of_converted_manifests_are_dropped_with_their_own_referrers():
    content = images.make_image("signed", docker=True)
    # A Docker manifest cannot carry subject itself, but an OCI artifact may name it as its subject.
    sbom = images.make_artifact(content)
    signature = images.make_artifact(sbom, artifact_type="application/vnd.example.sig")
    graph, conversion = convert_to_oci(graph_of(content, referrers={content.digest: [sbom],
                                                                    sbom.digest: [signature]}))
    assert conversion.dropped_referrers == [sbom.digest, signature.digest]
    assert set(graph.nodes) == {conversion.mapping[content.digest]}
    assert not {b.digest for b in sbom.blobs()} - {b.digest for b in content.blobs()} & set(graph.blobs)


def test_schema1_cannot_be_converted():
    raw = json.dumps({"schemaVersion": 1, "name": "a", "tag": "b", "architecture": "amd64",
                      "fsLayers": [], "history": []}).encode()
    manifest = parse_manifest(raw, "application/vnd.docker.distribution.manifest.v1+json")
    graph = build_graph(manifest, lambda d: None, present=lambda _d: False)
    with pytest.raises(InvalidInputError, match="schema 1"):
        convert_to_oci(graph)


@pytest.mark.parametrize(("media_type", "docker"), [
    ("application/vnd.docker.distribution.manifest.list.v2+json", True),
    ("application/vnd.docker.distribution.manifest.v2+json", True),
    (OCI_INDEX, False), (OCI_MANIFEST, False), (None, False)])
def test_is_docker_typed(media_type, docker):
    assert is_docker_typed(media_type) is docker
