# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The only module_utils file that knows Ansible.

It gives modules the common argument spec, a :class:`ClientFactory` built from
their params, and :class:`RegistryTask`: the one owner of a module's end, where a
:class:`RegistryError` becomes a clean ``fail_json`` (message, typed error data,
partial result, no traceback, no secrets) and every result is scrubbed.
"""
from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import requests  # noqa: F401 pylint: disable=unused-import
    # (only probed here; the client imports it itself)
except ImportError:
    REQUESTS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    REQUESTS_IMPORT_ERROR = None

from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import (
    scrub,
)
from ansible_collections.ocireg.registry.plugins.module_utils._glue.options import (
    connection_argument_spec,
    side_auth_argument_spec,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    RegistryError,
)

__all__ = ["RegistryTask", "connection_argument_spec", "describe", "scrub", "side_auth_argument_spec", "tag_diff"]


def describe(err: RegistryError, factory: Any = None) -> str:
    """The message a playbook author reads for ``err``: advice worded in module options, not yet scrubbed.

    A 401 from a registry that was given no credentials names the option to set
    (:meth:`.clients.ClientFactory.explain`); any other hint gets its option advice (:func:`.advice.advised`).
    Both read the error's fields (host, status, hint), never its text.
    """
    # Loaded here: only a failure is worded (start-up compiles less).
    from ansible_collections.ocireg.registry.plugins.module_utils._glue.advice import (
        advised,
    )

    if factory is not None:
        err = factory.explain(err)
    return advised(err)


class RegistryTask:
    """One module run: it owns the run's end, success or failure, and the scrubbing of every secret.

    As community.docker's ``AnsibleDockerClient`` owns ``fail`` (with its ``fail_results``), this
    is the only caller of ``exit_json`` / ``fail_json`` for a module: the registries' ``Warning``
    headers become Ansible warnings, every message and result is scrubbed of the secrets in play
    (:func:`.._client.credentials.scrub`, one mask), and a :class:`RegistryError` ends the run with
    its message (:func:`describe`), its data (``error``) and its partial result (``partial``).
    ``fail_results`` is result data returned with any failure (what a module knows before it starts);
    ``factory`` a client factory built elsewhere (else one is built from the module's options on first use).
    """

    def __init__(self, module: AnsibleModule, fail_results: Mapping[str, Any] | None = None, *,
                 factory: Any = None) -> None:
        self.module = module
        self.fail_results: dict[str, Any] = dict(fail_results or {})
        self._factory: Any = factory

    @property
    def factory(self) -> Any:
        """The :class:`.clients.ClientFactory` for the module's options, built on first use.

        A host without ``requests`` fails here, naming the library, not with a traceback.
        """
        if self._factory is None:
            if REQUESTS_IMPORT_ERROR is not None:
                self.fail(missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
            # Imported late so a missing requests fails above, not at import.
            from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import (
                ClientFactory,
            )
            try:
                self._factory = ClientFactory(self.module.params)
            except RegistryError as err:  # a malformed registry_auth: one line, never a secret
                self.fail_error(err)
        return self._factory

    def verifier(self, value: Any) -> Any:
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
            self.fail(missing_required_lib("cryptography", reason="for verify"), exception=traceback.format_exc())
        return make_verifier(value)

    def secrets(self) -> list[str]:
        """Every secret in play so far (none before a client was built: Ansible masks no_log values itself)."""
        return self._factory.secrets() if self._factory is not None else []

    def describe(self, err: RegistryError) -> str:
        """``err`` as a task tells it (:func:`describe` with this run's clients), not yet scrubbed."""
        return describe(err, self._factory)

    def warn(self, text: str) -> None:
        """An Ansible warning, scrubbed."""
        self.module.warn(scrub(text, self.secrets()))

    def _warn_registry_warnings(self) -> list[str]:
        """Turn the registries' ``Warning`` headers into Ansible warnings; the secrets in play, for scrubbing."""
        if self._factory is None:
            return []
        secrets = self.secrets()
        for text in self._factory.warnings():
            self.module.warn(scrub(text, secrets))
        return secrets

    def fail(self, msg: str, /, **data: Any) -> NoReturn:
        """``fail_json`` with ``msg`` and result data (``fail_results`` first), warnings passed on, secrets scrubbed."""
        secrets = self._warn_registry_warnings()
        self.module.fail_json(msg=scrub(msg, secrets), **scrub({**self.fail_results, **data}, secrets))
        raise AssertionError("fail_json returned")  # pragma: no cover - it exits

    def fail_error(self, err: RegistryError, /, *, partial: Mapping[str, Any] | None = None, **data: Any) -> NoReturn:
        """Fail with ``err``: its message (:func:`describe`), its data as ``error``, then its partial
        result (``partial`` when the module shaped it, else ``err.partial``) and ``data`` as result data."""
        msg = self.describe(err)
        partial = err.partial if partial is None else partial
        self.fail(msg, error={**err.to_dict(), "message": msg}, **{**dict(partial or {}), **data})

    def exit(self, result: Mapping[str, Any]) -> NoReturn:
        """``exit_json`` with ``result``, warnings passed on, secrets scrubbed."""
        secrets = self._warn_registry_warnings()
        self.module.exit_json(**scrub(dict(result), secrets))
        raise AssertionError("exit_json returned")  # pragma: no cover - it exits

    @contextmanager
    def errors(self, **partial: Any) -> Iterator[None]:
        """A :class:`RegistryError` raised inside the block fails the run (:meth:`fail_error`).

        ``partial`` is result data to return with the failure (what was known before the error).
        """
        try:
            yield
        except RegistryError as err:
            self.fail_error(err, **partial)


def tag_diff(before: Mapping[str, str | None], after: Mapping[str, str | None]) -> dict[str, Any]:
    """An Ansible diff of tag -> digest maps (``absent`` for a missing tag)."""
    def render(tags: Mapping[str, str | None]) -> dict[str, str]:
        return {tag: digest or "absent" for tag, digest in sorted(tags.items())}

    return {"before": render(before), "after": render(after)}
