"""Unit tests of plugins/module_utils/_client/credentials.py.

Auth files are real files in a temp dir and the environment is a dict passed
as ``environ``, so nothing here reads the developer's own docker or podman
logins. Credential helpers are tested with a real executable,
``docker-credential-fake``, written into a temp dir put on PATH: it speaks
the docker-credential-helpers protocol (server URL on stdin, JSON on stdout,
"credentials not found in native keychain" with exit 1) from a JSON store
file, and records what it was asked.
"""
from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import (
    DOCKER_HUB_SERVER_URL,
    MASK,
    Credentials,
    default_auth_files,
    resolve_credentials,
    scrub,
    secrets_of,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    CredentialsError,
    InvalidInputError,
    InvalidReferenceError,
)

PASSWORD = "pa:ss:wörd"
HELPER_SECRET = "helper-secret-1"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path, tmp_path: Path) -> dict[str, str]:
    """An environment with only HOME and PATH: no DOCKER_CONFIG, REGISTRY_AUTH_FILE or XDG_RUNTIME_DIR."""
    return {"HOME": str(home), "PATH": str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", "")}


# -- the Credentials value -----------------------------------------------------------------


def test_repr_and_str_never_show_secrets() -> None:
    creds = Credentials("alice", PASSWORD, "idtok", "regtok", source="explicit")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert PASSWORD not in text and "idtok" not in text and "regtok" not in text
        assert "alice" in text and "source='explicit'" in text
    assert "password=None" in repr(Credentials(username="bob"))


def test_secrets_of_lists_every_secret_and_the_basic_form() -> None:
    creds = Credentials("alice", PASSWORD, "idtok", "regtok")
    assert set(secrets_of(creds)) == {PASSWORD, "idtok", "regtok", b64(f"alice:{PASSWORD}")}
    assert secrets_of(None) == []
    assert secrets_of(Credentials(username="alice")) == []
    assert scrub(f"x {PASSWORD} y {b64('alice:' + PASSWORD)}", creds) == f"x {MASK} y {MASK}"  # the one mask, Ansible's own


# -- explicit options ----------------------------------------------------------------------


def test_explicit_username_and_password_win_over_files(env: dict[str, str], home: Path) -> None:
    write_json(home / ".docker" / "config.json", {"auths": {"r.example.com": {"auth": b64("file:pw")}}})
    found = resolve_credentials("r.example.com", username="alice", password=PASSWORD, environ=env)
    assert found == Credentials("alice", PASSWORD, source="explicit")


def test_explicit_registry_token(env: dict[str, str]) -> None:
    found = resolve_credentials("r.example.com", registry_token="tok", environ=env)
    assert found == Credentials(registry_token="tok", source="explicit")


@pytest.mark.parametrize("username, password, missing", [("alice", None, "password"), (None, "pw", "username")])
def test_half_a_username_password_pair_is_refused(env, username, password, missing) -> None:
    with pytest.raises(InvalidInputError, match=f"{missing} is missing") as info:
        resolve_credentials("r.example.com", username=username, password=password, environ=env)
    assert "pw" not in str(info.value).replace("password", "")


def test_nothing_anywhere_is_anonymous(env: dict[str, str]) -> None:
    assert resolve_credentials("r.example.com", environ=env) is None


def test_invalid_registry_name_is_invalid_input(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError):
        resolve_credentials("", environ=env)
    with pytest.raises(InvalidReferenceError):
        resolve_credentials("not a host!", environ=env)


# -- docker config.json / podman auth.json ------------------------------------------------


def test_base64_auth_splits_on_the_first_colon(tmp_path: Path, env) -> None:
    path = write_json(tmp_path / "config.json", {"auths": {"r.example.com": {"auth": b64(f"alice:{PASSWORD}")}}})
    found = resolve_credentials("r.example.com", auth_file=path, environ=env)
    assert found == Credentials("alice", PASSWORD, source=f"auth_file:{path}")


def test_username_and_password_fields(tmp_path: Path, env) -> None:
    path = write_json(tmp_path / "auth.json", {"auths": {"r.example.com": {"username": "u", "password": "p"}}})
    assert resolve_credentials("r.example.com", auth_file=path, environ=env) == Credentials(
        "u", "p", source=f"auth_file:{path}")


def test_identitytoken_and_registrytoken(tmp_path: Path, env) -> None:
    path = write_json(tmp_path / "config.json", {"auths": {
        "a.example.com": {"auth": b64("alice:"), "identitytoken": "refresh"},
        "b.example.com": {"registrytoken": "bearer-as-is"},
    }})
    assert resolve_credentials("a.example.com", auth_file=path, environ=env) == Credentials(
        "alice", None, "refresh", source=f"auth_file:{path}")
    assert resolve_credentials("b.example.com", auth_file=path, environ=env) == Credentials(
        registry_token="bearer-as-is", source=f"auth_file:{path}")


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io",
                                 "docker.io", "http://docker.io"])
@pytest.mark.parametrize("asked", ["docker.io", "index.docker.io", "registry-1.docker.io", "Docker.IO"])
def test_docker_hub_aliases_are_one_registry(tmp_path: Path, env, key: str, asked: str) -> None:
    path = write_json(tmp_path / "config.json", {"auths": {key: {"auth": b64("hubuser:hubpw")}}})
    found = resolve_credentials(asked, auth_file=path, environ=env)
    assert found is not None and (found.username, found.password) == ("hubuser", "hubpw")


def test_host_and_port_must_match_exactly(tmp_path: Path, env) -> None:
    path = write_json(tmp_path / "config.json", {"auths": {
        "localhost:5000": {"auth": b64("five:k")},
        "https://LocalHost:6000/v2/": {"auth": b64("six:k")},
    }})
    assert resolve_credentials("localhost:5000", auth_file=path, environ=env).username == "five"
    assert resolve_credentials("localhost:6000", auth_file=path, environ=env).username == "six"
    assert resolve_credentials("localhost", auth_file=path, environ=env) is None
    assert resolve_credentials("localhost:7000", auth_file=path, environ=env) is None


def test_podman_namespace_keys_match_by_longest_prefix(tmp_path: Path, env) -> None:
    path = write_json(tmp_path / "auth.json", {"auths": {
        "quay.io": {"auth": b64("host:k")},
        "quay.io/team": {"auth": b64("team:k")},
        "quay.io/team/app": {"auth": b64("app:k")},
    }})

    def user(registry: str) -> str:
        return resolve_credentials(registry, auth_file=path, environ=env).username

    assert user("quay.io/team/app") == "app"
    assert user("quay.io/team/app/sub") == "app"
    assert user("quay.io/team/application") == "team"  # a prefix of path components, not of characters
    assert user("quay.io/team/other") == "team"
    assert user("quay.io/else") == "host"
    assert user("quay.io") == "host"  # a bare host never matches namespace keys


def test_a_url_key_drops_its_path_like_docker(tmp_path: Path, env) -> None:
    path = write_json(tmp_path / "config.json", {"auths": {"https://r.example.com/v1/": {"auth": b64("u:p")}}})
    assert resolve_credentials("r.example.com/any/repo", auth_file=path, environ=env).username == "u"


def test_empty_marker_entries_and_unusable_keys_are_skipped(tmp_path: Path, env) -> None:
    path = write_json(tmp_path / "config.json", {"auths": {
        "r.example.com": {},
        "https://r.example.com": {"auth": b64("u:p")},
        "not a host!": {"auth": b64("x:y")},
    }})
    assert resolve_credentials("r.example.com", auth_file=path, environ=env).username == "u"
    assert resolve_credentials("other.example.com", auth_file=path, environ=env) is None


def test_empty_auth_file_is_an_empty_config(tmp_path: Path, env) -> None:
    path = tmp_path / "config.json"
    path.write_text("  \n")
    assert resolve_credentials("r.example.com", auth_file=path, environ=env) is None


def test_broken_json_names_the_file_and_line_without_secrets(tmp_path: Path, env) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "auths": {\n    "r.example.com": {"auth": "' + b64(f"u:{PASSWORD}") + '",}\n  }\n}\n')
    with pytest.raises(CredentialsError) as info:
        resolve_credentials("r.example.com", auth_file=path, environ=env)
    message = str(info.value)
    assert str(path) in message and "line 3" in message and "not valid JSON" in message
    assert b64(f"u:{PASSWORD}") not in message and PASSWORD not in message


@pytest.mark.parametrize("content, fragment", [
    ("[]", "must hold a JSON object"),
    ('{"auths": []}', "'auths' must be an object"),
    ('{"credHelpers": "x"}', "'credHelpers' must be an object"),
    ('{"credsStore": 5}', "'credsStore' must be the name"),
    ('{"auths": {"r.example.com": "x"}}', "entry for 'r.example.com' must be an object"),
    ('{"auths": {"r.example.com": {"auth": "%%%notbase64"}}}', "is not base64"),
    ('{"auths": {"r.example.com": {"auth": "' + b64("nocolon") + '"}}}', "does not decode to 'user:password'"),
    ('{"auths": {"r.example.com": {"auth": 5}}}', "must be a base64 string"),
    ('{"auths": {"r.example.com": {"username": "u", "password": 5}}}', "'password' of 'r.example.com'"),
])
def test_malformed_auth_files_raise_credentials_error(tmp_path: Path, env, content: str, fragment: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(CredentialsError, match=fragment) as info:
        resolve_credentials("r.example.com", auth_file=path, environ=env)
    assert str(path) in str(info.value)


def test_missing_explicit_auth_file(tmp_path: Path, env) -> None:
    with pytest.raises(CredentialsError, match="does not exist"):
        resolve_credentials("r.example.com", auth_file=tmp_path / "nope.json", environ=env)


def test_unreadable_auth_file(tmp_path: Path, env) -> None:
    path = tmp_path / "config.json"
    path.mkdir()  # unreadable as a file even for root, unlike chmod 0
    with pytest.raises(CredentialsError, match="cannot read auth file"):
        resolve_credentials("r.example.com", auth_file=path, environ=env)


def test_explicit_auth_file_is_the_only_file_read(tmp_path: Path, env, home: Path) -> None:
    write_json(home / ".docker" / "config.json", {"auths": {"r.example.com": {"auth": b64("default:p")}}})
    path = write_json(tmp_path / "other.json", {"auths": {}})
    assert resolve_credentials("r.example.com", auth_file=path, environ=env) is None


def test_auth_file_path_expands_the_home_tilde(env, home: Path, monkeypatch) -> None:
    write_json(home / "my.json", {"auths": {"r.example.com": {"auth": b64("tilde:p")}}})
    monkeypatch.setenv("HOME", str(home))
    assert resolve_credentials("r.example.com", auth_file="~/my.json", environ=env).username == "tilde"


# -- default lookup order ------------------------------------------------------------------


def test_default_files_in_order(tmp_path: Path) -> None:
    env = {"HOME": "/h", "DOCKER_CONFIG": "/dc", "REGISTRY_AUTH_FILE": "/raf.json", "XDG_RUNTIME_DIR": "/run/u"}
    assert default_auth_files(env) == [Path("/dc/config.json"), Path("/raf.json"),
                                       Path("/run/u/containers/auth.json"), Path("/h/.config/containers/auth.json")]
    assert default_auth_files({"HOME": "/h"}) == [Path("/h/.docker/config.json"), Path("/h/.config/containers/auth.json")]


def _entry(user: str) -> dict:
    return {"auths": {"r.example.com": {"auth": b64(f"{user}:p")}}}


def test_lookup_order_takes_the_first_file_with_an_entry(tmp_path: Path, env, home: Path) -> None:
    env = dict(env, DOCKER_CONFIG=str(tmp_path / "dc"), REGISTRY_AUTH_FILE=str(tmp_path / "raf.json"),
               XDG_RUNTIME_DIR=str(tmp_path / "run"))
    files = {
        "docker_config": tmp_path / "dc" / "config.json",
        "registry_auth_file": tmp_path / "raf.json",
        "xdg": tmp_path / "run" / "containers" / "auth.json",
        "config_home": home / ".config" / "containers" / "auth.json",
    }
    write_json(home / ".docker" / "config.json", _entry("home_docker"))  # hidden by DOCKER_CONFIG, as in docker
    for name, path in files.items():
        write_json(path, _entry(name))
    for name, path in files.items():
        found = resolve_credentials("r.example.com", environ=env)
        assert (found.username, found.source) == (name, f"auth_file:{path}")
        path.write_text('{"auths": {"elsewhere.example.com": {"auth": "' + b64("x:y") + '"}}}')
    assert resolve_credentials("r.example.com", environ=env) is None


def test_home_docker_config_when_docker_config_is_unset(env, home: Path) -> None:
    path = write_json(home / ".docker" / "config.json", _entry("home_docker"))
    write_json(home / ".config" / "containers" / "auth.json", _entry("podman"))
    found = resolve_credentials("r.example.com", environ=env)
    assert (found.username, found.source) == ("home_docker", f"auth_file:{path}")


def test_a_broken_default_file_is_reported_not_skipped(env, home: Path) -> None:
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text("{oops")
    with pytest.raises(CredentialsError, match=r"\.docker/config\.json is not valid JSON \(line 1"):
        resolve_credentials("r.example.com", environ=env)


# -- credential helpers --------------------------------------------------------------------

HELPER = '''#!{python}
"""docker-credential-fake: a credential helper speaking the docker-credential-helpers protocol."""
import json, os, sys
action = sys.argv[1] if len(sys.argv) > 1 else ""
server = sys.stdin.read().strip()
with open(os.environ["FAKE_HELPER_LOG"], "a") as log:
    log.write(json.dumps({{"action": action, "server": server}}) + "\\n")
if os.environ.get("FAKE_HELPER_BROKEN"):
    print("cannot reach the keychain daemon")
    sys.exit(3)
if os.environ.get("FAKE_HELPER_GARBAGE"):
    print("this is not json")
    sys.exit(0)
with open(os.environ["FAKE_HELPER_STORE"]) as f:
    store = json.load(f)
if action != "get" or server not in store:
    print("credentials not found in native keychain")
    sys.exit(1)
entry = store[server]
print(json.dumps({{"ServerURL": server, "Username": entry[0], "Secret": entry[1]}}))
'''


@pytest.fixture
def helper(tmp_path: Path, env: dict[str, str]):
    """Install docker-credential-fake on env's PATH; returns (store dict writer, asked-servers reader)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / "docker-credential-fake"
    program.write_text(HELPER.format(python=sys.executable))
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    store, log = tmp_path / "helper-store.json", tmp_path / "helper-log.jsonl"
    env.update(FAKE_HELPER_STORE=str(store), FAKE_HELPER_LOG=str(log))
    store.write_text("{}")

    class Helper:
        def set(self, entries: dict[str, tuple[str, str]]) -> None:
            store.write_text(json.dumps(entries))

        def asked(self) -> list[dict[str, str]]:
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return Helper()


def test_creds_store_helper_is_asked_with_the_host(tmp_path: Path, env, helper) -> None:
    helper.set({"r.example.com:5000": ("alice", HELPER_SECRET)})
    path = write_json(tmp_path / "config.json", {"credsStore": "fake", "auths": {"r.example.com:5000": {}}})
    found = resolve_credentials("r.example.com:5000", auth_file=path, environ=env)
    assert found == Credentials("alice", HELPER_SECRET, source="credential_helper:fake")
    assert helper.asked() == [{"action": "get", "server": "r.example.com:5000"}]


def test_docker_hub_is_asked_under_its_v1_url(tmp_path: Path, env, helper) -> None:
    helper.set({DOCKER_HUB_SERVER_URL: ("hub", HELPER_SECRET)})
    path = write_json(tmp_path / "config.json", {"credsStore": "fake"})
    assert resolve_credentials("registry-1.docker.io", auth_file=path, environ=env).username == "hub"
    assert helper.asked()[0]["server"] == "https://index.docker.io/v1/"


def test_token_username_means_an_identity_token(tmp_path: Path, env, helper) -> None:
    helper.set({"r.example.com": ("<token>", HELPER_SECRET)})
    path = write_json(tmp_path / "config.json", {"credsStore": "fake"})
    assert resolve_credentials("r.example.com", auth_file=path, environ=env) == Credentials(
        identity_token=HELPER_SECRET, source="credential_helper:fake")


def test_cred_helpers_entry_beats_creds_store_and_inline_auths(tmp_path: Path, env, helper) -> None:
    helper.set({"r.example.com": ("from-helper", HELPER_SECRET)})
    path = write_json(tmp_path / "config.json", {
        "credsStore": "missing-store",
        "credHelpers": {"r.example.com": "fake"},
        "auths": {"r.example.com": {"auth": b64("inline:p")}},
    })
    assert resolve_credentials("r.example.com", auth_file=path, environ=env).username == "from-helper"


def test_creds_store_beats_inline_auths_like_docker(tmp_path: Path, env, helper) -> None:
    helper.set({"r.example.com": ("from-store", HELPER_SECRET)})
    path = write_json(tmp_path / "config.json", {"credsStore": "fake",
                                                 "auths": {"r.example.com": {"auth": b64("inline:p")}}})
    assert resolve_credentials("r.example.com", auth_file=path, environ=env).username == "from-store"


def test_helper_without_credentials_is_anonymous(tmp_path: Path, env, helper) -> None:
    path = write_json(tmp_path / "config.json", {"credHelpers": {"r.example.com": "fake"}})
    assert resolve_credentials("r.example.com", auth_file=path, environ=env) is None
    assert len(helper.asked()) == 1


def test_helper_without_credentials_lets_the_lookup_go_on(env, home: Path, helper) -> None:
    write_json(home / ".docker" / "config.json", {"credsStore": "fake"})
    podman = write_json(home / ".config" / "containers" / "auth.json", _entry("podman"))
    found = resolve_credentials("r.example.com", environ=env)
    assert (found.username, found.source) == ("podman", f"auth_file:{podman}")


def test_helper_not_on_path_says_which_and_how_to_fix(tmp_path: Path, env) -> None:
    path = write_json(tmp_path / "config.json", {"credHelpers": {"r.example.com": "ecr-login"}})
    with pytest.raises(CredentialsError, match="docker-credential-ecr-login is not on PATH.*install") as info:
        resolve_credentials("r.example.com", auth_file=path, environ=env)
    assert "r.example.com" in str(info.value)


def test_failing_helper_is_a_credentials_error(tmp_path: Path, env, helper) -> None:
    env["FAKE_HELPER_BROKEN"] = "1"
    path = write_json(tmp_path / "config.json", {"credsStore": "fake"})
    with pytest.raises(CredentialsError, match="docker-credential-fake failed for r.example.com \\(exit 3\\)"
                                               ": cannot reach the keychain daemon"):
        resolve_credentials("r.example.com", auth_file=path, environ=env)


def test_helper_answering_garbage_is_a_credentials_error(tmp_path: Path, env, helper) -> None:
    env["FAKE_HELPER_GARBAGE"] = "1"
    path = write_json(tmp_path / "config.json", {"credsStore": "fake"})
    with pytest.raises(CredentialsError, match="not JSON"):
        resolve_credentials("r.example.com", auth_file=path, environ=env)


def test_helper_with_empty_secret_is_anonymous(tmp_path: Path, env, helper) -> None:
    helper.set({"r.example.com": ("alice", "")})
    path = write_json(tmp_path / "config.json", {"credsStore": "fake"})
    assert resolve_credentials("r.example.com", auth_file=path, environ=env) is None
