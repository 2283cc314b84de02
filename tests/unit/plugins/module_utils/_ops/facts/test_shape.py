"""Pure parts of the inspect operation: tag order, name filters, option checks, result shaping."""
from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_order import (
    TAG_SORTS,
    compile_full_match,
    keep_matching,
    semver_key,
    sort_tags,
    under_prefix,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.describe import (
    PlatformNotFoundError,
    select_child,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.options import INCLUDE_CHOICES, check_include
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.query import split_catalog_term
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.shape import (
    manifest_document,
    missing_result,
    platform_string,
    shape_config,
    shape_layers,
    shape_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    DEFAULT_MAX_CONCURRENCY,
    MAX_CONCURRENCY_LIMIT,
    check_concurrency,
    map_bounded,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError

# -- semver ------------------------------------------------------------------------------


def test_semver_order_follows_semver_org_precedence_example():
    # semver.org item 11 example, shuffled: the sort must restore it.
    expected = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]
    shuffled = expected[:]
    random.Random(4).shuffle(shuffled)
    assert sort_tags(shuffled, "semver") == expected


def test_semver_compares_numbers_numerically_not_as_text():
    assert sort_tags(["1.10.0", "1.9.0", "1.2.0", "10.0.0", "2.0.0"], "semver") == [
        "1.2.0", "1.9.0", "1.10.0", "2.0.0", "10.0.0"]
    # lexical order would put 1.10.0 first: the two orders really differ
    assert sort_tags(["1.9.0", "1.10.0"], "lexical") == ["1.10.0", "1.9.0"]


def test_semver_puts_non_versions_first_so_last_is_newest():
    tags = ["v2.1.0", "latest", "main", "v1.0", "2.0.0-rc.1", "1.5"]
    assert sort_tags(tags, "semver") == ["latest", "main", "v1.0", "1.5", "2.0.0-rc.1", "v2.1.0"]


def test_semver_short_versions_mean_zero_and_tie_break_on_text():
    assert semver_key("1.2")[:3] == (1, 2, 0)
    assert semver_key("v3")[:3] == (3, 0, 0)
    assert sort_tags(["1.2.0", "1.2", "v1.2"], "semver") == ["1.2", "1.2.0", "v1.2"]


@pytest.mark.parametrize("tag", ["latest", "1.2.3.4", "v", "1.2.x", "release-1.2", "1.2.3-", "1..2", "sha256-abc.sig"])
def test_semver_key_refuses_non_versions(tag):
    assert semver_key(tag) is None


@pytest.mark.parametrize("tag", ["0", "1.2.3", "v1.2.3", "V10.0", "1.2.3-rc.1", "1.2.3-alpine3.19", "01.2"])
def test_semver_key_accepts_versions(tag):
    assert semver_key(tag) is not None


def test_prerelease_numeric_identifiers_sort_before_alphanumeric():
    assert sort_tags(["1.0.0-alpha", "1.0.0-1"], "semver") == ["1.0.0-1", "1.0.0-alpha"]


_TAG_CHARS = st.text(alphabet="abcv0123456789.-_", min_size=1, max_size=12).filter(
    lambda t: t[0] not in ".-")


@given(st.lists(_TAG_CHARS, unique=True, max_size=30))
def test_every_order_is_a_permutation(tags):
    for order in TAG_SORTS:
        assert sorted(sort_tags(tags, order)) == sorted(tags)


@given(st.lists(_TAG_CHARS, unique=True, max_size=30), st.randoms())
def test_semver_order_does_not_depend_on_input_order(tags, rnd):
    shuffled = tags[:]
    rnd.shuffle(shuffled)
    assert sort_tags(shuffled, "semver") == sort_tags(tags, "semver")


@given(st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500)),
       st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500)))
def test_semver_order_agrees_with_number_tuples(a, b):
    ta, tb = ".".join(map(str, a)), ".".join(map(str, b))
    if a != b:
        assert (sort_tags([ta, tb], "semver")[0] == ta) == (a < b)


def test_none_keeps_registry_order_and_unknown_order_is_refused():
    assert sort_tags(["b", "a", "c"], "none") == ["b", "a", "c"]
    with pytest.raises(InvalidInputError, match="lexical, semver, none"):
        sort_tags(["a"], "newest")


# -- filters and options -----------------------------------------------------------------


def test_pattern_must_match_the_whole_name():
    names = ["v1.0", "v1.0-debug", "xv1.0", "v2.0"]

    def keep(pattern):
        return keep_matching(names, compile_full_match(pattern))

    assert keep(r"v1\..*") == ["v1.0", "v1.0-debug"]
    assert keep(r"v\d\.\d") == ["v1.0", "v2.0"]
    assert keep(None) == names
    assert keep("") == names


def test_bad_pattern_says_which_option_and_how_to_fix():
    with pytest.raises(InvalidInputError) as info:
        compile_full_match("v1.(", "pattern")
    assert "pattern" in str(info.value) and "regular expression" in str(info.value)


@pytest.mark.parametrize("name,prefix,expected", [
    ("team/app", "team", True), ("team", "team", True), ("teams/app", "team", False),
    ("team/app/sub", "team/app", True), ("other", "", True), ("team/app", "team/", True),
    ("a/team/app", "team", False),
])
def test_under_prefix_is_a_path_boundary(name, prefix, expected):
    assert under_prefix(name, prefix) is expected


def test_include_is_checked_deduplicated_and_ordered():
    assert check_include(["tags", "config", "tags"]) == ("tags", "config")
    assert check_include(None) == ()
    with pytest.raises(InvalidInputError, match="include: unknown value 'labels'"):
        check_include(["labels"])


@pytest.mark.parametrize("value", [0, -1, MAX_CONCURRENCY_LIMIT + 1, True, 2.5, "8"])
def test_concurrency_outside_limits_is_refused(value):
    with pytest.raises(InvalidInputError, match="max_concurrency"):
        check_concurrency(value)


def test_concurrency_default_and_valid_values():
    assert check_concurrency(None) == DEFAULT_MAX_CONCURRENCY
    assert check_concurrency(1) == 1


def test_map_bounded_keeps_input_order_and_raises_the_first_failure():
    assert map_bounded(lambda x: x * 2, list(range(50)), 4) == [x * 2 for x in range(50)]

    def boom(x):
        if x in (3, 7):
            raise ValueError(f"item {x}")
        return x

    with pytest.raises(ValueError, match="item 3"):
        map_bounded(boom, list(range(10)), 4)


def test_map_bounded_never_runs_more_than_the_bound_at_once():
    import threading

    lock = threading.Lock()
    running = {"now": 0, "peak": 0}
    release = threading.Event()

    def work(_index):
        with lock:
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
            if running["now"] == 3:
                release.set()
        release.wait()  # hold the first workers until the pool is full
        with lock:
            running["now"] -= 1

    map_bounded(work, list(range(20)), 3)
    assert running["peak"] == 3


# -- shaping -----------------------------------------------------------------------------


def test_platform_string_from_every_form():
    assert platform_string({"os": "linux", "architecture": "arm64", "variant": "v8"}) == "linux/arm64/v8"
    assert platform_string({"os": "linux", "architecture": "amd64"}) == "linux/amd64"
    assert platform_string({"os": "", "architecture": ""}) is None
    assert platform_string(None) is None
    assert platform_string("linux/amd64") == "linux/amd64"


def test_missing_result_has_every_key_empty():
    result = missing_result("r.example/app:nope", INCLUDE_CHOICES)
    assert result["exists"] is False and result["reference"] == "r.example/app:nope"
    assert result["digest"] is None and result["manifests"] == [] and result["platforms"] == []
    for key in ("config", "layers", "total_size", "referrers", "tags", "raw"):
        assert key in result
    assert "config" not in missing_result("x", ())


def test_manifest_document_is_the_exact_json():
    class Raw:
        raw = json.dumps({"schemaVersion": 2, "x": "é"}).encode()
        digest = "sha256:" + "0" * 64

    assert manifest_document(Raw()) == {"schemaVersion": 2, "x": "é"}


# -- shaping real manifests (parsed by manifest.py from bytes the rig builders make) -------

from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (  # noqa: E402
    parse_config,
    parse_manifest,
)
from tests.rig.images import make_artifact, make_image, make_index, make_multiarch  # noqa: E402


def test_shape_manifest_of_an_index_lists_children_and_skips_attestation_platforms():
    index = make_multiarch("u", ("linux/amd64", "linux/arm/v7"))
    attestation = make_image("att", platform="unknown/unknown")
    with_att = make_index([*index.children, attestation], annotations={"a": "b"})
    shaped = shape_manifest(parse_manifest(with_att.data))
    assert shaped["exists"] is True
    assert shaped["digest"] == with_att.digest and shaped["size"] == with_att.size
    assert shaped["media_type"] == "application/vnd.oci.image.index.v1+json" and shaped["schema_version"] == 2
    assert [c["platform"] for c in shaped["manifests"]] == ["linux/amd64", "linux/arm/v7", "unknown/unknown"]
    assert shaped["manifests"][0] == {"digest": index.children[0].digest, "size": index.children[0].size,
                                      "media_type": index.children[0].media_type, "platform": "linux/amd64",
                                      "annotations": {}, "artifact_type": None}
    assert shaped["platforms"] == ["linux/amd64", "linux/arm/v7"]
    assert shaped["annotations"] == {"a": "b"} and shaped["subject"] is None and shaped["index_digest"] is None


def test_shape_manifest_of_an_artifact_has_subject_and_type():
    subject = make_image("subj")
    artifact = make_artifact(subject, artifact_type="application/x.test", annotations={"k": "v"})
    shaped = shape_manifest(parse_manifest(artifact.data))
    assert shaped["artifact_type"] == "application/x.test"
    assert shaped["subject"] == {"digest": subject.digest, "media_type": subject.media_type, "size": subject.size}
    assert shaped["manifests"] == [] and shaped["platforms"] == []


def test_shape_layers_sums_stored_sizes():
    image = make_image("lay", layers=3, layer_size=300)
    layers, total = shape_layers(parse_manifest(image.data))
    assert [entry["digest"] for entry in layers] == [layer.digest for layer in image.layers]
    assert total == sum(layer.size for layer in image.layers) and total > 0


def test_shape_config_keeps_every_reported_field():
    raw = json.dumps({
        "architecture": "arm", "os": "linux", "variant": "v7", "created": "2020-01-01T00:00:00Z",
        "config": {"User": "app", "Env": ["A=1"], "Entrypoint": ["/e"], "Cmd": "serve", "WorkingDir": "/w",
                   "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}, "Labels": {"l": "v"}},
        "history": [{}, {}],
    }).encode()

    class Desc:
        digest = "sha256:" + "1" * 64

    shaped = shape_config(parse_config(raw), Desc())
    assert shaped == {"digest": Desc.digest, "architecture": "arm", "os": "linux", "variant": "v7",
                      "created": "2020-01-01T00:00:00Z", "labels": {"l": "v"}, "env": ["A=1"],
                      "entrypoint": ["/e"], "cmd": ["serve"], "user": "app", "working_dir": "/w",
                      "exposed_ports": ["443/tcp", "80/tcp"], "history_length": 2}
    assert platform_string(shaped) == "linux/arm/v7"


def test_select_child_matches_normalised_platforms_and_lists_the_others():
    index = make_multiarch("sel", ("linux/amd64", "linux/arm64/v8"))
    manifest = parse_manifest(index.data)
    assert select_child(manifest, "linux/arm64").digest == index.children[1].digest
    with pytest.raises(PlatformNotFoundError) as info:
        select_child(manifest, "linux/s390x")
    assert "linux/amd64, linux/arm64/v8" in str(info.value) and "set platform" in str(info.value)


@pytest.mark.parametrize("term,expected", [
    ("registry.example.com", ("registry.example.com", "")),
    ("registry.example.com:5000/team/", ("registry.example.com:5000", "team")),
    ("127.0.0.1:5000/a/b", ("127.0.0.1:5000", "a/b")),
])
def test_split_catalog_term(term, expected):
    assert split_catalog_term(term) == expected


def test_split_catalog_term_refuses_a_bad_prefix():
    with pytest.raises(InvalidInputError):
        split_catalog_term("registry.example.com/Team")
