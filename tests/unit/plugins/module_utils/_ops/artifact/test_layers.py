"""registry_artifact's planner (_ops/artifact/layers.py, pure): oras-shaped manifests, file targets, referrers."""
from __future__ import annotations

import json

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.safe_paths import (
    UnsafePathError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.artifact.layers import (
    TITLE,
    artifact_manifest,
    file_targets,
    newest_referrer,
)


def test_manifest_is_oras_shaped_and_titles_are_checked() -> None:
    layer = Descriptor("text/plain", "sha256:" + "a" * 64, 3, annotations={TITLE: "a.txt"})
    raw = artifact_manifest([layer], artifact_type="application/vnd.test")
    doc = json.loads(raw)
    assert doc["artifactType"] == "application/vnd.test"
    assert doc["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert artifact_manifest([layer], artifact_type="application/vnd.test") == raw
    with pytest.raises(InvalidInputError, match="same title"):
        artifact_manifest([layer, layer])
    for title in ("../x", "/etc/passwd"):
        bad = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": doc["config"], "layers": [dict(doc["layers"][0], annotations={TITLE: title})]})
        with pytest.raises(UnsafePathError):
            file_targets(parse_manifest(bad.encode()))


def test_newest_referrer() -> None:
    old = Descriptor("m", "sha256:" + "1" * 64, 1, annotations={"org.opencontainers.image.created": "2024"})
    new = Descriptor("m", "sha256:" + "2" * 64, 1, annotations={"org.opencontainers.image.created": "2025"})
    assert newest_referrer([new, old], "s", "t") is new
    with pytest.raises(InvalidInputError, match="no referrer"):
        newest_referrer([], "s", "t")
