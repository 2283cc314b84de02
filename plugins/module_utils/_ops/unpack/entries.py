# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a tar entry of a layer may do: the pure safety checker.

:func:`check_entry` turns one tar header into a :class:`Step` (what to write,
where, with which mode) or refuses it with :class:`UnsafeLayerError`. It sees
nothing of the disk: the applier resolves the step's components inside the
destination without following symlinks out (``apply.py``).

Rules (image-spec ``layer.md``):

* names: no absolute names, no ``..``, no NUL (see ``_model/safe_paths.py``);
* ``.wh.<name>`` deletes ``<name>`` from lower layers; ``.wh..wh..opq`` empties
  its directory of lower-layer content; any other ``.wh..wh.`` name is refused;
* hard links name another entry of the image (same rules as names);
* a relative symlink may not climb above the root; absolute targets are kept as
  they are (they mean "from the image root", and nothing here ever follows them);
* device nodes only with ``allow_devices``; setuid / setgid bits are
  dropped (and reported) unless ``allow_setuid``;
* :class:`Limits` caps the entry count and the expanded size over the whole image.
"""
from __future__ import annotations

import stat
import tarfile
from dataclasses import dataclass

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.safe_paths import (
    UnsafePathError,
    name_parts,
    root_name_parts,
    symlink_escapes,
)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
#: Bits that give a file its owner's rights when run; the sticky bit (``/tmp``) is harmless and kept.
SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID

#: Defaults sized for real images (a large distro image has ~100k entries and a few GiB)
#: while stopping a decompression bomb long before it fills a disk.
DEFAULT_MAX_ENTRIES = 1_000_000
DEFAULT_MAX_BYTES = 16 * 1024 ** 3


class UnsafeLayerError(UnsafePathError):
    """A layer entry would escape the destination, or is something not allowed without an option."""


class LimitExceededError(InvalidInputError):
    """The image has more entries or more expanded bytes than allowed (a decompression bomb guard)."""


@dataclass(frozen=True)
class Limits:
    """What an unpack may do and how much it may write."""

    max_entries: int = DEFAULT_MAX_ENTRIES
    max_bytes: int = DEFAULT_MAX_BYTES
    allow_devices: bool = False
    allow_setuid: bool = False


@dataclass(frozen=True)
class Step:
    """One checked entry: ``kind`` is file, dir, symlink, hardlink, device, fifo, whiteout or opaque.

    ``parts`` are the components of the path written (for ``whiteout`` the path
    removed, for ``opaque`` the directory emptied); ``link`` the symlink target
    text or the hard link's target components.
    """

    kind: str
    parts: tuple[str, ...]
    mode: int = 0o644
    size: int = 0
    link: str | tuple[str, ...] | None = None
    dropped_bits: int = 0


@dataclass
class Counters:
    """Running totals checked against :class:`Limits` across every layer of one unpack."""

    entries: int = 0
    bytes: int = 0

    def add(self, step_size: int, limits: Limits, where: str) -> None:
        """Count one entry of ``step_size`` bytes; raise :class:`LimitExceededError` past a limit."""
        self.entries += 1
        self.bytes += step_size
        if self.entries > limits.max_entries:
            raise LimitExceededError(
                f"{where}: the image has more than {limits.max_entries} entries (max_entries); refusing to unpack "
                "further (raise max_entries if the image is trusted)")
        if self.bytes > limits.max_bytes:
            raise LimitExceededError(
                f"{where}: the image expands to more than {limits.max_bytes} bytes (max_bytes); refusing to unpack "
                "further (raise max_bytes if the image is trusted)")


def check_entry(info: tarfile.TarInfo, limits: Limits, where: str = "layer") -> Step | None:
    """The :class:`Step` for one tar header, None for the root directory itself; refuse what is unsafe."""
    label = f"{where}: entry {info.name!r}"
    parts = root_name_parts(info.name, f"{where}: entry")
    if not parts:
        if info.isdir():
            return None
        raise UnsafeLayerError(f"{label} names the root directory but is not a directory")
    base = parts[-1]
    if base.startswith(WHITEOUT_PREFIX):
        return _whiteout(parts, label)
    mode = info.mode & 0o7777
    dropped = 0
    if mode & SPECIAL_BITS and not limits.allow_setuid:
        dropped = mode & SPECIAL_BITS
        mode &= ~SPECIAL_BITS
    if info.isreg():
        return Step("file", parts, mode, info.size, dropped_bits=dropped)
    if info.isdir():
        return Step("dir", parts, mode, dropped_bits=dropped)
    if info.issym():
        if symlink_escapes(parts, info.linkname):
            raise UnsafeLayerError(
                f"{label} is a symlink to {info.linkname!r}, which climbs above the image root: refused")
        if "\x00" in info.linkname or not info.linkname:
            raise UnsafeLayerError(f"{label} is a symlink with an empty or NUL-containing target")
        return Step("symlink", parts, 0o777, link=info.linkname)
    if info.islnk():
        target = name_parts(info.linkname, f"{where}: hard link target of {info.name!r}")
        if target == parts:
            raise UnsafeLayerError(f"{label} is a hard link to itself")
        return Step("hardlink", parts, mode, link=target, dropped_bits=dropped)
    if info.ischr() or info.isblk():
        if not limits.allow_devices:
            raise UnsafeLayerError(
                f"{label} is a device node ({info.devmajor}:{info.devminor}); set allow_devices=true to create "
                "device nodes (needs root)")
        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
        return Step("device", parts, mode | kind, link=(str(info.devmajor), str(info.devminor)),
                    dropped_bits=dropped)
    if info.isfifo():
        return Step("fifo", parts, mode, dropped_bits=dropped)
    raise UnsafeLayerError(f"{label} has tar type {info.type!r}, which an image layer may not contain")


def _whiteout(parts: tuple[str, ...], label: str) -> Step:
    base = parts[-1]
    if base == OPAQUE_MARKER:
        return Step("opaque", parts[:-1])
    if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
        raise UnsafeLayerError(f"{label} is a reserved whiteout name the image spec does not define")
    hidden = base[len(WHITEOUT_PREFIX):]
    if hidden in ("", ".", ".."):
        raise UnsafeLayerError(f"{label} is a whiteout of {hidden!r}: refused")
    return Step("whiteout", parts[:-1] + (hidden,))


def describe_bits(bits: int) -> str:
    """``setuid,setgid`` for the special bits in ``bits`` (for the dropped-bits report)."""
    names = [name for bit, name in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid"), (stat.S_ISVTX, "sticky"))
             if bits & bit]
    return ",".join(names)
