"""The mirror filters wrap _ops/sync: their own part is the input checks and the error type Ansible shows."""
from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ocireg.registry.plugins.filter.mirror_shard import (
    mirror_shard,
    mirror_summary,
    mirror_tag_patterns,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    parse_selection,
    select_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    owner,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.plugins.module_utils._ops.sync.test_fleet import (
    RUNNERS,
    SOURCES,
    SPEC,
)


def test_the_summary_filter_accounts_through_the_fleet_room():
    """No reports at all: every repository is named, each on the reporter (no runner is still running)."""
    result = mirror_summary(SPEC, RUNNERS, {}, RUNNERS, RUNNERS, [], "r1")
    assert result["not_mirrored"] == SOURCES and list(result["failures"]) == ["r1"]
    assert [line.split(": ", 1)[0] for line in result["lines"][1:-1]] == [owner(s, RUNNERS) for s in SOURCES]


def test_a_share_is_one_runners_part():
    shares = {runner: mirror_shard(SPEC, RUNNERS, runner) for runner in RUNNERS}
    assert sorted(entry["src"] for share in shares.values() for entry in share) == sorted(SOURCES)


@pytest.mark.parametrize("hosts", ["r1", None, {"r1": 1}])
def test_hosts_must_be_a_list(hosts):
    with pytest.raises(AnsibleFilterError, match="must be a list of host names"):
        mirror_shard(SPEC, hosts, "r1")
    with pytest.raises(AnsibleFilterError, match="must be a list of host names"):
        mirror_summary(SPEC, hosts, {}, RUNNERS, RUNNERS, RUNNERS, "r1")


def test_reports_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError, match="reports must map host names to results"):
        mirror_summary(SPEC, RUNNERS, [], RUNNERS, RUNNERS, RUNNERS, "r1")


def test_a_bad_spec_is_one_filter_error():
    with pytest.raises(AnsibleFilterError, match=r"mirror_spec\[0\]: dest 'nohost' must start with a registry host"):
        mirror_summary([{"src": "a.example/x", "dest": "nohost"}], RUNNERS, {}, RUNNERS, RUNNERS, RUNNERS, "r1")


# -- mirror_tag_patterns (deprecated): the regex form answers as select_tags does -------------------

tag_text = st.from_regex(r"(v?[0-9]{1,2}(\.[0-9]{1,2}){0,2}(-rc\.[0-9])?|[a-z]{1,5})", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(tags=st.lists(tag_text, max_size=25),
       block=st.fixed_dictionaries({}, optional={
           "include": st.sampled_from([["v.*"], ["[0-9].*"], ["[a-z]+", "1\\..*"]]),
           "names": st.lists(tag_text, max_size=3),
           "exclude": st.sampled_from([["v1.*"], ["1"], ["[a-z]+", "2.*"]]),
       }))
def test_the_regex_form_selects_what_the_selectors_select(tags, block):
    pattern = re.compile(mirror_tag_patterns({"src": "x", **block})[0])
    chosen = select_tags(tags, parse_selection(block)).selected
    assert sorted({t for t in tags if pattern.fullmatch(t)}) == sorted(chosen)


def test_the_regex_form_refuses_what_needs_the_listing():
    with pytest.raises(AnsibleFilterError, match=r"x: semver, newest cannot be written as a tags regex"):
        mirror_tag_patterns({"src": "x", "semver": "^1", "newest": 2})
    assert mirror_tag_patterns({}) == [".*"]
    with pytest.raises(AnsibleFilterError, match="an entry must be a mapping"):
        mirror_tag_patterns(["v1"])
