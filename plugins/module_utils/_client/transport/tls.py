# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The TLS-fallback step: which scheme a registry is spoken to, and what a TLS failure means.

Docker talks plain http to a loopback registry whose https port does not
speak TLS; :class:`SchemeFallback` does the same, decided once per registry,
and only where today's rules allow it (``plain_http`` unset and a loopback
host). Every other TLS failure becomes one :class:`TransportError` whose
``hint`` says which kind of fix it needs (the Ansible glue names the option).
"""
from __future__ import annotations

import threading
from urllib.parse import urlsplit

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    TransportError,
    innermost_reason,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    is_loopback,
)

# What OpenSSL says when the peer answered a ClientHello with something that is
# not TLS (a plain HTTP server): 1.1/3.0 and 3.2+ wordings.
_NOT_TLS_MARKERS = ("WRONG_VERSION_NUMBER", "wrong version number", "RECORD_LAYER_FAILURE",
                    "record layer failure", "packet length too long", "PACKET_LENGTH_TOO_LONG",
                    "unknown protocol", "UNKNOWN_PROTOCOL", "http request", "HTTP_REQUEST")


def origin_of(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` with the scheme's default port filled in."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def speaks_no_tls(exc: BaseException) -> bool:
    """Whether a TLS error says the peer answered with something that is not TLS at all."""
    text = str(exc)
    return any(marker in text for marker in _NOT_TLS_MARKERS)


def is_verify_failure(exc: BaseException) -> bool:
    """Whether a TLS error is a certificate that did not verify."""
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text


#: The innermost reason of a requests / urllib3 error (its home is ``_model.errors``, where the token
#: flow, which may not import the transport, reads it too).
reason_of = innermost_reason


def tls_error(host: str, exc: BaseException, what: str) -> TransportError:
    """The error for a TLS failure talking to ``host``: the cause, and which kind of fix (``hint``) it needs."""
    if is_verify_failure(exc):
        return TransportError(
            f"TLS certificate verify failed for {host} ({what})", host=host, operation=what, hint="tls_untrusted",
            advice="trust the CA bundle that signed the registry's certificate, or turn certificate validation off")
    if speaks_no_tls(exc):
        return TransportError(
            f"TLS handshake with {host} failed ({what}): the server does not speak TLS on this port",
            host=host, operation=what, hint="tls_not_spoken",
            advice="if the registry serves plain HTTP, speak plain HTTP to it")
    return TransportError(
        f"TLS handshake with {host} failed ({what}): {reason_of(exc)}", host=host, operation=what,
        hint="tls_handshake", advice="if the registry needs a client certificate, give one with its key "
        "(and check certificate validation and the CA bundle)")


class SchemeFallback:
    """The scheme of one registry host, with the one-time https -> http downgrade of loopback hosts.

    ``plain_http``: True forces http, False forces https, None means https
    with the downgrade allowed for a loopback ``host``. Thread-safe: the
    switch happens once, before any request got an answer, and concurrent
    first requests all follow it.
    """

    def __init__(self, host: str, plain_http: bool | None) -> None:
        self.host = host
        self.scheme = "http" if plain_http is True else "https"
        self._https_origin = origin_of(f"https://{host}")
        self._may_downgrade = plain_http is None and is_loopback(host)
        self._lock = threading.Lock()

    def downgrade_after(self, exc: BaseException, failed_url: str) -> bool:
        """Whether a request that failed TLS on ``failed_url`` should be sent again over plain http.

        Only an answer that is not TLS at all, from the registry's own https
        origin, counts; any other TLS failure (a certificate that does not
        verify, a client certificate required) means the server speaks TLS,
        and that is reported, never downgraded.
        """
        if not speaks_no_tls(exc) or origin_of(failed_url) != self._https_origin:
            return False
        with self._lock:
            if self._may_downgrade:
                self.scheme = "http"
                self._may_downgrade = False
            return self.scheme == "http"

    def settle(self) -> None:
        """An answer arrived: the scheme is final (no downgrade after the first answer)."""
        if self._may_downgrade:
            with self._lock:
                self._may_downgrade = False

    def rewrite(self, url: str) -> str:
        """``url`` on plain http when it is on the registry's https origin, else unchanged."""
        if origin_of(url) == self._https_origin:
            return urlsplit(url)._replace(scheme="http").geturl()
        return url
