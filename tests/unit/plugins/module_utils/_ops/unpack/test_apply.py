"""registry_unpack's applier (_ops/unpack/apply.py) on layers built here (safety first; the entry checker is in test_policy.py).

Layers are built in the test with tarfile; the repository is the in-memory fake of
unpack_fakes.py because these tests are about the file system, not the protocol.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.unpack.apply import (
    state_path,
    unpack_image,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.unpack.entries import (
    LimitExceededError,
    Limits,
)

from tests.rig.tarballs import entry, tar_layer, tree_of
from tests.unit.plugins.module_utils._ops.unpack_fakes import FakeRepository


def test_layers_whiteouts_opaque_links(tmp_path: Path) -> None:
    repo = FakeRepository()
    lower = tar_layer([entry("etc", "dir", mode=0o755), entry("etc/old", data=b"old"),
                       entry("opq", "dir", mode=0o755), entry("opq/gone", data=b"x"),
                       entry("bin", "dir", mode=0o755), entry("bin/tool", data=b"tool", mode=0o755),
                       entry("data", "dir", mode=0o700), entry("data/file", data=b"d")])
    upper = tar_layer([entry("etc/.wh.old"), entry("opq/kept", data=b"new"), entry("opq/.wh..wh..opq"),
                       entry("bin/alias", "hardlink", link="bin/tool", mode=0o755),
                       entry("bin/link", "symlink", link="tool"), entry("abs", "symlink", link="/etc")])
    repo.add_image([lower, upper])
    dest = tmp_path / "root"
    result = unpack_image(repo, "latest", str(dest))
    assert result["changed"] and result["layers"] == 2
    tree = tree_of(dest)
    assert "etc/old" not in tree and "opq/gone" not in tree
    assert tree["opq/kept"][2] == b"new"  # same-layer content survives its opaque marker
    assert tree["bin/alias"][2] == b"tool" and tree["bin/alias"][4] == 2
    assert tree["bin/link"] == ("symlink", "tool") and tree["abs"] == ("symlink", "/etc")
    assert tree["bin/tool"][1] == "0o755" and tree["data"] == ("dir", "0o700")
    again = unpack_image(repo, "latest", str(dest))
    assert again["changed"] is False


def test_symlinked_parent_stays_inside(tmp_path: Path) -> None:
    repo = FakeRepository()
    outside = tmp_path / "outside"
    outside.mkdir()
    first = tar_layer([entry("escape", "symlink", link=str(outside))])
    second = tar_layer([entry("escape/pwned", data=b"x")])
    repo.add_image([first, second])
    dest = tmp_path / "root"
    unpack_image(repo, "latest", str(dest))
    assert list(outside.iterdir()) == []
    # The entry went where the link points when read inside the root.
    assert (dest / outside.relative_to("/") / "pwned").read_bytes() == b"x"


@pytest.mark.parametrize("layer,message", [
    ([entry("../evil", data=b"x")], "'..'"),
    ([entry("/abs", data=b"x")], "absolute"),
    ([entry("l", "symlink", link="../../../../tmp")], "climbs above"),
    ([entry("h", "hardlink", link="../../etc/passwd")], "'..'"),
    ([entry("h", "hardlink", link="missing")], "not a file written before"),
    ([entry("dev", "chr")], "device node"),
])
def test_hostile_layers_refused_nothing_left(tmp_path: Path, layer: list, message: str) -> None:
    repo = FakeRepository()
    repo.add_image([tar_layer(layer)])
    dest = tmp_path / "root"
    with pytest.raises(InvalidInputError, match=message):
        unpack_image(repo, "latest", str(dest))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no dest, no temp dir left


def test_limits(tmp_path: Path) -> None:
    repo = FakeRepository()
    repo.add_image([tar_layer([entry(f"f{i}", data=b"x" * 100) for i in range(5)])])
    with pytest.raises(LimitExceededError, match="max_entries"):
        unpack_image(repo, "latest", str(tmp_path / "a"), limits=Limits(max_entries=3))
    with pytest.raises(LimitExceededError, match="max_bytes"):
        unpack_image(repo, "latest", str(tmp_path / "b"), limits=Limits(max_bytes=250))
    assert list(tmp_path.iterdir()) == []


def test_paths_check_mode_corrupt_and_foreign_dest(tmp_path: Path) -> None:
    repo = FakeRepository()
    layer = tar_layer([entry("usr/bin/tool", data=b"t"), entry("etc/conf", data=b"c")])
    repo.add_image([layer])
    dest = tmp_path / "root"
    assert unpack_image(repo, "latest", str(dest), check_mode=True)["changed"]
    assert not dest.exists()
    unpack_image(repo, "latest", str(dest), paths=["/usr/bin/tool"])
    assert sorted(tree_of(dest)) == ["usr", "usr/bin", "usr/bin/tool"]
    assert unpack_image(repo, "latest", str(dest), paths=["/usr/bin/tool"])["changed"] is False
    assert unpack_image(repo, "latest", str(dest))["changed"]  # other paths: unpacked again
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine").write_text("keep")
    with pytest.raises(InvalidInputError, match="did not unpack"):
        unpack_image(repo, "latest", str(foreign))
    repo.blobs[next(iter(repo.blobs))] = layer[:-3] + b"bad"
    with pytest.raises((DigestMismatchError, InvalidInputError)):
        unpack_image(repo, "latest", str(tmp_path / "corrupt"))
    assert not (tmp_path / "corrupt").exists()


def test_state_lives_beside_the_tree_and_names_it(tmp_path: Path) -> None:
    repo = FakeRepository()
    repo.add_image([tar_layer([entry("etc/conf", data=b"c")])])
    dest = tmp_path / "deep" / "er" / "root"
    assert unpack_image(repo, "latest", str(dest))["changed"]
    assert sorted(tree_of(dest)) == ["etc", "etc/conf"]
    assert Path(state_path(str(dest))) == tmp_path / "deep" / "er" / ".root.ocireg-unpack.json"
    assert sorted(p.name for p in dest.parent.iterdir()) == [".root.ocireg-unpack.json", "root"]
    assert unpack_image(repo, "latest", str(dest))["changed"] is False
    (dest / "added").write_text("x")  # the top level changed: no longer vouched for
    with pytest.raises(InvalidInputError, match="did not unpack"):
        unpack_image(repo, "latest", str(dest))
    assert unpack_image(repo, "latest", str(dest), force=True)["changed"]
    assert sorted(tree_of(dest)) == ["etc", "etc/conf"]


def test_diff_shows_a_change_of_paths_alone(tmp_path: Path) -> None:
    repo = FakeRepository()
    repo.add_image([tar_layer([entry("usr/bin/tool", data=b"t"), entry("etc/conf", data=b"c")])])
    dest = tmp_path / "root"
    first = unpack_image(repo, "latest", str(dest), paths=["/usr/bin/tool"])
    assert first["diff"] == {"before": {str(dest): "absent"},
                             "after": {str(dest): {"digest": first["digest"], "paths": ["/usr/bin/tool"]}}}
    widened = unpack_image(repo, "latest", str(dest), check_mode=True)  # same digest, every path now
    assert widened["changed"] and widened["diff"]["before"] != widened["diff"]["after"]
    assert widened["diff"]["before"][str(dest)]["paths"] == ["/usr/bin/tool"]
    assert widened["diff"]["after"][str(dest)] == {"digest": first["digest"], "paths": ["/"]}
