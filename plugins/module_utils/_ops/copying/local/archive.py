# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oci-archive: an OCI image layout in one (uncompressed) tar, as skopeo's ``oci-archive:`` transport writes it.

Reading never unpacks: the tar's headers are read once into an index of
member offsets (:class:`TarIndex`), and each blob is then read by seeking to
its bytes, hashed while it streams like any other blob.

Writing stages new blobs and the merged ``index.json`` in a directory next to
the archive (``<archive>.ocireg-partial/``, a :class:`~.layout.LayoutDir`), and
:meth:`OciArchive.finish` then writes a new tar (every member of the old
archive, the staged blobs, ``index.json`` last) to a temp file and renames it
over the archive. An interrupted export leaves the staging directory: the next
run finds the blobs it already wrote there and only adds what is missing.
"""
from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    ManifestError,
    NotFoundError,
    TooLargeError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.layout import (
    INDEX_FILE,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    MANIFEST_CAP,
    LayoutDir,
    LocalStore,
    blob_relpath,
    encode_json,
    merge_index,
    parse_index,
    replacing_file,
    write_atomic,
)

STAGING_SUFFIX = ".ocireg-partial"


@dataclass(frozen=True)
class Member:
    """Where a regular file's bytes are inside the tar."""

    offset: int
    size: int


class TarIndex:
    """Name -> :class:`Member` for the regular files of an uncompressed tar (headers only are read)."""

    def __init__(self, members: dict[str, Member]) -> None:
        self.members = members

    @classmethod
    def read(cls, path: Path, what: str) -> TarIndex:
        """Index the tar at ``path``; refuse compressed archives with a clear message."""
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic[:2] == b"\x1f\x8b" or magic == b"\x28\xb5\x2f\xfd":
            raise InvalidInputError(
                f"{what} is compressed; an oci-archive is a plain tar (skopeo writes it so): decompress it first")
        members: dict[str, Member] = {}
        try:
            with tarfile.open(path, "r:") as tar:
                for info in tar:
                    if info.isfile():
                        members[_normal(info.name)] = Member(info.offset_data, info.size)
        except tarfile.TarError as exc:
            raise ManifestError(f"{what} is not a readable tar archive ({exc})") from None
        return cls(members)


def _normal(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


class OciArchive(LocalStore):
    """An oci-archive as a layout store (the interface of :class:`~.layout.LayoutDir`)."""

    transport = "oci-archive"

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        self.staging = LayoutDir(str(self.path) + STAGING_SUFFIX)
        self._tar: TarIndex | None = None

    def _members(self) -> dict[str, Member]:
        if self._tar is None:
            if self.path.is_file():
                self._tar = TarIndex.read(self.path, self.describe())
            elif self.path.exists():
                raise InvalidInputError(f"{self.describe()}: {self.path} exists and is not a file")
            else:
                self._tar = TarIndex({})
        return self._tar.members

    # -- reading -------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True when the archive file is there."""
        return self.path.is_file()

    def read_index(self) -> dict[str, Any]:
        """The staged ``index.json`` of an unfinished write, else the archive's, else an empty index."""
        if (self.staging.path / INDEX_FILE).is_file():
            return self.staging.read_index()
        member = self._members().get(INDEX_FILE)
        if member is None:
            if self.exists() and LAYOUT_FILE not in self._members():
                raise ManifestError(f"{self.describe()} has neither index.json nor oci-layout: it is not an "
                                    "oci-archive (a docker save tar is read with docker-archive:)")
            return {"schemaVersion": 2, "manifests": []}
        if member.size > MANIFEST_CAP:
            raise TooLargeError(f"{self.describe()}: index.json is larger than {MANIFEST_CAP} bytes")
        with open(self.path, "rb") as handle:
            handle.seek(member.offset)
            return parse_index(handle.read(member.size), self.describe())

    def blob_size(self, digest: str) -> int | None:
        """The blob's length, in the archive or staged; None when absent."""
        member = self._members().get(blob_relpath(digest))
        if member is not None:
            return member.size
        return self.staging.blob_size(digest)

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[tuple[IO[bytes], int]]:
        """A file positioned at the blob's bytes inside the tar (or the staged file), and its length."""
        member = self._members().get(blob_relpath(digest))
        if member is None:
            if self.staging.blob_size(digest) is None:
                raise NotFoundError(f"{self.describe()} has no blob {digest}", status=404)
            with self.staging.open_blob(digest) as opened:
                yield opened
            return
        with open(self.path, "rb") as handle:
            handle.seek(member.offset)
            yield handle, member.size

    # -- writing -------------------------------------------------------------------------------
    def write_blob(self, digest: str, size: int | None, chunks: Iterable[bytes]) -> int:
        """Stage a blob (verified, renamed into place) for the next :meth:`finish`."""
        return self.staging.write_blob(digest, size, chunks)

    def update_index(self, named: dict[str, dict[str, Any]], unnamed: list[dict[str, Any]]) -> bool:
        """Stage the merged ``index.json``; True when it differs from what the archive holds."""
        current = self.read_index()
        merged = merge_index(current, named, unnamed)
        if merged == current:
            return False
        self.staging._prepare()  # pylint: disable=protected-access
        write_atomic(self.staging.path / INDEX_FILE, encode_json(merged))
        return True

    def finish(self) -> bool:
        """Write the new archive (old members + staged blobs, ``index.json`` last) and drop the staging directory.

        Returns True when an archive was written (nothing staged: nothing to do).
        """
        if not self.staging.path.is_dir():
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        members = self._members()
        staged = self._staged_blobs()
        index = encode_json(self.read_index())
        with replacing_file(self.path) as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, LAYOUT_FILE, encode_json(LAYOUT_VERSION))
            written = {LAYOUT_FILE, INDEX_FILE}
            if members:
                with open(self.path, "rb") as old:
                    for name, member in members.items():
                        if name in written or not name.startswith("blobs/"):
                            continue
                        old.seek(member.offset)
                        add_stream(tar, name, member.size, old)
                        written.add(name)
            for name, path in staged.items():
                if name in written:
                    continue
                with open(path, "rb") as handle:
                    add_stream(tar, name, os.fstat(handle.fileno()).st_size, handle)
                written.add(name)
            _add_bytes(tar, INDEX_FILE, index)
            tar.close()
        shutil.rmtree(self.staging.path)
        self._tar = None
        return True

    def _staged_blobs(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        root = self.staging.path / "blobs"
        if not root.is_dir():
            return found
        for algorithm in sorted(root.iterdir()):
            for blob in sorted(algorithm.iterdir()):
                if blob.is_file() and not blob.name.startswith("."):
                    found[f"blobs/{algorithm.name}/{blob.name}"] = blob
        return found


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    from io import BytesIO  # pylint: disable=import-outside-toplevel
    add_stream(tar, name, len(data), BytesIO(data))


def add_stream(tar: tarfile.TarFile, name: str, size: int, handle: IO[bytes]) -> None:
    """Append a regular file read from ``handle`` (streamed by tarfile, 16 KiB at a time)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, _Limited(handle, size))


class _Limited:
    """A file object that hands out at most ``size`` bytes (tarfile copies exactly the member size)."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self.handle = handle
        self.left = size

    def read(self, amount: int = -1) -> bytes:
        if amount < 0 or amount > self.left:
            amount = self.left
        data = self.handle.read(amount)
        self.left -= len(data)
        return data
