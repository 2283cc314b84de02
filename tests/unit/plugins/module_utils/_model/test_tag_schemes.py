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
