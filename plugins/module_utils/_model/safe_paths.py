# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Names that may be written under a destination directory: the pure checks.

Tar entries of image layers and file titles of artifacts come from whoever
pushed them. Before anything is written, a name is reduced to a tuple of plain
components (``("usr", "bin", "tool")``) or refused: an absolute name, a ``..``
component, a NUL byte or an empty name never becomes a path. Symlink targets
are text, not names to write; :func:`symlink_escapes` says whether a relative
target climbs above the root it is read in.

No I/O here: resolving components against a real directory (symlinked parents)
is the applier's job (``_ops/unpack/apply.py``), which uses these tuples.
"""
from __future__ import annotations

import posixpath

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)


class UnsafePathError(InvalidInputError):
    """A name or link would leave the destination directory, or is not a usable name at all."""


def name_parts(name: str, what: str = "entry") -> tuple[str, ...]:
    """The components of a relative name, or :class:`UnsafePathError`.

    ``./`` prefixes, repeated and trailing slashes are dropped (tar writers
    emit them); an absolute name, ``..`` anywhere, a NUL byte or a name
    that is empty after cleaning are refused. ``.`` components are dropped.
    """
    if not isinstance(name, str):
        raise UnsafePathError(f"{what} name {name!r} is not text")
    if "\x00" in name:
        raise UnsafePathError(f"{what} name {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise UnsafePathError(f"{what} {name!r} is an absolute name: it would be written outside the destination")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise UnsafePathError(f"{what} {name!r} contains '..': it could be written outside the destination")
    if not parts:
        raise UnsafePathError(f"{what} name {name!r} is empty")
    return parts


def root_name_parts(name: str, what: str = "entry") -> tuple[str, ...]:
    """Like :func:`name_parts` but ``.`` or ``./`` (the root itself, as tar writes it) gives ``()``."""
    if isinstance(name, str) and name.strip("/") in ("", ".") and not name.startswith("/"):
        return ()
    return name_parts(name, what)


def symlink_escapes(link_parts: tuple[str, ...], target: str) -> bool:
    """True when a relative symlink at ``link_parts`` points above the root it lives in.

    An absolute target is read inside the root (as a container does), so it
    never escapes by this test; the applier never follows any link when writing.
    """
    if not target or target.startswith("/"):
        return False
    depth = len(link_parts) - 1  # the link's own directory
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


def resolve_link_target(link_parts: tuple[str, ...], target: str) -> tuple[str, ...]:
    """Where a symlink at ``link_parts`` points, as components inside the root.

    The root is treated as ``/`` (like ``chroot``): an absolute target starts
    at the root, and ``..`` at the root stays at the root, so the result is
    always inside. Used to resolve a symlinked parent directory safely.
    """
    start = () if target.startswith("/") else link_parts[:-1]
    parts = list(start)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return tuple(parts)


def under(parts: tuple[str, ...], prefixes: tuple[tuple[str, ...], ...]) -> bool:
    """True when ``parts`` is one of ``prefixes`` or inside one (an empty ``prefixes`` selects all)."""
    if not prefixes:
        return True
    return any(parts[:len(prefix)] == prefix for prefix in prefixes)


def above(parts: tuple[str, ...], prefixes: tuple[tuple[str, ...], ...]) -> bool:
    """True when ``parts`` is a directory on the way to one of ``prefixes`` (a parent to create)."""
    return any(len(parts) < len(prefix) and prefix[:len(parts)] == parts for prefix in prefixes)


def selection(paths: list[str] | None) -> tuple[tuple[str, ...], ...]:
    """User-given paths (``/usr/bin/tool`` or ``usr/bin``) as component tuples; absolute means from the root."""
    result = []
    for path in paths or ():
        cleaned = posixpath.normpath("/" + path.strip()).lstrip("/")
        if not cleaned or cleaned == ".":
            return ()  # "/" selects everything
        result.append(name_parts(cleaned, "path"))
    return tuple(result)
