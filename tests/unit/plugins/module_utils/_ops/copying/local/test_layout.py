"""Local copy targets without a registry: layout <-> layout <-> archives through the copy engine.

Source layouts are written by the rig (tests/rig/images.py), which does not use
the project's code, so a bug in our layout writer cannot hide in the fixture.
"""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.transport_ref import (
    REF_NAME,
    LocalRef,
    parse_local_ref,
    split_name,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.archive import (
    STAGING_SUFFIX,
    OciArchive,
    TarIndex,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.docker_archive import (
    DockerArchive,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.layout import (
    LayoutDir,
    LayoutView,
    merge_index,
    replacing_file,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.transfer import (
    run_transfer,
)

from tests.rig import images


def no_registry(reference, side):
    raise AssertionError(f"no registry should be opened here ({side}: {reference})")


def copy(src: str, dest: str, **options):
    tags = options.pop("tags", None)
    return run_transfer(src, dest, CopyOptions(**options), no_registry, tag_patterns=tags)


def index_of(path: Path) -> dict:
    return json.loads((path / "index.json").read_text())


def names(path: Path) -> dict:
    return {e["annotations"][REF_NAME]: e["digest"] for e in index_of(path)["manifests"]
            if REF_NAME in e.get("annotations", {})}


def all_files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def assert_blobs_verify(path: Path) -> None:
    for blob in (path / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("oci:/srv/b", LocalRef("oci", "/srv/b", None)),
    ("oci:/srv/b:1.0", LocalRef("oci", "/srv/b", "1.0")),
    ("oci-archive:b.tar:team/app:1.0", LocalRef("oci-archive", "b.tar", "team/app:1.0")),
    ("docker-archive:x.tar:app:latest", LocalRef("docker-archive", "x.tar", "app:latest")),
])
def test_parse_local_ref(text, expected):
    assert parse_local_ref(text) == expected


@pytest.mark.parametrize("text, problem", [
    ("oci:", "no path"), ("oci:dir:", "names nothing"), ("oci:dir:Bad Name", "not a usable image name"),
    ("oci:dir:team/app@sha256:" + "a" * 64, "not a usable image name"), ("nfs:x", "not a local target"),
])
def test_parse_local_ref_refuses(text, problem):
    with pytest.raises(InvalidInputError, match=problem):
        parse_local_ref(text)


def test_split_name():
    assert split_name("team/app:1.0") == ("team/app", "1.0")
    assert split_name("1.0") == (None, "1.0")


def test_merge_index_keeps_other_entries_and_replaces_same_name():
    doc = {"schemaVersion": 2, "annotations": {"x": "y"}, "manifests": [
        {"digest": "sha256:" + "1" * 64, "annotations": {REF_NAME: "other:1"}},
        {"digest": "sha256:" + "2" * 64, "annotations": {REF_NAME: "team/app:1"}},
    ]}
    merged = merge_index(doc, {"team/app:1": {"digest": "sha256:" + "3" * 64}}, [{"digest": "sha256:" + "4" * 64}])
    assert merged["annotations"] == {"x": "y"}
    assert [e["digest"][-1] for e in merged["manifests"]] == ["1", "3", "4"]
    assert merge_index(merged, {}, [{"digest": "sha256:" + "4" * 64}])["manifests"] == merged["manifests"]


# --- layouts ---------------------------------------------------------------------------------------


@pytest.fixture
def multiarch(tmp_path):
    content = images.make_multiarch("lay", ("linux/amd64", "linux/arm64/v8", "linux/s390x"), layer_size=70_000)
    images.write_oci_layout(tmp_path / "src", content, tag="1.0")
    return content, tmp_path / "src"


def test_layout_to_layout_is_byte_exact_and_idempotent(multiarch, tmp_path):
    content, src = multiarch
    done = copy(f"oci:{src}:1.0", f"oci:{tmp_path / 'out'}:team/app:1.0")
    assert done.copy.changed and done.copy.digest == content.digest
    out = tmp_path / "out"
    assert names(out) == {"team/app:1.0": content.digest}
    assert (out / "blobs/sha256" / content.digest.partition(":")[2]).read_bytes() == content.data
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert_blobs_verify(out)
    before = {p: os.stat(out / p).st_mtime_ns for p in all_files(out)}
    again = copy(f"oci:{src}:1.0", f"oci:{out}:team/app:1.0")
    assert not again.copy.changed
    assert {p: os.stat(out / p).st_mtime_ns for p in all_files(out)} == before


def test_check_mode_creates_nothing(multiarch, tmp_path):
    _content, src = multiarch
    for dest in (f"oci:{tmp_path / 'new'}:1", f"oci-archive:{tmp_path / 'new.tar'}:1"):
        done = copy(f"oci:{src}:1.0", dest, check_mode=True)
        assert done.copy.changed and done.copy.copied["blobs"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_corrupt_source_blob_aborts_before_index(multiarch, tmp_path):
    content, src = multiarch
    layer = content.children[1].layers[0]
    path = src / "blobs/sha256" / layer.digest.partition(":")[2]
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(DigestMismatchError):
        copy(f"oci:{src}:1.0", f"oci:{out}:1.0")
    assert not (out / "index.json").exists()
    assert not (out / "blobs/sha256" / layer.digest.partition(":")[2]).exists()
    assert not [p for p in all_files(out) if p.endswith(".partial")]


def test_interrupted_export_resumes_with_only_the_missing_blobs(multiarch, tmp_path):
    content, src = multiarch
    out = tmp_path / "out"
    copy(f"oci:{src}:1.0", f"oci:{out}:1.0")
    # Simulate an interruption: index.json never written, two blobs missing, a partial file left.
    (out / "index.json").unlink()
    gone = [content.children[0].layers[0], content.children[2].config]
    for blob in gone:
        (out / "blobs/sha256" / blob.digest.partition(":")[2]).unlink()
    (out / "blobs/sha256" / ".deadbeef.0001.partial").write_bytes(b"half")
    done = copy(f"oci:{src}:1.0", f"oci:{out}:1.0")
    assert done.copy.changed and done.copy.copied["blobs"] == 2
    assert done.copy.copied["bytes"] == sum(b.size for b in gone)
    assert names(out) == {"1.0": content.digest}
    assert not copy(f"oci:{src}:1.0", f"oci:{out}:1.0").copy.changed


def test_merge_keeps_entries_of_other_tools(multiarch, tmp_path):
    content, src = multiarch
    other = images.make_image("other-tool")
    out = tmp_path / "shared"
    images.write_oci_layout(out, other, tag="theirs")
    copy(f"oci:{src}:1.0", f"oci:{out}:team/app:1.0")
    assert names(out) == {"theirs": other.digest, "team/app:1.0": content.digest}


def test_referrers_travel_and_are_found_in_the_layout(tmp_path):
    subject = images.make_image("signed", layers=2, layer_size=10_000)
    sbom = images.make_artifact(subject)
    signature = images.make_artifact(subject, artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json",
                                     payload=b'{"sig": 1}')
    src = tmp_path / "src"
    images.write_oci_layout(src, subject, tag="1.0")
    # Referrers as unnamed index.json entries (how oras and we store them).
    index = index_of(src)
    for ref in (sbom, signature):
        for blob in (*ref.blobs(), ref):
            (src / "blobs/sha256" / blob.digest.partition(":")[2]).write_bytes(blob.data)
        index["manifests"].append(ref.index_descriptor())
    (src / "index.json").write_text(json.dumps(index))
    done = copy(f"oci:{src}:1.0", f"oci:{tmp_path / 'out'}:1.0", referrers=True)
    assert done.copy.copied["manifests"] == 3
    view = LayoutView(LayoutDir(str(tmp_path / "out")), None)
    assert sorted(d.digest for d in view.referrers(subject.digest)) == sorted([sbom.digest, signature.digest])
    without = copy(f"oci:{src}:1.0", f"oci:{tmp_path / 'plain'}:1.0")
    assert without.copy.copied["manifests"] == 1


# --- archives --------------------------------------------------------------------------------------


def test_archive_round_trip_is_byte_exact(multiarch, tmp_path):
    content, src = multiarch
    archive = tmp_path / "bundle.tar"
    done = copy(f"oci:{src}:1.0", f"oci-archive:{archive}:team/app:1.0")
    assert done.copy.changed and archive.is_file() and not Path(str(archive) + STAGING_SUFFIX).exists()
    with tarfile.open(archive) as tar:
        members = tar.getnames()
    assert members[0] == "oci-layout" and members[-1] == "index.json"
    back = copy(f"oci-archive:{archive}:team/app:1.0", f"oci:{tmp_path / 'back'}:1.0")
    assert back.copy.digest == content.digest
    assert_blobs_verify(tmp_path / "back")
    assert not copy(f"oci:{src}:1.0", f"oci-archive:{archive}:team/app:1.0").copy.changed


def test_archive_is_read_by_offsets(multiarch, tmp_path):
    content, src = multiarch
    archive = tmp_path / "b.tar"
    copy(f"oci:{src}:1.0", f"oci-archive:{archive}:1.0")
    index = TarIndex.read(archive, "test")
    layer = content.children[0].layers[0]
    member = index.members["blobs/sha256/" + layer.digest.partition(":")[2]]
    with open(archive, "rb") as handle:
        handle.seek(member.offset)
        assert handle.read(member.size) == layer.data


def test_archive_corrupt_member_is_detected(multiarch, tmp_path):
    content, src = multiarch
    archive = tmp_path / "b.tar"
    copy(f"oci:{src}:1.0", f"oci-archive:{archive}:1.0")
    layer = content.children[2].layers[0]
    member = TarIndex.read(archive, "t").members["blobs/sha256/" + layer.digest.partition(":")[2]]
    with open(archive, "r+b") as handle:
        handle.seek(member.offset + 10)
        byte = handle.read(1)
        handle.seek(member.offset + 10)
        handle.write(bytes([byte[0] ^ 0xFF]))
    out = tmp_path / "out"
    with pytest.raises(DigestMismatchError):
        copy(f"oci-archive:{archive}:1.0", f"oci:{out}:1.0")
    assert not (out / "index.json").exists()


def test_archive_resume_and_merge(multiarch, tmp_path):
    content, src = multiarch
    archive = tmp_path / "b.tar"
    first = images.make_image("first")
    images.write_oci_layout(tmp_path / "first", first, tag="1")
    copy(f"oci:{tmp_path / 'first'}:1", f"oci-archive:{archive}:one/app:1")
    # An interrupted second export: some blobs staged, no archive rewrite yet.
    store = OciArchive(str(archive))
    blob = content.children[0].layers[0]
    store.write_blob(blob.digest, blob.size, [blob.data])
    done = copy(f"oci:{src}:1.0", f"oci-archive:{archive}:two/app:1.0")
    assert done.copy.changed and done.copy.already_present["blobs"] == 1
    assert not Path(str(archive) + STAGING_SUFFIX).exists()
    listed = {e["annotations"][REF_NAME] for e in OciArchive(str(archive)).read_index()["manifests"]}
    assert listed == {"one/app:1", "two/app:1.0"}
    assert not copy(f"oci:{src}:1.0", f"oci-archive:{archive}:two/app:1.0").copy.changed


def test_bundle_mirror_keeps_each_repository(tmp_path):
    one, two = images.make_image("r-one"), images.make_multiarch("r-two")
    src = tmp_path / "src"
    images.write_oci_layout(src, one, tag="a/app:1", more=[(two, "b/tool:2"), (images.make_image("x"), "b/tool:3")])
    archive = tmp_path / "bundle.tar"
    done = copy(f"oci:{src}", f"oci-archive:{archive}", tags=[r"[12]"])
    assert done.mirror.changed and sorted(done.mirror.tags) == ["a/app:1", "b/tool:2"]
    listed = {e["annotations"][REF_NAME]: e["digest"] for e in OciArchive(str(archive)).read_index()["manifests"]}
    assert listed == {"a/app:1": one.digest, "b/tool:2": two.digest}


@pytest.mark.parametrize("side,fix", [("src", "drop the name, or drop tags"), ("dest", "every tag keeps its own name")])
def test_mirror_refuses_a_named_local_side(tmp_path, side, fix):
    images.write_oci_layout(tmp_path / "src", images.make_image("m1"), tag="a/app:1")
    src, dest = f"oci:{tmp_path / 'src'}", f"oci:{tmp_path / 'dest'}"
    if side == "src":
        src += ":a/app:1"
    else:
        dest += ":a/app:1"
    with pytest.raises(InvalidInputError) as caught:
        copy(src, dest, tags=[".*"])
    assert caught.value.message.startswith(f"with tags (mirror mode) {side} must be a layout or archive without a name")
    assert fix in caught.value.message
    assert not (tmp_path / "dest").exists()  # refused before anything was written


@pytest.mark.parametrize("store,spelled", [
    (LayoutDir, "oci:{}"), (OciArchive, "oci-archive:{}"), (DockerArchive, "docker-archive:{}")])
def test_stores_are_spelled_as_users_write_them(tmp_path, store, spelled):
    where = tmp_path / "x"
    assert store(str(where)).describe() == spelled.format(where)
    assert repr(store(str(where))) == f"{store.__name__}({str(where)!r})"


def test_replacing_file_swaps_in_whole_or_not_at_all(tmp_path):
    target = tmp_path / "index.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), replacing_file(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["index.json"]
    with replacing_file(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["index.json"]


def test_a_missing_name_lists_what_the_archive_holds(tmp_path):
    more = [(images.make_image(f"n{i}"), f"src/app:{i}") for i in range(1, 7)]
    images.write_oci_layout(tmp_path / "src", images.make_image("n0"), tag="src/app:0", more=more)
    archive = tmp_path / "bundle.tar"
    copy(f"oci:{tmp_path / 'src'}", f"oci-archive:{archive}", tags=[".*"])
    with pytest.raises(NotFoundError) as caught:
        copy(f"oci-archive:{archive}:src/app:9.9", f"oci:{tmp_path / 'out'}:1")
    assert caught.value.message == (
        f"the source image oci-archive:{archive}:src/app:9.9 does not exist: oci-archive:{archive} holds 7 named "
        "images: src/app:0, src/app:1, src/app:2, src/app:3, src/app:4 and 2 more")  # no registry credentials hint
    images.write_oci_layout(tmp_path / "one", images.make_image("o"), tag="1.0")
    with pytest.raises(NotFoundError, match=r"oci:.*/one:2\.0 does not exist: oci:.*/one holds 1 named image: 1\.0$"):
        copy(f"oci:{tmp_path / 'one'}:2.0", f"oci:{tmp_path / 'out'}:1")
    assert not (tmp_path / "out").exists()


def test_path_alone_needs_a_single_image(tmp_path):
    images.write_oci_layout(tmp_path / "two", images.make_image("p1"), tag="1", more=[(images.make_image("p2"), "2")])
    with pytest.raises(InvalidInputError, match="holds 2 images"):
        copy(f"oci:{tmp_path / 'two'}", f"oci:{tmp_path / 'x'}:1")


def test_refuses_to_write_into_a_non_layout_directory(multiarch, tmp_path):
    _content, src = multiarch
    busy = tmp_path / "home"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="without an oci-layout"):
        copy(f"oci:{src}:1.0", f"oci:{busy}:1.0")
    assert all_files(busy) == ["notes.txt"]


# --- docker archives -------------------------------------------------------------------------------


def test_docker_archive_write_and_read_back(tmp_path):
    content = images.make_image("dock", docker=True, layers=2, layer_size=40_000)
    images.write_oci_layout(tmp_path / "src", content, tag="1")
    archive = tmp_path / "d.tar"
    done = copy(f"oci:{tmp_path / 'src'}:1", f"docker-archive:{archive}:team/app:1")
    assert done.copy.changed and any("digest" in note and "change" in note for note in done.copy.notes)
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest == [{"Config": content.config.digest.partition(":")[2] + ".json",
                             "RepoTags": ["team/app:1"],
                             "Layers": [layer.diff_id.partition(":")[2] + "/layer.tar" for layer in content.layers]}]
        for layer in content.layers:  # uncompressed, and what the config's diff_ids say
            data = tar.extractfile(layer.diff_id.partition(":")[2] + "/layer.tar").read()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.diff_id
    back = copy(f"docker-archive:{archive}:team/app:1", f"oci:{tmp_path / 'back'}:1")
    assert back.copy.digest != content.digest  # a docker archive has no manifest: a new one is built
    view = LayoutView(LayoutDir(str(tmp_path / "back")), None)
    rebuilt = view.fetch_manifest("1")
    assert rebuilt.config.digest == content.config.digest
    assert [layer.digest for layer in rebuilt.layers] == [layer.diff_id for layer in content.layers]
    assert_blobs_verify(tmp_path / "back")


def test_docker_archive_refuses_an_index(multiarch, tmp_path):
    _content, src = multiarch
    with pytest.raises(InvalidInputError, match="single-platform"):
        copy(f"oci:{src}:1.0", f"docker-archive:{tmp_path / 'd.tar'}:app:1")
    assert not (tmp_path / "d.tar").exists()
