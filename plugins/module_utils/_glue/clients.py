# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build registry clients from the common connection options, each credential bound to its host.

Modules and the lookup share one option model (:mod:`.options`).
:class:`ClientFactory` turns those options into :class:`Registry` objects, one
per registry host and option set, so an operation touching two registries
(copy) or one registry twice reuses connections and tokens.

Which credentials reach which host (docker, skopeo and crane bind a credential
to its host; so do we):

* ``src_auth`` / ``dest_auth`` reach only their side's registry;
* a ``registry_auth`` entry reaches only the registry it names;
* the top-level ``username`` / ``password`` / ``registry_token`` reach only the
  factory's *home*: the registry the task writes to, or the one registry a
  read-only task reads (:meth:`ClientFactory.bind`, :meth:`ClientFactory.bind_reads`);
* auth files are per host already (and per ``host/namespace`` key, as podman
  reads them), so they serve every host.

The first source that holds any credential wins as a whole (a ``src_auth``
username is never paired with a top-level password). Nothing here knows Ansible.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import (
    Credentials,
    resolve_credentials,
    secrets_of,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
    Repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    TransportOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._glue.options import (
    CONNECTION_OPTIONS,
    CREDENTIAL_OPTIONS,
    DEFAULTS,
    PER_SIDE_OPTIONS,
    REGISTRY_AUTH,
    REGISTRY_KEY,
    SECRET_OPTIONS,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    AuthorizationError,
    InvalidInputError,
    InvalidReferenceError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
    normalize_registry,
)

__all__ = [
    "CONNECTION_OPTIONS",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "PER_SIDE_OPTIONS",
    "ClientFactory",
    "merge_options",
    "parse_registry_auth",
    "transport_options",
]

DEFAULT_TIMEOUT = float(DEFAULTS["timeout"])
DEFAULT_RETRIES = int(DEFAULTS["retries"])
# Connecting should be quick; a slow connect means a wrong host or a firewall.
CONNECT_TIMEOUT_CAP = 15.0


def _gives_credentials(options: Mapping[str, Any] | None) -> bool:
    return bool(options) and any(options.get(key) for key in CREDENTIAL_OPTIONS)  # type: ignore[union-attr]


def parse_registry_auth(entries: Any) -> dict[str, dict[str, Any]]:
    """``registry_auth`` entries -> {normalised host: options}; bad input raises InvalidInputError.

    Ansible checks the entries of a module's ``registry_auth``; the lookup gets
    them unchecked, so the keys are checked here for both.
    """
    if not entries:
        return {}
    if not isinstance(entries, (list, tuple)):
        raise InvalidInputError(
            f"{REGISTRY_AUTH} must be a list of entries such as [{{registry: ghcr.io, username: ..., password: ...}}], "
            f"not {type(entries).__name__}")
    found: dict[str, dict[str, Any]] = {}
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, Mapping):
            raise InvalidInputError(f"{REGISTRY_AUTH} entry {number} must be a dict with '{REGISTRY_KEY}' and "
                                    f"credentials, not {type(entry).__name__}")
        unknown = sorted(set(entry) - {REGISTRY_KEY, *PER_SIDE_OPTIONS})
        if unknown:
            raise InvalidInputError(f"{REGISTRY_AUTH} entry {number} has unknown key(s) {', '.join(unknown)}; "
                                    f"valid keys: {', '.join((REGISTRY_KEY, *PER_SIDE_OPTIONS))}")
        name = entry.get(REGISTRY_KEY)
        if not name or not isinstance(name, str):
            raise InvalidInputError(f"{REGISTRY_AUTH} entry {number} needs '{REGISTRY_KEY}': the registry host "
                                    "it is for, such as ghcr.io")
        if "/" in name.strip().split("://", 1)[-1].strip("/"):
            raise InvalidInputError(f"{REGISTRY_AUTH} entry {number}: {REGISTRY_KEY} {name!r} has a path; give the "
                                    "host only (per-namespace credentials belong in an auth file)")
        try:
            host = normalize_registry(name)
        except InvalidReferenceError as err:
            raise InvalidInputError(f"{REGISTRY_AUTH} entry {number}: {err}") from None
        if host in found:
            raise InvalidInputError(f"{REGISTRY_AUTH} has two entries for {host}: keep one")
        found[host] = {key: value for key, value in entry.items() if key != REGISTRY_KEY and value is not None}
    return found


def merge_options(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Options of one side: ``override`` keys that are set win over ``base``, credentials as a whole.

    When ``override`` gives any credential it gives all of them: a side's
    username is never paired with the base's password or token.
    """
    merged = {key: base.get(key) for key in CONNECTION_OPTIONS}
    override = override or {}
    if _gives_credentials(override):
        for key in CREDENTIAL_OPTIONS:
            merged[key] = None
    for key, value in override.items():
        if key in PER_SIDE_OPTIONS and value is not None:
            merged[key] = value
    return merged


def _check_connection_options(options: Mapping[str, Any]) -> None:
    """Refuse, in one line naming the option, what the HTTP library would refuse in its own words."""
    timeout = options.get("timeout")
    if timeout is not None and float(timeout) <= 0:
        raise InvalidInputError(f"timeout must be more than 0 seconds, got {timeout}")
    ca_path = options.get("ca_path")
    if ca_path and not os.path.exists(ca_path):
        raise InvalidInputError(f"ca_path {ca_path} does not exist: give a CA bundle file (PEM) or a directory "
                                "of CA certificates")
    for key in ("client_cert", "client_key"):
        path = options.get(key)
        if path and not os.path.isfile(path):
            raise InvalidInputError(f"{key} {path} is not a file: give the PEM file of the client "
                                    f"{'certificate' if key == 'client_cert' else 'key'}")


def transport_options(options: Mapping[str, Any]) -> TransportOptions:
    """Map the user-facing options to :class:`TransportOptions` (refusing a bad timeout or a missing file)."""
    _check_connection_options(options)
    timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    retries = options.get("retries")
    validate = options.get("validate_certs")
    return TransportOptions(
        timeout=(min(timeout, CONNECT_TIMEOUT_CAP), timeout),
        retries=DEFAULT_RETRIES if retries is None else int(retries),
        validate_certs=True if validate is None else bool(validate),
        ca_path=options.get("ca_path"),
        client_cert=options.get("client_cert"),
        client_key=options.get("client_key"),
        plain_http=options.get("plain_http"),
    )


class ClientFactory:
    """Hands out :class:`Registry` / :class:`Repository` objects, each credential bound to its host.

    ``home`` is the registry the top-level credentials are for. When it is not
    given (nor set with :meth:`bind` / :meth:`bind_reads`), the first registry
    asked for becomes home, so a factory used for one registry works as it did.
    """

    def __init__(self, options: Mapping[str, Any], *, home: str | None = None) -> None:
        self._options = dict(options)
        self._per_host = parse_registry_auth(self._options.get(REGISTRY_AUTH))
        self._registries: dict[tuple[str, tuple[tuple[str, Any], ...], Credentials | None], Registry] = {}
        self._resolved: dict[tuple[str, tuple[tuple[str, Any], ...]], Credentials | None] = {}
        # Clients that hold no credentials at all, with the side they serve: for explain().
        self._anonymous: list[tuple[Registry, str | None]] = []
        self.home: str | None = None
        self._home_fixed = False
        if home is not None:
            self.bind(home)

    def bind(self, host: str) -> None:
        """Send the top-level credentials to ``host`` only: the registry the task writes to, or reads."""
        host = normalize_registry(host)
        if self._home_fixed and self.home != host:
            raise ValueError(f"this factory's credentials are bound to {self.home}, not {host}")
        self.home, self._home_fixed = host, True

    def bind_reads(self, hosts: Iterable[str], what: str = "references") -> None:
        """Bind the top-level credentials for a read-only task over ``hosts``, or for the
        registries a many-repository mirror writes to (its sources get only side or per-host credentials).

        One registry: it is home. Several: the top-level credentials cannot
        say which registry they are for, so when any is given this refuses
        (before a request) and names ``registry_auth``; without them nothing
        is home and each registry gets its registry_auth entry or auth files.
        """
        distinct = list(dict.fromkeys(normalize_registry(host) for host in hosts))
        if len(distinct) == 1:
            self.bind(distinct[0])
            return
        if len(distinct) > 1 and _gives_credentials(self._options):
            raise InvalidInputError(
                f"{what} are on {len(distinct)} registries ({', '.join(distinct)}) and username/password/"
                "registry_token are for one registry: give each registry its credentials in registry_auth "
                "(one entry per registry), or split the task per registry")
        self._home_fixed = True

    def _options_for(self, host: str, override: Mapping[str, Any] | None) -> dict[str, Any]:
        """The options of ``host``: side override > top-level credentials (home only) > registry_auth entry."""
        base = {key: self._options.get(key) for key in CONNECTION_OPTIONS}
        entry = self._per_host.get(host, {})
        if host == self.home and _gives_credentials(base):
            # The task's own credentials for its own registry beat a (module_defaults) registry_auth entry.
            entry = {key: value for key, value in entry.items() if key not in CREDENTIAL_OPTIONS}
        elif host != self.home:
            base.update(dict.fromkeys(CREDENTIAL_OPTIONS))
        return merge_options(merge_options(base, entry), override)

    def registry(self, host: str, override: Mapping[str, Any] | None = None, *, side: str | None = None,
                 path: str = "") -> Registry:
        """The client for ``host``; ``override`` is that side's ``src_auth`` / ``dest_auth``.

        ``side`` (``src``, ``dest`` or None) only names the option to set in a
        401 message (:meth:`explain`). ``path`` (a repository) lets podman-style
        ``host/namespace`` keys of auth files match, the longest prefix winning.
        """
        host = normalize_registry(host)
        if not self._home_fixed:
            self.bind(host)
        options = self._options_for(host, override)
        options_key = tuple(sorted((k, repr(v)) for k, v in options.items()))
        where = f"{host}/{path}" if path else host
        if (where, options_key) not in self._resolved:
            self._resolved[(where, options_key)] = resolve_credentials(
                where,
                username=options.get("username"),
                password=options.get("password"),
                registry_token=options.get("registry_token"),
                auth_file=options.get("auth_file"),
            )
        credentials: Credentials | None = self._resolved[(where, options_key)]
        # Repositories whose credentials are the same share one client (connections, tokens).
        key = (host, options_key, credentials)
        if key not in self._registries:
            registry = Registry(host, transport_options(options), credentials)
            self._registries[key] = registry
            if credentials is None:
                self._anonymous.append((registry, side))
        return self._registries[key]

    def repository(self, reference: Reference, override: Mapping[str, Any] | None = None, *,
                   side: str | None = None, for_write: bool = False) -> Repository:
        """The repository a reference names (``for_write``: it will be written, see :meth:`Registry.repository`)."""
        registry = self.registry(reference.registry, override, side=side, path=reference.repository)
        return registry.repository(reference.repository, for_write=for_write)

    def explain(self, err: RegistryError) -> RegistryError:
        """A 401 from a registry that was given no credentials -> one line naming the option to set.

        The registry is found by the error's ``host`` field (an error that names no host is not
        explained). Any other error is returned as it is.
        """
        if not isinstance(err, (AuthenticationError, AuthorizationError)) or err.status != 401 or not err.host:
            return err
        for registry, side in self._anonymous:
            if err.host not in (registry.api_host, registry.host):
                continue
            host = registry.host
            options = [f"{side}_auth"] if side in ("src", "dest") else []
            if host == self.home:
                options.insert(0, "username/password")
            options.append(f"registry_auth (an entry with registry: {host})")
            where = f"{side} {host}" if side in ("src", "dest") else f"registry {host}"
            bound = f"; the top-level credentials are only sent to {self.home}" \
                if self.home is not None and host != self.home and _gives_credentials(self._options) else ""
            return type(err)(
                f"{where} answered 401 and no credentials were given for it: set {' or '.join(options)}{bound}",
                status=err.status, code=err.code, detail=err.detail, partial=err.partial)
        return err

    def warnings(self) -> list[str]:
        """Registry ``Warning`` headers seen by any client, deduplicated, in order."""
        seen: list[str] = []
        for registry in self._registries.values():
            for text in registry.warnings:
                if text not in seen:
                    seen.append(text)
        return seen

    def secrets(self) -> list[str]:
        """Every secret in play (explicit, per registry and resolved), for scrubbing output."""
        found = [self._options.get(key) for key in SECRET_OPTIONS]
        for entry in self._per_host.values():
            found.extend(entry.get(key) for key in SECRET_OPTIONS)
        for registry in self._registries.values():
            found.extend(secrets_of(registry.credentials))
            authenticator = registry.transport.authenticator
            if authenticator is not None:
                found.extend(authenticator.issued_tokens())
        return [s for s in found if s]
