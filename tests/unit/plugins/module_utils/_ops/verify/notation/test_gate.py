"""Unit tests of the Notation trust kind's edge: the trust store files, the registry scopes, the referrer checker."""

from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    signatures as sg,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.gate import (
    check_referrer,
    load_trust,
    load_trust_store,
    scope_refusal,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.spec import (
    parse_notation,
)

from tests.rig.notation_signing import (
    FIXTURES,
)

IMAGE = "sha256:" + "cd" * 32


def pem_policy(*pems, identities=("*",)):
    return parse_notation({"trust_store": list(pems), "trusted_identities": list(identities),
                           "registry_scopes": ["*"]})


def test_unreadable_trust_store_entries(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    for entry, message in [(str(tmp_path / "missing.pem"), "cannot be read"),
                           (str(tmp_path / "empty"), "holds no .pem, .crt or .cer file"),
                           (str(tmp_path / "junk.pem"), "is not an X.509 certificate")]:
        with pytest.raises(InvalidInputError, match=message):
            load_trust_store(pem_policy(entry))
    (tmp_path / "link.pem").symlink_to(tmp_path / "junk.pem")
    with pytest.raises(InvalidInputError, match="symbolic link"):
        load_trust_store(pem_policy(str(tmp_path / "link.pem")))


# -- registry scopes ---------------------------------------------------------------------------------
class _Where:
    """Only what the scope check reads of a repository (it refuses before any request)."""

    def __init__(self, host, name, local=False):
        self.registry, self.name, self.local = type("R", (), {"host": host})(), name, local


@pytest.mark.parametrize("repo, scopes, refused", [
    (_Where("registry-1.docker.io", "library/app"), ["docker.io/library/app"], None),
    (_Where("index.docker.io", "library/app"), ["Docker.io/library/app"], None),
    (_Where("registry.example.com", "team/app"), ["registry.example.com/team/other"],
     "registry.example.com/team/app is not in verify.notation.registry_scopes (registry.example.com/team/other)"),
    (_Where("", "", local=True), ["registry.example.com/team/app"], "a local layout is not in"),
    (_Where("", "", local=True), ["*"], None),
])
def test_registry_scopes(repo, scopes, refused):
    chosen = parse_notation({"trust_store": [str(FIXTURES / "NotationTestRoot.pem")],
                             "trusted_identities": ["*"], "registry_scopes": scopes})
    if refused is None:
        assert scope_refusal(repo, chosen) is None
    else:
        assert refused in scope_refusal(repo, chosen)


class _NoRequests(_Where):
    """A repository that fails the test on any request: these refusals come before the envelope is read."""

    def fetch_blob(self, *args, **kwargs):
        raise AssertionError("no blob may be read")


def _manifest():
    return type("M", (), {"layers": [], "subject": None})()


def test_the_checker_refuses_without_a_request_when_no_policy_applies():
    where = "referrer sha256:" + "ef" * 32
    [(place, verdict)] = check_referrer(_NoRequests("registry.example.com", "team/app"), _manifest(), IMAGE,
                                        sg.Trust(), where)
    assert place == where and not verdict.ok
    assert verdict.reason == "a Notation signature, and verify.notation is not given"
    chosen = parse_notation({"trust_store": [str(FIXTURES / "NotationTestRoot.pem")], "trusted_identities": ["*"],
                             "registry_scopes": ["registry.example.com/team/other"]})
    trust = sg.Trust(others={"notation": load_trust(chosen)})
    [(_place, verdict)] = check_referrer(_NoRequests("registry.example.com", "team/app"), _manifest(), IMAGE, trust,
                                         where)
    assert not verdict.ok
    assert "registry.example.com/team/app is not in verify.notation.registry_scopes" in verdict.reason
    in_scope = sg.Trust(others={"notation": load_trust(parse_notation({**chosen_fields(), "registry_scopes": ["*"]}))})
    [(_place, verdict)] = check_referrer(_NoRequests("registry.example.com", "team/app"), _manifest(), IMAGE,
                                         in_scope, where)
    assert verdict.reason == "a Notation signature manifest has exactly one JWS or COSE layer"


def chosen_fields():
    return {"trust_store": [str(FIXTURES / "NotationTestRoot.pem")], "trusted_identities": ["*"]}
