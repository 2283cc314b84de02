"""The option table is the one home of the connection options: the doc fragment and every spec agree with it.

The doc fragment has to stay a literal YAML string (ansible-test's yamllint reads it as
such), so it cannot be generated from the table; this test is what keeps the two equal.
"""
from __future__ import annotations

import yaml
from ansible_collections.ocireg.registry.plugins.doc_fragments.registry import (
    ModuleDocFragment,
)
from ansible_collections.ocireg.registry.plugins.module_utils._glue import (
    clients,
    options,
)
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    connection_argument_spec,
    side_auth_argument_spec,
)

NEVER_LOGGED = "never logged or returned"


def fragment(name: str = "DOCUMENTATION") -> dict:
    return yaml.safe_load(getattr(ModuleDocFragment, name))["options"]


def description(doc: dict) -> str:
    text = doc.get("description", "")
    return " ".join(text) if isinstance(text, list) else text


def assert_documented_as(spec: dict, doc: dict, where: str) -> None:
    """Names, types, defaults, elements, required and no_log (the docs say "Never logged") agree."""
    assert sorted(spec) == sorted(doc), where
    for name, option in spec.items():
        documented = doc[name]
        what = f"{where}.{name}"
        assert documented["type"] == option["type"], what
        assert documented.get("default") == option.get("default"), what
        assert documented.get("elements") == option.get("elements"), what
        assert bool(documented.get("required")) == bool(option.get("required")), what
        assert (NEVER_LOGGED in description(documented).lower()) == bool(option.get("no_log")), what
        if "options" in option:
            assert_documented_as(option["options"], documented["suboptions"], what)


def test_the_fragment_documents_the_table() -> None:
    assert_documented_as(connection_argument_spec(), fragment(), "DOCUMENTATION")


def test_src_auth_and_dest_auth_document_the_per_side_keys() -> None:
    for name, key in (("SRC_AUTH", "src_auth"), ("DEST_AUTH", "dest_auth")):
        documented = fragment(name)
        assert list(documented) == [key]
        assert_documented_as({key: side_auth_argument_spec()}, documented, name)


def test_every_spec_and_the_client_names_come_from_the_table() -> None:
    table = {option.name: option for option in options.OPTIONS}
    spec = connection_argument_spec()
    assert set(spec) == {*table, options.REGISTRY_AUTH}
    assert clients.CONNECTION_OPTIONS == tuple(table)
    assert clients.PER_SIDE_OPTIONS == tuple(n for n, o in table.items() if o.per_host)
    assert set(side_auth_argument_spec()["options"]) == set(clients.PER_SIDE_OPTIONS)
    entry = spec[options.REGISTRY_AUTH]["options"]
    assert set(entry) == {options.REGISTRY_KEY, *clients.PER_SIDE_OPTIONS}
    # Per-side keys have no defaults: a key left out falls back instead of resetting the top-level value.
    assert not any("default" in o for o in side_auth_argument_spec()["options"].values())
    assert clients.DEFAULT_TIMEOUT == table["timeout"].default == spec["timeout"]["default"]
    assert clients.DEFAULT_RETRIES == table["retries"].default == spec["retries"]["default"]
    # Secrets are the credentials' no_log subset, everywhere they can be given.
    secret = {n for n, o in table.items() if o.no_log}
    assert secret == {"password", "registry_token"} and secret <= set(options.CREDENTIAL_OPTIONS)
    assert {n for n, o in entry.items() if o.get("no_log")} == secret


def test_the_lookup_reads_the_table() -> None:
    from ansible_collections.ocireg.registry.plugins.lookup import registry as lookup

    assert set(lookup.LOOKUP_CONNECTION_OPTIONS) == set(connection_argument_spec())
    # The lookup documents its options through the same fragment.
    assert "ocireg.registry.registry" in yaml.safe_load(lookup.DOCUMENTATION)["extends_documentation_fragment"]


def test_the_check_fails_on_a_drifted_fragment() -> None:
    """The agreement check can fail: a fragment with a changed default is caught."""
    doc = fragment()
    doc["timeout"]["default"] = 30
    try:
        assert_documented_as(connection_argument_spec(), doc, "DOCUMENTATION")
    except AssertionError:
        return
    raise AssertionError("a changed default went unnoticed")
