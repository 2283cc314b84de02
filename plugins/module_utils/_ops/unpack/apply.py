# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Apply image layers to a directory: whiteouts, opaque directories, links, modes; nothing escapes.

Safety rests on three habits:

* every path is resolved component by component from the root with ``lstat``; a symlinked
  parent is followed only as text *inside* the root (``/`` and ``..`` stop at the root, as in a
  chroot), so an entry under a link made by an earlier layer lands inside, never outside;
* the last component is never followed: whatever is there is removed first, and files are
  created with ``O_EXCL | O_NOFOLLOW``;
* the whole tree is built in a fresh temporary directory next to the destination and renamed
  into place only when complete, so a failure leaves the old tree or nothing, never a partial
  tree that looks complete.

The tree is the image's filesystem and nothing else: what the module remembers (the digest and
paths unpacked) is a state file *beside* it, ``.<dest name>.ocireg-unpack.json``, as umoci keeps
``umoci.json`` beside ``rootfs/``. The state names the tree's top directory (device, inode and
change time: a directory made anew, even one given the freed inode back, has a later change
time), so a tree removed or replaced by hand is never taken for the one the state describes.

Blobs are read through :meth:`Repository.fetch_blob`, which verifies the digest while streaming;
a corrupt layer aborts before the rename.
"""
from __future__ import annotations

import io
import json
import os
import platform as host
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.chunks import (
    CHUNK,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    ManifestError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Manifest,
    select_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.safe_paths import (
    above,
    resolve_link_target,
    selection,
    under,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.unpack.entries import (
    Counters,
    Limits,
    Step,
    UnsafeLayerError,
    check_entry,
    describe_bits,
)

#: The state file beside an unpacked tree (``.<dest name>`` + this): which manifest it holds, which paths.
STATE_SUFFIX = ".ocireg-unpack.json"
#: Symlink hops allowed while resolving one path (Linux's own limit is 40).
MAX_LINK_HOPS = 40
_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm/v7",
             "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "i686": "386", "i386": "386"}
UNPACKABLE = frozenset({mt.OCI_LAYER, mt.OCI_LAYER_GZIP, mt.DOCKER_LAYER, mt.OCI_LAYER_NONDISTRIBUTABLE,
                        mt.OCI_LAYER_NONDISTRIBUTABLE_GZIP, mt.DOCKER_LAYER_FOREIGN})


def host_platform() -> str:
    """The platform of this host as ``os/arch[/variant]`` (the default when an index is unpacked)."""
    return "linux/" + _MACHINES.get(host.machine().lower(), host.machine().lower())


class Tree:
    """A directory being filled from layers; every write goes through :meth:`resolve_dir`."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.layer_created: set[tuple[str, ...]] = set()
        self.dir_modes: dict[tuple[str, ...], int] = {}
        self.dropped: list[dict[str, str]] = []

    def path(self, parts: Iterable[str]) -> str:
        """The host path of resolved components (only call with resolved parts)."""
        return os.path.join(self.root, *parts)

    def resolve_dir(self, parts: tuple[str, ...], create: bool) -> tuple[str, ...] | None:
        """Resolve ``parts`` as a directory inside the root; None when missing and not ``create``.

        A symlink on the way is read and its target resolved from the root (never outside).
        """
        done: list[str] = []
        todo = list(parts)
        hops = 0
        while todo:
            name = todo.pop(0)
            current = tuple(done) + (name,)
            try:
                info = os.lstat(self.path(current))
            except FileNotFoundError:
                if not create:
                    return None
                os.mkdir(self.path(current), 0o755)
                self.layer_created.add(current)
                done.append(name)
                continue
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise UnsafeLayerError(f"{'/'.join(parts)}: too many symlinks on the way (a loop?)")
                todo = list(resolve_link_target(current, os.readlink(self.path(current)))) + todo
                done = []
                continue
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafeLayerError(f"{'/'.join(parts)}: {'/'.join(current)} is not a directory")
            done.append(name)
        return tuple(done)

    def _clear(self, parts: tuple[str, ...], keep_dir: bool = False) -> bool:
        """Remove what is at ``parts`` (a link itself, never its target); True if a directory stays."""
        where = self.path(parts)
        try:
            info = os.lstat(where)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(info.st_mode):
            if keep_dir:
                return True
            remove_tree(where)
        else:
            os.unlink(where)
        return False

    def apply(self, step: Step, data: io.BufferedReader | None) -> None:
        """Write one checked entry (``data`` is the file content for ``file``)."""
        if step.kind in ("whiteout", "opaque"):
            self._hide(step)
            return
        parent = self.resolve_dir(step.parts[:-1], create=True) or ()
        parts = parent + (step.parts[-1],)
        if step.dropped_bits:
            self.dropped.append({"path": "/" + "/".join(step.parts), "bits": describe_bits(step.dropped_bits)})
        if step.kind == "dir":
            if not self._clear(parts, keep_dir=True):
                os.mkdir(self.path(parts), 0o700)
            # Final modes are set at the end: a read-only directory must still take its children.
            self.dir_modes[parts] = step.mode
            self.layer_created.add(parts)
            return
        if step.kind == "hardlink":
            source = self._link_source(step)
            self._clear(parts)
            os.link(source, self.path(parts), follow_symlinks=False)
        else:
            self._clear(parts)
            self._create(step, parts, data)
        self.layer_created.add(parts)

    def _create(self, step: Step, parts: tuple[str, ...], data: io.BufferedReader | None) -> None:
        where = self.path(parts)
        if step.kind == "file":
            fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                if data is not None:
                    shutil.copyfileobj(data, out, CHUNK)
            os.chmod(where, step.mode)
        elif step.kind == "symlink":
            os.symlink(str(step.link), where)
        elif step.kind == "fifo":
            os.mkfifo(where, step.mode)
        elif step.kind == "device":
            major, minor = (int(n) for n in step.link or ("0", "0"))
            os.mknod(where, step.mode, os.makedev(major, minor))
        else:  # pragma: no cover - check_entry gives no other kinds
            raise UnsafeLayerError(f"unexpected entry kind {step.kind}")

    def _link_source(self, step: Step) -> str:
        target = step.link if isinstance(step.link, tuple) else ()
        parent = self.resolve_dir(target[:-1], create=False)
        source = None if parent is None else self.path(parent + (target[-1],))
        try:
            info = os.lstat(source) if source else None
        except FileNotFoundError:
            info = None
        if info is None or stat.S_ISDIR(info.st_mode):
            raise UnsafeLayerError(
                f"hard link {'/'.join(step.parts)} points at {'/'.join(target)}, which is not a file written before "
                "it inside the destination (with paths set, include the link target too)")
        return str(source)

    def _hide(self, step: Step) -> None:
        if step.kind == "whiteout":
            parent = self.resolve_dir(step.parts[:-1], create=False)
            if parent is not None and parent + (step.parts[-1],) not in self.layer_created:
                self._clear(parent + (step.parts[-1],))
            return
        directory = self.resolve_dir(step.parts, create=True) or ()
        for child in os.listdir(self.path(directory)):
            if directory + (child,) not in self.layer_created:
                self._clear(directory + (child,))

    def finish(self) -> None:
        """Give directories their modes (deepest first), the root 0755."""
        for parts in sorted(self.dir_modes, key=len, reverse=True):
            if os.path.isdir(self.path(parts)) and not os.path.islink(self.path(parts)):
                os.chmod(self.path(parts), self.dir_modes[parts])
        os.chmod(self.root, 0o755)


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for ``tarfile`` stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._buffer))
        buffer[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def drain(self) -> None:
        """Read the rest (the digest is only verified once the last chunk has passed)."""
        for _chunk in self._chunks:
            pass


def apply_layer(tree: Tree, chunks: Iterator[bytes], limits: Limits, counters: Counters, where: str, *,
                wanted: tuple[tuple[str, ...], ...] = (), required_prefix: tuple[str, ...] = ()) -> None:
    """Apply one tar layer (plain or gzip) streamed from ``chunks`` to ``tree``.

    ``wanted`` limits writing to those paths (and the directories leading to them);
    ``required_prefix`` refuses any entry outside it (an artifact directory's own name).
    """
    tree.layer_created = set()
    reader = ChunkReader(chunks)
    try:
        with tarfile.open(fileobj=io.BufferedReader(reader, CHUNK), mode="r|*") as archive:
            for info in archive:
                counters.add(info.size if info.isreg() else 0, limits, where)
                step = check_entry(info, limits, where)
                if step is None:
                    continue
                if required_prefix and step.parts[:len(required_prefix)] != required_prefix:
                    raise UnsafeLayerError(
                        f"{where}: entry {info.name!r} is outside {'/'.join(required_prefix)}/, the only directory "
                        "this archive may write")
                if not (under(step.parts, wanted) or (step.kind in ("dir", "opaque", "whiteout")
                                                      and above(step.parts, wanted))):
                    continue
                data = archive.extractfile(info) if step.kind == "file" else None
                tree.apply(step, data)  # type: ignore[arg-type]
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise ManifestError(f"{where} is not a readable tar archive ({type(exc).__name__}: {exc})") from None
    reader.drain()


def remove_tree(path: str) -> None:
    """``rmtree`` that never follows links and first makes read-only directories writable."""
    def retry(function: Any, failed: str, _exc: Any) -> None:
        parent = os.path.dirname(failed)
        os.chmod(parent, 0o700)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, 0o700)
        function(failed)

    shutil.rmtree(path, onerror=retry)  # pylint: disable=deprecated-argument


def state_path(dest: str) -> str:
    """Where the state of the tree at ``dest`` is kept: beside it, never inside."""
    return os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}{STATE_SUFFIX}")


def _identity(path: str) -> list[int] | None:
    """Device, inode and change time of the directory at ``path`` (None when it is not one)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return [info.st_dev, info.st_ino, info.st_ctime_ns] if stat.S_ISDIR(info.st_mode) else None


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(65536))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_state(dest: str) -> dict[str, Any] | None:
    """What this module unpacked at ``dest`` before, None when the tree there is not one of ours.

    The state beside the tree counts only while it names the directory that is there now.
    """
    identity = _identity(dest)
    state = _read_json(state_path(dest)) if identity is not None else None
    return state if state is not None and state.get("tree") == identity else None


def write_state(dest: str, state: dict[str, Any]) -> None:
    """Write the state beside ``dest`` through a temporary file renamed over the old one."""
    replace_json(state_path(dest), state)


def replace_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON at ``path`` through a temporary file beside it, renamed over the old one."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed or removed below
        "w", dir=os.path.dirname(path), prefix=f"{os.path.basename(path)}.", delete=False, encoding="utf-8")
    try:
        with handle:
            json.dump(data, handle, sort_keys=True)
        os.replace(handle.name, path)
    except BaseException:
        if os.path.lexists(handle.name):
            os.unlink(handle.name)
        raise


def swap_in(tmp: str, dest: str) -> None:
    """Put the complete tree ``tmp`` at ``dest``; an old tree there is moved away first, then removed."""
    if not os.path.lexists(dest):
        os.rename(tmp, dest)
        return
    if os.path.islink(dest) or not os.path.isdir(dest):
        raise InvalidInputError(f"dest {dest} exists and is not a directory")
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.ocireg-old-", dir=os.path.dirname(dest))
    os.rmdir(old)
    os.rename(dest, old)
    os.rename(tmp, dest)
    remove_tree(old)


def resolve_image(repository: Any, reference: str, platform: str | None,
                  name: str | None = None) -> tuple[Manifest, str | None]:
    """The image manifest to unpack and, for an index, the platform picked (the host's by default).

    ``name`` is the image as the user wrote it, for messages (``reference`` is only its tag or digest).
    """
    name = name or reference
    manifest = repository.fetch_manifest(reference)
    picked = None
    if manifest.is_index:
        picked = platform or host_platform()
        child = select_platform(manifest, picked)
        manifest = repository.fetch_manifest(child.digest)
    kind = None if manifest.is_index else manifest.effective_artifact_type
    if kind:
        # Its layers are files (often typed as tar layers by oras), not a filesystem: say so before
        # a layer is read and fails as a broken tar.
        raise UnsupportedError(f"{name} is an artifact ({kind}), not an image: it has files, no filesystem "
                               "to unpack; pull its files with ocireg.registry.registry_artifact (action: pull)")
    if manifest.is_index or manifest.is_schema1 or not mt.is_image_manifest(manifest.media_type):
        raise UnsupportedError(f"{name} is a {manifest.media_type}: only OCI and Docker schema 2 images "
                               "can be unpacked")
    for layer in manifest.layers:
        if mt.base_type(layer.media_type) not in UNPACKABLE:
            hint = " (zstd layers are not supported yet)" if "zstd" in layer.media_type else ""
            raise UnsupportedError(f"layer {layer.digest} of {manifest.digest} has media type {layer.media_type}, "
                                   f"which is not a tar layer this module can unpack{hint}")
    return manifest, picked


def state_diff(dest: str, before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """The ``--diff`` of an unpack: ``dest`` -> the digest and the paths unpacked there, before and after.

    The paths are part of it because a run that only changes ``paths`` replaces the tree for the same
    digest; ``/`` stands for the whole filesystem.
    """
    def shown(state: dict[str, Any]) -> dict[str, Any]:
        return {"digest": state.get("digest"), "paths": state.get("paths") or ["/"]}

    return {"before": {dest: shown(before) if before is not None else "absent"}, "after": {dest: shown(after)}}


def unpack_image(repository: Any, reference: str, dest: str, *, platform: str | None = None,
                 paths: list[str] | None = None, limits: Limits | None = None, check_mode: bool = False,
                 force: bool = False, name: str | None = None) -> dict[str, Any]:
    """Unpack ``reference`` of ``repository`` to ``dest``; return the result (``changed``, digests, counts).

    ``name`` is the image as the user gave it, which messages name (``reference`` is its tag or digest).

    A tree whose state names the same image digest and paths is left alone. Missing parent
    directories of ``dest`` are created (modes from the umask, as ``registry_artifact`` pull does).
    """
    limits = limits or Limits()
    wanted = selection(paths)
    manifest, picked = resolve_image(repository, reference, platform, name)
    state = {"digest": manifest.digest, "paths": ["/" + "/".join(p) for p in wanted]}
    dest = os.path.abspath(dest)
    before = read_state(dest)
    result: dict[str, Any] = {"digest": manifest.digest, "platform": picked, "dest": dest,
                              "layers": len(manifest.layers), "entries": 0, "bytes": 0, "dropped_bits": [],
                              "before": (before or {}).get("digest"), "diff": state_diff(dest, before, state)}
    if before is not None and {k: before.get(k) for k in state} == state:
        return {**result, "changed": False}
    if before is None and os.path.isdir(dest) and os.listdir(dest) and not force:
        raise InvalidInputError(f"dest {dest} is a non-empty directory that this module did not unpack (or whose "
                                "top level changed since); choose an empty or new directory, or set force=true to "
                                "replace it")
    if os.path.lexists(dest) and (os.path.islink(dest) or not os.path.isdir(dest)):
        raise InvalidInputError(f"dest {dest} exists and is not a directory")
    if check_mode:
        return {**result, "changed": True}
    parent = os.path.dirname(dest)
    if os.path.lexists(parent) and not os.path.isdir(parent):
        raise InvalidInputError(f"the parent of dest ({parent}) exists and is not a directory")
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.ocireg-", dir=parent)
    try:
        tree = Tree(tmp)
        counters = Counters()
        for number, layer in enumerate(manifest.layers, 1):
            where = f"layer {number} ({layer.digest})"
            with repository.fetch_blob(layer.digest, layer.size) as chunks:
                apply_layer(tree, chunks, limits, counters, where, wanted=wanted)
        tree.finish()
        swap_in(tmp, dest)
    except BaseException:
        if os.path.lexists(tmp):
            remove_tree(tmp)
        raise
    # Written after the swap: a crash in between leaves a tree no state names, which the next run
    # refuses to replace without force rather than wrongly calling it up to date.
    write_state(dest, {**state, "tree": _identity(dest)})
    return {**result, "changed": True, "entries": counters.entries, "bytes": counters.bytes,
            "dropped_bits": tree.dropped}
