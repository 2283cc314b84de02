"""registry_artifact's packer (_ops/artifact/pack.py): reproducible tar+gzip of a directory, streamed."""
from __future__ import annotations

import gzip
import io
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
from ansible_collections.ocireg.registry.plugins.module_utils._ops.artifact.pack import (
    measure,
    tar_gzip_chunks,
)

from tests.unit.plugins.module_utils._ops.unpack_fakes import sha


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
