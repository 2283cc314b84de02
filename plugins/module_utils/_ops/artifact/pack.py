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


def _header(info: tarfile.TarInfo) -> bytes:
    """The PAX header block(s) of one entry, as ``tarfile`` itself encodes them."""
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def _padding(size: int) -> bytes:
    """NUL bytes that fill the last 512-byte block of ``size`` bytes of content."""
    remainder = size % tarfile.BLOCKSIZE
    return tarfile.NUL * (tarfile.BLOCKSIZE - remainder) if remainder else b""


def tar_gzip_chunks(directory: str, arcname: str) -> Generator[bytes, None, str]:
    """The reproducible tar+gzip of ``directory`` with its entries under ``arcname/``, in chunks.

    When exhausted, the generator's return value is the sha256 of the uncompressed tar.
    """
    # The tar stream is written here from public pieces (``TarInfo.tobuf`` for headers, then
    # content, padding and the end-of-archive blocks): ``TarFile.addfile`` wants the whole
    # content through one call (Python 3.13 refuses a header without it), which would hold a
    # file's compressed bytes in memory before the first chunk could leave.
    sink = _Sink()
    compressed = gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0,  # type: ignore[arg-type]
                               compresslevel=GZIP_LEVEL)
    raw = _HashingWriter(compressed)
    offset = 0
    seen: dict[tuple[int, int], str] = {}
    names = [""] + _entries(directory)
    for name in names:
        path = os.path.join(directory, name) if name else directory
        tar_name = f"{arcname}/{name.replace(os.sep, '/')}" if name else arcname
        info = _info(path, tar_name, seen)
        offset += raw.write(_header(info))
        if info.type == tarfile.REGTYPE:
            offset += yield from _content(path, info.size, raw, sink)
            offset += raw.write(_padding(info.size))
        chunk = sink.take()
        if chunk:
            yield chunk
    # End of archive: two zero blocks, then zeros up to a whole record, as tar writes it.
    offset += raw.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
    raw.write(tarfile.NUL * (-offset % tarfile.RECORDSIZE))
    compressed.close()
    yield sink.take()
    return "sha256:" + raw.hash.hexdigest()


def _content(path: str, size: int, raw: _HashingWriter, sink: _Sink) -> Generator[bytes, None, int]:
    """Stream exactly ``size`` bytes of the file at ``path`` into ``raw``, one chunk at a time.

    The header already announced ``size``; a file that changes length while it is read would make
    the archive lie about it, so both directions fail with a clear line instead.
    """
    written = 0
    with open(path, "rb") as handle:
        while written < size:
            data = handle.read(min(CHUNK, size - written))
            if not data:
                raise InvalidInputError(f"{path} shrank while it was being packed; retry when it is stable")
            written += raw.write(data)
            yield sink.take()
        if handle.read(1):
            raise InvalidInputError(f"{path} grew while it was being packed; retry when it is stable")
    return written


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
