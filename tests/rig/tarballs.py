"""Tar layers built entry by entry, and the file tree an unpack leaves, for the unpack tests.

One home for both sides of those tests: the unit tests (an in-memory repository) and the
integration tests (a real registry, compared with umoci) build layers with :func:`tar_layer`
and read what landed with :func:`tree_of`. Independent of ``plugins/module_utils`` on purpose,
like :mod:`tests.rig.images`: the layers the unpacker is checked with are not made by it.
"""
from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Collection
from pathlib import Path

from tests.rig.images import OCI_LAYER_GZIP, Layer, sha256_digest

_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
          "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}


def entry(name: str, kind: str = "file", data: bytes = b"", mode: int = 0o644, link: str = "") -> tuple:
    """One tar member for :func:`tar_layer`: ``kind`` is file, dir, symlink, hardlink, chr or fifo."""
    return (name, kind, data, mode, link)


def tar_layer(entries: list[tuple], gz: bool = True) -> bytes:
    """A PAX tar of ``entries`` in the order given (gzip with a fixed mtime unless ``gz=False``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, mode, link in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.type = _TYPES[kind]
            info.linkname = link
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def oci_layer(entries: list[tuple]) -> Layer:
    """:func:`tar_layer` as a gzip OCI layer the rig can push (diff_id of the uncompressed tar)."""
    raw = tar_layer(entries, gz=False)
    return Layer(gzip.compress(raw, mtime=0), OCI_LAYER_GZIP, diff_id=sha256_digest(raw))


def tree_of(root: Path, skip: Collection[str] = ()) -> dict[str, tuple]:
    """Every path below ``root`` but those in ``skip``, by relative POSIX path.

    ``("symlink", target)``, ``("dir", oct mode)`` or ``("file", oct mode, content, first, nlink)``,
    where ``first`` is the first path (in sorted order) sharing the file's inode, so hard links
    show which file they share, and ``nlink`` its link count.
    """
    found: dict[str, tuple] = {}
    inodes: dict[int, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in skip:
            continue
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            found[rel] = ("symlink", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            found[rel] = ("dir", oct(stat.S_IMODE(st.st_mode)))
        else:
            first = inodes.setdefault(st.st_ino, rel)
            found[rel] = ("file", oct(stat.S_IMODE(st.st_mode)), path.read_bytes(), first, st.st_nlink)
    return found
