# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one table of connection options, and everything derived from it.

Every module and the lookup accept these options (documented once, in the doc
fragment ``ocireg.registry.registry``; ``tests/unit/plugins/module_utils/_glue/
test_options.py`` fails when the fragment and this table disagree). From the
table come the modules' argument spec (:func:`connection_argument_spec`), the
keys of ``src_auth`` / ``dest_auth`` (:func:`side_auth_argument_spec`), the
entries of ``registry_auth`` (:func:`registry_auth_argument_spec`), and the
names and defaults :mod:`.clients` reads. Plain data: nothing here imports
Ansible, so the lookup and the unit tests use it as it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One connection option as users write it."""

    name: str
    type: str  # an Ansible argument-spec type
    default: Any = None
    no_log: bool = False
    # Accepted inside src_auth / dest_auth and in each registry_auth entry.
    per_host: bool = False
    # A credential: sent only to the registry it was given for (see clients.ClientFactory).
    credential: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("username", "str", per_host=True, credential=True),
    Option("password", "str", no_log=True, per_host=True, credential=True),
    Option("registry_token", "str", no_log=True, per_host=True, credential=True),
    Option("auth_file", "path", per_host=True),
    Option("validate_certs", "bool", default=True, per_host=True),
    Option("ca_path", "path", per_host=True),
    Option("client_cert", "path", per_host=True),
    Option("client_key", "path", per_host=True),
    Option("plain_http", "bool", per_host=True),
    Option("timeout", "float", default=60.0),
    Option("retries", "int", default=3),
    # Not a connection option: the opt-in prune lease (_ops/coordination). It lives in this table so
    # that module_defaults for group/ocireg.registry.registry can set it once: every module of the
    # group accepts it, registry_prune, registry_tag and registry_copy use it, the others ignore it.
    Option("prune_lease", "bool", default=False),
)
#: The option that turns the prune lease on (registry_prune takes one, registry_tag / registry_copy honour it).
PRUNE_LEASE = "prune_lease"

#: The option holding credentials for many registries at once, one entry per host.
REGISTRY_AUTH = "registry_auth"
#: The key of a registry_auth entry that names its host.
REGISTRY_KEY = "registry"

BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
#: Names of the flat options (every module and the lookup).
CONNECTION_OPTIONS: tuple[str, ...] = tuple(option.name for option in OPTIONS)
#: Names accepted per side (src_auth / dest_auth) and per registry_auth entry.
PER_SIDE_OPTIONS: tuple[str, ...] = tuple(option.name for option in OPTIONS if option.per_host)
#: The credential names: these never follow a task to a registry they were not given for.
CREDENTIAL_OPTIONS: tuple[str, ...] = tuple(option.name for option in OPTIONS if option.credential)
#: Names whose values are secrets (for scrubbing output).
SECRET_OPTIONS: tuple[str, ...] = tuple(option.name for option in OPTIONS if option.no_log)
#: Defaults of the options that have one.
DEFAULTS: dict[str, Any] = {option.name: option.default for option in OPTIONS if option.default is not None}


def _spec(option: Option, *, with_default: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": option.type}
    if option.no_log:
        spec["no_log"] = True
    if with_default and option.default is not None:
        spec["default"] = option.default
    return spec


def per_host_options_spec() -> dict[str, Any]:
    """The per-host keys as suboptions, without defaults (a key left out falls back, it is not reset)."""
    return {option.name: _spec(option, with_default=False) for option in OPTIONS if option.per_host}


def side_auth_argument_spec() -> dict[str, Any]:
    """Argument spec of ``src_auth`` / ``dest_auth``: the per-host subset of the common options."""
    return {"type": "dict", "options": per_host_options_spec()}


def registry_auth_argument_spec() -> dict[str, Any]:
    """Argument spec of ``registry_auth``: a list of per-host entries, each naming its ``registry``.

    A list of entries rather than a mapping keyed by host, so Ansible knows
    which fields are secrets: ``no_log`` on a free-form mapping would mask
    every value in it (user names, paths) wherever it appears in output.
    """
    return {
        "type": "list",
        "elements": "dict",
        "options": {REGISTRY_KEY: {"type": "str", "required": True}, **per_host_options_spec()},
    }


def connection_argument_spec() -> dict[str, Any]:
    """The argument spec of the common options (doc fragment ``ocireg.registry.registry``)."""
    spec = {option.name: _spec(option, with_default=True) for option in OPTIONS}
    spec[REGISTRY_AUTH] = registry_auth_argument_spec()
    return spec
