"""Unit tests for the copy graph: walk, platform selection, index rewrite, push order.

Manifests are built with the rig's image builders (independent of the client)
and parsed with the real ``parse_manifest``; "fetching" is a dict lookup that
fails loudly when the walk asks for something it should have skipped.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.graph import (
    ROLE_CHILD,
    ROLE_REFERRER,
    ROLE_ROOT,
    build_graph,
    rewrite_index,
    select_children,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError, ManifestError
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Platform,
    parse_manifest,
    parse_platforms,
)
from tests.rig import images


def parsed(content: images.Image | images.Index):
    return parse_manifest(content.data, content.media_type)


class Source:
    """A fake source: manifests and referrers by digest, recording every fetch."""

    def __init__(self, *contents, referrers=None):
        self.manifests = {}
        for content in contents:
            for item in images.iter_content(content):
                self.manifests[item.digest] = parsed(item)
        self.referrer_map = referrers or {}
        self.fetched: list[str] = []
        self.listed: list[str] = []

    def add(self, content):
        for item in images.iter_content(content):
            self.manifests[item.digest] = parsed(item)

    def fetch(self, descriptor):
        self.fetched.append(descriptor.digest)
        return self.manifests[descriptor.digest]

    def referrers(self, digest):
        self.listed.append(digest)
        return [parsed(r).descriptor() for r in self.referrer_map.get(digest, [])]


def present_in(*digests):
    wanted = set(digests)
    return lambda descriptor: descriptor.digest in wanted


def assert_children_first(graph):
    pushed = [n.digest for n in graph.push_order()]
    for position, digest in enumerate(pushed):
        for child in graph.nodes[digest].children:
            if child in pushed:
                assert pushed.index(child) < position, f"{child} pushed after its parent {digest}"


# --- parse_platforms ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "all", [], ["all"], ["ALL"]])
def test_parse_platforms_all(value):
    assert parse_platforms(value) is None


def test_parse_platforms_list():
    assert parse_platforms(["linux/amd64", "linux/arm64/v8"]) == (
        Platform("linux", "amd64"), Platform("linux", "arm64", "v8"))


def test_parse_platforms_rejects_mix_and_garbage():
    with pytest.raises(InvalidInputError, match="mixes 'all'"):
        parse_platforms(["all", "linux/amd64"])
    with pytest.raises(InvalidInputError, match="os/arch"):
        parse_platforms(["amd64"])


# --- single images -----------------------------------------------------------------------------


def test_single_image_graph():
    image = images.make_image("one", layers=2)
    source = Source(image)
    graph = build_graph(parsed(image), source.fetch)
    assert graph.root is not None and graph.root.digest == image.digest and graph.root.role == ROLE_ROOT
    assert graph.root.raw == image.data  # byte-exact
    assert list(graph.blobs) == [image.config.digest, *(layer.digest for layer in image.layers)]
    assert [n.digest for n in graph.push_order()] == [image.digest]
    assert not graph.notes and not graph.rewritten and not graph.reduced
    assert source.fetched == []


def test_present_root_moves_nothing():
    image = images.make_image("here")
    graph = build_graph(parsed(image), Source().fetch, present=present_in(image.digest))
    assert graph.root.present
    assert graph.push_order() == [] and graph.blobs == {}


def test_shared_layers_counted_once():
    layer = images.make_layer("shared", 64)
    index = images.make_index([
        images.make_image("a", layers=[layer, images.make_layer("a-own", 64)], platform="linux/amd64"),
        images.make_image("b", layers=[layer], platform="linux/arm64"),
    ])
    graph = build_graph(parsed(index), Source(index).fetch)
    assert list(graph.blobs).count(layer.digest) == 1
    assert len(graph.blobs) == 2 + 2  # two configs, two distinct layers


# --- indexes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("docker", [False, True])
def test_index_children_before_root(docker):
    index = images.make_multiarch("m", ("linux/amd64", "linux/arm64/v8", "linux/s390x"), docker=docker)
    source = Source(index)
    graph = build_graph(parsed(index), source.fetch)
    order = [n.digest for n in graph.push_order()]
    assert order == [child.digest for child in index.children] + [index.digest]
    assert {graph.nodes[c.digest].role for c in index.children} == {ROLE_CHILD}
    assert_children_first(graph)
    for child in index.children:
        assert graph.nodes[child.digest].raw == child.data
        for blob in child.blobs():
            assert blob.digest in graph.blobs


def test_present_child_is_not_fetched():
    index = images.make_multiarch("p", ("linux/amd64", "linux/arm64"))
    done, todo = index.children
    source = Source(index)
    graph = build_graph(parsed(index), source.fetch, present=present_in(done.digest))
    assert source.fetched == [todo.digest]
    assert graph.nodes[done.digest].present
    assert [n.digest for n in graph.push_order()] == [todo.digest, index.digest]
    assert done.config.digest not in graph.blobs and todo.config.digest in graph.blobs


def test_nested_index():
    inner = images.make_multiarch("inner", ("linux/amd64", "linux/arm64"))
    outer = images.make_index([inner, images.make_image("solo", platform="linux/ppc64le")])
    graph = build_graph(parsed(outer), Source(outer).fetch)
    order = [n.digest for n in graph.push_order()]
    assert order[-1] == outer.digest
    assert order.index(inner.digest) > max(order.index(c.digest) for c in inner.children)
    assert_children_first(graph)


def test_wrong_manifest_from_source_is_refused():
    index = images.make_multiarch("w", ("linux/amd64",))
    other = images.make_image("other")
    source = Source(index)
    source.manifests[index.children[0].digest] = parsed(other)
    with pytest.raises(ManifestError, match="source registry is broken"):
        build_graph(parsed(index), source.fetch)


# --- platforms ---------------------------------------------------------------------------------


def test_select_children_keeps_attestations_of_kept_images():
    amd = images.make_image("amd", platform="linux/amd64")
    arm = images.make_image("arm", platform="linux/arm64")
    index_doc = images.make_index([amd, arm]).manifest
    attestation = {"mediaType": images.OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 10,
                   "platform": {"os": "unknown", "architecture": "unknown"},
                   "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                   "vnd.docker.reference.digest": amd.digest}}
    other = dict(attestation, digest="sha256:" + "b" * 64,
                 annotations={"vnd.docker.reference.type": "attestation-manifest",
                              "vnd.docker.reference.digest": arm.digest})
    index_doc["manifests"] += [attestation, other]
    index = parse_manifest(json.dumps(index_doc).encode(), images.OCI_INDEX)
    selection = select_children(index, parse_platforms(["linux/amd64"]))
    assert [d.digest for d in selection.kept] == [amd.digest, attestation["digest"]]
    assert [d.digest for d in selection.dropped] == [arm.digest, other["digest"]]


def test_select_children_arm64_variant_normalised():
    index = parsed(images.make_multiarch("v", ("linux/amd64", "linux/arm64/v8")))
    assert [str(d.platform) for d in select_children(index, parse_platforms(["linux/arm64"])).kept] == \
        ["linux/arm64/v8"]


def test_no_matching_platform_lists_what_there_is():
    index = images.make_multiarch("n", ("linux/amd64", "linux/arm64"))
    with pytest.raises(InvalidInputError, match=r"none of the platforms windows/amd64.*linux/amd64, linux/arm64"):
        build_graph(parsed(index), Source(index).fetch, platforms=parse_platforms(["windows/amd64"]))


def test_all_platforms_selected_keeps_the_index_byte_exact():
    index = images.make_multiarch("all", ("linux/amd64", "linux/arm64"))
    graph = build_graph(parsed(index), Source(index).fetch,
                        platforms=parse_platforms(["linux/amd64", "linux/arm64"]))
    assert graph.root.digest == index.digest and graph.root.raw == index.data
    assert not graph.rewritten and not graph.reduced


def test_subset_without_rewrite_copies_children_only():
    index = images.make_multiarch("s", ("linux/amd64", "linux/arm64", "linux/s390x"))
    source = Source(index)
    graph = build_graph(parsed(index), source.fetch, platforms=parse_platforms(["linux/arm64"]))
    arm = index.children[1]
    assert graph.reduced and graph.root is None
    assert [n.digest for n in graph.push_order()] == [arm.digest]
    assert source.fetched == [arm.digest]
    assert set(graph.blobs) == {b.digest for b in arm.blobs()}
    assert any("allow_index_rewrite is off" in note for note in graph.notes)


def test_subset_with_rewrite_writes_a_new_index():
    index = images.make_multiarch("r", ("linux/amd64", "linux/arm64", "linux/s390x"), docker=True)
    platforms = parse_platforms(["linux/amd64", "linux/s390x"])
    graph = build_graph(parsed(index), Source(index).fetch, platforms=platforms, allow_index_rewrite=True)
    assert graph.rewritten and graph.root.digest != index.digest
    doc = json.loads(graph.root.raw)
    original = index.manifest
    assert doc["mediaType"] == original["mediaType"] and doc["schemaVersion"] == 2
    assert doc["manifests"] == [original["manifests"][0], original["manifests"][2]]
    assert graph.root.media_type == images.DOCKER_MANIFEST_LIST
    assert [n.digest for n in graph.push_order()] == [index.children[0].digest, index.children[2].digest,
                                                      graph.root.digest]
    assert any(graph.root.digest in note and index.digest in note for note in graph.notes)
    # Deterministic: the same request rewrites to the same digest.
    again = build_graph(parsed(index), Source(index).fetch, platforms=platforms, allow_index_rewrite=True)
    assert again.root.digest == graph.root.digest


def test_rewrite_keeps_other_fields():
    index = images.make_index([images.make_image("x", platform="linux/amd64"),
                               images.make_image("y", platform="linux/arm64")],
                              annotations={"org.opencontainers.image.version": "1.2"})
    rewritten = rewrite_index(parsed(index), parsed(index).manifests[:1])
    doc = json.loads(rewritten.raw)
    assert doc["annotations"] == {"org.opencontainers.image.version": "1.2"}
    assert len(doc["manifests"]) == 1


def test_platforms_on_a_single_image_is_noted():
    image = images.make_image("single")
    graph = build_graph(parsed(image), Source().fetch, platforms=parse_platforms(["linux/arm64"]))
    assert graph.root.digest == image.digest
    assert any("platforms filter does not apply" in note for note in graph.notes)


# --- referrers ---------------------------------------------------------------------------------


def test_referrers_recursive_and_root_last():
    image = images.make_image("subject")
    sbom = images.make_artifact(image)
    signature_of_sbom = images.make_artifact(sbom, artifact_type="application/vnd.ocireg.test.sig",
                                             payload=b"sig")
    source = Source(image, sbom, signature_of_sbom,
                    referrers={image.digest: [sbom], sbom.digest: [signature_of_sbom]})
    graph = build_graph(parsed(image), source.fetch, referrers=source.referrers)
    order = [n.digest for n in graph.push_order()]
    assert order == [sbom.digest, signature_of_sbom.digest, image.digest]
    assert graph.nodes[sbom.digest].role == ROLE_REFERRER and graph.nodes[sbom.digest].subject == image.digest
    for blob in (*sbom.blobs(), *signature_of_sbom.blobs()):
        assert blob.digest in graph.blobs
    assert source.listed == [image.digest, sbom.digest, signature_of_sbom.digest]


def test_referrers_of_index_children_found_even_when_present():
    index = images.make_multiarch("ri", ("linux/amd64", "linux/arm64"))
    child = index.children[0]
    sig = images.make_artifact(child)
    source = Source(index, sig, referrers={child.digest: [sig]})
    everything = present_in(index.digest, *(c.digest for c in index.children))
    graph = build_graph(parsed(index), source.fetch, referrers=source.referrers, present=everything)
    assert [n.digest for n in graph.push_order()] == [sig.digest]
    assert set(graph.blobs) == {b.digest for b in sig.blobs()}  # nothing of the present images


def test_listed_referrers_that_name_another_subject_are_not_copied_as_its_referrers():
    """A fallback tag answered with something else (GitLab answers it with the subject): the listed manifests are
    judged by their own subject field once fetched, and none naming the subject means none is its referrer."""
    image, other = images.make_image("judged"), images.make_image("other")
    of_other = images.make_artifact(other)
    unrelated = images.make_image("unrelated")
    source = Source(image, of_other, unrelated, referrers={image.digest: [of_other, unrelated]})
    graph = build_graph(parsed(image), source.fetch, referrers=source.referrers)
    assert [n.digest for n in graph.push_order()] == [image.digest]
    assert any("not copied as its referrers" in note and of_other.digest in note for note in graph.notes)


def test_without_referrers_nothing_is_listed():
    image = images.make_image("quiet")
    source = Source(image)
    build_graph(parsed(image), source.fetch)
    assert source.listed == []


def test_rewritten_index_does_not_ask_for_its_own_referrers():
    index = images.make_multiarch("rr", ("linux/amd64", "linux/arm64"))
    source = Source(index, referrers={})
    graph = build_graph(parsed(index), source.fetch, platforms=parse_platforms(["linux/amd64"]),
                        allow_index_rewrite=True, referrers=source.referrers)
    assert graph.root.digest not in source.listed
    assert source.listed == [index.children[0].digest]
    assert any("referrers of the source index" in note for note in graph.notes)


# --- layers that are not copied, schema 1 ------------------------------------------------------


def test_foreign_layers_are_left_out_with_a_note():
    image = images.make_image("win")
    doc = image.manifest
    foreign = {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
               "digest": "sha256:" + "f" * 64, "size": 1000, "urls": ["https://example.invalid/layer"]}
    no_urls = {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
               "digest": "sha256:" + "e" * 64, "size": 10}
    doc["layers"] += [foreign, no_urls]
    manifest = parse_manifest(json.dumps(doc).encode(), images.OCI_MANIFEST)
    graph = build_graph(manifest, Source().fetch)
    assert foreign["digest"] in graph.foreign and foreign["digest"] not in graph.blobs
    # Without URLs a client can only get it from the registry: it is copied.
    assert no_urls["digest"] in graph.blobs
    assert any("non-distributable" in note and foreign["digest"] in note for note in graph.notes)


def test_schema1_layers_deduplicated_without_sizes():
    layer = "sha256:" + "1" * 64
    empty = "sha256:" + "2" * 64
    doc = {"schemaVersion": 1, "name": "x/y", "tag": "1", "architecture": "amd64",
           "fsLayers": [{"blobSum": empty}, {"blobSum": layer}, {"blobSum": empty}],
           "history": [{"v1Compatibility": "{}"}] * 3}
    manifest = parse_manifest(json.dumps(doc).encode(), "application/vnd.docker.distribution.manifest.v1+json")
    graph = build_graph(manifest, Source().fetch)
    assert sorted(graph.blobs) == sorted([layer, empty])
    assert all(d.size is None for d in graph.blobs.values())
    assert graph.root.raw == json.dumps(doc).encode()


# --- property: any tree of indexes is pushed children first ------------------------------------


def _tree(draw_shape, seed="t"):
    if isinstance(draw_shape, int):
        return images.make_image(f"{seed}-{draw_shape}", layer_size=16, platform="linux/amd64")
    return images.make_index([_tree(part, f"{seed}.{i}") for i, part in enumerate(draw_shape)])


_shapes = st.recursive(st.integers(0, 3), lambda inner: st.lists(inner, min_size=1, max_size=3), max_leaves=8)


@settings(max_examples=40, deadline=None)
@given(shape=_shapes, present_mask=st.integers(0, 2**16))
def test_property_push_order_and_completeness(shape, present_mask):
    root = _tree(shape)
    everything = list(images.iter_content(root))
    present = {c.digest for i, c in enumerate(everything) if present_mask >> i & 1 and c is not root}
    source = Source(root)
    graph = build_graph(parsed(root), source.fetch, present=present_in(*present))
    assert_children_first(graph)
    pushed = {n.digest for n in graph.push_order()}
    assert root.digest in pushed
    assert not pushed & present
    # Every manifest not covered by a present ancestor is pushed, with its blobs.

    def walk(content, covered):
        is_covered = covered or content.digest in present
        if not is_covered:
            assert content.digest in pushed
            for blob in (content.blobs() if isinstance(content, images.Image) else ()):
                assert blob.digest in graph.blobs
        for child in getattr(content, "children", ()):
            walk(child, is_covered)
    walk(root, False)
    # A present manifest's subtree is never fetched.
    for content in everything:
        if content.digest in present:
            for below in list(images.iter_content(content))[:-1]:
                assert below.digest not in source.fetched
