"""Unit tests for _ops/sync/spec.py: validation lines, naming rules, expansion and sharding."""
from __future__ import annotations

import itertools

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    expand_spec,
    owner,
    shard,
    shard_pairs,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def dests(entries):
    return [(p.src, p.dest) for p in expand_spec(entries)]


def test_prefix_naming_is_the_default_and_keeps_the_source_path():
    assert dests([{"src": "docker.io/library/nginx", "dest": "mirror.example:5000/hub"}]) == [
        ("docker.io/library/nginx", "mirror.example:5000/hub/library/nginx")]
    assert dests([{"src": "ghcr.io/org/app", "dest": "mirror.example:5000"}]) == [
        ("ghcr.io/org/app", "mirror.example:5000/org/app")]


def test_short_docker_hub_names_are_canonical():
    assert dests([{"src": "nginx", "dest": "m.example/hub", "naming": "flat"}]) == [
        ("docker.io/library/nginx", "m.example/hub/nginx")]


def test_flat_exact_and_rewrite():
    assert dests([{"src": ["ghcr.io/a/b/app", "quay.io/x/tool"], "dest": "m.example/flat", "naming": "flat"}]) == [
        ("ghcr.io/a/b/app", "m.example/flat/app"), ("quay.io/x/tool", "m.example/flat/tool")]
    assert dests([{"src": "ghcr.io/a/app", "dest": "m.example/teams/app-mirror", "naming": "exact"}]) == [
        ("ghcr.io/a/app", "m.example/teams/app-mirror")]
    assert dests([{"src": "docker.io/library/redis", "dest": "m.example/hub",
                   "rewrite": {"pattern": "library/(.*)", "replacement": "official/\\1"}}]) == [
        ("docker.io/library/redis", "m.example/hub/official/redis")]


def test_selectors_are_parsed_per_entry():
    pair, = expand_spec([{"src": "ghcr.io/a/app", "dest": "m.example", "semver": "^1", "newest": 2}])
    assert pair.selectors.newest == 2 and pair.selectors.semver.text == "^1"
    assert pair.to_entry() == {"src": "ghcr.io/a/app", "dest": "m.example/a/app", "naming": "exact",
                               "semver": "^1", "newest": 2}


def test_every_mistake_is_one_line_naming_its_entry():
    with pytest.raises(InvalidInputError) as caught:
        expand_spec([
            {"src": "ghcr.io/a/app:1.0", "dest": "m.example"},                       # tag in src
            {"dest": "nohost/path"},                                                 # no src, dest has no host
            {"src": "ghcr.io/a/x", "dest": "m.example", "naming": "tree", "colour": 1},  # bad naming, unknown key
            {"src": ["ghcr.io/a/x", "ghcr.io/a/y"], "dest": "m.example/one", "naming": "exact"},
            {"src": "ghcr.io/a/z", "dest": "m.example", "rewrite": {"pattern": "nomatch", "replacement": "q"}},
            {"src": "ghcr.io/a/w", "dest": "m.example", "semver": "soon"},
            "not a mapping",
        ])
    lines = str(caught.value).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "mirror_spec[0]", "mirror_spec[1]", "mirror_spec[1]", "mirror_spec[2]", "mirror_spec[2]",
        "mirror_spec[3]", "mirror_spec[4]", "mirror_spec[5]", "mirror_spec[6]"], lines
    text = str(caught.value)
    for phrase in ("names a tag or digest", "src is missing", "must start with a registry host",
                   "unknown key colour", "naming must be one of", "exact takes one src", "does not match the whole",
                   "is not a version range", "must be a mapping"):
        assert phrase in text, phrase


def test_two_sources_into_one_destination_and_self_mirrors_are_refused():
    with pytest.raises(InvalidInputError, match=r"both go to m.example/app: one destination"):
        expand_spec([{"src": ["ghcr.io/a/app", "quay.io/b/app"], "dest": "m.example", "naming": "flat"}])
    with pytest.raises(InvalidInputError, match="onto itself"):
        expand_spec([{"src": "m.example/a", "dest": "m.example"}])
    with pytest.raises(InvalidInputError, match="must be a non-empty list"):
        expand_spec([])


@pytest.mark.parametrize("src, dest, named", [
    ("m.example/team/app", "oci:/srv/layout", "dest 'oci:/srv/layout' is a"),
    ("oci-archive:/media/usb/bundle.tar", "m.example/team/app", "src 'oci-archive:/media/usb/bundle.tar' is a"),
    ("oci:/srv/a", "docker-archive:/srv/b.tar", "src 'oci:/srv/a' and dest 'docker-archive:/srv/b.tar' are"),
])
def test_a_local_side_of_select_is_one_line_pointing_to_tags(src, dest, named):
    # select is one dict (not a list), so its lines say "select:", and a layout is not a registry
    # host with a bad name: select and mirror_spec mirror between registries, tags does layouts.
    with pytest.raises(InvalidInputError) as caught:
        expand_spec([{"src": src, "dest": dest, "naming": "exact"}], option="select")
    text = str(caught.value)
    assert text.splitlines() == [text], text
    assert text.startswith(f"select: {named} local layout or archive, but select mirrors between "
                           "registries only"), text
    assert "use src, dest and tags" in text and "registry host" not in text and "select[" not in text


def test_a_local_side_of_a_mirror_spec_entry_names_the_entry():
    with pytest.raises(InvalidInputError) as caught:
        expand_spec([{"src": "ghcr.io/a/app", "dest": "m.example"},
                     {"src": ["ghcr.io/a/b", "oci:/srv/layout:team/b"], "dest": "m.example"}])
    assert str(caught.value) == (
        "mirror_spec[1]: src 'oci:/srv/layout:team/b' is a local layout or archive, but mirror_spec mirrors "
        "between registries only: to mirror into or out of a layout, use src, dest and tags (regular "
        "expressions) instead")


def test_select_lines_do_not_index_the_dict():
    with pytest.raises(InvalidInputError) as caught:
        expand_spec([{"src": "ghcr.io/a/app", "dest": "m.example/app", "naming": "exact", "semver": "soon"}],
                    option="select")
    assert str(caught.value).startswith("select: "), caught.value
    with pytest.raises(InvalidInputError, match=r"^select: ghcr.io/a/app would be mirrored onto itself"):
        expand_spec([{"src": "ghcr.io/a/app", "dest": "ghcr.io/a/app", "naming": "exact"}], option="select")


def test_rewrite_and_naming_exclude_each_other():
    with pytest.raises(InvalidInputError, match="exclude each other"):
        expand_spec([{"src": "ghcr.io/a/b", "dest": "m.example", "naming": "flat",
                      "rewrite": {"pattern": "(.*)", "replacement": "\\1"}}])


# -- sharding --------------------------------------------------------------------------------------

SPEC = [{"src": [f"ghcr.io/org/app{i}" for i in range(40)], "dest": "m.example", "newest": 3},
        {"src": "docker.io/library/nginx", "dest": "m.example/hub", "semver": ">=1.25"}]


def test_owner_does_not_depend_on_host_order():
    hosts = ["a", "b", "c", "d"]
    owners = {f"repo{i}": owner(f"repo{i}", hosts) for i in range(50)}
    for order in itertools.permutations(hosts):  # all 24 orders, not only the reversed one
        assert {key: owner(key, list(order)) for key in owners} == owners, order
    assert set(owners.values()) == set(hosts)  # and the answer is a real choice: every host owns some


@settings(max_examples=100, deadline=None)
@given(hosts=st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=6, unique=True),
       data=st.data())
def test_owner_is_one_of_the_hosts_in_any_order(hosts, data):
    order = data.draw(st.permutations(hosts))
    for i in range(10):
        assert owner(f"repo{i}", hosts) == owner(f"repo{i}", order)
        assert owner(f"repo{i}", hosts) in hosts


def test_me_must_be_a_host():
    with pytest.raises(InvalidInputError, match="'d' is not one of the hosts"):
        shard(SPEC, ["a", "b"], "d")


def test_shares_are_one_source_exact_entries_that_expand_to_themselves():
    share = shard(SPEC, ["a", "b", "c"], "a")
    assert share and all(e["naming"] == "exact" for e in share)
    assert [(p.src, p.dest) for p in expand_spec(share)] == [(e["src"], e["dest"]) for e in share]


@settings(max_examples=100, deadline=None)
@given(hosts=st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=6, unique=True),
       count=st.integers(1, 30))
def test_shares_are_disjoint_and_complete(hosts, count):
    pairs = expand_spec([{"src": [f"ghcr.io/o/r{i}" for i in range(count)], "dest": "m.example"}])
    shares = {host: shard_pairs(pairs, hosts, host) for host in hosts}
    seen = [pair.src for share in shares.values() for pair in share]
    assert sorted(seen) == sorted(pair.src for pair in pairs)  # each exactly once


@settings(max_examples=50, deadline=None)
@given(hosts=st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=6, unique=True),
       new=st.text("xyz", min_size=1, max_size=3))
def test_adding_a_host_moves_only_what_the_new_host_takes(hosts, new):
    keys = [f"ghcr.io/o/r{i}" for i in range(60)]
    before = {key: owner(key, hosts) for key in keys}
    after = {key: owner(key, [*hosts, new]) for key in keys}
    assert all(after[key] in (before[key], new) for key in keys)


def test_shares_are_roughly_even():
    keys = [f"ghcr.io/o/r{i}" for i in range(300)]
    counts = {h: 0 for h in ("a", "b", "c")}
    for key in keys:
        counts[owner(key, list(counts))] += 1
    assert all(60 < n < 140 for n in counts.values()), counts
