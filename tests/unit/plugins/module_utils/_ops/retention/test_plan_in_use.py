"""Unit tests for _ops/retention/plan.py's protection of what runs (``in_use``): a digest in use is
kept whole, with what it reaches, whatever the rules say, and the plan says it runs."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.in_use import (
    match_in_use,
    parse_in_use,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import plan_retention
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy

from .test_plan import (
    NOW,
    Repo,
    actions,
    by_digest,
    cosign_tag,
    days_ago,
    kept_tags,
    policies,
    reach_from,
    repositories,
    skipped,
)

HOST = "reg.example.com"


def plan_in_use(repo: Repo, in_use: list[str], **policy):
    snapshot = repo.snapshot()
    matched = match_in_use(parse_in_use(in_use), [snapshot])
    return plan_retention(snapshot, build_policy(policy), NOW, in_use=matched.digests)


def old_repo() -> tuple[Repo, str, str]:
    repo = Repo(f"{HOST}/team/app")
    old = repo.image("old", "v1", "build-1", created=days_ago(200))
    new = repo.image("new", "v2", created=days_ago(1))
    return repo, old, new


def test_without_in_use_the_old_image_goes():
    repo, old, new = old_repo()
    assert actions(plan_in_use(repo, [], older_than="30d")) == {old: "delete", new: "keep"}


def test_a_tag_in_use_keeps_its_digest_with_every_tag():
    repo, old, new = old_repo()
    result = plan_in_use(repo, [f"{HOST}/team/app:v1"], older_than="30d", untag_kept_images=True)
    assert actions(result) == {old: "keep", new: "keep"}
    assert kept_tags(result, repo.name) == {"v1", "build-1", "v2"}
    assert by_digest(result)[old].in_use == (f"{HOST}/team/app:v1",)
    [item] = skipped(result, "in_use")
    assert item.digest == old and item.tags == ("build-1", "v1")
    assert "it is in use (reg.example.com/team/app:v1); kept with all its tags" in item.message
    assert by_digest(result)[new].in_use == ()


def test_a_digest_in_use_is_kept_by_reference_or_bare():
    repo, old, _new = old_repo()
    for given in (f"{HOST}/team/app@{old}", old, f"docker-pullable://{HOST}/team/app@{old}",
                  f"{HOST}/team/app:gone@{old}"):
        result = plan_in_use(repo, [given], older_than="30d")
        assert by_digest(result)[old].action == "keep", given
        assert by_digest(result)[old].in_use == (given.replace("docker-pullable://", ""),)


def test_an_index_in_use_keeps_its_children_and_a_child_in_use_survives_its_index():
    repo = Repo(f"{HOST}/team/app")
    amd = repo.image("amd64", created=days_ago(200))
    arm = repo.image("arm64", created=days_ago(200))
    index = repo.index("multi", [amd, arm], "v1", annotations={"org.opencontainers.image.created": days_ago(200)})
    assert set(actions(plan_in_use(repo, [], older_than="30d")).values()) == {"delete"}
    result = plan_in_use(repo, [f"{HOST}/team/app:v1"], older_than="30d")
    assert set(actions(result).values()) == {"keep"}
    assert by_digest(result)[amd].in_use == (f"{HOST}/team/app:v1",)
    # A node that pulled the arm64 image by its own digest: that child stays, the index and amd64 go.
    result = plan_in_use(repo, [arm], older_than="30d", allow_empty_repository=True)
    assert actions(result) == {index: "delete", amd: "delete", arm: "keep"}
    assert [c.digest for c in by_digest(result)[index].cascaded] == [amd]


def test_the_signature_of_an_image_in_use_stays_and_an_in_use_signature_keeps_its_subject():
    repo, old, _new = old_repo()
    sig = repo.image("sig", cosign_tag(old))
    sbom = repo.referrer("sbom", old)
    result = plan_in_use(repo, [old], older_than="30d")
    assert {d: actions(result)[d] for d in (old, sig, sbom)} == {old: "keep", sig: "keep", sbom: "keep"}
    assert by_digest(result)[sbom].in_use == (old,)
    result = plan_in_use(repo, [sbom], older_than="30d")
    assert actions(result)[old] == "keep"


def test_in_use_wins_over_a_keep_nothing_policy_and_guardrails_see_it():
    repo, old, new = old_repo()
    result = plan_in_use(repo, [f"{HOST}/team/app:v2", old], rules=[{"name": "all", "action": "delete"}],
                         grace_period="0s")
    assert actions(result) == {old: "keep", new: "keep"}
    assert result.violations == ()
    assert result.summary["skipped"] == {"in_use": 2}


def test_in_use_of_another_repository_changes_nothing():
    repo, old, _new = old_repo()
    result = plan_in_use(repo, [f"{HOST}/team/other:v1", "other.example.com/team/app:v1"], older_than="30d")
    assert actions(result)[old] == "delete"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshot=repositories(), params=policies(), picks=st.lists(st.integers(0, 40), max_size=3))
def test_nothing_in_use_nor_what_it_reaches_is_ever_deleted_or_loses_a_tag(snapshot, params, picks):
    """On random repositories and policies: every in-use digest keeps every tag, and all it reaches stays."""
    digests = sorted(set(snapshot.manifests) | set(snapshot.tags.values()))
    running = {digests[p % len(digests)]: ("ref",) for p in picks}
    result = plan_retention(snapshot, build_policy(params), NOW, in_use={snapshot.repository: running})
    entries = by_digest(result)
    after = result.tags_after[snapshot.repository]
    for digest in running:
        for reached in reach_from(snapshot, digest):
            assert entries[reached].action != "delete", (digest, reached)
            assert entries[reached].in_use == ("ref",)
        assert all(after.get(tag) == digest for tag, d in snapshot.tags.items() if d == digest)
    # Without in_use the plan is the plan it always was.
    assert plan_retention(snapshot, build_policy(params), NOW, in_use={}) == plan_retention(
        snapshot, build_policy(params), NOW)
