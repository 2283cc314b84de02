"""registry_artifact's planner, packer and transfers against the in-memory repository.

The fake stands in for the registry because these tests are about reproducible bytes and
what lands on disk; round trips with a real registry and oras are in tests/integration.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.chunks import (
    CHUNK,
)
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
from ansible_collections.ocireg.registry.plugins.module_utils._ops.artifact.pack import (
    measure,
    tar_gzip_chunks,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.artifact.plan import (
    TITLE,
    artifact_manifest,
    file_targets,
    newest_referrer,
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


#: sha256 of the uncompressed tar of :func:`make_dir`'s tree, as ``tarfile.TarFile`` wrote it.
TAR_OF_MAKE_DIR = "sha256:ec7a9343b23290593e2a7494a9b0f88ae68732cbf0332a8f5d2b5575bbe920fa"


def make_dir(root: Path) -> Path:
    (root / "bundle" / "sub").mkdir(parents=True)
    (root / "bundle" / "a.txt").write_text("alpha")
    (root / "bundle" / "sub" / "b.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "bundle" / "sub" / "b.sh", 0o755)
    os.symlink("a.txt", root / "bundle" / "link")
    return root / "bundle"


def test_directory_archive_is_reproducible(tmp_path: Path) -> None:
    bundle = make_dir(tmp_path)
    first = measure(str(bundle), "bundle")
    os.utime(bundle / "a.txt", (1, 1))  # times do not matter
    assert measure(str(bundle), "bundle") == first
    data = b"".join(tar_gzip_chunks(str(bundle), "bundle"))
    assert sha(data) == first[0] and len(data) == first[1]
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["bundle", "bundle/a.txt", "bundle/link", "bundle/sub", "bundle/sub/b.sh"]
    assert {(m.uid, m.gid, m.mtime, m.uname) for m in members} == {(0, 0, 0, "")}
    assert members[4].mode == 0o755 and members[2].linkname == "a.txt"


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


def test_directory_tar_bytes_are_stable_across_pythons(tmp_path: Path) -> None:
    # The uncompressed tar's digest, as Python 3.11's TarFile wrote it for this tree: headers,
    # padding and end blocks are now written by hand, and must not drift with the Python version
    # (gzip bytes may vary with zlib, so the compressed digest is not pinned).
    bundle = make_dir(tmp_path)
    for path, mode in ((bundle, 0o755), (bundle / "sub", 0o755), (bundle / "a.txt", 0o644)):
        os.chmod(path, mode)  # independent of the umask
    assert measure(str(bundle), "bundle")[2] == TAR_OF_MAKE_DIR


def _big_file_bundle(tmp_path: Path) -> tuple[Path, Path]:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    big = bundle / "big.bin"
    big.write_bytes(b"x" * (3 * 1024 * 1024 + 7))
    return bundle, big


@pytest.mark.parametrize(("change", "word"), [("grow", "grew"), ("shrink", "shrank")])
def test_file_changing_while_packed_fails_clearly(tmp_path: Path, change: str, word: str) -> None:
    bundle, big = _big_file_bundle(tmp_path)
    chunks = tar_gzip_chunks(str(bundle), "bundle")
    next(chunks)  # the directory entry
    next(chunks)  # the first chunk of big.bin's content: its size is in the header already
    if change == "grow":
        with big.open("ab") as handle:
            handle.write(b"more")
    else:
        os.truncate(big, 1024)
    with pytest.raises(InvalidInputError, match=f"big.bin {word} while it was being packed"):
        list(chunks)


def test_packing_memory_is_one_chunk_per_step(tmp_path: Path) -> None:
    bundle = _big_file_bundle(tmp_path)[0]
    # Random content keeps gzip's output as large as its input: no step may hand over more than
    # about one chunk of it, whatever the file's size.
    (bundle / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    sizes = [len(chunk) for chunk in tar_gzip_chunks(str(bundle), "bundle")]
    assert sum(sizes) > 3 * 1024 * 1024
    assert max(sizes) <= CHUNK + 64 * 1024
