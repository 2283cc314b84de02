"""The prune's undo window (_ops/retention/quarantine.py) between local layouts: names, copies, read-back, refusals.

A layout is a real store of the copy engine (no fake): the source is an OCI layout written by the rig,
the target a layout or an archive in a temporary directory. Registry targets are tested on a real
Distribution in tests/integration/test_registry_prune_quarantine.py.
"""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.archive import OciArchive
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.layout import LayoutDir, LayoutView
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import Cascade, PlanEntry
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.quarantine import (
    Quarantine,
    QuarantineError,
    fallback_indexes,
    group_roots,
    quarantine_names,
)
from tests.rig import images

REPO = "team/app"
HOST = "r.example"


@pytest.fixture
def source(tmp_path):
    """A layout holding an image (``team/app:dev-1``) and an SBOM that names it as its subject."""
    image = images.make_image("q-image")
    sbom = images.make_artifact(image)
    images.write_oci_layout(tmp_path / "src", image, tag=f"{REPO}:dev-1", more=[(sbom, f"{REPO}:sbom")])
    group = [PlanEntry(f"{HOST}/{REPO}", sbom.digest, sbom.media_type, (), "delete", cascaded_from=(image.digest,)),
             PlanEntry(f"{HOST}/{REPO}", image.digest, image.media_type, ("dev-1",), "delete",
                       cascaded=(Cascade(sbom.digest, "referrer"),))]
    return LayoutView(LayoutDir(str(tmp_path / "src")), REPO), group, image, sbom


def test_names_roots_and_fallback_indexes():
    digest = "sha256:" + "a" * 64
    index = "sha256:" + "b" * 64
    tagged = PlanEntry(REPO, digest, "", ("1.0", "stable"), "delete", cascaded=(Cascade(index, "referrers_index"),))
    fallback = PlanEntry(REPO, index, "", ("sha256-" + "a" * 64,), "delete", cascaded_from=(digest,))
    assert quarantine_names(tagged) == ["1.0", "stable"]
    assert quarantine_names(PlanEntry(REPO, digest, "", (), "delete")) == ["untagged-" + "a" * 64]
    assert group_roots([fallback, tagged]) == [tagged]
    assert fallback_indexes([fallback, tagged]) == {index}


@pytest.mark.parametrize("dest, words", [
    ("", "quarantine.dest is empty"),
    ("oci:/backups:app:1.0", "names an image"),
    ("docker-archive:/backups/x.tar", "cannot hold an image byte-exact"),
    ("r.example/holding:1.0", "carries a tag or digest"),
    ("r.example/holding@sha256:" + "a" * 64, "carries a tag or digest"),
])
def test_misuse_is_one_line(dest, words):
    with pytest.raises(InvalidInputError) as caught:
        Quarantine(dest, lambda reference: None)
    assert words in caught.value.message and "\n" not in caught.value.message


def test_planned_names_where_each_digest_would_go_and_touches_nothing(source, tmp_path):
    _view, group, image, sbom = source
    layout = tmp_path / "q"
    planned = Quarantine(f"oci:{layout}").planned(REPO, group)
    assert planned == {image.digest: f"oci:{layout}:{REPO}:dev-1", sbom.digest: f"oci:{layout}@{sbom.digest}"}
    opened = []
    holding = Quarantine(f"{HOST}/holding/app", opened.append).planned(REPO, group)
    assert holding[image.digest] == f"{HOST}/holding/app:dev-1"
    assert not layout.exists() and opened == []


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_keep_copies_the_group_byte_exact_and_reads_it_back(source, tmp_path, transport):
    view, group, image, sbom = source
    path = tmp_path / ("q" if transport == "oci" else "q.tar")
    went = Quarantine(f"{transport}:{path}").keep(view, REPO, group)
    assert went[image.digest] == f"{transport}:{path}:{REPO}:dev-1"
    store = LayoutDir(str(path)) if transport == "oci" else OciArchive(str(path))
    kept = LayoutView(store, REPO)
    assert kept.resolve("dev-1").digest == image.digest
    assert kept.fetch_manifest(sbom.digest).subject.digest == image.digest
    assert [d.digest for d in kept.referrers(image.digest)] == [sbom.digest]


def test_a_target_that_cannot_be_written_raises_one_line(source, tmp_path):
    view, group, _image, _sbom = source
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(QuarantineError) as caught:
        Quarantine(f"oci:{blocker}/q").keep(view, REPO, group)
    message = caught.value.message
    assert message.startswith(f"the quarantine copy of {REPO}:dev-1 to oci:{blocker}/q failed (")
    assert "\n" not in message


def test_a_holding_repository_this_run_prunes_is_refused():
    holding = Quarantine(f"{HOST}/shop/holding", lambda reference: None)
    holding.check_not_pruned(HOST, ["shop/web"])
    holding.check_not_pruned("other.example", ["shop/holding"])
    Quarantine("oci:/backups/q").check_not_pruned(HOST, ["shop/holding"])
    with pytest.raises(InvalidInputError) as caught:
        holding.check_not_pruned(HOST, ["shop/web", "shop/holding"])
    assert "is a repository this run prunes" in caught.value.message
    # A catalog glob selects the holding repository too: the refusal says how to leave it out.
    assert "exclude_repositories: ['shop/holding']" in caught.value.message
