"""registry_unpack's per-entry checker (_ops/unpack/entries.py): what a tar entry may do, on entries built here."""
from __future__ import annotations

import tarfile

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.safe_paths import UnsafePathError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.unpack.entries import (
    Limits,
    UnsafeLayerError,
    check_entry,
)


def info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    item = tarfile.TarInfo(name)
    item.type, item.mode, item.linkname = kind, mode, link
    return item


def test_checker_classifies_and_strips_setuid() -> None:
    limits = Limits()
    assert check_entry(info("./", tarfile.DIRTYPE), limits) is None
    step = check_entry(info("usr/bin/su", mode=0o4755), limits)
    assert step.kind == "file" and step.mode == 0o755 and step.dropped_bits
    assert check_entry(info("usr/bin/su", mode=0o4755), Limits(allow_setuid=True)).mode == 0o4755
    assert check_entry(info("tmp", tarfile.DIRTYPE, 0o1777), limits).mode == 0o1777  # sticky is kept
    assert check_entry(info("a/.wh.b"), limits).kind == "whiteout"
    assert check_entry(info("a/.wh..wh..opq"), limits).parts == ("a",)
    with pytest.raises(UnsafeLayerError, match="device"):
        check_entry(info("dev/sda", tarfile.BLKTYPE), limits)
    with pytest.raises(UnsafeLayerError, match="climbs above"):
        check_entry(info("a/l", tarfile.SYMTYPE, link="../../etc"), limits)
    with pytest.raises(UnsafePathError):
        check_entry(info("x", tarfile.LNKTYPE, link="../outside"), limits)
    with pytest.raises(UnsafePathError):
        check_entry(info("x", tarfile.LNKTYPE, link="/etc/passwd"), limits)
    with pytest.raises(UnsafeLayerError):
        check_entry(info("a/.wh..wh.other"), limits)
