"""Unit tests for _ops/retention/in_use.py: the in_use option parsed, refused in one line when misused,
and matched to the repositories of a run with docker's reference rules."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.in_use import (
    InUse,
    match_in_use,
    parse_in_use,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ManifestRecord,
    RepositorySnapshot,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def snap(name: str, tags: dict[str, str], *extra: str) -> RepositorySnapshot:
    digests = set(tags.values()) | set(extra)
    return RepositorySnapshot(name, tags, {d: ManifestRecord(d) for d in digests})


def test_nothing_given_is_nothing():
    assert parse_in_use(None) == InUse()
    assert parse_in_use([]).given == 0


def test_references_get_docker_s_defaults_and_digests_stay_bare():
    parsed = parse_in_use(["nginx", "index.docker.io/library/redis:7", D1, " docker-pullable://reg:5000/a/b@" + D2])
    assert [str(r) for r in parsed.references] == [
        "docker.io/library/nginx:latest", "docker.io/library/redis:7", "reg:5000/a/b@" + D2]
    assert parsed.digests == (D1,)
    assert parsed.given == 4


@pytest.mark.parametrize(("value", "says"), [
    ("reg/app:1", "in_use is a str, not a list"),
    ({"resources": []}, "in_use is a dict, not a list"),
    (5, "in_use is a int, not a list"),
    ([{"kind": "Pod"}], "in_use[0] is a dict, not a reference"),
    (["ok/app:1", "Bad Ref"], "in_use[1]: 'Bad Ref' is not a valid image reference"),
    (["sha256:abc"], "in_use[0]:"),
])
def test_misuse_is_refused_in_one_line_with_the_form(value, says):
    with pytest.raises(InvalidInputError) as caught:
        parse_in_use(value)
    assert says in caught.value.message
    assert "\n" not in caught.value.message
    if "valid image reference" not in says and says != "in_use[0]:":
        assert "ocireg.registry.images_in_use" in caught.value.message


def test_matching_resolves_tags_from_the_snapshot_and_counts_the_rest():
    app = snap("reg.example.com:5000/team/app", {"v1": D1, "v2": D2}, D3)
    hub = snap("docker.io/library/nginx", {"1.25": D2})
    given = parse_in_use([
        "reg.example.com:5000/team/app:v1",       # tag -> D1
        "reg.example.com:5000/team/app@" + D3,    # untagged child the snapshot read
        "reg.example.com:5000/team/app:gone",     # unresolved
        "reg.example.com:5000/team/other:v1",     # another repository of this registry
        "reg.example.com/team/app:v1",            # no port: another registry, as for docker
        "registry-1.docker.io/library/nginx:1.25",  # Docker Hub under another name -> D2
        "nginx@" + "sha256:" + "9" * 64,          # a digest nginx does not hold
        D2,                                       # bare: every planned repository holding it
    ])
    matched = match_in_use(given, [app, hub])
    assert matched.digests == {
        "docker.io/library/nginx": {D2: ("docker.io/library/nginx:1.25", D2)},
        "reg.example.com:5000/team/app": {D1: ("reg.example.com:5000/team/app:v1",),
                                          D2: (D2,),
                                          D3: ("reg.example.com:5000/team/app@" + D3,)},
    }
    assert matched.report() == {"references": 8, "protected": 4, "unresolved": ["reg.example.com:5000/team/app:gone"],
                                "other_registry": 1, "other_repository": 1, "not_seen": 1}
    [warning] = matched.warnings
    assert warning.startswith("in_use: 1 tag(s) no longer resolve in the registry")
    assert "reg.example.com:5000/team/app:gone" in warning


def test_a_tag_with_the_digest_that_runs_protects_that_digest_only():
    # What images_in_use gives for a Pod: NAME:TAG@DIGEST. The digest is what runs; the tag is not
    # looked up, so a tag deleted since is no warning and a tag moved to D2 does not keep D2.
    app = snap("reg.example.com:5000/team/app", {"dev-2": D2, "moved": D2}, D1)
    given = parse_in_use(["reg.example.com:5000/team/app:dev-1-rc@" + D1,
                          "reg.example.com:5000/team/app:moved@" + D1])
    matched = match_in_use(given, [app])
    assert matched.digests == {"reg.example.com:5000/team/app": {D1: (
        "reg.example.com:5000/team/app:dev-1-rc@" + D1, "reg.example.com:5000/team/app:moved@" + D1)}}
    assert matched.unresolved == []
    assert matched.warnings == []


def test_a_warning_when_not_one_reference_names_this_registry():
    app = snap("reg.example.com/team/app", {"v1": D1})
    given = parse_in_use(["mirror.internal/team/app:v1", "10.0.0.5:5000/team/app@" + D1, D1])
    matched = match_in_use(given, [app])
    assert matched.warnings == [
        "in_use: none of its 2 reference(s) names reg.example.com; they name 10.0.0.5:5000, mirror.internal. If "
        "workloads pull this registry under another name, give in_use the references as this run names the "
        "registry, or its digests"]
    # One reference to this registry (even to another repository) is enough to say the names agree.
    given = parse_in_use(["mirror.internal/team/app:v1", "reg.example.com/team/other:v1"])
    assert match_in_use(given, [app]).warnings == []


def test_no_unresolved_tag_no_warning():
    matched = match_in_use(parse_in_use([D1]), [snap("r.example.com/a", {"v1": D2})])
    assert matched.warnings == [] and matched.report()["not_seen"] == 1
