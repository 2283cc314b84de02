"""The mirror filters wrap _ops/sync: their own part is the input checks and the error type Ansible shows."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ocireg.registry.plugins.filter.mirror_shard import (
    mirror_shard,
    mirror_summary,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    owner,
)

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
