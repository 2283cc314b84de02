# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build registry clients from the common connection options.

Modules and the lookup share one option model (username, password,
registry_token, auth_file, validate_certs, ca_path, client_cert, client_key,
plain_http, timeout, retries). :class:`ClientFactory` turns those options into
:class:`Registry` objects, one per registry host and credential set, so an
operation touching two registries (copy) or one registry twice reuses
connections and tokens. Nothing here knows Ansible.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import (
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
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)

# The option names every module and the lookup accept (see the doc fragment).
CONNECTION_OPTIONS = (
    "username", "password", "registry_token", "auth_file", "validate_certs",
    "ca_path", "client_cert", "client_key", "plain_http", "timeout", "retries",
)
# Options that may differ per side of a copy (src_auth / dest_auth).
PER_SIDE_OPTIONS = (
    "username", "password", "registry_token", "auth_file", "validate_certs",
    "ca_path", "client_cert", "client_key", "plain_http",
)

DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
# Connecting should be quick; a slow connect means a wrong host or a firewall.
CONNECT_TIMEOUT_CAP = 15.0


def merge_options(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Options of one side of a copy: ``override`` keys that are set win over ``base``."""
    merged = {key: base.get(key) for key in CONNECTION_OPTIONS}
    for key, value in (override or {}).items():
        if key in PER_SIDE_OPTIONS and value is not None:
            merged[key] = value
    return merged


def transport_options(options: Mapping[str, Any]) -> TransportOptions:
    """Map the user-facing options to :class:`TransportOptions`."""
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
    """Hands out :class:`Registry` / :class:`Repository` objects for a set of options."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._options = dict(options)
        self._registries: dict[tuple[str, tuple[tuple[str, Any], ...]], Registry] = {}

    def registry(self, host: str, override: Mapping[str, Any] | None = None) -> Registry:
        """The client for ``host`` with the base options, or ``override`` (src_auth / dest_auth) on top."""
        options = merge_options(self._options, override)
        key = (host, tuple(sorted((k, repr(v)) for k, v in options.items())))
        if key not in self._registries:
            credentials = resolve_credentials(
                host,
                username=options.get("username"),
                password=options.get("password"),
                registry_token=options.get("registry_token"),
                auth_file=options.get("auth_file"),
            )
            self._registries[key] = Registry(host, transport_options(options), credentials)
        return self._registries[key]

    def repository(self, reference: Reference, override: Mapping[str, Any] | None = None) -> Repository:
        """The repository a reference names."""
        return self.registry(reference.registry, override).repository(reference.repository)

    def warnings(self) -> list[str]:
        """Registry ``Warning`` headers seen by any client, deduplicated, in order."""
        seen: list[str] = []
        for registry in self._registries.values():
            for text in registry.warnings:
                if text not in seen:
                    seen.append(text)
        return seen

    def secrets(self) -> list[str]:
        """Every secret in play (explicit and resolved), for scrubbing output."""
        found = [self._options.get(k) for k in ("password", "registry_token")]
        for registry in self._registries.values():
            found.extend(secrets_of(registry.credentials))
            authenticator = registry.transport.authenticator
            if authenticator is not None:
                found.extend(authenticator.issued_tokens())
        return [s for s in found if s]
