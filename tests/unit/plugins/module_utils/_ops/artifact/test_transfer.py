"""registry_artifact's transfers (_ops/artifact/transfer.py) against the in-memory repository.

The fake stands in for the registry because these tests are about reproducible bytes and
what lands on disk; round trips with a real registry and oras are in tests/integration.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.safe_paths import (
    UnsafePathError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.artifact.transfer import (
    FileSpec,
    find_artifact,
    pull_artifact,
    pull_blob_file,
    push_artifact,
    push_blob_file,
)

from tests.unit.plugins.module_utils._ops.unpack_fakes import FakeRepository, sha
from tests.unit.plugins.module_utils._ops.artifact.test_pack import make_dir


def test_push_pull_round_trip_idempotent(tmp_path: Path) -> None:
    repo = FakeRepository()
    subject = repo.add_image([gzip.compress(b"", mtime=0)], tag="v1")
    src = tmp_path / "src"
    src.mkdir()
    bundle = make_dir(src)
    (src / "sbom.json").write_text('{"sbom": 1}')
    files = [FileSpec(str(src / "sbom.json"), media_type="application/json"), FileSpec(str(bundle))]
    checked = push_artifact(repo, "sbom", files, artifact_type="application/vnd.test", subject="v1",
                            check_mode=True)
    assert checked["changed"] and repo.writes == []
    pushed = push_artifact(repo, "sbom", files, artifact_type="application/vnd.test", subject="v1")
    assert pushed["digest"] == checked["digest"] and pushed["subject"] == subject
    writes = list(repo.writes)
    again = push_artifact(repo, "sbom", files, artifact_type="application/vnd.test", subject="v1")
    assert again["changed"] is False and repo.writes == writes

    found = find_artifact(repo, None, "v1", "application/vnd.test")
    assert found == pushed["digest"]
    dest = tmp_path / "out"
    assert pull_artifact(repo, found, str(dest), check_mode=True)["changed"] and not dest.exists()
    pulled = pull_artifact(repo, found, str(dest))
    assert pulled["changed"]
    assert (dest / "sbom.json").read_text() == '{"sbom": 1}'
    assert (dest / "bundle" / "sub" / "b.sh").stat().st_mode & 0o777 == 0o755
    assert os.readlink(dest / "bundle" / "link") == "a.txt"
    assert pull_artifact(repo, found, str(dest))["changed"] is False
    (dest / "sbom.json").write_text("changed locally")
    assert [f["name"] for f in pull_artifact(repo, found, str(dest))["files"] if f["changed"]] == ["sbom.json"]


def test_pull_refuses_symlinked_parent(tmp_path: Path) -> None:
    repo = FakeRepository()
    src = tmp_path / "f.txt"
    src.write_text("x")
    push_artifact(repo, "a", [FileSpec(str(src), title="sub/f.txt")], artifact_type="t")
    dest = tmp_path / "out"
    dest.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", dest / "sub")
    with pytest.raises(UnsafePathError, match="symlink"):
        pull_artifact(repo, "a", str(dest))
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_single_blobs(tmp_path: Path) -> None:
    repo = FakeRepository()
    src = tmp_path / "blob.bin"
    src.write_bytes(b"payload")
    assert push_blob_file(repo, str(src), check_mode=True)["changed"] and repo.writes == []
    pushed = push_blob_file(repo, str(src))
    assert pushed["digest"] == sha(b"payload") and push_blob_file(repo, str(src))["changed"] is False
    out = tmp_path / "copy.bin"
    assert pull_blob_file(repo, pushed["digest"], str(out))["changed"]
    assert out.read_bytes() == b"payload"
    assert pull_blob_file(repo, pushed["digest"], str(out))["changed"] is False
