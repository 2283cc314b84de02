"""Tag order and whole-name matching (_model/tag_order.py): semver precedence, sorts, filters."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_order import (
    TAG_SORTS,
    compile_full_match,
    keep_matching,
    semver_key,
    sort_tags,
    under_prefix,
)

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


# -- filters ---------------------------------------------------------------------------


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
