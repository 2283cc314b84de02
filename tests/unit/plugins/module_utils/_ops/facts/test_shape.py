"""Result shaping of registry_manifest_info and the lookup (_ops/facts/shape.py), pure."""
from __future__ import annotations

import json

from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.options import INCLUDE_CHOICES
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.shape import (
    manifest_document,
    missing_result,
    platform_string,
    shape_config,
    shape_layers,
    shape_manifest,
)

# -- shaping -----------------------------------------------------------------------------


def test_platform_string_from_every_form():
    assert platform_string({"os": "linux", "architecture": "arm64", "variant": "v8"}) == "linux/arm64/v8"
    assert platform_string({"os": "linux", "architecture": "amd64"}) == "linux/amd64"
    assert platform_string({"os": "", "architecture": ""}) is None
    assert platform_string(None) is None
    assert platform_string("linux/amd64") == "linux/amd64"


def test_missing_result_has_every_key_empty():
    result = missing_result("r.example/app:nope", INCLUDE_CHOICES)
    assert result["exists"] is False and result["reference"] == "r.example/app:nope"
    assert result["digest"] is None and result["manifests"] == [] and result["platforms"] == []
    for key in ("config", "layers", "total_size", "referrers", "tags", "raw"):
        assert key in result
    assert "config" not in missing_result("x", ())


def test_manifest_document_is_the_exact_json():
    class Raw:
        raw = json.dumps({"schemaVersion": 2, "x": "é"}).encode()
        digest = "sha256:" + "0" * 64

    assert manifest_document(Raw()) == {"schemaVersion": 2, "x": "é"}


# -- shaping real manifests (parsed by manifest.py from bytes the rig builders make) -------

from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (  # noqa: E402
    parse_config,
    parse_manifest,
)
from tests.rig.images import make_artifact, make_image, make_index, make_multiarch  # noqa: E402


def test_shape_manifest_of_an_index_lists_children_and_skips_attestation_platforms():
    index = make_multiarch("u", ("linux/amd64", "linux/arm/v7"))
    attestation = make_image("att", platform="unknown/unknown")
    with_att = make_index([*index.children, attestation], annotations={"a": "b"})
    shaped = shape_manifest(parse_manifest(with_att.data))
    assert shaped["exists"] is True
    assert shaped["digest"] == with_att.digest and shaped["size"] == with_att.size
    assert shaped["media_type"] == "application/vnd.oci.image.index.v1+json" and shaped["schema_version"] == 2
    assert [c["platform"] for c in shaped["manifests"]] == ["linux/amd64", "linux/arm/v7", "unknown/unknown"]
    assert shaped["manifests"][0] == {"digest": index.children[0].digest, "size": index.children[0].size,
                                      "media_type": index.children[0].media_type, "platform": "linux/amd64",
                                      "annotations": {}, "artifact_type": None}
    assert shaped["platforms"] == ["linux/amd64", "linux/arm/v7"]
    assert shaped["annotations"] == {"a": "b"} and shaped["subject"] is None and shaped["index_digest"] is None


def test_shape_manifest_of_an_artifact_has_subject_and_type():
    subject = make_image("subj")
    artifact = make_artifact(subject, artifact_type="application/x.test", annotations={"k": "v"})
    shaped = shape_manifest(parse_manifest(artifact.data))
    assert shaped["artifact_type"] == "application/x.test"
    assert shaped["subject"] == {"digest": subject.digest, "media_type": subject.media_type, "size": subject.size}
    assert shaped["manifests"] == [] and shaped["platforms"] == []


def test_shape_layers_sums_stored_sizes():
    image = make_image("lay", layers=3, layer_size=300)
    layers, total = shape_layers(parse_manifest(image.data))
    assert [entry["digest"] for entry in layers] == [layer.digest for layer in image.layers]
    assert total == sum(layer.size for layer in image.layers) and total > 0


def test_shape_config_keeps_every_reported_field():
    raw = json.dumps({
        "architecture": "arm", "os": "linux", "variant": "v7", "created": "2020-01-01T00:00:00Z",
        "config": {"User": "app", "Env": ["A=1"], "Entrypoint": ["/e"], "Cmd": "serve", "WorkingDir": "/w",
                   "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}, "Labels": {"l": "v"}},
        "history": [{}, {}],
    }).encode()

    class Desc:
        digest = "sha256:" + "1" * 64

    shaped = shape_config(parse_config(raw), Desc())
    assert shaped == {"digest": Desc.digest, "architecture": "arm", "os": "linux", "variant": "v7",
                      "created": "2020-01-01T00:00:00Z", "labels": {"l": "v"}, "env": ["A=1"],
                      "entrypoint": ["/e"], "cmd": ["serve"], "user": "app", "working_dir": "/w",
                      "exposed_ports": ["443/tcp", "80/tcp"], "history_length": 2}
    assert platform_string(shaped) == "linux/arm/v7"
