"""The prune lease convention's pure decisions (_ops/coordination/plan.py)."""
from __future__ import annotations

import json

from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    EMPTY_DESCRIPTOR_DIGEST,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    LEASE_ARTIFACT_TYPE,
    lease_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    TagSelection,
    select_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.plan import (
    CLOCK_SKEW,
    LEASE_TTL,
    WAIT_CAP,
    active_leases,
    describe_leases,
    expired_leases,
    lease_manifest,
    needs_renewal,
    still_held,
    to_restore,
    wait_deadline,
)

NOW = 1_800_000_000.0
LIVE = lease_tag(int(NOW) + 100, "aaaaaaaaaaaaaaaa")
LATER = lease_tag(int(NOW) + 250, "bbbbbbbbbbbbbbbb")
DEAD = lease_tag(int(NOW) - CLOCK_SKEW - 1, "cccccccccccccccc")
SKEWED = lease_tag(int(NOW) - 5, "dddddddddddddddd")  # just expired on our clock: still counts within the skew


def test_active_and_expired_leases_split_the_lease_tags_and_ignore_the_rest():
    tags = ["latest", LIVE, DEAD, "ocireg-prune-lease-x", SKEWED, LATER]
    assert active_leases(tags, NOW) == sorted([LIVE, LATER, SKEWED])
    assert expired_leases(tags, NOW) == [DEAD]
    assert active_leases(["latest", "v1"], NOW) == [] == expired_leases(["latest"], NOW)


def test_a_writer_waits_until_the_last_expiry_but_never_past_the_cap():
    assert wait_deadline([LIVE, LATER], NOW, cap=600) == NOW + 250 + CLOCK_SKEW
    assert wait_deadline([LIVE, LATER], NOW, cap=60) == NOW + 60
    assert wait_deadline([], NOW) == NOW


def test_the_documented_bound_is_what_a_killed_prunes_lease_can_count_for():
    # The doc fragment (prune_lease) states 60 s of lease, 15 s of skew, 75 s of waiting at most.
    assert (LEASE_TTL, CLOCK_SKEW, WAIT_CAP) == (60, 15, 75.0)
    fresh = lease_tag(int(NOW) + LEASE_TTL, "eeeeeeeeeeeeeeee")  # a lease just written, its prune then killed
    assert wait_deadline([fresh], NOW) == NOW + LEASE_TTL + CLOCK_SKEW == NOW + WAIT_CAP
    assert wait_deadline([LATER], NOW) == NOW + WAIT_CAP  # a lease that claims longer is cut to the bound


def test_a_wait_names_each_lease_and_its_expiry():
    assert describe_leases([LIVE, "latest"]) == f"{LIVE} (expires 2027-01-15T08:01:40Z)"


def test_still_held_keeps_only_leases_listed_and_unexpired():
    assert still_held([LIVE, LATER], ["latest", LATER], NOW) == [LATER]
    assert still_held([LIVE], ["latest"], NOW) == []  # released (or renewed away)
    assert still_held([LIVE], [LIVE], NOW + 100 + CLOCK_SKEW) == []  # expired while we waited: a crashed prune


def test_a_lease_is_renewed_once_half_of_it_is_gone():
    expiry = NOW + LEASE_TTL
    assert not needs_renewal(expiry, NOW)
    assert not needs_renewal(expiry, NOW + LEASE_TTL / 2 - 1)
    assert needs_renewal(expiry, NOW + LEASE_TTL / 2 + 1)


def test_only_tags_that_are_gone_are_written_again():
    written = {"a": "sha256:1", "b": "sha256:2", "c": "sha256:3"}
    # b was moved by another writer after us: its word stands; c vanished with a prune's DELETE.
    assert to_restore(written, {"a": "sha256:1", "b": "sha256:9", "c": None}) == ["c"]
    assert to_restore(written, {}) == ["a", "b", "c"]
    assert to_restore(written, dict(written)) == []


def test_the_lease_manifest_is_a_valid_unique_oci_artifact_on_the_empty_blob():
    raw = lease_manifest("aaaaaaaaaaaaaaaa", 123)
    manifest = parse_manifest(raw, mt.OCI_MANIFEST)
    assert manifest.config.digest == EMPTY_DESCRIPTOR_DIGEST
    assert [layer.digest for layer in manifest.layers] == [EMPTY_DESCRIPTOR_DIGEST]
    assert json.loads(raw)["artifactType"] == LEASE_ARTIFACT_TYPE
    # unique per lease: deleting one by digest never takes another tag with it
    assert parse_manifest(lease_manifest("bbbbbbbbbbbbbbbb", 123), mt.OCI_MANIFEST).digest != manifest.digest


def test_mirrors_and_syncs_never_select_a_lease():
    assert select_tags(["v1", LIVE, DEAD], TagSelection.from_patterns([".*"]), skip_referrer_tags=False).selected \
        == ["v1"]
    assert select_tags([LIVE, "v1"], TagSelection()).selected == ["v1"]
