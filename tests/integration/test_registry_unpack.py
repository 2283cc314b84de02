"""registry_unpack through real playbooks against Distribution 2.8, compared with umoci.

Images are built here from raw tar layers (whiteouts, an opaque directory, hard links, symlinks)
and pushed with the rig's raw pusher, never with our client. umoci (Debian) unpacks the same image
from an OCI layout made by skopeo; the two trees must be equal, with nothing of ours inside: the
module's own state lives beside the tree.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPusher, make_image, make_index
from tests.rig.tarballs import entry, oci_layer, tree_of
from tests.rig.tools import oras_push_notes, require_tool


LOWER = oci_layer([
    entry("etc", "dir", mode=0o755), entry("etc/old.conf", data=b"old"), entry("etc/keep.conf", data=b"keep"),
    entry("var", "dir", mode=0o755), entry("var/cache", "dir", mode=0o755), entry("var/cache/stale", data=b"s"),
    entry("usr", "dir", mode=0o755), entry("usr/bin", "dir", mode=0o755),
    entry("usr/bin/tool", data=b"#!/bin/sh\necho tool\n", mode=0o755),
    entry("tmp", "dir", mode=0o1777), entry("private", "dir", mode=0o700), entry("private/key", data=b"k", mode=0o600),
])
UPPER = oci_layer([
    entry("etc/.wh.old.conf"), entry("var/cache", "dir", mode=0o755), entry("var/cache/.wh..wh..opq"),
    entry("var/cache/fresh", data=b"f"),
    entry("usr/bin/tool-alias", "hardlink", link="usr/bin/tool", mode=0o755),
    entry("usr/bin/t", "symlink", link="tool"), entry("etc/abs", "symlink", link="/etc/keep.conf"),
])


def unpack_task(registry: RigRegistry, dest: Path, ref: str = "team/fs:v1", **options: Any) -> dict[str, Any]:
    return {"name": "unpack", "ocireg.registry.registry_unpack": {
        "reference": f"{registry.host}/{ref}", "dest": str(dest), **options}, "register": "out"}


def test_unpack_matches_umoci_and_is_idempotent(plain_registry: RigRegistry, run_playbook, tmp_path: Path) -> None:
    image = make_image(layers=[LOWER, UPPER])
    RawPusher.for_registry(plain_registry).push_image("team/fs", image, tag="v1")
    dest = tmp_path / "ours"

    mark = plain_registry.mark()
    checked = run_playbook(tasks=[unpack_task(plain_registry, dest)], check=True, diff=True)
    assert checked.rc == 0, checked.explain()
    assert checked.task("unpack").changed and not dest.exists()
    assert plain_registry.writes_since(mark) == []
    assert not [r for r in plain_registry.requests_since(mark) if "/blobs/" in r.path]  # no layer read

    applied = run_playbook(tasks=[unpack_task(plain_registry, dest)])
    assert applied.rc == 0, applied.explain()
    assert applied.task("unpack")["digest"] == image.digest
    rerun = run_playbook(tasks=[unpack_task(plain_registry, dest)])
    assert rerun.rc == 0 and rerun.task("unpack").changed is False, rerun.explain()

    layout = tmp_path / "layout"
    subprocess.run([require_tool("skopeo"), "copy", "--src-tls-verify=false", plain_registry.docker_ref("team/fs", "v1"),
                    f"oci:{layout}:v1"], check=True, capture_output=True)
    theirs = tmp_path / "umoci"
    subprocess.run([require_tool("umoci"), "raw", "unpack", "--rootless", "--image", f"{layout}:v1", str(theirs)],
                   check=True, capture_output=True)
    ours_tree, their_tree = tree_of(dest), tree_of(theirs)
    assert "etc/old.conf" not in ours_tree and "var/cache/stale" not in ours_tree
    assert ours_tree["usr/bin/tool-alias"][3] == "usr/bin/tool"
    assert ours_tree == their_tree  # exactly: no file of ours inside the image's filesystem
    # The state that makes the rerun a no-op sits beside the tree, not in it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".ours")) == [".ours.ocireg-unpack.json"]


def test_missing_parents_are_created_and_state_follows_the_tree(
        plain_registry: RigRegistry, run_playbook, tmp_path: Path) -> None:
    RawPusher.for_registry(plain_registry).push_image(
        "team/fs", make_image(layers=[oci_layer([entry("usr/bin/cli", data=b"cli", mode=0o755)])]), tag="v1")
    dest = tmp_path / "opt" / "cli" / "2.3.1"  # the guide's example on a fresh host: no /opt/cli yet

    checked = run_playbook(tasks=[unpack_task(plain_registry, dest)], check=True)
    assert checked.rc == 0 and checked.task("unpack").changed, checked.explain()
    assert not (tmp_path / "opt").exists()  # check mode creates no parent either

    applied = run_playbook(tasks=[unpack_task(plain_registry, dest)])
    assert applied.rc == 0 and applied.task("unpack").changed, applied.explain()
    assert sorted(tree_of(dest)) == ["usr", "usr/bin", "usr/bin/cli"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "opt" / "cli").stat().st_mode) == 0o777 & ~umask  # as registry_artifact pull

    assert run_playbook(tasks=[unpack_task(plain_registry, dest)]).task("unpack").changed is False
    # A tree removed by hand is unpacked again: the state beside it does not outlive it.
    shutil.rmtree(dest)
    again = run_playbook(tasks=[unpack_task(plain_registry, dest)])
    assert again.rc == 0 and again.task("unpack").changed, again.explain()
    assert sorted(tree_of(dest)) == ["usr", "usr/bin", "usr/bin/cli"]
    # Another directory put in its place is not taken for ours.
    shutil.rmtree(dest)
    dest.mkdir()
    (dest / "mine").write_text("keep")
    foreign = run_playbook(tasks=[unpack_task(plain_registry, dest)])
    assert foreign.rc != 0 and "did not unpack" in foreign.task("unpack")["msg"], foreign.explain()
    assert (dest / "mine").read_text() == "keep"


def test_an_artifact_is_not_an_image(plain_registry: RigRegistry, run_playbook, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    oras_push_notes(plain_registry.host, f"{plain_registry.host}/team/files:v1", tmp_path / "oras-src", monkeypatch)
    dest = tmp_path / "dest"
    result = run_playbook(tasks=[unpack_task(plain_registry, dest, "team/files:v1")])
    assert result.rc != 0
    message = result.task("unpack")["msg"]
    assert "is an artifact" in message and "not an image" in message and "registry_artifact" in message, message
    assert message.startswith(f"{plain_registry.host}/team/files:v1 is an artifact"), message  # not just "v1"
    assert "tar" not in message and not dest.exists()


def test_index_platform_and_paths(plain_registry: RigRegistry, run_playbook, tmp_path: Path) -> None:
    amd = make_image("amd", layers=[oci_layer([entry("usr/bin/tool", data=b"amd64")])], platform="linux/amd64")
    arm = make_image("arm", layers=[oci_layer([entry("usr/bin/tool", data=b"arm64"), entry("etc/x", data=b"x")])],
                     platform="linux/arm64")
    RawPusher.for_registry(plain_registry).push("team/fs", make_index([amd, arm]), tag="multi")
    dest = tmp_path / "arm"
    result = run_playbook(tasks=[unpack_task(plain_registry, dest, "team/fs:multi", platform="linux/arm64",
                                             paths=["/usr/bin/tool"])])
    assert result.rc == 0, result.explain()
    assert result.task("unpack")["digest"] == arm.digest
    assert (dest / "usr/bin/tool").read_bytes() == b"arm64" and not (dest / "etc").exists()


@pytest.mark.parametrize("entries,message", [
    ([entry("../../escaped", data=b"x")], "'..'"),
    ([entry("/abs-escaped", data=b"x")], "absolute"),
    ([entry("up", "symlink", link="../../../../../../tmp")], "climbs above"),
    ([entry("h", "hardlink", link="../../../etc/passwd")], "'..'"),
    ([entry("dev/null", "chr")], "allow_devices"),
])
def test_hostile_layers_are_refused(plain_registry: RigRegistry, run_playbook, tmp_path: Path,
                                    entries: list, message: str) -> None:
    RawPusher.for_registry(plain_registry).push_image("team/evil", make_image(layers=[oci_layer(entries)]), tag="v1")
    work = tmp_path / "work"  # the playbook runner keeps its own files in tmp_path
    box = work / "box"
    box.mkdir(parents=True)
    result = run_playbook(tasks=[unpack_task(plain_registry, box / "dest", "team/evil:v1")])
    assert result.rc != 0
    failed = result.task("unpack")
    assert failed.failed and message in failed["msg"], failed["msg"]
    assert "Traceback" not in failed["msg"]
    assert list(box.iterdir()) == [] and [p.name for p in work.iterdir()] == ["box"]


def test_symlinked_parent_from_earlier_layer_stays_inside(plain_registry: RigRegistry, run_playbook,
                                                          tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    image = make_image(layers=[oci_layer([entry("link", "symlink", link=str(outside))]),
                               oci_layer([entry("link/planted", data=b"x")])])
    RawPusher.for_registry(plain_registry).push_image("team/evil", image, tag="parent")
    dest = tmp_path / "dest"
    result = run_playbook(tasks=[unpack_task(plain_registry, dest, "team/evil:parent")])
    assert result.rc == 0, result.explain()
    assert list(outside.iterdir()) == []
    assert (dest / str(outside).lstrip("/") / "planted").read_bytes() == b"x"
