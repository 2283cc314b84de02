"""MirrorCounts: each digest once per destination, whichever tag moved it (pure)."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyResult,
    Digests,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.counts import (
    MirrorCounts,
    distinct_bytes,
)


def copy(copied=Digests(), present=Digests(), mounted=()):
    return CopyResult("sha256:root", "application/vnd.oci.image.manifest.v1+json", True, {"t": None},
                      copied_digests=Digests(set(copied.manifests), dict(copied.blobs)),
                      present_digests=Digests(set(present.manifests), dict(present.blobs)), mounted=list(mounted))


def test_two_tags_predicting_one_image_count_it_once() -> None:
    image = Digests({"m1"}, {"base": 30, "own": 7})
    counts = MirrorCounts()
    counts.add("dest", copy(image, Digests(set(), {"old": 5})))
    counts.add("dest", copy(image, Digests(set(), {"old": 5})))
    assert counts.copied() == {"manifests": 1, "blobs": 2, "bytes": 37}
    assert counts.already_present() == {"manifests": 0, "blobs": 1, "bytes": 5}


def test_what_one_tag_wrote_is_not_present_for_the_next_whichever_ran_first() -> None:
    first = copy(Digests({"m1"}, {"base": 30, "own": 7}))
    # The second tag ran later: the manifest and the base layer were there, written by the first.
    later = copy(Digests({"m2"}, {"two": 9}), Digests({"m1"}, {"base": 30}))
    orders = []
    for order in ([first, later], [later, first]):
        counts = MirrorCounts()
        for outcome in order:
            counts.add("dest", outcome)
        orders.append((counts.copied(), counts.already_present()))
    assert orders[0] == orders[1] == ({"manifests": 2, "blobs": 3, "bytes": 46},
                                      {"manifests": 0, "blobs": 0, "bytes": 0})


def test_what_a_failed_tag_wrote_counts_as_copied_not_present() -> None:
    # The failed tag wrote "base" and "cfg" then failed (no CopyResult); the next tag found base in place.
    later = copy(Digests({"m2"}, {"two": 9}), Digests(set(), {"base": 30, "old": 5}))
    counts = MirrorCounts()
    counts.add("dest", later)
    counts.add_written("dest", {"base": ("copied", 30), "cfg": ("copied", 2), "lib": ("mounted", 4)})
    counts.add_written("other", {"base": ("copied", 30)})  # another destination: its own count
    assert counts.copied() == {"manifests": 1, "blobs": 4, "bytes": 71}
    assert counts.already_present() == {"manifests": 0, "blobs": 1, "bytes": 5}
    assert distinct_bytes([later], {"base": ("copied", 30), "lib": ("mounted", 4)}) == 39


def test_mounted_blobs_are_neither_copied_nor_present() -> None:
    counts = MirrorCounts()
    counts.add("dest", copy(Digests({"m1"}), mounted=["base"]))
    counts.add("dest", copy(Digests({"m2"}), Digests(set(), {"base": 30})))
    assert counts.copied() == {"manifests": 2, "blobs": 0, "bytes": 0}
    assert counts.already_present() == {"manifests": 0, "blobs": 0, "bytes": 0}


def test_destinations_count_apart() -> None:
    image = Digests({"m1"}, {"base": 30})
    counts = MirrorCounts()
    counts.add(("host", "a"), copy(image))
    counts.add(("host", "b"), copy(image))
    assert counts.copied() == {"manifests": 2, "blobs": 2, "bytes": 60}
    assert distinct_bytes([copy(image), copy(image)]) == 30


def test_a_copy_result_counts_its_digests_and_refuses_a_bare_counter() -> None:
    result = copy(Digests({"m1"}, {"a": 3, "b": 4}), Digests({"m0"}))
    assert result.copied == {"manifests": 1, "blobs": 2, "bytes": 7}
    assert result.to_dict()["already_present"] == {"manifests": 1, "blobs": 0, "bytes": 0}
    with pytest.raises(TypeError):  # a counter bumped without its digest would be lost
        result.copied["blobs"] += 1  # type: ignore[index]


def test_the_children_a_failed_index_pushed_count_as_copied_not_present() -> None:
    # The failed tag pushed child "c1" (and its blob) before its index was refused; a later tag found c1 in place.
    later = copy(Digests({"idx2"}, {}), Digests({"c1"}, {"layer": 7}))
    counts = MirrorCounts()
    counts.add("dest", later)
    counts.add_written("dest", {"layer": ("copied", 7)}, manifests={"c1"})
    assert counts.copied() == {"manifests": 2, "blobs": 1, "bytes": 7}
    assert counts.already_present() == {"manifests": 0, "blobs": 0, "bytes": 0}
