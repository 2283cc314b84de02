"""Unit tests for _ops/retention/policy.py: selectors, rules, shorthands and validation messages."""
from __future__ import annotations

import fnmatch
import hashlib
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import (
    POLICY_KEYS,
    RULE_KEYS,
    RetentionPolicy,
    Rule,
    build_policy,
    compile_shorthands,
    rule_selection,
    selection_to_rule_dict,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    TagSelection,
    select_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.timestamps import (
    DEFAULT_TIMESTAMP_SOURCES,
    format_timestamp,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ManifestRecord,
    RepositorySnapshot,
    plan_retention,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


class Selector:
    """A rule's TagSelection, asked one tag at a time through the one select_tags."""

    def __init__(self, selection: TagSelection) -> None:
        self.is_empty = selection.is_empty
        self.selection = selection

    def matches(self, tag: str) -> bool:
        return select_tags([tag], self.selection).selected == [tag]

    def to_dict(self) -> dict:
        return selection_to_rule_dict(self.selection)


def selector(**kwargs) -> Selector:
    return Selector(rule_selection(kwargs, "test"))


def deleted_tags(policy: dict, ages: dict[str, int]) -> set[str]:
    """The tags a plan of ``policy`` removes from a repository of one image per tag, ``ages`` days old."""
    tags, manifests = {}, {}
    for tag, days in ages.items():
        digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
        tags[tag] = digest
        manifests[digest] = ManifestRecord(digest, "application/vnd.oci.image.manifest.v1+json",
                                           created=format_timestamp(NOW - timedelta(days=days)))
    result = plan_retention([RepositorySnapshot("team/app", tags, manifests, {})], build_policy(policy), NOW)
    return set(result.tags_before["team/app"]) - set(result.tags_after["team/app"])


# -- selectors ---------------------------------------------------------------------------------


def test_empty_selector_selects_every_tag():
    sel = selector()
    assert sel.is_empty
    assert all(sel.matches(t) for t in ("latest", "v1", "pr-12", ""))


@pytest.mark.parametrize(
    "kwargs, yes, no",
    [
        ({"names": ["latest", "stable"]}, ["latest", "stable"], ["latest2", "Latest", "v1"]),
        ({"names": "latest"}, ["latest"], ["stable"]),
        ({"prefix": ["pr-", "dev-"]}, ["pr-1", "dev-x", "pr-"], ["xpr-1", "v1"]),
        ({"glob": ["v1.*", "rc?"]}, ["v1.0", "v1.2.3", "rc1"], ["v2.0", "rc10", "V1.0"]),
        ({"glob": "[0-9]*"}, ["1", "20240101"], ["v1"]),
        # Regexes are full matches: 'v1' does not select 'v10' or 'xv1'.
        ({"regex": ["v1"]}, ["v1"], ["v10", "xv1"]),
        ({"regex": ["v[0-9]+", "pr-.*"]}, ["v7", "pr-x"], ["v7a", "release"]),
        ({"regex": "^v[0-9]+$"}, ["v7"], ["v7a"]),
        ({"regex": "a|b"}, ["a", "b"], ["ab"]),  # alternation is anchored as a whole
    ],
)
def test_positive_selectors(kwargs, yes, no):
    sel = selector(**kwargs)
    assert [t for t in yes if sel.matches(t)] == yes
    assert [t for t in no if sel.matches(t)] == []


def test_entries_of_one_kind_are_a_union():
    sel = selector(regex=[r"v\d+\.\d+\.\d+", r"v\d+"])
    assert sel.matches("v1.0.0") and sel.matches("v10")
    assert not sel.matches("v1.0")


@pytest.mark.parametrize("kwargs, given", [
    ({"prefix": ["v"], "glob": ["*0*"]}, "prefix and glob"),
    ({"names": ["a"], "regex": ["b"], "glob": ["c"]}, "names and glob and regex"),
])
def test_a_rule_mixing_selector_kinds_is_refused_rather_than_silently_widened(kwargs, given):
    # 1.0 ANDed the kinds; every tag selector now takes their union, so the old spelling would select more.
    with pytest.raises(InvalidInputError) as caught:
        selector(**kwargs)
    message = str(caught.value)
    assert message.startswith(f"test: {given} in one rule; a rule takes one kind of tag selector.")
    assert "all of them as one regex" in message and "\n" not in message


@pytest.mark.parametrize(
    "kwargs, excluded, kept",
    [
        ({"exclude_names": ["latest"]}, ["latest"], ["stable"]),
        ({"exclude_prefix": "release-"}, ["release-1"], ["pr-1"]),
        ({"exclude_glob": ["*-keep"]}, ["a-keep"], ["a-keep2"]),
        ({"exclude_regex": [r"v\d+"]}, ["v1"], ["v1a"]),
    ],
)
def test_exclusions_win_over_selection(kwargs, excluded, kept):
    sel = selector(prefix=[""], **kwargs)
    assert not any(sel.matches(t) for t in excluded)
    assert all(sel.matches(t) for t in kept)


def test_selector_to_dict_lists_only_what_is_set():
    assert selector(regex="v.*", exclude_names=["v0"]).to_dict() == {"regex": ["v.*"], "exclude_names": ["v0"]}


@pytest.mark.parametrize("value", [5, [1, "a"], {"a": 1}, True])
def test_selector_values_must_be_strings(value):
    with pytest.raises(InvalidInputError, match="must be a string or a list of strings"):
        selector(names=value)


# -- rules -------------------------------------------------------------------------------------


def test_rule_from_dict_full():
    rule = Rule.from_dict(
        {
            "name": "keep-releases",
            "action": "keep",
            "regex": r"v\d+\.\d+\.\d+",
            "most_recent": 5,
            "order_by": "semver",
            "newer_than": "90d",
        },
        0,
    )
    assert rule.name == "keep-releases" and rule.action == "keep"
    assert rule.most_recent == 5 and rule.order_by == "semver"
    assert rule.newer_than == timedelta(days=90) and rule.older_than is None
    assert rule.uses_age
    assert rule.to_dict() == {
        "name": "keep-releases",
        "action": "keep",
        "regex": [r"v\d+\.\d+\.\d+"],
        "most_recent": 5,
        "order_by": "semver",
        "newer_than": "90d",
    }


def test_unnamed_rule_is_named_by_index():
    assert Rule.from_dict({"action": "delete", "prefix": "pr-"}, 3).name == "rules[3]"


def test_uses_age():
    assert not Rule.from_dict({"action": "delete", "prefix": "pr-"}, 0).uses_age
    assert Rule.from_dict({"action": "keep", "most_recent": 2}, 0).uses_age  # order_by age
    assert not Rule.from_dict({"action": "keep", "most_recent": 2, "order_by": "tag_name"}, 0).uses_age
    assert Rule.from_dict({"action": "delete", "expires_after_label": "quay.expires-after"}, 0).uses_age


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"name": "bad", "action": "delete", "regex": "v[0-9"},
         r"rule 'bad' \(rules\[1\]\): regex 'v\[0-9' does not compile .*write a Python regular expression"),
        ({"name": "bad", "action": "keep", "exclude_regex": ["ok", "(x"]},
         r"rule 'bad' \(rules\[1\]\): exclude_regex '\(x' does not compile"),
        ({"name": "bad", "action": "purge"}, r"rule 'bad' \(rules\[1\]\): action 'purge' is not known; write action: keep or action: delete"),
        ({"name": "bad"}, r"action None is not known"),
        ({"action": "keep", "most_recent": -1}, r"rules\[1\]: most_recent must be a whole number 0 or more, got -1"),
        ({"action": "keep", "most_recent": "5"}, r"most_recent must be a whole number"),
        ({"action": "keep", "most_recent": True}, r"most_recent must be a whole number"),
        ({"name": "old", "action": "delete", "older_than": "2 weeks"},
         r"rule 'old' \(rules\[1\]\): older_than '2 weeks' is not a duration; write a number and a unit .*1d12h"),
        ({"name": "new", "action": "keep", "newer_than": 7}, r"rule 'new' \(rules\[1\]\): newer_than 7 is not a duration"),
        ({"name": "x", "action": "keep", "most_recent": 3, "order_by": "date"},
         r"order_by 'date' is not known; write one of age, semver, tag_name"),
        ({"name": "x", "action": "delete", "most_recent": 3},
         r"most_recent on a delete rule would delete the newest digests; to keep the newest N"),
        ({"name": "x", "action": "keep", "order_by": "semver"}, r"order_by only orders most_recent; add most_recent"),
        ({"name": "x", "action": "keep", "expires_after_label": "quay.expires-after"},
         r"expires_after_label selects expired digests, so it belongs on a delete rule"),
        ({"name": "x", "action": "delete", "expires_after_label": ""}, r"expires_after_label must name a label"),
        ({"name": "x", "action": "delete", "older_than": "30d", "newer_than": "7d"},
         r"older_than must be shorter than newer_than or the rule can never match"),
        ({"name": "x", "action": "delete", "older_than": "7d", "newer_than": "7d"}, r"can never match"),
        ({"name": "x", "action": "delete", "untagged": True, "prefix": "pr-"},
         r"untagged: true selects digests without tags, so tag selectors and most_recent cannot apply"),
        ({"name": "x", "action": "delete", "untagged": "yes"}, r"untagged must be true or false"),
        ({"name": "x", "action": "delete", "older-than": "7d"},
         r"rule 'x' \(rules\[1\]\): unknown key\(s\) older-than; a rule takes name, action, names"),
        ({"name": "", "action": "delete"}, r"rules\[1\]: name must be a non-empty string"),
        ("delete everything", r"rules\[1\] must be a dict such as"),
    ],
)
def test_invalid_rules_say_which_rule_and_what_to_write(rule, message):
    rules = [{"name": "fine", "action": "keep", "names": ["latest"]}, rule]
    with pytest.raises(InvalidInputError, match=message):
        build_policy({"rules": rules})


def test_window_rule_is_valid():
    rule = Rule.from_dict({"action": "delete", "older_than": "7d", "newer_than": "30d"}, 0)
    assert (rule.older_than, rule.newer_than) == (timedelta(days=7), timedelta(days=30))


def test_rule_keys_cover_every_selector_variant():
    for kind in ("names", "prefix", "glob", "regex"):
        assert kind in RULE_KEYS and f"exclude_{kind}" in RULE_KEYS


# -- shorthands --------------------------------------------------------------------------------


def test_keep_latest_alone_keeps_n_and_deletes_the_rest():
    policy = build_policy({"keep_latest": 10})
    assert [r.to_dict() for r in policy.rules] == [
        {"name": "keep_latest", "action": "keep", "most_recent": 10, "order_by": "age"},
        {"name": "match", "action": "delete"},
    ]


def test_older_than_alone_deletes_old():
    policy = build_policy({"older_than": "30d"})
    assert [r.to_dict() for r in policy.rules] == [{"name": "older_than", "action": "delete", "older_than": "30d"}]
    assert deleted_tags({"older_than": "30d"}, {"old": 31, "older": 400, "young": 29, "new": 0}) == {"old", "older"}


def test_full_shorthand_compiles_in_protect_keep_delete_order():
    rules = compile_shorthands(
        {"keep_latest": 3, "older_than": "14d", "match": [r"v\d+.*"], "protect": ["latest", "stable"],
         "untagged": "delete"}
    )
    assert rules == [
        {"name": "protect", "action": "keep", "regex": ["latest", "stable"]},
        {"name": "keep_latest", "action": "keep", "most_recent": 3, "regex": [r"v\d+.*"]},
        {"name": "older_than", "action": "delete", "older_than": "14d", "regex": [r"v\d+.*"]},
        {"name": "untagged", "action": "delete", "untagged": True},
    ]


def test_match_alone_deletes_every_matching_tag():
    policy = build_policy({"match": "pr-.*"})
    assert [r.to_dict() for r in policy.rules] == [{"name": "match", "action": "delete", "regex": ["pr-.*"]}]
    # Every matching tag, whatever its age; nothing else.
    ages = {"pr-1": 0, "pr-22": 900, "v1": 900, "latest": 0, "xpr-3": 900}
    assert deleted_tags({"match": "pr-.*"}, ages) == {"pr-1", "pr-22"}


def test_protect_alone_deletes_nothing():
    policy = build_policy({"protect": "latest"})
    assert [r.action for r in policy.rules] == ["keep"]
    assert deleted_tags({"protect": "latest"}, {"latest": 900, "v1": 900, "pr-1": 0}) == set()


def test_protect_combines_with_rules_and_goes_first():
    policy = build_policy({"protect": ["prod-.*"], "rules": [{"name": "old", "action": "delete", "older_than": "1w"}]})
    assert [r.name for r in policy.rules] == ["protect", "old"]


def test_untagged_keep_adds_nothing():
    assert build_policy({"untagged": "keep"}).rules == ()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"keep_latest": -1}, r"option keep_latest must be a whole number 0 or more, got -1"),
        ({"keep_latest": "ten"}, r"option keep_latest must be a whole number"),
        ({"older_than": "a month"}, r"option older_than 'a month' is not a duration"),
        ({"match": "pr-("}, r"option match 'pr-\(' does not compile"),
        ({"protect": ["ok", "[x"]}, r"option protect '\[x' does not compile"),
        ({"untagged": "purge"}, r"option untagged 'purge' is not known; write one of keep, delete"),
        ({"keep_latest": 3, "rules": [{"action": "keep"}]},
         r"option\(s\) keep_latest are shorthands for a simple policy and cannot be mixed with rules"),
        ({"match": "x", "older_than": "1d", "rules": [{"action": "keep"}]}, r"option\(s\) older_than, match are"),
        ({"protect": "x", "rules": [{"name": "protect", "action": "keep"}]},
         r"two rules are named 'protect'; give each rule its own name"),
        ({"rules": [{"name": "a", "action": "keep"}, {"name": "a", "action": "delete"}]}, r"two rules are named 'a'"),
        ({"rules": {"name": "a", "action": "keep"}}, r"option rules must be a list of rule dicts"),
    ],
)
def test_invalid_shorthands_name_the_option(params, message):
    with pytest.raises(InvalidInputError, match=message):
        build_policy(params)


# -- policy options ------------------------------------------------------------------------------


def test_defaults():
    policy = build_policy({})
    assert policy == RetentionPolicy()
    assert policy.default_action == "keep"
    assert policy.on_unknown_age == "keep"
    assert policy.referrers == "follow_subject"
    assert policy.tag_delete_method == "auto"
    assert policy.grace_period == timedelta(0)
    assert policy.timestamp_sources == DEFAULT_TIMESTAMP_SOURCES
    assert (policy.max_deletions, policy.max_delete_ratio, policy.min_keep) == (None, None, None)


def test_all_options_and_unrelated_params_ignored():
    options = {
        "default_action": "delete",
        "timestamp_sources": ["created", "label:built"],
        "on_unknown_age": "fail",
        "referrers": "follow_subject",
        "tag_delete_method": "never",
        "grace_period": "1h",
        "max_deletions": 50,
        "max_delete_ratio": 0.25,
        "min_keep": 3,
        "allow_empty_repository": True,
        "untag_kept_images": True,
    }
    rules = [{"name": "r", "action": "delete", "prefix": "pr-"}]
    # repository and password are module options, not policy: ignored.
    policy = build_policy({"repository": "team/app", "password": "hunter2", "rules": rules, **options})
    compiled = [{"name": "r", "action": "delete", "prefix": ["pr-"]}]
    assert policy.to_dict() == {"rules": compiled, **options}
    assert "hunter2" not in repr(policy.to_dict())
    assert set(POLICY_KEYS) >= {"rules", *options}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"default_action": "purge"}, r"option default_action 'purge' is not known; write one of keep, delete"),
        ({"on_unknown_age": "delete"}, r"option on_unknown_age 'delete' is not known; write one of keep, fail"),
        ({"referrers": "keep"}, r"option referrers 'keep' is not known; write one of follow_subject"),
        ({"tag_delete_method": "api"}, r"write one of auto, dummy_manifest, never"),
        ({"grace_period": "soon"}, r"option grace_period 'soon' is not a duration"),
        ({"max_deletions": -5}, r"option max_deletions must be a whole number 0 or more, got -5"),
        ({"min_keep": 1.5}, r"option min_keep must be a whole number"),
        ({"max_delete_ratio": 1.5}, r"option max_delete_ratio must be a number from 0 to 1"),
        ({"max_delete_ratio": "half"}, r"option max_delete_ratio must be a number from 0 to 1"),
        ({"timestamp_sources": []}, r"option timestamp_sources is empty"),
        ({"timestamp_sources": ["created", "mtime"]}, r"timestamp_sources entry 'mtime' is not known"),
    ],
)
def test_invalid_policy_options(params, message):
    with pytest.raises(InvalidInputError, match=message):
        build_policy(params)


def test_ratio_accepts_ints_at_the_bounds():
    assert build_policy({"max_delete_ratio": 0}).max_delete_ratio == 0.0
    assert build_policy({"max_delete_ratio": 1}).max_delete_ratio == 1.0


# -- a one-kind rule selects what 1.0 selected -------------------------------------------------------

RULE_TAGS = st.lists(st.sampled_from(["pr-1", "pr-22", "v1.0", "v1.10", "main", "dev-x", "latest", "1.2.3", "a*b"]),
                     max_size=9)
ENTRIES = {
    "names": st.lists(st.sampled_from(["main", "latest", "pr-1", "nope"]), min_size=1, max_size=3),
    "prefix": st.lists(st.sampled_from(["pr-", "v1", "dev-", ""]), min_size=1, max_size=2),
    "glob": st.lists(st.sampled_from(["v1.*", "*-*", "?????", "a[*]b"]), min_size=1, max_size=2),
    "regex": st.lists(st.sampled_from([r"pr-\d", "v.*", "main|dev-x", ".*"]), min_size=1, max_size=2),
}


def _entry_matches(kind, entry, tag):
    """1.0's test of one entry, written out as the oracle."""
    if kind == "names":
        return tag == entry
    if kind == "prefix":
        return tag.startswith(entry)
    if kind == "glob":
        return fnmatch.fnmatchcase(tag, entry)
    return re.fullmatch(entry, tag) is not None


@settings(max_examples=200, deadline=None)
@given(tags=RULE_TAGS, kind=st.sampled_from(sorted(ENTRIES)), data=st.data(),
       exclude_kind=st.sampled_from([None, *sorted(ENTRIES)]))
def test_a_one_kind_rule_selects_what_1_0_selected(tags, kind, data, exclude_kind):
    entries = data.draw(ENTRIES[kind])
    rule = {kind: entries}
    excluded = data.draw(ENTRIES[exclude_kind]) if exclude_kind else []
    if exclude_kind:
        rule[f"exclude_{exclude_kind}"] = excluded
    chosen = select_tags(tags, rule_selection(rule, "r")).selected
    expected = [t for t in dict.fromkeys(tags)
                if any(_entry_matches(kind, e, t) for e in entries)
                and not any(_entry_matches(exclude_kind, e, t) for e in excluded)]
    assert chosen == expected
