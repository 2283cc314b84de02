"""Unit tests of verify.notation as the user writes it: the option, distinguished names (pure)."""

from __future__ import annotations


import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.spec import (
    parse_dn,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    OPTION_SPEC,
    parse_verify,
)


# -- the option -------------------------------------------------------------------------------------
def test_notation_is_a_trust_kind_beside_keys():
    """verify.notation alone is enough (no keys): a Notation signature is a signature, so the default
    require: [signature] is met by one the trust policy accepts."""
    parsed = parse_verify({"notation": {
        "trust_store": ["/etc/notation/ca.pem"], "trusted_identities": ["*"],
        "registry_scopes": ["Registry-1.Docker.io/library/app"]}})
    assert parsed.require == ("signature",) and parsed.keys == ()
    assert parsed.trust["notation"].registry_scopes == ("docker.io/library/app",)
    both = parse_verify({"keys": ["/k.pub"], "notation": {
        "trust_store": ["/ca.pem"], "trusted_identities": ["*"], "registry_scopes": ["*"]}})
    assert set(both.trust) == {"notation"} and len(both.keys) == 1
    assert "notation" in OPTION_SPEC["options"] and OPTION_SPEC["options"]["notation"]["type"] == "dict"


@pytest.mark.parametrize("value, message", [
    ({"require": ["notation"]}, "a Notation signature is a signature: give verify.notation"),
    ({"notation": ["/a"]}, "verify.notation must be a dictionary"),
    ({"notation": {"trust_store": ["/a"], "trusted_identities": ["*"]}},
     "verify.notation.registry_scopes must be a non-empty list"),
    ({"notation": {"trust_store": ["/a"], "trusted_identities": ["*"],
                   "registry_scopes": ["app"]}},
     "registry_scopes has 'app': give fully qualified repositories"),
    ({"notation": {"trust_store": ["/a"], "trusted_identities": ["CN=me"],
                   "registry_scopes": ["*"]}},
     "trusted_identities[0] must be 'x509.subject: C=.., ST=.., O=..'"),
    ({"notation": {"trust_store": ["/a"], "trusted_identities": ["x509.subject: CN=me"],
                   "registry_scopes": ["*"]}},
     "must name at least C, ST (or S) and O"),
    ({"notation": {"trust_store": ["/a"], "registry_scopes": ["*"], "trusted_identities": [
        "x509.subject: C=US, ST=WA, O=acme", "x509.subject: C=US, S=WA, O=acme, OU=build"]}}, "overlap"),
    ({"notation": {"trust_store": ["/a"], "trusted_identities": ["*", "*"],
                   "registry_scopes": ["*"], "level": "audit"}},
     "verify.notation has unknown option(s) level"),
])
def test_bad_notation_options_fail_with_one_line(value, message):
    with pytest.raises(InvalidInputError) as info:
        parse_verify(value)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_distinguished_names_with_escapes():
    assert parse_dn(r"C=US, S=WA, O=acme\, inc., CN=\ build\\er") == (
        ("C", "US"), ("ST", "WA"), ("O", "acme, inc."), ("CN", r" build\er"))
    with pytest.raises(ValueError, match="names C twice"):
        parse_dn("C=US, C=DE")
