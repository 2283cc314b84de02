# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Advice that names a module option: worded here, from an error's fields, never from its text.

The client says what went wrong and what to do in its own words (``reason``, ``advice``) and
names the kind of fix in ``hint`` (:data:`.._model.errors.HINTS`). A playbook author fixes it
with an option, so for each hint this file says which option, and :func:`advised` rebuilds the
message from the fields with that advice. A few registry error codes get words of their own
(a blob that a manifest names but the repository lacks). Plain data and functions: nothing here imports
Ansible, so the modules and the lookup word advice alike.
"""
from __future__ import annotations

from collections.abc import Callable

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    RegistryError,
)

__all__ = ["ADVICE", "advised"]

# (reason or None to keep the client's, advice): each is given the error's host.
_Wording = Callable[[str], "tuple[str | None, str]"]

#: What to write for each hint; a hint without an entry keeps the client's words.
ADVICE: dict[str, _Wording] = {
    "login_needed": lambda host: (
        None, f"set username and password, registry_token or an auth_file entry for {host}"),
    "login_rejected": lambda host: (
        None, f"check username/password, registry_token or the auth_file entry for {host}"),
    "https_on_plain_port": lambda host: (
        f"{host} serves HTTPS on this port, but plain_http is true",
        "remove plain_http (or set it to false), with ca_path or validate_certs: false for a private certificate"),
    "tls_untrusted": lambda _host: (None, "set ca_path to your CA bundle or validate_certs: false"),
    "tls_not_spoken": lambda _host: (None, "if the registry serves plain HTTP set plain_http: true"),
    "tls_handshake": lambda _host: (
        None, "if the registry needs a client certificate set client_cert and client_key "
              "(and check validate_certs / ca_path)"),
    "token_service_unreachable": lambda _host: (
        None, "check the network, proxy and TLS settings (validate_certs, ca_path)"),
    "auth_file_missing": lambda _host: (None, "create it (docker login / podman login) or fix auth_file"),
    "auth_file_broken": lambda _host: (None, "fix the file or point auth_file at another one"),
}


#: A blob fetch answered ``BLOB_UNKNOWN``: the manifest naming the blob was read, so the repository
#: name and the tag or digest are right (the client's generic "not found" advice says to check them);
#: the repository lacks content its own manifest references.
MISSING_BLOB = (
    "the source repository is missing a blob that its manifest names (a corrupted or partially pushed image)",
    "push the image to it again, or check the source registry's storage")


def _by_code(err: RegistryError) -> tuple[str | None, str] | None:
    """Wording chosen from the registry's error code and the operation's verb, where the client's misleads."""
    if err.code == "BLOB_UNKNOWN" and (err.operation or "").startswith("fetch blob "):
        return MISSING_BLOB
    return None


def advised(err: RegistryError) -> str:
    """``err``'s message with the advice worded in module options, when its ``hint`` has any, or in
    the terms of what is wrong, when its code says more than the client's words (a missing blob)."""
    wording = ADVICE.get(err.hint) if err.hint is not None else None
    if wording is not None:
        reason, advice = wording(err.host or "the registry")
        return err.render(reason=reason, advice=advice)
    by_code = _by_code(err)
    if by_code is not None:
        return err.render(reason=by_code[0], advice=by_code[1])
    return err.message
