"""Unit tests for media type constants and predicates."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model import mediatypes as mt


def test_constants_are_the_spec_strings():
    assert mt.OCI_MANIFEST == "application/vnd.oci.image.manifest.v1+json"
    assert mt.OCI_INDEX == "application/vnd.oci.image.index.v1+json"
    assert mt.OCI_CONFIG == "application/vnd.oci.image.config.v1+json"
    assert mt.OCI_EMPTY == "application/vnd.oci.empty.v1+json"
    assert mt.OCI_LAYER_GZIP == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert mt.OCI_LAYER_ZSTD == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert mt.OCI_LAYER_NONDISTRIBUTABLE_GZIP == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    assert mt.DOCKER_MANIFEST_V2 == "application/vnd.docker.distribution.manifest.v2+json"
    assert mt.DOCKER_MANIFEST_LIST == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert mt.DOCKER_MANIFEST_V1 == "application/vnd.docker.distribution.manifest.v1+json"
    assert mt.DOCKER_MANIFEST_V1_SIGNED == "application/vnd.docker.distribution.manifest.v1+prettyjws"
    assert mt.DOCKER_CONFIG == "application/vnd.docker.container.image.v1+json"
    assert mt.DOCKER_LAYER == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert mt.DOCKER_LAYER_FOREIGN == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


def test_accept_order_prefers_indexes_then_oci_and_puts_schema1_last():
    assert mt.MANIFEST_ACCEPT == (
        mt.OCI_INDEX,
        mt.OCI_MANIFEST,
        mt.DOCKER_MANIFEST_LIST,
        mt.DOCKER_MANIFEST_V2,
        mt.DOCKER_MANIFEST_V1_SIGNED,
        mt.DOCKER_MANIFEST_V1,
    )
    assert set(mt.MANIFEST_ACCEPT) == mt.MANIFEST_TYPES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("application/vnd.oci.image.index.v1+json", mt.OCI_INDEX),
        ("Application/VND.OCI.Image.Index.v1+JSON; charset=utf-8", mt.OCI_INDEX),
        ("  application/json ;q=1", "application/json"),
        ("", ""),
        (None, ""),
        (42, ""),
    ],
)
def test_base_type_drops_parameters_and_case(value, expected):
    assert mt.base_type(value) == expected


# Each row: media type, then what is_index / is_image_manifest / is_manifest / is_schema1 /
# is_config / is_layer / is_non_distributable say about it.
TABLE = [
    (mt.OCI_INDEX, True, False, True, False, False, False, False),
    (mt.DOCKER_MANIFEST_LIST, True, False, True, False, False, False, False),
    (mt.OCI_MANIFEST, False, True, True, False, False, False, False),
    (mt.DOCKER_MANIFEST_V2, False, True, True, False, False, False, False),
    (mt.DOCKER_MANIFEST_V1, False, True, True, True, False, False, False),
    (mt.DOCKER_MANIFEST_V1_SIGNED, False, True, True, True, False, False, False),
    (mt.OCI_CONFIG, False, False, False, False, True, False, False),
    (mt.DOCKER_CONFIG, False, False, False, False, True, False, False),
    (mt.OCI_EMPTY, False, False, False, False, False, False, False),
    (mt.OCI_LAYER, False, False, False, False, False, True, False),
    (mt.OCI_LAYER_GZIP, False, False, False, False, False, True, False),
    (mt.OCI_LAYER_ZSTD, False, False, False, False, False, True, False),
    (mt.DOCKER_LAYER, False, False, False, False, False, True, False),
    (mt.OCI_LAYER_NONDISTRIBUTABLE, False, False, False, False, False, True, True),
    (mt.OCI_LAYER_NONDISTRIBUTABLE_GZIP, False, False, False, False, False, True, True),
    (mt.OCI_LAYER_NONDISTRIBUTABLE_ZSTD, False, False, False, False, False, True, True),
    (mt.DOCKER_LAYER_FOREIGN, False, False, False, False, False, True, True),
    ("application/vnd.example.sbom+json", False, False, False, False, False, False, False),
    ("application/json", False, False, False, False, False, False, False),
    (None, False, False, False, False, False, False, False),
]
PREDICATES = [
    mt.is_index, mt.is_image_manifest, mt.is_manifest, mt.is_schema1,
    mt.is_config, mt.is_layer, mt.is_non_distributable,
]


@pytest.mark.parametrize("row", TABLE, ids=lambda row: str(row[0]))
def test_predicates(row):
    media_type, *expected = row
    assert [predicate(media_type) for predicate in PREDICATES] == expected


@pytest.mark.parametrize("predicate", PREDICATES, ids=lambda p: p.__name__)
def test_predicates_ignore_parameters_and_case(predicate):
    for media_type, *_unused in TABLE[:-1]:
        assert predicate(media_type.upper() + " ; charset=utf-8") == predicate(media_type)
