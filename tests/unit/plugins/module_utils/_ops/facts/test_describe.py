"""Choosing an index child by platform (_ops/facts/describe.py), on manifests the rig's builders make."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.describe import (
    PlatformNotFoundError,
    select_child,
)

from tests.rig.images import make_multiarch


def test_select_child_matches_normalised_platforms_and_lists_the_others():
    index = make_multiarch("sel", ("linux/amd64", "linux/arm64/v8"))
    manifest = parse_manifest(index.data)
    assert select_child(manifest, "linux/arm64").digest == index.children[1].digest
    with pytest.raises(PlatformNotFoundError) as info:
        select_child(manifest, "linux/s390x")
    assert "linux/amd64, linux/arm64/v8" in str(info.value) and "set platform" in str(info.value)
