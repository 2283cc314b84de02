"""Unit tests of the verify option's shape (_ops/verify/policy.py, pure): what parse_verify accepts and refuses."""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    KeySource,
    ReferrerRequirement,
    parse_verify,
)

from tests.rig.signing import Signer


# -- the option shape --------------------------------------------------------------------------
def test_parse_verify_full_shape():
    pem = Signer().public_pem
    policy = parse_verify({"keys": [pem, "/etc/keys/cosign.pub"], "require": ["signature", "attestation"],
                           "annotations": {"env": "prod", "ok": True},
                           "referrers": [{"artifact_type": "application/spdx+json", "signed": True}],
                           "index": "both"})
    assert policy.keys == (KeySource(pem=pem), KeySource(path="/etc/keys/cosign.pub"))
    assert policy.require == ("signature", "attestation")
    assert policy.annotations == {"env": "prod", "ok": "true"}
    assert policy.referrers == (ReferrerRequirement("application/spdx+json", True),)
    assert policy.index == "both"
    assert parse_verify(None) is None
    defaults = parse_verify({"keys": [pem]})
    assert defaults.require == ("signature",) and defaults.index == "self" and defaults.referrers == ()


def test_referrers_only_policy_needs_no_keys():
    policy = parse_verify({"require": [], "referrers": [{"artifact_type": "application/spdx+json"}]})
    assert policy.keys == () and not policy.needs_keys()


@pytest.mark.parametrize("value, fragment", [
    ("yes", "must be a dictionary"),
    ({"keys": ["x"], "key": "y"}, "unknown option(s) key"),
    ({}, "needs keys"),
    ({"require": [], "referrers": []}, "asks for nothing"),
    ({"keys": ["k"], "require": ["signatures"]}, "choose from signature, attestation"),
    ({"keys": ["k"], "index": "all"}, "choose one of self, children, both"),
    ({"keys": "k"}, "verify.keys must be a list"),
    ({"keys": [""]}, "verify.keys[0] must be PEM"),
    ({"require": [], "referrers": [{"artifact_type": "spdx"}]}, "must be a media type"),
    ({"require": [], "referrers": [{"artifact_type": "a/b", "signed": True}]}, "needs keys"),
    ({"require": [], "referrers": [{"artifact_type": "a/b", "sign": True}]}, "unknown option(s) sign"),
    ({"require": ["attestation"], "keys": ["k"], "annotations": {"a": "b"}}, "add 'signature'"),
])
def test_parse_verify_rejects_with_one_line(value, fragment):
    with pytest.raises(InvalidInputError) as info:
        parse_verify(value)
    assert fragment in str(info.value) and "\n" not in str(info.value)
