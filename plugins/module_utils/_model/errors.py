# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed errors of the registry client, as data.

Every failure the client can report is a :class:`RegistryError`. It carries
what a program needs to act on the failure, as fields:

* ``host`` and ``operation`` (``"fetch manifest team/app:1"``, ``"PUT blob upload"``): where and what;
* ``status``: the HTTP status, when there was an answer;
* ``errors``: the registry's OCI error entries (:class:`OciError`), ``code`` the first one's code;
* ``reason`` and ``advice``: what went wrong and what to do, in words that name no
  module option (``_client`` knows nothing of Ansible); ``hint`` names the kind of
  fix (:data:`HINTS`) so a caller that knows its own option names can word the
  advice itself, from the field, never by reading the text;
* ``detail``: facts about this failure (expected and actual digests, guardrail violations);
* ``partial``: the result of the work done before the failure, when there is one.

The message is built from the fields, as go-containerregistry's ``transport.Error``
builds its text: ``<operation> on <host> failed: HTTP <status> (<code>: <message>):
<reason>; <advice>`` for an answer the client did not expect, ``<reason>; <advice>``
for anything else. Messages never contain credentials or tokens.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The kinds of fix a :class:`RegistryError` may name in ``hint``. A caller
#: with its own option names (the Ansible glue) words the advice for each.
HINTS = frozenset({
    "login_needed",          # no credentials were sent to a registry that wants them
    "login_rejected",        # the credentials sent were refused
    "https_on_plain_port",   # plain HTTP was asked for, the port speaks TLS
    "tls_untrusted",         # the server's certificate does not verify
    "tls_not_spoken",        # https was asked for, the port speaks plain HTTP
    "tls_handshake",         # any other TLS failure (a client certificate wanted, ...)
    "token_service_unreachable",  # the registry's token service could not be reached
    "auth_file_missing",     # the auth file given does not exist
    "auth_file_broken",      # the auth file is not valid JSON / has no auths
})


@dataclass(frozen=True)
class OciError:
    """One entry of an OCI error body: ``{"code", "message", "detail"}``."""

    code: str
    message: str = ""
    detail: Any = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the registry's own words; never holds our secrets)."""
        return {"code": self.code, "message": self.message, "detail": self.detail}


class RegistryError(Exception):
    """Base class of every error raised by the registry client (see the module docstring for the fields)."""

    def __init__(
        self,
        reason: str = "",
        *,
        host: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        errors: Iterable[OciError] = (),
        code: str | None = None,
        advice: str | None = None,
        hint: str | None = None,
        detail: Any = None,
        partial: Mapping[str, Any] | None = None,
    ) -> None:
        if hint is not None and hint not in HINTS:
            raise ValueError(f"unknown hint {hint!r}")
        self.reason = reason
        self.host = host
        self.operation = operation
        self.status = status
        self.errors: tuple[OciError, ...] = tuple(errors)
        self.code = code if code is not None else (self.errors[0].code if self.errors else None)
        self.advice = advice
        self.hint = hint
        self.detail = detail
        self.partial = partial
        super().__init__(self.message)

    @property
    def head(self) -> str:
        """``<operation> on <host> failed: HTTP <status> (<OCI errors>)`` for an answer; ``""`` otherwise."""
        if self.status is None or not self.operation or not self.host:
            return ""
        summary = "; ".join(str(entry) for entry in self.errors)
        return f"{self.operation} on {self.host} failed: HTTP {self.status}" + (f" ({summary})" if summary else "")

    def render(self, *, reason: str | None = None, advice: str | None = None) -> str:
        """The message from the fields, with ``reason`` / ``advice`` worded by the caller when given."""
        reason = self.reason if reason is None else reason
        advice = self.advice if advice is None else advice
        text = "; ".join(part for part in (reason, advice) if part)
        head = self.head
        if head:
            return f"{head}: {text}" if text else head
        return text

    @property
    def message(self) -> str:
        """The whole message, one line: built from the fields (:meth:`render`)."""
        return self.render()

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Plain data for module results (``error`` key): never holds secrets.

        ``host``, ``operation`` and the registry's ``errors`` are added when known.
        """
        data: dict[str, Any] = {"type": type(self).__name__, "message": self.message, "status": self.status,
                                "code": self.code}
        if self.host is not None:
            data["host"] = self.host
        if self.operation is not None:
            data["operation"] = self.operation
        if self.errors:
            data["errors"] = [entry.to_dict() for entry in self.errors]
        return data

    def fields(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this error's data (for a wrapper that rewords it)."""
        return {"host": self.host, "operation": self.operation, "status": self.status, "errors": self.errors,
                "code": self.code, "advice": self.advice, "hint": self.hint, "detail": self.detail,
                "partial": self.partial}


# How urllib3 names the connection an error happened on (1.x: the object's repr, 2.x: a constructor-like
# text, or the pool's "HTTPConnectionPool(host=..., port=...)"). It says which scheme was *tried* (a
# loopback registry is tried on https before plain http) and nothing the host and port of a message do
# not say better, so it is left out.
_CONNECTION_OBJECT = re.compile(
    r"(<[\w.]*HTTPS?Connection(?:Pool)? object at 0x[0-9a-fA-F]+>|[\w.]*HTTPS?Connection(?:Pool)?\([^()]*\)): ")


def innermost_reason(exc: BaseException) -> str:
    """The innermost reason of a requests / urllib3 error, at most 300 characters, without urllib3's pool text."""
    # requests nests urllib3 errors; the innermost reason reads best.
    reason: object = exc
    for _depth in range(4):
        args = getattr(reason, "args", None)
        inner = args[0] if args else None
        inner = getattr(inner, "reason", inner)
        if inner is None or inner is reason or isinstance(inner, str):
            break
        reason = inner
    text = _CONNECTION_OBJECT.sub("", str(reason))
    return text[:300]


class InvalidInputError(RegistryError):
    """The caller gave something malformed: a reference, a digest, an option value."""


class InvalidReferenceError(InvalidInputError):
    """An image reference does not follow the reference grammar."""


class InvalidDigestError(InvalidInputError):
    """A digest string is malformed or uses an unsupported algorithm."""


class ManifestError(RegistryError):
    """A manifest or image config could not be parsed or is not valid."""


class DigestMismatchError(RegistryError):
    """Content did not hash to the digest it was fetched or announced by."""


class TooLargeError(RegistryError):
    """A response body exceeded the size cap for its kind (manifest, token, error body)."""


class NotFoundError(RegistryError):
    """The repository, manifest, tag or blob does not exist (404 / *_UNKNOWN)."""


class NotARegistryError(RegistryError):
    """The host answered, but not as a registry: a miss without a registry's evidence, and ``GET /v2/`` failed.

    Neither a :class:`NotFoundError` (callers treat those as "absent") nor a :class:`TransportError`
    (callers retry those): the host and port are wrong, and asking again will not change that.
    """


class AuthenticationError(RegistryError):
    """The registry or its token service rejected the credentials (401)."""


class AuthorizationError(RegistryError):
    """The credentials are valid but lack the permission asked for (403, denied, insufficient_scope)."""


class UnsupportedError(RegistryError):
    """The registry does not support the operation (e.g. deleting, tag DELETE, referrers API)."""


class ConflictError(RegistryError):
    """State did not match what the caller expected (compare-and-swap guard, changed since plan)."""


class TransportError(RegistryError):
    """The registry could not be reached or answered unusably: connection, TLS, timeout, 5xx after retries."""


class RateLimitedError(TransportError):
    """The registry kept answering 429 after every retry."""


class CredentialsError(RegistryError):
    """Credentials could not be read: a broken auth file, a failing credential helper."""


class VerificationError(ConflictError):
    """An image did not meet the ``verify`` requirements (signature, attestation, referrer) asked of it."""
