# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where registry credentials come from: explicit options, auth files, credential helpers.

:func:`resolve_credentials` answers "which credentials do I use for this
registry?" the way docker and podman/skopeo do:

1. explicit ``username`` + ``password`` or ``registry_token`` win;
2. else the ``auth_file`` given (only that file);
3. else the first of these files that holds something for the registry:
   ``$DOCKER_CONFIG/config.json`` (or ``~/.docker/config.json`` when
   ``DOCKER_CONFIG`` is unset: docker reads one or the other, never both),
   ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
   ``~/.config/containers/auth.json``.

Inside one file (docker ``config.json`` and podman ``auth.json`` share the
format), as docker does it: ``credHelpers[host]`` beats ``credsStore``, which
beats the inline ``auths`` entries. A helper that has nothing for the host
("credentials not found") lets the lookup go on to the next file; when nothing
matches anywhere the answer is ``None`` (anonymous).

``auths`` keys may be a host (``registry.example.com:5000``), a URL
(``https://index.docker.io/v1/``: scheme and path dropped, as docker does) or a
podman-style ``host/namespace[/repo]`` prefix. Docker Hub's aliases
(``docker.io``, ``index.docker.io``, ``registry-1.docker.io``,
``https://index.docker.io/v1/``) are one registry. Namespace keys only match
when the caller passes ``registry`` as ``host/repository``; then the longest
matching prefix wins (``quay.io/team/app`` beats ``quay.io/team`` beats
``quay.io``), as podman does.

Nothing here ever puts a secret in an exception message or a ``repr``.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    CredentialsError,
    InvalidInputError,
    InvalidReferenceError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.json_documents import (
    json_object,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    DOCKER_HUB,
    normalize_registry,
)

# Docker's credential store key for Docker Hub: what `docker login` writes.
DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/"

# A credential helper answering with this user name hands out an identity
# token (OAuth2 refresh token) as its secret, not a password.
_IDENTITY_TOKEN_USER = "<token>"
# docker-credential-helpers' fixed message for "nothing stored for this server".
_HELPER_NOT_FOUND = "credentials not found"
# Helpers such as ecr-login call a cloud API; give them time, but not forever.
_HELPER_TIMEOUT = 60


@dataclass(frozen=True, repr=False)
class Credentials:
    """What to authenticate with, and where it came from.

    ``password``, ``identity_token`` (docker's ``identitytoken``: an OAuth2
    refresh token) and ``registry_token`` (a bearer token used as-is) are
    secrets: :meth:`__repr__` hides them and :func:`secrets_of` lists them so
    callers can scrub any text before showing it. ``source`` says where the
    credentials were found (``explicit``, ``auth_file:/path``,
    ``credential_helper:NAME``); it never holds a secret.
    """

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    registry_token: str | None = None
    source: str = "explicit"

    def __repr__(self) -> str:
        def hidden(value: str | None) -> str:
            return "None" if value is None else "'***'"

        return (
            f"Credentials(username={self.username!r}, password={hidden(self.password)}, "
            f"identity_token={hidden(self.identity_token)}, registry_token={hidden(self.registry_token)}, "
            f"source={self.source!r})"
        )

    __str__ = __repr__

    @property
    def has_password(self) -> bool:
        """True when a username and password pair can be sent (Basic or password grant)."""
        return bool(self.username) and self.password is not None and self.password != ""


def secrets_of(credentials: Credentials | None) -> list[str]:
    """Every secret string in ``credentials``, longest first, so callers can scrub output.

    Besides the raw secrets this includes the base64 ``user:password`` form a
    Basic ``Authorization`` header carries.
    """
    if credentials is None:
        return []
    found = [s for s in (credentials.password, credentials.identity_token, credentials.registry_token) if s]
    if credentials.has_password:
        found.append(basic_token(credentials.username or "", credentials.password or ""))
    return sorted(set(found), key=len, reverse=True)


def basic_token(username: str, password: str) -> str:
    """The base64 ``user:password`` part of a Basic ``Authorization`` header."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


#: What every secret is replaced with in any output: Ansible's own mask for ``no_log`` values.
MASK = "********"


def scrub(value: Any, secrets: Credentials | Iterable[str] | None) -> Any:
    """``value`` (text, or data nesting mappings, lists and tuples) with every secret replaced by :data:`MASK`.

    ``secrets`` are :class:`Credentials` (see :func:`secrets_of`) or secret strings. Longer
    secrets are replaced first, so a secret that contains another is masked whole. The one
    scrub of the collection: the client's messages and the modules' results use it alike.
    """
    found = secrets_of(secrets) if secrets is None or isinstance(secrets, Credentials) else \
        sorted({s for s in secrets if s}, key=len, reverse=True)
    return _scrubbed(value, found) if found else value


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, Mapping):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(item, secrets) for item in value]
    return value


# -- registry names ------------------------------------------------------------------------


def _split_registry(registry: str) -> tuple[str, str]:
    """``host/path`` -> (normalised host, path); the path may be empty."""
    host, path = (registry.strip().strip("/") + "/").split("/", 1)
    if not host:
        raise InvalidInputError("registry must not be empty: give a registry host such as registry.example.com")
    return normalize_registry(host), path.strip("/")


def _normalize_auth_key(key: str) -> tuple[str, str] | None:
    """An ``auths`` key -> (host, namespace path), the way docker and podman read keys; None if unusable.

    A key with a scheme is a URL: docker keeps only its host (so
    ``https://index.docker.io/v1/`` is Docker Hub). A key without a scheme is
    podman's ``host[/namespace]``.
    """
    stripped = key.strip()
    path = ""
    if not stripped.lower().startswith(("https://", "http://")):
        path = stripped.strip("/").partition("/")[2].strip("/")
    try:
        # normalize_registry drops a scheme and any path itself.
        return normalize_registry(stripped), path
    except InvalidReferenceError:
        return None  # a key that names no valid host can never match; docker ignores it too


def helper_server_url(host: str) -> str:
    """What a credential helper is asked for: the server address ``docker login`` stored."""
    return DOCKER_HUB_SERVER_URL if host == DOCKER_HUB else host


# -- auth files ----------------------------------------------------------------------------


def default_auth_files(environ: Mapping[str, str]) -> list[Path]:
    """The auth files looked at, in order, when no ``auth_file`` is given."""
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    files = []
    if environ.get("DOCKER_CONFIG"):
        files.append(Path(environ["DOCKER_CONFIG"]) / "config.json")
    else:
        files.append(home / ".docker" / "config.json")
    if environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(environ["REGISTRY_AUTH_FILE"]))
    if environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(home / ".config" / "containers" / "auth.json")
    return files


def load_auth_file(path: Path) -> dict[str, Any]:
    """Read and check one auth file; broken content raises CredentialsError (no secrets in it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialsError(f"auth file {path} does not exist", advice="create it (docker login / podman login) "
                               "or give the path of another one", hint="auth_file_missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise CredentialsError(f"cannot read auth file {path}: {reason}; check its permissions and encoding") from None
    if not text.strip():
        return {}  # docker treats an empty config file as an empty config
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg is the parser's reason only; the document (secrets) stays out.
        raise CredentialsError(
            f"auth file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            advice="fix the file or give the path of another one", hint="auth_file_broken") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"auth file {path} must hold a JSON object with an 'auths' key, not {type(data).__name__}")
    for key in ("auths", "credHelpers"):
        if key in data and data[key] is not None and not isinstance(data[key], dict):
            raise CredentialsError(f"auth file {path}: '{key}' must be an object mapping registries to entries")
    if data.get("credsStore") is not None and not isinstance(data.get("credsStore"), str):
        raise CredentialsError(f"auth file {path}: 'credsStore' must be the name of a credential helper")
    return data


def _entry_credentials(entry: Any, key: str, path: Path) -> Credentials | None:
    """One ``auths`` entry -> Credentials, or None when it holds nothing usable."""
    if not isinstance(entry, dict):
        raise CredentialsError(f"auth file {path}: the entry for '{key}' must be an object")
    username = entry.get("username") or None
    password = entry.get("password") or None
    encoded = entry.get("auth")
    if encoded:
        if not isinstance(encoded, str):
            raise CredentialsError(f"auth file {path}: 'auth' of '{key}' must be a base64 string")
        try:
            decoded = base64.b64decode("".join(encoded.split()), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise CredentialsError(
                f"auth file {path}: 'auth' of '{key}' is not base64 of 'user:password': log in again or fix the entry"
            ) from None
        if ":" not in decoded:
            raise CredentialsError(
                f"auth file {path}: 'auth' of '{key}' does not decode to 'user:password': log in again or fix the entry"
            )
        # Passwords may contain colons; user names may not.
        username, password = decoded.split(":", 1)
        username, password = username or None, password or None
    identity_token = entry.get("identitytoken") or None
    registry_token = entry.get("registrytoken") or None
    for name, value in (("username", username), ("password", password),
                        ("identitytoken", identity_token), ("registrytoken", registry_token)):
        if value is not None and not isinstance(value, str):
            raise CredentialsError(f"auth file {path}: '{name}' of '{key}' must be a string")
    if not (password or identity_token or registry_token):
        return None  # e.g. docker's empty marker entries next to a credsStore
    return Credentials(username=username, password=password, identity_token=identity_token,
                       registry_token=registry_token, source=f"auth_file:{path}")


def _find_in_auths(auths: Mapping[str, Any], host: str, path_in_registry: str, file: Path) -> Credentials | None:
    """The best ``auths`` entry for host[/path]: exact host, or podman's longest namespace prefix."""
    best: tuple[int, Credentials | None] | None = None
    for key, entry in auths.items():
        normalized = _normalize_auth_key(str(key))
        if normalized is None or normalized[0] != host:
            continue
        key_path = normalized[1]
        if key_path and not (path_in_registry == key_path or path_in_registry.startswith(key_path + "/")):
            continue
        rank = len(key_path.split("/")) if key_path else 0
        if best is None or rank > best[0]:
            best = (rank, _entry_credentials(entry, str(key), file))
        elif rank == best[0] and best[1] is None:
            # Two keys for the same host (e.g. docker.io and https://index.docker.io/v1/): take one that holds something.
            best = (rank, _entry_credentials(entry, str(key), file))
    return None if best is None else best[1]


def _helper_for(config: Mapping[str, Any], host: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    for key, name in helpers.items():
        normalized = _normalize_auth_key(str(key))
        if normalized is not None and normalized[0] == host and name:
            return str(name)
    store = config.get("credsStore")
    return str(store) if store else None


def run_credential_helper(name: str, host: str, environ: Mapping[str, str]) -> Credentials | None:
    """Ask ``docker-credential-NAME get`` for host's credentials; None when it has none.

    Protocol (docker-credential-helpers): the server URL on stdin, JSON
    ``{"ServerURL", "Username", "Secret"}`` on stdout; user name ``<token>``
    means the secret is an identity token.
    """
    program = f"docker-credential-{name}"
    path_var = environ.get("PATH", os.defpath)
    executable = shutil.which(program, path=path_var)
    if executable is None:
        raise CredentialsError(
            f"credential helper {program} is not on PATH (asked for by credsStore/credHelpers for {host}): "
            f"install {program}, or remove it from the auth file and log in again so the credentials are stored inline"
        )
    server_url = helper_server_url(host)
    try:
        # _client knows nothing of Ansible, so AnsibleModule.run_command is out of reach here.
        done = subprocess.run(  # noqa: S603 - the helper named by the user's own auth file  # pylint: disable=ansible-bad-function
            [executable, "get"], input=server_url.encode(), capture_output=True,
            timeout=_HELPER_TIMEOUT, env=dict(environ), check=False,
        )
    except subprocess.TimeoutExpired:
        raise CredentialsError(f"credential helper {program} did not answer within {_HELPER_TIMEOUT}s for {host}") from None
    except OSError as exc:
        raise CredentialsError(f"credential helper {program} could not be run: {exc.strerror or exc}") from None
    out = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        said = (out.strip() or done.stderr.decode("utf-8", "replace").strip())
        if _HELPER_NOT_FOUND in said.lower():
            return None
        # A failing helper's output is about its failure, but cut it short and never echo stdin.
        raise CredentialsError(
            f"credential helper {program} failed for {host} (exit {done.returncode}): {said[:300] or 'no message'}; "
            f"run 'echo {server_url} | {program} get' to see why"
        )
    answer = json_object(out, lambda found: CredentialsError(f"credential helper {program} answered {host} with {found}"))
    username = answer.get("Username") or None
    secret = answer.get("Secret") or None
    if not isinstance(username, (str, type(None))) or not isinstance(secret, (str, type(None))):
        raise CredentialsError(f"credential helper {program} answered {host} with non-string Username/Secret")
    if not secret:
        return None
    source = f"credential_helper:{name}"
    if username == _IDENTITY_TOKEN_USER:
        return Credentials(identity_token=secret, source=source)
    return Credentials(username=username, password=secret, source=source)


def credentials_from_file(path: Path, registry: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for ``registry`` (``host`` or ``host/repository``) from one auth file, or None.

    ``environ`` (default ``os.environ``) gives the PATH a credential helper is looked up on.
    """
    environ = os.environ if environ is None else environ
    host, repo_path = _split_registry(registry)
    config = load_auth_file(path)
    helper = _helper_for(config, host)
    if helper:
        return run_credential_helper(helper, host, environ)
    return _find_in_auths(config.get("auths") or {}, host, repo_path, path)


def resolve_credentials(
    registry: str,
    username: str | None = None,
    password: str | None = None,
    registry_token: str | None = None,
    auth_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The credentials to use for ``registry``, or None for anonymous access.

    ``registry`` is a host (``registry.example.com:5000``, any Docker Hub alias)
    or ``host/repository`` to let podman-style namespace keys match. See the
    module docstring for the lookup order. ``environ`` (default ``os.environ``)
    supplies HOME, DOCKER_CONFIG, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR and PATH.
    """
    environ = os.environ if environ is None else environ
    _split_registry(registry)  # a bad registry name is an error even when credentials are explicit
    if registry_token:
        return Credentials(username=username or None, registry_token=registry_token, source="explicit")
    if username or password:
        if not (username and password):
            missing = "password" if username else "username"
            raise InvalidInputError(f"{missing} is missing: give username and password together (or neither)")
        return Credentials(username=username, password=password, source="explicit")
    if auth_file is not None:
        return credentials_from_file(Path(os.path.expanduser(os.fspath(auth_file))), registry, environ)
    for path in default_auth_files(environ):
        if not path.is_file():
            continue
        found = credentials_from_file(path, registry, environ)
        if found is not None:
            return found
    return None
