"""The one home of the referrers-tag and cosign-tag schemes."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    REFERRERS_INDEX,
    attached_subject,
    cosign_tag,
    is_attached_tag,
    is_referrers_tag,
    parse_attached_tag,
    referrers_tag,
)

SHA256 = "sha256:" + "a" * 64
SHA512 = "sha512:" + "b" * 128


def test_sha256_round_trips_through_every_scheme():
    assert referrers_tag(SHA256) == "sha256-" + "a" * 64
    assert attached_subject(referrers_tag(SHA256)) == (SHA256, REFERRERS_INDEX)
    for suffix, kind in (("sig", "signature"), ("att", "attestation"), ("sbom", "sbom")):
        tag = cosign_tag(SHA256, suffix)
        assert tag == f"sha256-{'a' * 64}.{suffix}"
        assert attached_subject(tag) == (SHA256, kind)
        assert is_attached_tag(tag) and not is_referrers_tag(tag)


def test_sha512_fallback_tag_is_cut_and_resolved_against_known_digests():
    tag = referrers_tag(SHA512)
    assert tag == "sha512-" + "b" * 64  # the spec cuts the encoded part to 64 characters
    assert is_referrers_tag(tag)
    parsed = parse_attached_tag(tag)
    assert parsed is not None and parsed.truncated and parsed.names(SHA512)
    other = "sha512:" + "b" * 64 + "c" * 64
    assert attached_subject(tag, [SHA256, SHA512]) == (SHA512, REFERRERS_INDEX)
    # Ambiguous or unknown: only the prefix form, which names no whole digest.
    assert attached_subject(tag, [SHA512, other])[0] == "sha512:" + "b" * 64
    assert attached_subject(tag)[0] == "sha512:" + "b" * 64


def test_cosign_cannot_tag_a_sha512_digest():
    assert cosign_tag(SHA512, "sig") is None  # 135 characters: over the tag limit
    with pytest.raises(ValueError):
        cosign_tag(SHA256, "exe")


@pytest.mark.parametrize("tag", ["latest", "sha256-abc", "sha256-" + "a" * 64 + ".exe", "sha512-" + "b" * 64 + ".sig",
                                 "SHA256-" + "a" * 64, "sha384-" + "a" * 96])
def test_ordinary_tags_are_not_scheme_tags(tag):
    assert parse_attached_tag(tag) is None
    assert not is_attached_tag(tag)


# -- prune leases ----------------------------------------------------------------------------------


def test_lease_tag_round_trips_and_is_a_valid_tag():
    from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
        validate_tag,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
        LeaseTag,
        is_lease_tag,
        lease_tag,
        parse_lease_tag,
    )

    tag = lease_tag(1_900_000_000, "0123456789abcdef")
    assert tag == "ocireg-prune-lease-1900000000-0123456789abcdef"
    validate_tag(tag)  # the registry's tag grammar: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
    assert parse_lease_tag(tag) == LeaseTag(1_900_000_000, "0123456789abcdef")
    assert is_lease_tag(tag)
    assert not is_attached_tag(tag) and parse_attached_tag(tag) is None


@pytest.mark.parametrize("tag", [
    "ocireg-prune-lease-",                       # nothing after the prefix
    "ocireg-prune-lease-123",                    # no token
    "ocireg-prune-lease-123-XYZ12345",           # token not lowercase hex
    "ocireg-prune-lease-123-abc",                # token too short
    "ocireg-prune-lease-soon-0123456789abcdef",  # expiry not a number
    "release-1900000000-0123456789abcdef",
    "ocireg-prune-lease-123-0123456789abcdef.sig",
])
def test_near_miss_lease_tags_are_ordinary_tags(tag):
    from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
        is_lease_tag,
        parse_lease_tag,
    )

    assert parse_lease_tag(tag) is None and not is_lease_tag(tag)


def test_lease_tag_refuses_a_token_that_would_not_parse_back():
    from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
        lease_tag,
    )

    with pytest.raises(ValueError):
        lease_tag(100, "not-hex!")
    with pytest.raises(ValueError):
        lease_tag(100, "ab")


def test_a_lease_counts_until_its_expiry_plus_the_allowed_skew():
    from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
        LeaseTag,
    )

    lease = LeaseTag(1000, "0123456789abcdef")
    assert lease.active(999.9) and not lease.active(1000)
    assert lease.active(1029, skew=30) and not lease.active(1030, skew=30)
