"""Unit and property tests for _ops/retention/plan.py: the pure retention planner.

Each retention hazard has its own test (shared digests, index children,
referrers and cosign tags, bad timestamps, guardrails), and a hypothesis test
checks on hundreds of random repositories and policies that no kept tag ever
loses its digest or anything that digest reaches.
"""
from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    select_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ManifestRecord,
    RepositorySnapshot,
    plan_retention,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    attached_subject,
    referrers_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy
from ansible_collections.ocireg.registry.plugins.module_utils._model.timestamps import OCI_CREATED, format_timestamp

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def dg(name: str) -> str:
    """A real-looking sha256 digest named after a short string."""
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def days_ago(days: float) -> str:
    return format_timestamp(NOW - timedelta(days=days))


def cosign_tag(subject: str, suffix: str = "sig") -> str:
    return subject.replace(":", "-") + (f".{suffix}" if suffix else "")


class Repo:
    """A small builder for repository snapshots; names become digests with dg()."""

    def __init__(self, name: str = "team/app") -> None:
        self.name = name
        self.tags: dict[str, str] = {}
        self.manifests: dict[str, ManifestRecord] = {}
        self.referrers: dict[str, list[str]] = {}

    def image(self, name: str, *tags: str, created: str | None = None, labels=None, annotations=None,
              subject: str | None = None) -> str:
        digest = dg(name)
        self.manifests[digest] = ManifestRecord(
            digest, OCI_MANIFEST, created=created, labels=labels or {}, annotations=annotations or {},
            subject=subject,
        )
        for tag in tags:
            self.tags[tag] = digest
        return digest

    def index(self, name: str, children: list[str], *tags: str, annotations=None) -> str:
        digest = dg(name)
        self.manifests[digest] = ManifestRecord(digest, OCI_INDEX, children=tuple(children),
                                                annotations=annotations or {})
        for tag in tags:
            self.tags[tag] = digest
        return digest

    def referrer(self, name: str, subject: str, created: str | None = None, via_api: bool = True) -> str:
        """A referrer with a subject field; listed in the referrers map when via_api."""
        digest = self.image(name, created=created, subject=subject)
        if via_api:
            self.referrers.setdefault(subject, []).append(digest)
        return digest

    def snapshot(self) -> RepositorySnapshot:
        return RepositorySnapshot(self.name, dict(self.tags), dict(self.manifests),
                                  {k: tuple(v) for k, v in self.referrers.items()})


def plan(repo: Repo | list[Repo], **policy):
    snaps = repo.snapshot() if isinstance(repo, Repo) else [r.snapshot() for r in repo]
    return plan_retention(snaps, build_policy(policy), NOW)


def by_digest(result):
    return {entry.digest: entry for entry in result.entries}


def actions(result) -> dict[str, str]:
    return {entry.digest: entry.action for entry in result.entries}


def kept_tags(result, repo: str = "team/app") -> set[str]:
    return set(result.tags_after[repo])


def skipped(result, reason: str) -> list:
    return [s for s in result.skipped if s.reason == reason]


# -- rules -------------------------------------------------------------------------------------


def test_keep_beats_delete_whatever_the_order():
    repo = Repo()
    a = repo.image("a", "prod-1", created=days_ago(100))
    b = repo.image("b", "dev-1", created=days_ago(100))
    result = plan(repo, rules=[
        {"name": "drop-old", "action": "delete", "older_than": "30d"},
        {"name": "keep-prod", "action": "keep", "prefix": "prod-"},
    ])
    assert actions(result) == {a: "keep", b: "delete"}
    entry = by_digest(result)[a]
    assert [m.to_dict() for m in entry.matched_rules] == [
        {"rule": "drop-old", "action": "delete", "tags": ["prod-1"]},
        {"rule": "keep-prod", "action": "keep", "tags": ["prod-1"]},
    ]


def test_default_action_keep_and_delete():
    repo = Repo()
    a = repo.image("a", "x", created=days_ago(10))
    b = repo.image("b", "pr-1", created=days_ago(10))
    rules = [{"name": "prs", "action": "delete", "prefix": "pr-"}]
    assert actions(plan(repo, rules=rules)) == {a: "keep", b: "delete"}
    result = plan(repo, rules=[{"name": "keep-x", "action": "keep", "names": "x"}], default_action="delete")
    assert actions(result) == {a: "keep", b: "delete"}
    assert [m.to_dict() for m in by_digest(result)[b].matched_rules] == [
        {"rule": "default_action", "action": "delete", "tags": ["pr-1"]}
    ]


@pytest.mark.parametrize(
    "rule, deleted",
    [
        ({"names": ["pr-1", "main"]}, {"pr-1", "main"}),
        ({"prefix": "pr-"}, {"pr-1", "pr-22"}),
        ({"glob": "v1.*"}, {"v1.0", "v1.1"}),
        ({"regex": r"pr-\d"}, {"pr-1"}),  # full match: pr-22 is not selected
        ({"prefix": "pr-", "exclude_names": "pr-22"}, {"pr-1"}),
        ({"regex": ".*", "exclude_glob": "v*", "exclude_prefix": "pr-"}, {"main"}),
        ({"regex": ".*", "exclude_regex": ["v1\\..*", "pr-.*", "main"]}, set()),
    ],
)
def test_tag_selectors(rule, deleted):
    repo = Repo()
    for i, tag in enumerate(["pr-1", "pr-22", "v1.0", "v1.1", "main"]):
        repo.image(f"img{i}", tag, created=days_ago(3))
    result = plan(repo, rules=[{"name": "r", "action": "delete", **rule}])
    assert set(result.tags_before["team/app"]) - kept_tags(result) == deleted


def test_older_than_and_newer_than_windows():
    repo = Repo()
    young = repo.image("young", "a", created=days_ago(2))
    middle = repo.image("middle", "b", created=days_ago(10))
    old = repo.image("old", "c", created=days_ago(40))
    assert actions(plan(repo, older_than="7d")) == {young: "keep", middle: "delete", old: "delete"}
    window = [{"name": "w", "action": "delete", "older_than": "7d", "newer_than": "30d"}]
    assert actions(plan(repo, rules=window)) == {young: "keep", middle: "delete", old: "keep"}
    keep_new = [{"name": "k", "action": "keep", "newer_than": "1w"}, {"name": "d", "action": "delete"}]
    assert actions(plan(repo, rules=keep_new)) == {young: "keep", middle: "delete", old: "delete"}


def test_most_recent_counts_digests_not_tags():
    repo = Repo()
    newest = repo.image("n", "t1", "t2", "t3", "t4", created=days_ago(1))
    second = repo.image("s", "t5", created=days_ago(2))
    third = repo.image("t", "t6", "t7", created=days_ago(3))
    result = plan(repo, keep_latest=2)
    assert actions(result) == {newest: "keep", second: "keep", third: "delete"}
    assert kept_tags(result) == {"t1", "t2", "t3", "t4", "t5"}


def test_most_recent_by_semver_and_tag_name():
    repo = Repo()
    # Ages run against the versions so order_by really changes the outcome.
    v1 = repo.image("v1", "v1.0.0", created=days_ago(1))
    v2 = repo.image("v2", "v2.0.0", created=days_ago(5))
    v10 = repo.image("v10", "v10.0.0", created=days_ago(9))
    rc = repo.image("rc", "v10.0.0-rc.1", created=days_ago(0.5))
    keep = {"name": "k", "action": "keep", "most_recent": 2}
    drop = {"name": "d", "action": "delete"}
    by_age = plan(repo, rules=[keep, drop])
    assert {d for d, a in actions(by_age).items() if a == "keep"} == {rc, v1}
    by_semver = plan(repo, rules=[{**keep, "order_by": "semver"}, drop])
    assert {d for d, a in actions(by_semver).items() if a == "keep"} == {v10, rc}
    by_name = plan(repo, rules=[{**keep, "order_by": "tag_name"}, drop])
    # Code point order: "v2.0.0" > "v10.0.0-rc.1" > "v10.0.0" > "v1.0.0".
    assert {d for d, a in actions(by_name).items() if a == "keep"} == {v2, rc}


def test_most_recent_non_semver_tags_rank_last():
    repo = Repo()
    latest = repo.image("latest", "latest", created=days_ago(1))
    v1 = repo.image("v1", "1.0", created=days_ago(50))
    result = plan(repo, rules=[{"name": "k", "action": "keep", "most_recent": 1, "order_by": "semver"},
                               {"name": "d", "action": "delete"}])
    assert actions(result) == {latest: "delete", v1: "keep"}


def test_most_recent_counts_only_digests_meeting_the_other_conditions():
    repo = Repo()
    rel_old = repo.image("r1", "release-1", created=days_ago(9))
    rel_new = repo.image("r2", "release-2", created=days_ago(8))
    dev_newest = repo.image("d1", "dev-1", created=days_ago(1))
    rules = [{"name": "k", "action": "keep", "prefix": "release-", "most_recent": 1},
             {"name": "d", "action": "delete"}]
    # dev-1 is newest overall but not a release: it neither takes the slot nor survives.
    assert actions(plan(repo, rules=rules)) == {rel_old: "delete", rel_new: "keep", dev_newest: "delete"}


def test_unknown_ages_rank_last_for_most_recent():
    repo = Repo()
    unknown = repo.image("u", "u", created="1970-01-01T00:00:00Z")
    known = repo.image("k", "k", created=days_ago(400))
    result = plan(repo, keep_latest=1)
    assert by_digest(result)[known].action == "keep"
    assert by_digest(result)[unknown].action == "keep"  # kept anyway: unknown age
    assert [s.digest for s in skipped(result, "unknown_age")] == [unknown]


def test_expires_after_label():
    repo = Repo()
    expired = repo.image("e", "e", created=days_ago(15), labels={"quay.expires-after": "2w"})
    fresh = repo.image("f", "f", created=days_ago(13), labels={"quay.expires-after": "2w"})
    invalid = repo.image("i", "i", created=days_ago(100), labels={"quay.expires-after": "1d12h"})
    unlabelled = repo.image("n", "n", created=days_ago(100))
    annotated = repo.image("a", "a", created=days_ago(2), annotations={"quay.expires-after": "1d"})
    rules = [{"name": "expired", "action": "delete", "expires_after_label": "quay.expires-after"}]
    assert actions(plan(repo, rules=rules)) == {
        expired: "delete", fresh: "keep", invalid: "keep", unlabelled: "keep", annotated: "delete",
    }


def test_expires_after_label_on_an_index_comes_from_agreeing_children():
    repo = Repo()
    c1 = repo.image("c1", created=days_ago(20), labels={"quay.expires-after": "1w"})
    c2 = repo.image("c2", created=days_ago(20), labels={"quay.expires-after": "1w"})
    agreeing = repo.index("i1", [c1, c2], "agree")
    c3 = repo.image("c3", created=days_ago(20), labels={"quay.expires-after": "1w"})
    c4 = repo.image("c4", created=days_ago(20), labels={"quay.expires-after": "10w"})
    disagreeing = repo.index("i2", [c3, c4], "disagree")
    result = plan(repo, rules=[{"name": "x", "action": "delete", "expires_after_label": "quay.expires-after"}])
    assert actions(result) == {agreeing: "delete", c1: "delete", c2: "delete",
                               disagreeing: "keep", c3: "keep", c4: "keep"}


# -- hazard: shared digests --------------------------------------------------------------------


def test_shared_digest_partially_condemned_is_only_untagged():
    repo = Repo()
    shared = repo.image("s", "v1.2.3", "pr-77", "pr-78", created=days_ago(90))
    result = plan(repo, rules=[{"name": "prs", "action": "delete", "prefix": "pr-"}], untag_kept_images=True)
    entry = by_digest(result)[shared]
    assert entry.action == "untag"
    assert entry.untag_tags == ("pr-77", "pr-78")
    assert entry.delete_method == "auto"
    assert kept_tags(result) == {"v1.2.3"}
    assert not result.gc_required
    (skip,) = skipped(result, "shared_digest")
    assert skip.tags == ("pr-77", "pr-78") and "v1.2.3" in skip.message
    assert result.summary["untag"] == 1 and result.summary["delete"] == 0


def test_kept_image_keeps_all_its_tags_by_default():
    # protect: prod must not strip 1.2 (the rollback name) off the image prod runs.
    repo = Repo()
    shared = repo.image("s", "prod", "1.2", created=days_ago(90))
    old = repo.image("o", "1.1", created=days_ago(120))
    result = plan(repo, protect="prod", older_than="30d")
    assert actions(result) == {shared: "keep", old: "delete"}
    assert kept_tags(result) == {"prod", "1.2"}
    (skip,) = skipped(result, "kept_image")
    assert skip.tags == ("1.2",) and "prod keep(s) it" in skip.message and "untag_kept_images: true" in skip.message
    assert result.summary["untag"] == 0 and result.untags == ()
    # The opt-in restores tag-level retention.
    opted = plan(repo, protect="prod", older_than="30d", untag_kept_images=True)
    assert by_digest(opted)[shared].untag_tags == ("1.2",) and kept_tags(opted) == {"prod"}


def test_untag_method_is_the_policy_method():
    repo = Repo()
    repo.image("s", "keep", "drop", created=days_ago(90))
    result = plan(repo, rules=[{"name": "d", "action": "delete", "names": "drop"}], tag_delete_method="dummy_manifest",
                  untag_kept_images=True)
    assert result.entries[0].delete_method == "dummy_manifest"


def test_tag_delete_never_skips_partial_untag_but_still_deletes_whole_digests():
    repo = Repo()
    shared = repo.image("s", "keep", "drop", created=days_ago(90))
    alone = repo.image("a", "drop-too", created=days_ago(90))
    result = plan(repo, rules=[{"name": "d", "action": "delete", "prefix": "drop"}], tag_delete_method="never",
                  untag_kept_images=True)
    assert actions(result) == {shared: "keep", alone: "delete"}
    (skip,) = skipped(result, "tag_delete_unsupported")
    assert skip.digest == shared and skip.tags == ("drop",)
    assert kept_tags(result) == {"keep", "drop"}


# -- hazard: index children --------------------------------------------------------------------


def test_children_of_a_kept_index_are_never_deleted_even_untagged():
    repo = Repo()
    amd = repo.image("amd64", created=days_ago(200))
    arm = repo.image("arm64", created=days_ago(200))
    idx = repo.index("idx", [amd, arm], "latest")
    result = plan(repo, protect="latest", older_than="1d", untagged="delete")
    assert actions(result) == {idx: "keep", amd: "keep", arm: "keep"}
    assert by_digest(result)[amd].reachable_from == ("latest",)
    assert by_digest(result)[idx].timestamp_via in (amd, arm)


def test_tagged_child_of_a_kept_index_loses_only_its_tag():
    repo = Repo()
    amd = repo.image("amd64", "latest-amd64", created=days_ago(200))
    idx = repo.index("idx", [amd], "latest", annotations={OCI_CREATED: days_ago(1)})
    result = plan(repo, older_than="30d", untag_kept_images=True)
    assert actions(result) == {idx: "keep", amd: "untag"}
    (skip,) = skipped(result, "reachable")
    assert skip.digest == amd and "latest" in skip.message


def test_deleted_index_cascades_its_children_but_not_shared_ones():
    repo = Repo()
    amd = repo.image("amd64", created=days_ago(200))
    arm = repo.image("arm64", created=days_ago(200))
    common = repo.image("common", created=days_ago(200))
    old = repo.index("old", [amd, arm, common], "v1")
    new = repo.index("new", [common], "v2", annotations={OCI_CREATED: days_ago(1)})
    result = plan(repo, older_than="30d")
    assert actions(result) == {old: "delete", amd: "delete", arm: "delete", common: "keep", new: "keep"}
    entries = by_digest(result)
    assert [c.to_dict() for c in entries[old].cascaded] == sorted(
        [{"digest": amd, "relation": "child"}, {"digest": arm, "relation": "child"}], key=lambda c: c["digest"]
    )
    assert entries[amd].cascaded_from == (old,)
    assert entries[common].reachable_from == ("v2",)
    assert result.summary["delete_cascaded"] == 2


# -- hazard: referrers and cosign ----------------------------------------------------------------


def test_referrers_and_cosign_of_a_kept_subject_are_kept():
    repo = Repo()
    subject = repo.image("app", "v1", created=days_ago(200))
    sbom = repo.referrer("sbom", subject, created=days_ago(300))
    sig_digest = repo.image("sig", cosign_tag(subject), created="0001-01-01T00:00:00Z")
    att_digest = repo.image("att", cosign_tag(subject, "att"))
    # A delete-everything rule must not touch what the kept subject carries.
    result = plan(repo, rules=[{"name": "keep-v1", "action": "keep", "names": "v1"},
                               {"name": "all", "action": "delete"}], untagged="delete")
    assert set(actions(result).values()) == {"keep"}
    assert kept_tags(result) == set(result.tags_before["team/app"])
    assert by_digest(result)[sbom].reachable_from == ("v1",)
    assert "v1" in by_digest(result)[sig_digest].reachable_from
    assert by_digest(result)[att_digest].matched_rules == ()  # cosign tags are not matched by rules


def test_cosign_tags_do_not_take_most_recent_slots():
    repo = Repo()
    old = repo.image("old", "v1", created=days_ago(100))
    new = repo.image("new", "v2", created=days_ago(50))
    # Signatures are newer than both images: if they counted, keep_latest=1 would keep a signature.
    repo.image("sig-old", cosign_tag(old), created=days_ago(1))
    repo.image("sig-new", cosign_tag(new), created=days_ago(1))
    result = plan(repo, keep_latest=1)
    assert by_digest(result)[new].action == "keep"
    assert by_digest(result)[old].action == "delete"
    assert kept_tags(result) == {"v2", cosign_tag(new)}


def test_deleting_a_subject_cascades_referrers_cosign_and_fallback_index():
    repo = Repo()
    subject = repo.image("app", "v1", created=days_ago(200))
    sbom = repo.referrer("sbom", subject, created="1970-01-01T00:00:00Z")  # own age is not consulted
    sig = repo.image("sig", cosign_tag(subject))
    fallback = repo.index("fallback", [sbom], cosign_tag(subject, ""))
    result = plan(repo, older_than="30d")
    assert actions(result) == {subject: "delete", sbom: "delete", sig: "delete", fallback: "delete"}
    entries = by_digest(result)
    relations = {c.digest: c.relation for c in entries[subject].cascaded}
    assert relations == {sbom: "referrer", sig: "signature", fallback: "referrers_index"}
    assert entries[sbom].fallback_index == cosign_tag(subject, "")
    assert entries[sbom].cascaded_from == tuple(sorted([subject, fallback]))
    assert kept_tags(result) == set()
    assert result.summary["delete_cascaded"] == 3


def test_referrer_found_only_through_subject_field_still_follows():
    repo = Repo()
    subject = repo.image("app", "v1", created=days_ago(200))
    sig = repo.referrer("sig", subject, via_api=False)
    assert actions(plan(repo, older_than="30d")) == {subject: "delete", sig: "delete"}
    assert actions(plan(repo, protect="v1", older_than="30d")) == {subject: "keep", sig: "keep"}


def test_a_kept_referrer_protects_its_subject():
    repo = Repo()
    subject = repo.image("app", "old-1", created=days_ago(200))
    repo.referrer("sbom", subject, created=days_ago(1))
    repo.tags["sbom-latest"] = dg("sbom")
    result = plan(repo, rules=[{"name": "keep-sbom", "action": "keep", "names": "sbom-latest"},
                               {"name": "old", "action": "delete", "prefix": "old-"}], untag_kept_images=True)
    entry = by_digest(result)[subject]
    assert entry.action == "untag" and entry.untag_tags == ("old-1",)
    assert entry.reachable_from == ("sbom-latest",)


def test_an_index_s_children_listed_as_its_referrers_do_not_protect_it():
    """A registry that answers the missing fallback tag with the subject (GitLab) lists an index's children as
    its referrers. They name no subject: a kept child (tagged apart) does not keep the condemned index."""
    repo = Repo()
    amd = repo.image("amd64", created=days_ago(200))
    arm = repo.image("arm64", "arm", created=days_ago(1))
    idx = repo.index("idx", [amd, arm], "old-1")
    repo.referrers[idx] = [amd, arm]
    result = plan(repo, rules=[{"name": "old", "action": "delete", "prefix": "old-"}])
    assert actions(result)[idx] == "delete"
    assert actions(result).get(arm, "keep") == "keep"
    assert [c.relation for c in by_digest(result)[idx].cascaded] == ["child"]


def test_orphan_cosign_tag_is_kept_and_not_matched():
    repo = Repo()
    sig = repo.image("sig", cosign_tag(dg("gone")))
    result = plan(repo, rules=[{"name": "all", "action": "delete"}])
    assert actions(result) == {sig: "keep"}


def test_sha512_fallback_tag_written_by_this_collection_follows_its_subject():
    """The fallback tag the client writes for a sha512 subject holds only 64 of its 128 hex digits
    (distribution-spec cuts it); the planner must still tie it to that subject, both ways."""
    repo = Repo()
    subject = "sha512:" + hashlib.sha512(b"app").hexdigest()
    repo.manifests[subject] = ManifestRecord(subject, OCI_MANIFEST, created=days_ago(200))
    repo.tags["v1"] = subject
    sbom = repo.referrer("sbom", subject, created=days_ago(300))
    tag = referrers_tag(subject)  # the very name Repository.put_referrer_fallback pushes
    assert tag == "sha512-" + subject[len("sha512:"):][:64]
    fallback = repo.index("fallback", [sbom], tag)

    kept = plan(repo, rules=[{"name": "keep-v1", "action": "keep", "names": "v1"},
                             {"name": "all", "action": "delete"}], untagged="delete")
    assert set(actions(kept).values()) == {"keep"}
    assert "v1" in by_digest(kept)[fallback].reachable_from
    assert kept_tags(kept) == {"v1", tag}

    dropped = plan(repo, older_than="30d")
    assert actions(dropped) == {subject: "delete", sbom: "delete", fallback: "delete"}
    relations = {c.digest: c.relation for c in by_digest(dropped)[subject].cascaded}
    assert relations[fallback] == "referrers_index"


def test_attached_tag_parsing():
    hexpart = "a" * 64
    assert attached_subject(f"sha256-{hexpart}.sig") == (f"sha256:{hexpart}", "signature")
    assert attached_subject(f"sha256-{hexpart}.att") == (f"sha256:{hexpart}", "attestation")
    assert attached_subject(f"sha256-{hexpart}.sbom") == (f"sha256:{hexpart}", "sbom")
    assert attached_subject(f"sha256-{hexpart}") == (f"sha256:{hexpart}", "referrers_index")
    assert attached_subject(f"sha512-{'b' * 128}.sig") == (f"sha512:{'b' * 128}", "signature")
    for tag in (f"sha256-{hexpart}.sig2", f"sha256-{hexpart[:-1]}.sig", f"sha256-{hexpart.upper()}", "v1.sig"):
        assert attached_subject(tag) is None


# -- hazard: timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created, reason",
    [
        ("1970-01-01T00:00:00Z", "before_2000"),
        (None, "missing"),
        ("last tuesday", "unparsable"),
        ("2027-01-01T00:00:00Z", "future"),
    ],
)
def test_unknown_age_is_kept_and_reported(created, reason):
    repo = Repo()
    digest = repo.image("x", "pr-1", created=created)
    result = plan(repo, match="pr-.*")
    entry = by_digest(result)[digest]
    assert entry.action == "keep" and entry.timestamp is None and entry.unknown_age_reason == reason
    (skip,) = skipped(result, "unknown_age")
    assert skip.tags == ("pr-1",) and "'match'" in skip.message
    assert result.violations == ()


def test_unknown_age_fail_is_a_violation():
    repo = Repo()
    repo.image("x", "pr-1", created="1970-01-01T00:00:00Z")
    repo.image("y", "pr-2", created=days_ago(100))
    result = plan(repo, match="pr-.*", on_unknown_age="fail")
    (violation,) = result.violations
    assert "on_unknown_age is fail" in violation and "before_2000" in violation
    assert result.summary["violations"] == 1


def test_unknown_age_protects_untag_too():
    repo = Repo()
    digest = repo.image("x", "keep", "pr-1", created=None)
    result = plan(repo, match="pr-.*")
    assert by_digest(result)[digest].action == "keep" and kept_tags(result) == {"keep", "pr-1"}


def test_tag_without_a_manifest_record_is_unknown_and_kept():
    snap = RepositorySnapshot("team/app", {"pr-1": dg("ghost")}, {})
    result = plan_retention(snap, build_policy({"match": "pr-.*"}), NOW)
    assert result.entries[0].action == "keep" and result.entries[0].unknown_age_reason == "missing"


def test_timestamp_source_reported():
    repo = Repo()
    digest = repo.image("x", "a", created=days_ago(3), labels={OCI_CREATED: days_ago(4)})
    entry = by_digest(plan(repo))[digest]
    assert (entry.timestamp, entry.timestamp_source) == (days_ago(4), f"label:{OCI_CREATED}")
    entry = by_digest(plan(repo, timestamp_sources=["created"]))[digest]
    assert (entry.timestamp, entry.timestamp_source) == (days_ago(3), "created")


def test_grace_period_protects_young_digests():
    repo = Repo()
    young = repo.image("y", "pr-1", created=days_ago(0.5))
    old = repo.image("o", "pr-2", created=days_ago(2))
    result = plan(repo, match="pr-.*", grace_period="1d")
    assert actions(result) == {young: "keep", old: "delete"}
    (skip,) = skipped(result, "grace_period")
    assert skip.digest == young and "1d" in skip.message


# -- untagged digests ----------------------------------------------------------------------------


def test_untagged_orphans_are_kept_by_default_and_deleted_on_request():
    repo = Repo()
    orphan = repo.image("orphan", created=days_ago(10))
    unknown_orphan = repo.image("unknown", created=None)
    tagged = repo.image("t", "v1", created=days_ago(10))
    assert set(actions(plan(repo)).values()) == {"keep"}
    result = plan(repo, untagged="delete")
    assert actions(result) == {orphan: "delete", unknown_orphan: "keep", tagged: "keep"}
    assert [m.to_dict() for m in by_digest(result)[orphan].matched_rules] == [
        {"rule": "untagged", "action": "delete", "tags": []}
    ]
    assert [s.digest for s in skipped(result, "unknown_age")] == [unknown_orphan]


def test_untagged_rule_with_age_and_keep_override():
    repo = Repo()
    old = repo.image("old", created=days_ago(40))
    recent = repo.image("recent", created=days_ago(3))
    rules = [{"name": "old-orphans", "action": "delete", "untagged": True, "older_than": "30d"}]
    assert actions(plan(repo, rules=rules)) == {old: "delete", recent: "keep"}
    rules.append({"name": "keep-all-orphans", "action": "keep", "untagged": True})
    assert actions(plan(repo, rules=rules)) == {old: "keep", recent: "keep"}


def test_untagged_orphan_index_cascades_its_children():
    repo = Repo()
    child = repo.image("c", created=days_ago(40))
    idx = repo.index("i", [child])
    assert actions(plan(repo, untagged="delete")) == {idx: "delete", child: "delete"}


def test_untagged_subject_of_a_condemned_tagged_referrer_keeps_it():
    # The orphan subject stays (untagged: keep), and what stays protects its referrers.
    repo = Repo()
    subject = repo.image("s", created=days_ago(40))
    ref = repo.referrer("r", subject, created=days_ago(40))
    repo.tags["sbom-1"] = ref
    result = plan(repo, match="sbom-.*", untag_kept_images=True)
    assert actions(result) == {subject: "keep", ref: "untag"}
    assert by_digest(result)[ref].reachable_from == (subject,)


# -- guardrails ----------------------------------------------------------------------------------


def _ten_old_images() -> Repo:
    repo = Repo()
    for i in range(10):
        repo.image(f"img{i}", f"t{i}", created=days_ago(100 + i))
    return repo


def test_max_deletions():
    repo = _ten_old_images()
    assert plan(repo, older_than="1d", max_deletions=10, allow_empty_repository=True).violations == ()
    (violation,) = plan(repo, older_than="1d", max_deletions=9, allow_empty_repository=True).violations
    assert "deletes 10 digests, more than max_deletions (9)" in violation


def test_max_delete_ratio_is_per_repository():
    busy, quiet = _ten_old_images(), Repo("team/other")
    busy.name = "team/busy"
    for i in range(30):
        quiet.image(f"q{i}", f"q{i}", created=days_ago(1))
    rules = [{"name": "t", "action": "delete", "regex": "t[0-5]"}]  # 6 of 10 in busy, 0 of 30 in quiet
    assert plan([busy, quiet], rules=rules, max_delete_ratio=0.6).violations == ()
    (violation,) = plan([busy, quiet], rules=rules, max_delete_ratio=0.5).violations
    assert violation.startswith("team/busy: the plan deletes 6 of 10 digests (60%)")


def test_min_keep_counts_tagged_digests_left():
    repo = _ten_old_images()
    assert plan(repo, keep_latest=3, min_keep=3).violations == ()
    (violation,) = plan(repo, keep_latest=2, min_keep=3).violations
    assert "would leave 2 tagged digests, fewer than min_keep (3)" in violation
    # A repository already below min_keep is no violation when the plan removes nothing.
    small = Repo()
    small.image("one", "only", created=days_ago(1))
    assert plan(small, min_keep=3).violations == ()


@pytest.mark.parametrize("policy", [{"older_than": "1d"}, {"match": ".*"}, {"keep_latest": 0},
                                    {"default_action": "delete"}])
def test_a_plan_emptying_a_repository_is_refused_by_default(policy):
    result = plan(_ten_old_images(), **policy)
    (violation,) = result.violations
    assert violation.startswith("team/app: the plan deletes 10 of 10 digests and leaves 0 of 10 tagged digests "
                                "(0 of 10 tags), emptying the repository")
    assert "allow_empty_repository: true" in violation
    assert plan(_ten_old_images(), allow_empty_repository=True, **policy).violations == ()
    # Keeping one image is no longer emptying.
    assert plan(_ten_old_images(), protect="t0", **policy).violations == ()


def test_untagging_every_tag_of_a_repository_is_refused_too():
    # No digest is deleted (the untagged subject stays and protects its referrer), but no tag is left.
    repo = Repo()
    subject = repo.image("s", created=days_ago(40))
    ref = repo.referrer("r", subject, created=days_ago(40))
    repo.tags["sbom-1"] = ref
    result = plan(repo, match="sbom-.*", untag_kept_images=True)
    assert result.summary["delete"] == 0 and result.summary["tags_after"] == 0
    (violation,) = result.violations
    assert "deletes 0 of 2 digests and leaves 0 of 1 tagged digests (0 of 1 tags), emptying" in violation
    assert plan(repo, match="sbom-.*", untag_kept_images=True, allow_empty_repository=True).violations == ()


def test_guardrails_leave_the_plan_itself_intact():
    result = plan(_ten_old_images(), older_than="1d", max_deletions=0)
    assert result.violations and result.summary["delete"] == 10 and result.gc_required


# -- output shape --------------------------------------------------------------------------------


def test_plan_is_ordered_by_repository_then_digest_and_serialisable():
    first, second = Repo("b/second"), Repo("a/first")
    for repo in (first, second):
        for name in ("z", "m", "a"):
            repo.image(repo.name + name, name, created=days_ago(40))
    result = plan([first, second], older_than="30d")
    keys = [(e.repository, e.digest) for e in result.entries]
    assert keys == sorted(keys) and keys[0][0] == "a/first"
    as_dict = result.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert set(as_dict) == {"plan", "skipped", "summary", "gc_required", "tags_before", "tags_after", "violations",
                            "warnings"}
    assert result.diff() == {"before": as_dict["tags_before"], "after": as_dict["tags_after"]}
    assert as_dict["summary"] == {
        "repositories": 2, "digests": 6, "keep": 0, "untag": 0, "delete": 6, "delete_cascaded": 0,
        "tags_before": 6, "tags_after": 0, "tags_removed": 6, "skipped": {}, "violations": 2,
    }
    assert result.changes and len(result.deletions) == 6 and result.untags == ()


def test_no_change_plan():
    repo = Repo()
    repo.image("a", "a", created=days_ago(1))
    result = plan(repo, older_than="30d")
    assert not result.changes and not result.gc_required
    assert result.tags_before == result.tags_after


def test_bad_arguments():
    repo = Repo()
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        plan_retention(repo.snapshot(), build_policy({}), datetime(2026, 1, 1))
    with pytest.raises(InvalidInputError, match="same repository twice"):
        plan_retention([repo.snapshot(), repo.snapshot()], build_policy({}), NOW)


# -- property test ---------------------------------------------------------------------------------

TAG_POOL = ["latest", "stable", "main", "dev", "pr-1", "pr-2", "pr-10", "v1.0.0", "v1.2.0", "v2.0.0-rc.1",
            "v2.0.0", "release-3", "20240101", "nightly"]
BAD_TIMES = [None, "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "garbage", "2099-01-01T00:00:00Z"]
# Seven in ten plausible (0-400 days old), so plans delete often enough to stress the invariant;
# hypothesis does not weight one_of branches evenly, hence the explicit dice.
TIMES = st.tuples(st.integers(0, 9), st.integers(0, 400 * 24), st.sampled_from(BAD_TIMES)).map(
    lambda t: days_ago(t[1] / 24) if t[0] < 7 else t[2]
)
DURATIONS = st.sampled_from(["1h", "12h", "1d", "3d", "1w", "2w", "30d", "1d12h", "90d"])
SELECTOR = st.one_of(
    st.just({}),
    st.lists(st.sampled_from(TAG_POOL), min_size=1, max_size=4).map(lambda names: {"names": names}),
    st.sampled_from(["pr-", "v", "v1", "re", "d"]).map(lambda p: {"prefix": p}),
    st.sampled_from(["pr-*", "v*.*", "*a*", "?????"]).map(lambda g: {"glob": g}),
    st.sampled_from([r"pr-\d+", r"v\d+\.\d+\.\d+.*", "main|dev", ".*"]).map(lambda r: {"regex": r}),
)


@st.composite
def rules(draw):
    action = draw(st.sampled_from(["keep", "delete"]))
    rule = {"action": action, **draw(SELECTOR)}
    if draw(st.booleans()):
        rule.update({f"exclude_{k}": v for k, v in draw(SELECTOR).items()})
    if action == "keep" and draw(st.booleans()):
        rule["most_recent"] = draw(st.integers(0, 4))
        rule["order_by"] = draw(st.sampled_from(["age", "semver", "tag_name"]))
    if draw(st.booleans()):
        rule["older_than" if draw(st.booleans()) else "newer_than"] = draw(DURATIONS)
    if action == "delete" and draw(st.integers(0, 4)) == 0:
        rule["expires_after_label"] = "quay.expires-after"
    if action == "delete" and draw(st.integers(0, 5)) == 0:
        rule = {"action": "delete", "untagged": True}
    return rule


@st.composite
def policies(draw):
    policy = {"rules": [{**rule, "name": f"r{i}"} for i, rule in enumerate(draw(st.lists(rules(), max_size=4)))]}
    policy["default_action"] = draw(st.sampled_from(["delete", "keep"]))
    policy["tag_delete_method"] = draw(st.sampled_from(["auto", "dummy_manifest", "never"]))
    policy["grace_period"] = draw(st.sampled_from([None, None, "1h", "2d"]))
    policy["on_unknown_age"] = draw(st.sampled_from(["keep", "fail"]))
    policy["max_deletions"] = draw(st.sampled_from([None, 0, 3]))
    policy["min_keep"] = draw(st.sampled_from([None, 1, 4]))
    policy["max_delete_ratio"] = draw(st.sampled_from([None, 0.5]))
    policy["untag_kept_images"] = draw(st.booleans())
    policy["allow_empty_repository"] = draw(st.booleans())
    if draw(st.booleans()):
        policy["protect"] = draw(st.lists(st.sampled_from(TAG_POOL), min_size=1, max_size=3))
    return policy


MAX_MANIFESTS = 12
# One draw per manifest: (kind, expires label, annotation time, config created, child picks, subject pick, via API).
MANIFEST_SHAPE = st.tuples(
    st.sampled_from(["image", "image", "index", "referrer"]),
    st.sampled_from([None, None, "1d", "2w", "bogus"]),
    st.one_of(st.none(), st.none(), st.none(), TIMES),
    TIMES,
    st.lists(st.integers(0, MAX_MANIFESTS - 1), max_size=3, unique=True),
    st.integers(0, MAX_MANIFESTS - 1),
    st.booleans(),
)
TAG_SHAPE = st.dictionaries(st.sampled_from(TAG_POOL), st.integers(0, MAX_MANIFESTS - 1), max_size=10)
# (subject pick, where MAX_MANIFESTS means a subject not in the repository; suffix; target pick)
ATTACHED_SHAPE = st.lists(
    st.tuples(st.integers(0, MAX_MANIFESTS), st.sampled_from(["sig", "att", "sbom", ""]),
              st.integers(0, MAX_MANIFESTS - 1)),
    max_size=3,
)


@st.composite
def repositories(draw):
    shapes = draw(st.lists(MANIFEST_SHAPE, min_size=1, max_size=MAX_MANIFESTS))
    count = len(shapes)
    digests = [dg(f"m{i}") for i in range(count)]
    manifests, referrers = {}, {}
    for i, (kind, expires, annotated, created, picks, subject_pick, via_api) in enumerate(shapes):
        digest = digests[i]
        children, subject = (), None
        if kind == "index":
            # Children among earlier digests keep the graph acyclic, as content addressing does.
            children = tuple(digests[p] for p in picks if p < i)
        if kind == "referrer" and count > 1:
            subject = digests[subject_pick % count]
            subject = digests[(subject_pick + 1) % count] if subject == digest else subject
            if via_api:
                referrers.setdefault(subject, []).append(digest)
        manifests[digest] = ManifestRecord(
            digest, OCI_INDEX if kind == "index" else OCI_MANIFEST, children=children, subject=subject,
            labels={"quay.expires-after": expires} if expires else {},
            annotations={OCI_CREATED: annotated} if annotated else {},
            created=None if kind == "index" else created,
        )
    # Several tags drawing the same digest make shared digests.
    tags = {tag: digests[pick % count] for tag, pick in draw(TAG_SHAPE).items()}
    for subject_pick, suffix, target in draw(ATTACHED_SHAPE):
        subject = digests[subject_pick] if subject_pick < count else dg("absent")
        tags[cosign_tag(subject, suffix)] = digests[target % count]
    if draw(st.integers(0, 5)) == 0:
        tags["dangling"] = dg("no-record")
    return RepositorySnapshot("team/prop", tags, manifests, {k: tuple(v) for k, v in referrers.items()})


def reach_from(snapshot: RepositorySnapshot, start: str) -> set[str]:
    """Everything a digest reaches, computed here independently of the planner's graph."""
    edges: dict[str, set[str]] = {}
    present = set(snapshot.manifests) | set(snapshot.tags.values())

    def link(a, b, both=False):
        if a in present and b in present:
            edges.setdefault(a, set()).add(b)
            if both:
                edges.setdefault(b, set()).add(a)

    for digest, record in snapshot.manifests.items():
        for child in record.children:
            link(digest, child)
        if record.subject:
            link(record.subject, digest, both=True)
    for subject, refs in snapshot.referrers.items():
        for ref in refs:
            link(subject, ref, both=True)
    for tag, digest in snapshot.tags.items():
        found = attached_subject(tag)
        if found:
            link(found[0], digest, both=True)
    seen, stack = {start}, [start]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def shuffled(snapshot: RepositorySnapshot, seed: int) -> RepositorySnapshot:
    """The same snapshot with every mapping in another insertion order."""
    rng = random.Random(seed)

    def mix(mapping):
        items = list(mapping.items())
        rng.shuffle(items)
        return dict(items)

    return RepositorySnapshot(snapshot.repository, mix(snapshot.tags), mix(snapshot.manifests),
                              mix({k: tuple(reversed(v)) for k, v in snapshot.referrers.items()}))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshot=repositories(), params=policies(), seed=st.integers(0, 2**16))
def test_no_kept_tag_ever_loses_its_digest_or_what_it_reaches(snapshot, params, seed):
    policy = build_policy(params)
    result = plan_retention(snapshot, policy, NOW)
    entries = by_digest(result)
    before = dict(snapshot.tags)
    after = dict(result.tags_after[snapshot.repository])

    # Invariant: every tag that stays keeps its digest and everything the digest reaches.
    for tag in after:
        assert after[tag] == before[tag]
        for digest in reach_from(snapshot, before[tag]):
            assert entries[digest].action != "delete", (tag, digest)
    untagged = {t for e in result.entries for t in e.untag_tags}
    assert not untagged & set(after)

    # tags_after is exactly tags_before minus untagged tags and tags of deleted digests.
    deleted_tags = {t for e in result.entries if e.action == "delete" for t in e.tags}
    assert set(after) == set(before) - untagged - deleted_tags
    assert result.tags_before[snapshot.repository] == before

    # A tag a plain keep rule (selectors only) matches is never removed: keep beats delete.
    for rule in policy.rules:
        if rule.action == "keep" and not rule.untagged and not rule.uses_age and rule.most_recent is None:
            for tag in before:
                if attached_subject(tag) is None and select_tags([tag], rule.selector).selected:
                    assert tag in after, (rule.name, tag)
    # Nothing of unknown age or inside the grace period loses a normal tag.
    for entry in result.entries:
        normal = [t for t in entry.tags if attached_subject(t) is None]
        if entry.unknown_age_reason is not None or (
            policy.grace_period and entry.timestamp and NOW - datetime.fromisoformat(entry.timestamp) < policy.grace_period
        ):
            assert all(t in after for t in normal), entry

    # Every entry is well formed.
    assert [(e.repository, e.digest) for e in result.entries] == sorted((e.repository, e.digest) for e in result.entries)
    assert set(entries) == set(snapshot.manifests) | set(before.values())
    for entry in result.entries:
        assert entry.action in ("keep", "untag", "delete")
        assert (entry.action == "untag") == bool(entry.untag_tags)
        assert set(entry.untag_tags) <= set(entry.tags)
        if policy.tag_delete_method == "never":
            assert entry.action != "untag"
    assert result.gc_required == any(e.action == "delete" for e in result.entries)
    if policy.max_deletions is not None and result.summary["delete"] > policy.max_deletions:
        assert any("max_deletions" in v for v in result.violations)

    # Both modes of keep-wins-for-whole-images (untag_kept_images off and on).
    if not policy.untag_kept_images:
        # Default: a digest that stays keeps every tag on it; nothing is ever untagged.
        assert result.untags == () and result.summary["untag"] == 0
        for entry in result.entries:
            if entry.action != "delete":
                assert all(t in after for t in entry.tags), entry
    else:
        # Opt-in: tags may be removed from digests that stay, but only tags the rules condemned or
        # attached tags following a deleted subject -- never a tag a plain keep rule holds (checked above).
        for entry in result.entries:
            if entry.action == "untag":
                assert entry.digest in set(before.values())
    # Guardrail: a plan that leaves no tagged digest or deletes every digest is refused unless opted in.
    normal_before = {t for t in before if attached_subject(t) is None}
    normal_after = {t for t in after if attached_subject(t) is None}
    emptied = (normal_before and not normal_after) or (result.entries and all(e.action == "delete" for e in result.entries))
    changed = result.summary["delete"] or result.summary["tags_removed"]
    has_violation = any("emptying the repository" in v for v in result.violations)
    assert has_violation == bool(changed and emptied and not policy.allow_empty_repository)

    # Deterministic: the same input twice, or in another order, gives the same plan.
    as_dict = result.to_dict()
    assert plan_retention(snapshot, policy, NOW).to_dict() == as_dict
    assert plan_retention(shuffled(snapshot, seed), policy, NOW).to_dict() == as_dict
    assert json.loads(json.dumps(as_dict)) == as_dict


# -- nothing silent: patterns that select nothing -----------------------------------------------


def test_a_pattern_selecting_no_tag_is_warned_with_a_search_regex_hint():
    repo = Repo()
    repo.image("b", "build-42", created=days_ago(90))
    repo.image("p", "prod", created=days_ago(90))
    result = plan(repo, match="^build-", older_than="30d")
    assert result.warnings == (
        "match pattern '^build-' selects none of the 2 tag(s) in team/app; patterns match the whole tag, so ^ "
        "and $ are not needed: write 'build-' for exactly that tag or 'build-.*' for tags starting with it",
    )
    assert result.summary["delete"] == 0
    (warning,) = plan(repo, protect="prd", older_than="30d", allow_empty_repository=True).warnings
    assert warning.startswith("protect pattern 'prd' selects none of the 2 tag(s)")
    assert "write 'prd.*'" in warning
    rules = [{"name": "old", "action": "delete", "prefix": ["pr-", "build-"]},
             {"name": "every", "action": "delete", "glob": "*"}]
    (warning,) = plan(repo, rules=rules).warnings
    assert warning == "rule 'old' prefix 'pr-' selects none of the 2 tag(s) in team/app"


def test_no_warning_when_patterns_match_or_the_repository_has_no_tags():
    repo = Repo()
    repo.image("b", "build-42", created=days_ago(90))
    assert plan(repo, match="build-.*", older_than="30d", allow_empty_repository=True).warnings == ()
    assert plan(Repo(), match="^build-").warnings == ()
    # Over several repositories, a pattern warns only when no repository has a matching tag.
    other = Repo("team/other")
    other.image("x", "x", created=days_ago(1))
    assert plan([repo, other], match="build-.*", older_than="30d", allow_empty_repository=True).warnings == ()
    (warning,) = plan([repo, other], match="nope", older_than="30d").warnings
    assert "in any of 2 repositories" in warning
