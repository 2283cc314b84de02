# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed errors of the registry client.

Every failure the client can report is a :class:`RegistryError`. Its message is
written for a person running a playbook: it says what went wrong and what to do
about it. Messages never contain credentials or tokens.

``code`` carries the OCI error code from the registry's error body (for example
``MANIFEST_UNKNOWN``) and ``status`` the HTTP status, when there was one.
"""
from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base class of every error raised by the registry client."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Plain data for module results (``error`` key): never holds secrets."""
        return {"type": type(self).__name__, "message": self.message, "status": self.status, "code": self.code}


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
