"""Unit tests for _model/tag_selection.py: every selector, their combination, the reasons, the invariants."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.semver_range import (
    version_key,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    lease_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    TagSelection,
    parse_selection,
    select_tags,
    unmatched_candidates,
)
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SIG = "sha256-" + "a" * 64 + ".sig"
FALLBACK = "sha256-" + "b" * 64


def chosen(tags, created=None, **block):
    selectors = parse_selection(block)
    return select_tags(tags, selectors, created=created, now=NOW if created is not None else None).selected


# -- semver ranges and pre-releases ------------------------------------------------------------

def test_prereleases_are_left_out_unless_asked():
    tags = ["1.2.0", "1.3.0-rc.1", "1.3.0", "1.25-alpine"]
    assert chosen(tags, semver=">=1") == ["1.2.0", "1.3.0"]
    assert chosen(tags, semver=">=1", prerelease=True) == tags


# -- the selectors one by one ----------------------------------------------------------------------

TAGS = ["latest", "1.0.0", "1.0.1", "1.1.0", "1.1.5", "1.1.10", "2.0.0", "2.1.0", "2.1.1", "dev-abc", SIG, FALLBACK]


def test_no_selector_selects_every_ordinary_tag():
    assert chosen(TAGS) == [t for t in TAGS if t not in (SIG, FALLBACK)]


def test_scheme_tags_are_never_selected_even_when_matched():
    selection = select_tags(TAGS, parse_selection({"include": [".*"], "names": [SIG]}))
    assert SIG not in selection.selected and FALLBACK not in selection.selected
    decision = next(d for d in selection.decisions if d.tag == SIG)
    assert decision.selector == "scheme" and "scheme" in decision.reason


def test_include_is_whole_tag():
    assert chosen(TAGS, include=["1\\.1"]) == []
    assert chosen(TAGS, include=["1\\.1\\..*"]) == ["1.1.0", "1.1.5", "1.1.10"]


def test_exclude_wins_over_every_include():
    assert chosen(TAGS, include=["1\\..*"], names=["latest"], exclude=["1\\.1\\..*", "latest"]) == ["1.0.0", "1.0.1"]


def test_names_union_with_patterns_and_missing_names_are_reported():
    selection = select_tags(TAGS, parse_selection({"names": ["latest", "gone"], "semver": "^2"}))
    assert selection.selected == ["latest", "2.0.0", "2.1.0", "2.1.1"]
    assert selection.missing == ("gone",)


def test_newest_by_semver():
    assert chosen(TAGS, newest=2) == ["2.1.0", "2.1.1"]


def test_newest_by_semver_leaves_out_what_is_not_a_version_with_a_reason():
    selection = select_tags(TAGS, parse_selection({"newest": 3}))
    latest = next(d for d in selection.decisions if d.tag == "latest")
    assert not latest.selected and latest.selector == "newest" and "not a version" in latest.reason


def test_newest_by_age_uses_the_times_and_drops_unknown():
    created = {"a": NOW - timedelta(days=3), "b": NOW - timedelta(days=1), "c": NOW - timedelta(days=2), "d": None}
    selection = select_tags(["a", "b", "c", "d"], parse_selection({"newest": 2, "newest_by": "age"}),
                            created=created, now=NOW)
    assert selection.selected == ["b", "c"]
    assert next(d for d in selection.decisions if d.tag == "d").reason.startswith("age unknown")


def test_newest_patch_per_minor_and_major():
    assert chosen(TAGS, newest_patch_per="minor") == ["1.0.1", "1.1.10", "2.0.0", "2.1.1"]
    assert chosen(TAGS, newest_patch_per="major") == ["1.1.10", "2.1.1"]


def test_patch_per_minor_then_newest_n():
    assert chosen(TAGS, newest_patch_per="minor", newest=2) == ["2.0.0", "2.1.1"]


def test_literal_names_are_exempt_from_reductions():
    assert chosen(TAGS, names=["latest", "1.0.0"], semver="*", newest=1) == ["latest", "1.0.0", "2.1.1"]


def test_min_age_skips_young_and_unknown():
    created = {"old": NOW - timedelta(days=10), "young": NOW - timedelta(hours=3), "unknown": None}
    selection = select_tags(["old", "young", "unknown", "nodate"], parse_selection({"min_age": "2d"}),
                            created=created, now=NOW)
    assert selection.selected == ["old"]
    reasons = {d.tag: d.reason for d in selection.decisions}
    assert reasons["young"] == "3h old, younger than min_age 2d"
    assert reasons["unknown"].startswith("age unknown") and reasons["nodate"].startswith("age unknown")


def test_every_tag_gets_exactly_one_decision_with_a_reason():
    selection = select_tags(TAGS + ["1.0.0"], parse_selection({"semver": "^1", "exclude": ["1\\.0\\..*"]}))
    assert [d.tag for d in selection.decisions] == TAGS
    assert all(d.reason for d in selection.decisions)
    assert selection.by_selector()["exclude"] == ["1.0.0", "1.0.1"]
    assert selection.to_dict()["selected"] == ["1.1.0", "1.1.5", "1.1.10"]


def test_nothing_selected_is_noted():
    assert select_tags(["a"], parse_selection({"names": ["b"]})).notes == ("no tag selected",)


def test_ages_are_required_when_needed():
    with pytest.raises(ValueError, match="need image ages"):
        select_tags(["a"], parse_selection({"min_age": "1d"}))
    assert parse_selection({"min_age": "1d"}).needs_ages
    assert parse_selection({"newest": 1, "newest_by": "age"}).needs_ages
    assert not parse_selection({"newest": 1}).needs_ages


# -- validation: one line per mistake --------------------------------------------------------------

def test_every_mistake_gets_its_own_line():
    with pytest.raises(InvalidInputError) as caught:
        parse_selection({"include": ["("], "exclude": 3, "semver": ">=x1", "newest": 0, "newest_by": "size",
                         "newest_patch_per": "patch", "min_age": "soon", "prerelease": "yes"},
                        where="mirror_spec[1]")
    lines = str(caught.value).splitlines()
    assert len(lines) == 8, lines
    assert all(line.startswith("mirror_spec[1]: ") for line in lines)
    text = str(caught.value)
    for word in ("include", "exclude", "semver", "newest must", "newest_by", "newest_patch_per", "min_age",
                 "prerelease"):
        assert word in text


def test_newest_by_without_newest_and_prerelease_without_semver_are_mistakes():
    with pytest.raises(InvalidInputError, match="newest_by needs newest"):
        parse_selection({"newest_by": "age"})
    with pytest.raises(InvalidInputError, match="prerelease only applies"):
        parse_selection({"prerelease": True})


def test_describe_round_trips_the_block():
    block = {"include": ["v.*"], "exclude": ["x"], "names": ["a"], "semver": "^1", "prerelease": True,
             "newest": 2, "newest_by": "age", "newest_patch_per": "minor", "min_age": "1d12h"}
    assert parse_selection(parse_selection(block).describe()).describe() == parse_selection(block).describe()


# -- invariants ------------------------------------------------------------------------------------

tag_text = st.from_regex(r"(v?[0-9]{1,2}(\.[0-9]{1,2}){0,2}(-rc\.[0-9])?|[a-z]{1,5})", fullmatch=True)
tag_lists = st.lists(tag_text, max_size=25)
blocks = st.fixed_dictionaries({}, optional={
    "include": st.sampled_from([["v.*"], ["[0-9].*"], ["[a-z]+"]]),
    "semver": st.sampled_from([">=1", "^2", "~1.2", "<3 || >=10", "*"]),
    "names": st.lists(tag_text, max_size=3),
    "newest": st.integers(1, 5),
    "newest_patch_per": st.sampled_from(["minor", "major"]),
    "prerelease": st.booleans(),
})


def _valid(block):
    if block.get("prerelease") and "semver" not in block:
        block = {k: v for k, v in block.items() if k != "prerelease"}
    return block


@settings(max_examples=100, deadline=None)
@given(tags=tag_lists, block=blocks, exclude=st.sampled_from([["v.*"], ["1.*"], ["[a-z]+", "2.*"]]))
def test_excluding_never_adds_tags(tags, block, exclude):
    block = _valid(block)
    without = set(chosen(tags, **block))
    with_exclude = set(chosen(tags, **block, exclude=exclude))
    assert not any(re.fullmatch(pattern, tag) for tag in with_exclude for pattern in exclude)
    if "newest" in block or "newest_patch_per" in block:
        # Exclusion comes before the cut (newest N of what is left), so the cut may reach a tag it
        # did not reach without the exclusion ('0' once '1' is excluded): only the count cannot grow.
        assert len(with_exclude) <= len(without)
    else:
        assert with_exclude <= without


@settings(max_examples=100, deadline=None)
@given(tags=tag_lists, block=blocks, n=st.integers(1, 6))
def test_newest_n_selects_at_most_n_beyond_the_literal_names(tags, block, n):
    block = _valid({**block, "newest": n})
    selected = chosen(tags, **block)
    names = set(block.get("names", ()))
    assert len([t for t in selected if t not in names]) <= n
    assert set(selected) <= set(chosen(tags, **{k: v for k, v in block.items() if k != "newest"}))


@settings(max_examples=100, deadline=None)
@given(tags=tag_lists, block=blocks)
def test_selection_is_a_subset_of_the_listing_and_decides_every_tag_once(tags, block):
    selection = select_tags(tags, parse_selection(_valid(block)))
    assert set(selection.selected) <= set(tags)
    assert [d.tag for d in selection.decisions] == list(dict.fromkeys(tags))


@settings(max_examples=100, deadline=None)
@given(tags=tag_lists, group=st.sampled_from(["minor", "major"]))
def test_newest_patch_per_group_keeps_one_per_group_and_it_is_the_highest(tags, group):
    selected = chosen(tags, semver="*", prerelease=True, newest_patch_per=group)
    width = 1 if group == "major" else 2
    groups = {}
    for tag in tags:
        key = version_key(tag)
        if key is not None:
            groups.setdefault(key[:width], []).append(key)
    assert len(selected) == len(groups)
    for tag in selected:
        key = version_key(tag)
        assert key == max(groups[key[:width]])


# -- from_patterns: copy's tags and prune's match / protect ----------------------------------------

patterns = st.lists(st.sampled_from(["v.*", "1\\..*", "[a-z]+", "", "v1", "(1|2)\\.0", ".*-rc\\.[0-9]", "x?"]),
                    min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(tags=tag_lists, pats=patterns)
def test_from_patterns_selects_what_re_fullmatch_selects(tags, pats):
    selection = select_tags(tags, TagSelection.from_patterns(pats))
    expected = [t for t in dict.fromkeys(tags) if any(re.fullmatch(p, t) for p in pats)]
    assert selection.selected == expected


def test_from_patterns_with_no_pattern_selects_every_tag_and_an_empty_pattern_only_the_empty_tag():
    assert select_tags(["a", "b"], TagSelection.from_patterns([])).selected == ["a", "b"]
    assert select_tags(["a", "b"], TagSelection.from_patterns([""])).selected == []


def test_from_patterns_names_every_bad_pattern_on_its_own_line():
    with pytest.raises(InvalidInputError) as caught:
        TagSelection.from_patterns(["ok", "(", "[x"], label="option match")
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("option match '(' does not compile (")
    assert lines[1].startswith("option match '[x' does not compile (")
    assert "matches the whole tag (no ^ or $ needed)" in lines[0]


def test_scheme_tags_are_ordinary_tags_when_the_caller_copies_them_as_such():
    selection = TagSelection.from_patterns([".*"])
    assert select_tags([SIG, "v1"], selection).selected == ["v1"]
    assert select_tags([SIG, "v1"], selection, skip_referrer_tags=False).selected == [SIG, "v1"]
    lease = lease_tag(1_800_000_000, "a" * 16)
    assert select_tags([lease, "v1"], selection, skip_referrer_tags=False).selected == ["v1"]


# -- the candidate kinds prune's rules use: prefix and glob, and every kind of exclusion -----------

def test_candidates_are_a_union_of_every_kind():
    selection = TagSelection(names=("latest",), prefixes=("pr-",), globs=("*-lts",),
                             patterns=(re.compile("v[0-9]+"),), semver=parse_selection({"semver": "^2"}).semver)
    tags = ["latest", "pr-1", "1.0-lts", "v7", "2.1.0", "main", "1.0.0"]
    decided = {d.tag: (d.selected, d.selector) for d in select_tags(tags, selection).decisions}
    assert decided == {"latest": (True, "names"), "pr-1": (True, "prefix"), "1.0-lts": (True, "glob"),
                       "v7": (True, "include"), "2.1.0": (True, "semver"), "main": (False, "match"),
                       "1.0.0": (False, "match")}


@pytest.mark.parametrize("exclusion, gone", [
    ({"exclude_names": ("pr-1",)}, "pr-1"),
    ({"exclude_prefixes": ("pr-2",)}, "pr-22"),
    ({"exclude_globs": ("*-old",)}, "pr-3-old"),
    ({"exclude_patterns": (re.compile("pr-[0-9]"),)}, "pr-1"),
])
def test_every_exclusion_kind_removes_a_candidate(exclusion, gone):
    tags = ["pr-1", "pr-22", "pr-3-old"]
    selection = select_tags(tags, TagSelection(prefixes=("pr-",), **exclusion))
    assert gone not in selection.selected
    assert next(d for d in selection.decisions if d.tag == gone).selector == "exclude"
    assert len(selection.selected) == 2


def test_glob_is_case_sensitive_and_whole_tag():
    selection = TagSelection(globs=("v1.*",))
    assert select_tags(["v1.0", "V1.0", "xv1.0"], selection).selected == ["v1.0"]


def test_unmatched_candidates_names_each_entry_that_selects_nothing_alone():
    selection = TagSelection(names=("prod", "gone"), prefixes=("pr-",), globs=("*-x",),
                             patterns=(re.compile("^build-"), re.compile("v.*")))
    expected = [("names", "gone"), ("glob", "*-x"), ("regex", "^build-")]
    assert unmatched_candidates(["prod", "v1", "pr-2"], selection) == expected
    assert unmatched_candidates([], selection) == []


def test_an_empty_selection_is_empty_and_describes_as_nothing():
    assert TagSelection().is_empty and TagSelection().describe() == {}
    assert not TagSelection(exclude_names=("a",)).is_empty
    assert TagSelection(prefixes=("a",), exclude_globs=("b*",)).describe() == {"prefix": ["a"], "exclude_glob": ["b*"]}


def test_without_reductions_keeps_candidates_and_exclusions():
    selection = parse_selection({"include": ["v.*"], "exclude": ["v0"], "newest": 2, "min_age": "1d",
                                 "newest_patch_per": "minor"})
    bare = selection.without_reductions()
    assert not bare.needs_ages and bare.describe() == {"include": ["v.*"], "exclude": ["v0"]}
