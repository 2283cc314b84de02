# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A directory as a reproducible tar+gzip stream: same tree, same bytes, same digest.

Entries are sorted by name; times are fixed at 0, owners at 0/0 with no names; only the
permission bits are kept (setuid/setgid dropped); the gzip header has no name and mtime 0.
The archive is streamed in chunks and never written to disk: it is produced once to learn its
digest (is it in the registry already?) and once more to upload, with the same bytes.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from collections.abc import Generator

from ansible_collections.ocireg.registry.plugins.module_utils._model.chunks import (
    CHUNK,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)

#: gzip level: 6 is gzip's and Go's default, a fair size/speed trade-off.
GZIP_LEVEL = 6


class _Sink:
    """A write-only file collecting bytes until taken, hashing the uncompressed tar on the way in."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: bytes are kept until taken."""

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


class _HashingWriter:
    """Passes writes to ``target`` and hashes them (the tar's own digest, for oras' annotation)."""

    def __init__(self, target: gzip.GzipFile) -> None:
        self.target = target
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


def _entries(root: str) -> list[str]:
    """Relative names of everything under ``root``, sorted by their tar name (not following links)."""
    found = []
    for current, dirs, files in os.walk(root, followlinks=False):
        rel = os.path.relpath(current, root)
        for name in dirs + files:
            found.append(os.path.normpath(os.path.join(rel, name)))
    return sorted(found, key=lambda name: name.replace(os.sep, "/"))


def _info(path: str, arcname: str, seen: dict[tuple[int, int], str]) -> tarfile.TarInfo:
    st = os.lstat(path)
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in seen:
            info.type = tarfile.LNKTYPE
            info.linkname = seen[key]
        else:
            seen[key] = arcname
            info.type = tarfile.REGTYPE
            info.size = st.st_size
    else:
        raise InvalidInputError(f"{path} is a device, socket or pipe: only files, directories and links can be "
                                "packed into an artifact")
    return info


def tar_gzip_chunks(directory: str, arcname: str) -> Generator[bytes, None, str]:
    """The reproducible tar+gzip of ``directory`` with its entries under ``arcname/``, in chunks.

    When exhausted, the generator's return value is the sha256 of the uncompressed tar.
    """
    sink = _Sink()
    compressed = gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0,  # type: ignore[arg-type]
                               compresslevel=GZIP_LEVEL)
    raw = _HashingWriter(compressed)
    archive = tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]  # noqa: SIM115 - closed below, after the last chunk
    seen: dict[tuple[int, int], str] = {}
    names = [""] + _entries(directory)
    for name in names:
        path = os.path.join(directory, name) if name else directory
        tar_name = f"{arcname}/{name.replace(os.sep, '/')}" if name else arcname
        info = _info(path, tar_name, seen)
        if info.type != tarfile.REGTYPE:
            archive.addfile(info)
        else:
            # Header, then the content in chunks, then padding: memory stays at one chunk.
            archive.addfile(info)  # without a file object: the header only, with the real size
            written = 0
            with open(path, "rb") as handle:
                while written < info.size:
                    data = handle.read(min(CHUNK, info.size - written))
                    if not data:
                        raise InvalidInputError(f"{path} shrank while it was being packed; retry when it is stable")
                    archive.fileobj.write(data)
                    written += len(data)
                    yield sink.take()
            blocks, remainder = divmod(info.size, tarfile.BLOCKSIZE)
            if remainder:
                archive.fileobj.write(tarfile.NUL * (tarfile.BLOCKSIZE - remainder))
                blocks += 1
            archive.offset += blocks * tarfile.BLOCKSIZE
        chunk = sink.take()
        if chunk:
            yield chunk
    archive.close()
    compressed.close()
    yield sink.take()
    return "sha256:" + raw.hash.hexdigest()


def measure(directory: str, arcname: str) -> tuple[str, int, str]:
    """``(digest, size, tar_digest)`` of the archive :func:`tar_gzip_chunks` produces, writing nothing."""
    digest = hashlib.sha256()
    size = 0
    generator = tar_gzip_chunks(directory, arcname)
    while True:
        try:
            chunk = next(generator)
        except StopIteration as stop:
            return "sha256:" + digest.hexdigest(), size, stop.value
        digest.update(chunk)
        size += len(chunk)
