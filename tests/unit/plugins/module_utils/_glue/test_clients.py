"""Which credentials reach which registry: ClientFactory's binding rules, without a network.

Building a client sends no request, so what each client would authenticate with
(``Registry.credentials``) is read directly. HOME points at an empty temp dir so no
developer login is found; auth files are real files in it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import (
    transport_options,
    ClientFactory,
    merge_options,
    parse_registry_auth,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    AuthorizationError,
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)

OURS = "registry.example.com"
THEIRS = "registry.other.io"
TOP = {"username": "ci", "password": "our-secret"}


@pytest.fixture(autouse=True)
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


def user_of(factory: ClientFactory, reference: str, override=None, side=None):
    creds = factory.repository(Reference.parse(reference), override, side=side).registry.credentials
    return None if creds is None else (creds.username, creds.password or creds.registry_token)


def test_top_level_credentials_reach_only_the_home_registry() -> None:
    factory = ClientFactory(TOP)
    factory.bind(OURS)
    assert user_of(factory, f"{THEIRS}/app:1", side="src") is None
    assert user_of(factory, f"{OURS}/app:1", side="dest") == ("ci", "our-secret")
    # A source on the same registry as the destination is home too.
    assert user_of(factory, f"{OURS}/other:1", side="src") == ("ci", "our-secret")


def test_without_bind_the_first_registry_asked_for_is_home() -> None:
    factory = ClientFactory(TOP)
    assert user_of(factory, f"{OURS}/app:1") == ("ci", "our-secret")
    assert user_of(factory, f"{THEIRS}/app:1") is None
    assert factory.home == OURS


def test_registry_auth_entries_reach_only_their_host() -> None:
    factory = ClientFactory({**TOP, "registry_auth": [
        {"registry": "https://ghcr.io", "username": "gh", "password": "gh-secret"},
        {"registry": THEIRS, "registry_token": "their-token"},
    ]}, home=OURS)
    assert user_of(factory, "ghcr.io/team/app:1") == ("gh", "gh-secret")
    assert user_of(factory, f"{THEIRS}/app:1") == (None, "their-token")
    assert user_of(factory, f"{OURS}/app:1") == ("ci", "our-secret")
    assert user_of(factory, "quay.io/app:1") is None
    assert {"gh-secret", "their-token", "our-secret"} <= set(factory.secrets())


def test_side_auth_wins_and_credentials_never_mix_across_sources() -> None:
    factory = ClientFactory({**TOP, "registry_auth": [{"registry": THEIRS, "username": "x", "password": "x-secret"}]},
                            home=THEIRS)
    # src_auth gives a username only: the home password must not be paired with it.
    with pytest.raises(InvalidInputError, match="password is missing"):
        user_of(factory, f"{THEIRS}/app:1", {"username": "someone"}, side="src")
    assert user_of(factory, f"{THEIRS}/app:1", {"username": "s", "password": "s-secret"}, side="src") == \
        ("s", "s-secret")
    # The task's own credentials beat a registry_auth entry for its own registry.
    assert user_of(factory, f"{THEIRS}/app:1") == ("ci", "our-secret")
    assert merge_options(TOP, {"registry_token": "t"})["password"] is None


def test_non_credential_options_of_an_entry_apply_to_its_host(tmp_path: Path) -> None:
    top, their = tmp_path / "top.pem", tmp_path / "their.pem"  # CA bundles must exist
    top.write_text("")
    their.write_text("")
    factory = ClientFactory({"ca_path": str(top), "registry_auth": [{"registry": THEIRS, "ca_path": str(their)}]},
                            home=OURS)
    assert factory.registry(THEIRS).options.ca_path == str(their)
    assert factory.registry(OURS).options.ca_path == str(top)


def test_auth_files_serve_every_host_and_podman_namespace_keys(empty_home: Path) -> None:
    config = empty_home / ".docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"auths": {
        THEIRS: {"username": "file", "password": "file-secret"},
        f"{THEIRS}/team": {"username": "team", "password": "team-secret"},
    }}))
    factory = ClientFactory(TOP, home=OURS)
    assert user_of(factory, f"{THEIRS}/app:1", side="src") == ("file", "file-secret")
    assert user_of(factory, f"{THEIRS}/team/app:1", side="src") == ("team", "team-secret")


def test_reads_over_several_registries_refuse_top_level_credentials() -> None:
    factory = ClientFactory(TOP)
    with pytest.raises(InvalidInputError, match=r"on 2 registries .*registry_auth"):
        factory.bind_reads([OURS, THEIRS])
    ClientFactory({}).bind_reads([OURS, THEIRS])  # nothing to misplace: allowed
    one = ClientFactory(TOP)
    one.bind_reads([OURS, f"{OURS}"])
    assert one.home == OURS
    several = ClientFactory({"registry_auth": [{"registry": OURS, **TOP}]})
    several.bind_reads([OURS, THEIRS])
    assert user_of(several, f"{OURS}/a:1") == ("ci", "our-secret")
    assert user_of(several, f"{THEIRS}/a:1") is None


def test_a_401_from_a_registry_given_no_credentials_names_the_option() -> None:
    factory = ClientFactory(TOP, home=OURS)
    factory.repository(Reference.parse(f"{THEIRS}/app:1"), side="src")
    factory.repository(Reference.parse(f"{OURS}/app:1"), side="dest")
    # The registry is found by the error's host field, never by reading its message.
    err = AuthenticationError("authentication failed", host=THEIRS, operation="GET manifest", status=401)
    explained = factory.explain(err)
    assert isinstance(explained, AuthenticationError)
    assert explained.message == (
        f"src {THEIRS} answered 401 and no credentials were given for it: set src_auth or registry_auth "
        f"(an entry with registry: {THEIRS}); the top-level credentials are only sent to {OURS}")
    # An anonymous token that grants nothing (Distribution answers 401 insufficient_scope) is the same case.
    denied = AuthorizationError("", host=THEIRS, operation="GET tags", status=401)
    assert "src_auth" in factory.explain(denied).message
    # The home registry has credentials, other errors and other hosts pass through untouched.
    for untouched in (AuthenticationError("", host=OURS, operation="GET", status=401),
                      NotFoundError("", host=THEIRS, operation="GET", status=404),
                      AuthenticationError("", host=f"{THEIRS}:5000", operation="GET", status=401),
                      AuthenticationError(f"GET on {THEIRS} failed: HTTP 401", status=401)):  # no host field
        assert factory.explain(untouched) is untouched


@pytest.mark.parametrize("entries, message", [
    ({"ghcr.io": {}}, "must be a list"),
    ([{"username": "x"}], "needs 'registry'"),
    ([{"registry": "ghcr.io", "pasword": "x"}], "unknown key"),
    ([{"registry": "quay.io/team"}], "has a path"),
    ([{"registry": "docker.io"}, {"registry": "index.docker.io"}], "two entries for docker.io"),
    ([{"registry": "bad host!"}], "not a valid registry host"),
])
def test_bad_registry_auth_is_one_clear_line(entries, message) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        parse_registry_auth(entries)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("options", "expected"), [
    ({"timeout": -5}, "timeout must be more than 0 seconds, got -5"),
    ({"timeout": 0}, "timeout must be more than 0 seconds, got 0"),
    ({"ca_path": "/nonexistent/ca.pem"}, "ca_path /nonexistent/ca.pem does not exist"),
    ({"client_cert": "/nonexistent/c.pem"}, "client_cert /nonexistent/c.pem is not a file"),
    ({"client_key": "/nonexistent/k.pem"}, "client_key /nonexistent/k.pem is not a file"),
])
def test_connection_options_the_http_library_would_refuse_are_refused_by_name(options, expected) -> None:
    # requests says "Invalid timeout (-5.0, -5.0). Pass a (connect, read) timeout tuple ..." or
    # "Could not find a suitable TLS CA certificate bundle": words that name no option.
    with pytest.raises(InvalidInputError) as raised:
        transport_options(options)
    assert str(raised.value).startswith(expected)


def test_good_connection_options_pass(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    assert transport_options({"timeout": 5, "ca_path": str(bundle)}).timeout[1] == 5.0
    assert transport_options({"ca_path": str(tmp_path)}).ca_path == str(tmp_path)
