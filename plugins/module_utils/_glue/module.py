# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The only module_utils file that knows Ansible.

It gives modules the common argument spec, a :class:`ClientFactory` built from
their params, and one place where a :class:`RegistryError` becomes a clean
``fail_json`` (message, typed error data, no traceback, no secrets).
"""
from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import requests  # noqa: F401 pylint: disable=unused-import
    # (only probed here; the client imports it itself)
except ImportError:
    REQUESTS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    REQUESTS_IMPORT_ERROR = None

from ansible_collections.ocireg.registry.plugins.module_utils._glue.options import (
    connection_argument_spec,
    side_auth_argument_spec,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    RegistryError,
)

__all__ = [
    "connection_argument_spec", "exit_with", "fail_with", "new_factory", "registry_errors", "require_requests", "scrub",
    "side_auth_argument_spec", "tag_diff", "verifier",
]


def require_requests(module: AnsibleModule) -> None:
    """Fail cleanly when ``requests`` is missing on the managed host."""
    if REQUESTS_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)


def new_factory(module: AnsibleModule):
    """A :class:`ClientFactory` for the module's connection options."""
    require_requests(module)
    # Imported late so a missing requests fails in require_requests, not at import.
    from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import (
        ClientFactory,
    )

    return ClientFactory(module.params)


def verifier(module: AnsibleModule, value: Any) -> Any:
    """The gate the ``verify`` option asks for (see ``_ops.verify.check.make_verifier``); None when unset.

    ``cryptography`` is needed only for ``verify``: imported here, so a host without it runs every
    other task, and one that asks for ``verify`` fails naming the missing library.
    """
    if value is None:
        return None
    try:
        from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.check import (
            make_verifier,
        )
    except ImportError:
        module.fail_json(msg=missing_required_lib("cryptography", reason="for verify"),
                         exception=traceback.format_exc())
    return make_verifier(value)


def scrub(value: Any, secrets: list[str]) -> Any:
    """Replace every secret string inside ``value`` (nested data) with ``********``."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret and secret in value:
                value = value.replace(secret, "********")
        return value
    if isinstance(value, Mapping):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    return value


@contextmanager
def registry_errors(module: AnsibleModule, factory: Any = None, **partial: Any) -> Iterator[None]:
    """Turn a :class:`RegistryError` raised inside the block into ``fail_json``.

    ``partial`` is extra result data to return with the failure (for example
    what was done before the error). Warnings the registries sent are added.
    A 401 from a registry that was given no credentials says which option to set.
    """
    try:
        yield
    except RegistryError as err:
        if factory is not None:
            err = factory.explain(err)  # a 401 from a registry given no credentials names the option to set
        fail_with(module, factory, str(err), error=err.to_dict(), **partial)


def _warn_registry_warnings(module: AnsibleModule, factory: Any) -> list[str]:
    """Turn the registries' ``Warning`` headers into Ansible warnings; the secrets in play, for scrubbing."""
    if factory is None:
        return []
    secrets = factory.secrets()
    for text in factory.warnings():
        module.warn(scrub(text, secrets))
    return secrets


def fail_with(module: AnsibleModule, factory: Any, msg: str, /, **data: Any) -> None:
    """``fail_json`` with the registries' warnings turned into Ansible warnings, secrets scrubbed.

    ``factory`` may be None (nothing to warn about or scrub); ``data`` is result data returned with the failure.
    """
    secrets = _warn_registry_warnings(module, factory)
    module.fail_json(msg=scrub(msg, secrets), **scrub(data, secrets))


def exit_with(module: AnsibleModule, factory: Any, result: Mapping[str, Any]) -> None:
    """``exit_json`` with the registries' warnings turned into Ansible warnings, secrets scrubbed."""
    secrets = _warn_registry_warnings(module, factory)
    module.exit_json(**scrub(dict(result), secrets))


def tag_diff(before: Mapping[str, str | None], after: Mapping[str, str | None]) -> dict[str, Any]:
    """An Ansible diff of tag -> digest maps (``absent`` for a missing tag)."""
    def render(tags: Mapping[str, str | None]) -> dict[str, str]:
        return {tag: digest or "absent" for tag, digest in sorted(tags.items())}

    return {"before": render(before), "after": render(after)}
