# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP transport to one registry host: session, TLS, auth challenges, retries, redirects, limits.

:class:`Transport` sends every request of a :class:`~.registry.Registry`. It
knows HTTP and the parts of the distribution spec that apply to every
endpoint, and nothing of manifests or blobs:

* one pooled ``requests.Session`` per registry, default connect/read timeouts;
* https, or plain http for loopback hosts (tried after https, like Docker) or
  when ``plain_http`` is set;
* an ``Authorization`` header from the authenticator before each request; a 401
  is answered once with the challenge it carries, a 403 with a bearer token
  once with a fresh token;
* retries with exponential backoff and full jitter on connection errors and on
  408/429/500/502/503/504, honouring ``Retry-After``. A request whose body is a
  one-shot stream is never replayed: :class:`ReplayRequired` tells the caller
  (the upload code resumes or restarts instead);
* redirects followed by hand, and ``Authorization`` only ever sent to the
  registry's own origin (scheme, host and port);
* capped reads: documents (manifests, lists) and error bodies;
* ``Warning: 299`` texts (deduplicated) and Docker Hub rate limits recorded;
* every failure mapped to a typed :mod:`errors` exception whose message names
  the host, the operation, the status / OCI code and what to check. Header
  values (credentials) never appear in messages.

The request loop only composes small steps, each in its own file and tested
alone: :mod:`.retry` (the retry policy), :mod:`.auth_step` (401 challenge,
403 token refresh, a 401 that stands for a missing repository), :mod:`.refusals`
(what a 405 means per method and host), :mod:`.tls` (the loopback https -> http fallback and TLS
messages), :mod:`.body` (capped reads) and :mod:`.session` (the pooled
session, environment read once).
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

try:
    import requests
    from requests.adapters import HTTPAdapter
except ImportError as _exc:  # pragma: no cover - ansible-test sanity imports without requests
    requests = None  # type: ignore[assignment]
    HTTPAdapter = object  # type: ignore[assignment,misc]
    REQUESTS_IMPORT_ERROR: ImportError | None = _exc
else:
    REQUESTS_IMPORT_ERROR = None

from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.auth_step import (
    Authorizer,
    AuthStep,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.body import (
    BodyCut,
    discard,
    read_document,
    read_error_body,
    release_connection,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.retry import (
    NO_RETRY,
    RetryPolicy,
    full_jitter,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.session import (
    RegistrySession,
    keep_headers,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.tls import (
    SchemeFallback,
    origin_of,
    reason_of,
    tls_error,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    AuthorizationError,
    DigestMismatchError,
    NotARegistryError,
    NotFoundError,
    OciError,
    RateLimitedError,
    RegistryError,
    TooLargeError,
    TransportError,
    UnsupportedError,
)

MiB = 1024 * 1024
KiB = 1024

#: The distribution spec asks registries and clients to handle manifests of at
#: least 4 MB; more than that is almost certainly not a manifest.
DEFAULT_MAX_MANIFEST_BYTES = 4 * MiB
#: Error bodies are only read for their OCI error codes; a huge one is abuse.
DEFAULT_MAX_ERROR_BYTES = 64 * KiB
#: Token responses are small JSON documents.
DEFAULT_MAX_TOKEN_BYTES = 1 * MiB
#: The spec's common minimum chunk size for chunked uploads.
DEFAULT_CHUNK_SIZE = 5 * MiB

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Answers a web server that is not a registry gives to registry paths (a file server's 404, its 501 or
#: 405 to a write): from a host that did not identify itself as a registry they may not mean "missing".
_UNIDENTIFIED_STATUSES = frozenset({404, 405, 501})
#: The header Distribution sends on every answer (its app sets it before routing, so a router 404 has it too),
#: as registries built on it do (Harbor, GitLab) and others (ACR's error answers carry it). A registry that sends
#: it only on /v2/ (some small implementations) pays one GET /v2/ on its first miss, nothing more.
API_VERSION_HEADER = "Docker-Distribution-API-Version"
_MAX_REDIRECTS = 10
# The spec caps warning data at 4096 bytes from all headers combined; keeping
# more than that would only let a misbehaving registry grow our memory.
_MAX_WARNING_BYTES = 4096
_WARNING_RE = re.compile(r'299\s+\S+\s+"((?:[^"\\]|\\.)*)"')
_RATE_RE = re.compile(r"^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?")


def _user_agent() -> str:
    return "ocireg.registry/0.1.0 (+https://github.com/ocireg/registry)"


@dataclass
class TransportOptions:
    """How to talk to a registry. Every field has a safe default.

    ``timeout`` is ``(connect, read)`` seconds (a single number sets both).
    ``retries`` is how many times a failed request is sent again;
    ``backoff`` the base delay of the exponential backoff (full jitter, capped
    at ``backoff_max``); ``retry_after_cap`` caps a server's ``Retry-After``.
    ``plain_http``: ``None`` means https, except for loopback hosts where plain
    http is used when the server does not speak TLS; ``True`` forces http,
    ``False`` forces https. ``sleep``, ``jitter`` and ``clock`` exist so tests
    do not wait.
    """

    timeout: tuple[float, float] | float = (10.0, 60.0)
    retries: int = 3
    backoff: float = 0.5
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0
    validate_certs: bool = True
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    plain_http: bool | None = None
    user_agent: str = field(default_factory=_user_agent)
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
    max_error_bytes: int = DEFAULT_MAX_ERROR_BYTES
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES
    chunk_size: int = DEFAULT_CHUNK_SIZE
    pool_size: int = 16
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    jitter: Callable[[float], float] = field(default=full_jitter, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.timeout, (int, float)):
            self.timeout = (float(self.timeout), float(self.timeout))
        else:
            connect, read = self.timeout
            self.timeout = (float(connect), float(read))
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")

    @property
    def verify(self) -> bool | str:
        """The ``verify`` argument of requests: a CA bundle path, or whether to verify."""
        if not self.validate_certs:
            return False
        return self.ca_path or True

    @property
    def cert(self) -> str | tuple[str, str] | None:
        """The ``cert`` argument of requests for a TLS client certificate."""
        if self.client_cert and self.client_key:
            return (self.client_cert, self.client_key)
        return self.client_cert or None

    @property
    def timeouts(self) -> tuple[float, float]:
        """``(connect, read)`` seconds (``timeout`` after ``__post_init__`` normalised it)."""
        timeout = self.timeout
        if isinstance(timeout, tuple):
            return timeout
        return (float(timeout), float(timeout))

    @property
    def retry_policy(self) -> RetryPolicy:
        """The :class:`~.retry.RetryPolicy` these options describe."""
        return RetryPolicy(self.retries, self.backoff, self.backoff_max, self.retry_after_cap,
                           jitter=self.jitter, clock=self.clock)


@dataclass(frozen=True)
class RateLimit:
    """Docker Hub's pull rate limit as last reported (``RateLimit-Limit: 100;w=21600``)."""

    limit: int | None
    remaining: int | None
    window: int | None
    source: str | None = None

    def describe(self) -> str:
        """One phrase for messages: ``"0 of 100 pulls left per 21600 s"``."""
        window = f" per {self.window} s" if self.window else ""
        remaining = "?" if self.remaining is None else str(self.remaining)
        limit = "?" if self.limit is None else str(self.limit)
        return f"{remaining} of {limit} requests left{window}"


class ReplayRequired(TransportError):
    """A request with a one-shot body must be sent again (auth refresh, retryable failure).

    The body was a stream that is already consumed, so the transport cannot
    resend it; the caller (the upload code) resumes or restarts the upload.
    """


class _BodyCut(TransportError):
    """Internal: a response body broke off after its headers (the request may be sent again)."""


def parse_oci_errors(body: bytes) -> list[OciError]:
    """The entries of an OCI error body; ``[]`` when the body is not one."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    entries = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return []
    found = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("code"), str):
            message = entry.get("message")
            found.append(OciError(entry["code"], message if isinstance(message, str) else "", entry.get("detail")))
    return found


def parse_warnings(values: Iterable[str]) -> list[str]:
    """The texts of ``Warning: 299 - "text"`` header values (other warn-codes are ignored)."""
    texts = []
    for value in values:
        for match in _WARNING_RE.finditer(value):
            texts.append(re.sub(r"\\(.)", r"\1", match.group(1)))
    return texts


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """Docker Hub's ``RateLimit-Limit`` / ``RateLimit-Remaining`` headers, if present."""
    limit_header = headers.get("RateLimit-Limit")
    remaining_header = headers.get("RateLimit-Remaining")
    if limit_header is None and remaining_header is None:
        return None
    limit = window = remaining = None
    if limit_header and (match := _RATE_RE.match(limit_header)):
        limit = int(match.group(1))
        window = int(match.group(2)) if match.group(2) else None
    if remaining_header and (match := _RATE_RE.match(remaining_header)):
        remaining = int(match.group(1))
        if window is None and match.group(2):
            window = int(match.group(2))
    return RateLimit(limit, remaining, window, headers.get("Docker-RateLimit-Source"))


def backoff_delay(attempt: int, options: TransportOptions, retry_after: float | None = None) -> float:
    """How long to sleep before retry number ``attempt`` (0-based): see :meth:`.retry.RetryPolicy.backoff_delay`."""
    return options.retry_policy.backoff_delay(attempt, retry_after)


def _describe_url(url: str) -> str:
    # Query strings are left out of messages: upload states and signed storage
    # URLs carry tokens there.
    parts = urlsplit(url)
    return parts.path or "/"


def _is_replayable(data: object) -> bool:
    return data is None or isinstance(data, (bytes, bytearray, memoryview, str))


class Transport:
    """Sends requests to one registry host (see the module docstring for what it handles).

    ``host`` is the API host with an optional port (``registry-1.docker.io``,
    ``127.0.0.1:5000``). ``authenticator`` answers challenges (see
    :class:`~.auth.token.Authenticator`); without one every request is anonymous.
    """

    def __init__(self, host: str, options: TransportOptions | None = None,
                 authenticator: Authorizer | None = None) -> None:
        if requests is None:
            raise TransportError(
                "the Python library 'requests' is required to talk to registries: install it on the "
                f"host that runs the module ({REQUESTS_IMPORT_ERROR})"
            )
        self.host = host
        self.options = options or TransportOptions()
        self.authenticator = authenticator
        self.session = RegistrySession()
        # requests never applies ~/.netrc credentials over the Authorization header this module manages.
        self.session.auth = keep_headers
        # Set on the session too, so the token requests of the authenticator
        # (which shares this session) use the same TLS settings.
        self.session.verify = self.options.verify
        self.session.cert = self.options.cert
        self.session.headers["User-Agent"] = self.options.user_agent
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.options.pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # Docker talks plain http to loopback registries that do not speak
        # TLS; that downgrade is decided once, on the first TLS failure.
        self._scheme = SchemeFallback(host, self.options.plain_http)
        self._lock = threading.Lock()
        self._warnings: list[str] = []
        self._warning_bytes = 0
        self.rate_limit: RateLimit | None = None
        # Whether GET /v2/ said this host is a registry: None until a miss from a host that did not identify
        # itself made us ask (at most once per transport), then the answer's status (None: no answer).
        self._identity_lock = threading.Lock()
        self._identity: tuple[bool, int | None] | None = None
        #: Called (no arguments) before every attempt of every request, retries included; may block.
        #: A caller's hook, e.g. a shared request-rate ceiling; None (the default) costs nothing.
        self.before_request: Callable[[], None] | None = None

    # -- public state ------------------------------------------------------------
    @property
    def scheme(self) -> str:
        """``https`` or ``http``: how the registry is spoken to now."""
        return self._scheme.scheme

    @property
    def base_url(self) -> str:
        """``scheme://host`` of the registry's API."""
        return f"{self._scheme.scheme}://{self.host}"

    @property
    def warnings(self) -> list[str]:
        """``Warning: 299`` texts seen so far, deduplicated, in order of arrival."""
        with self._lock:
            return list(self._warnings)

    def url_for(self, url_or_path: str) -> str:
        """An absolute URL: paths are joined to :attr:`base_url`, URLs kept (relative ones resolved)."""
        if url_or_path.startswith(("http://", "https://")):
            return url_or_path
        if url_or_path.startswith("/") and not url_or_path.startswith("//") and "/." not in url_or_path:
            # What urljoin answers for an absolute path without dot segments, without its parsing (hot path).
            return self.base_url + url_or_path
        return urljoin(self.base_url + "/", url_or_path)

    def is_registry_origin(self, url: str) -> bool:
        """Whether ``url`` is on this registry's scheme, host and port (so may carry credentials)."""
        base = self.base_url
        if url.startswith(base) and url[len(base):len(base) + 1] in ("/", "?", "#"):
            # The base URL itself, followed by where its authority ends: the same origin without parsing.
            return True
        return origin_of(url) == origin_of(base)

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    # -- the request loop ----------------------------------------------------------
    def request(
        self,
        method: str,
        url_or_path: str,
        *,
        scopes: Collection[str] = (),
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        stream: bool = False,
        ok: Collection[int] = (200,),
        retry: bool = True,
        max_body: int | None = None,
        operation: str | None = None,
    ) -> requests.Response:
        """Send one request and return its response once its status is in ``ok``.

        ``scopes`` are the token scopes the request needs. With ``stream=False``
        the body is read now, at most ``max_body`` bytes (default: the manifest
        cap), else :class:`TooLargeError`; with ``stream=True`` the caller reads
        and closes it. Statuses outside ``ok`` raise the matching typed error.
        ``operation`` names the request in messages ("push manifest a/b:1").

        Each send's outcome goes through the steps in turn: a TLS failure to
        the TLS fallback, a connection failure to the retry policy, an answer
        to the auth step, then to the retry policy, then to the body reader.
        A step that wants the request sent again gets it sent again, unless the
        body is a one-shot stream (:class:`ReplayRequired`).
        """
        method = method.upper()
        url = self.url_for(url_or_path)
        what = operation or f"{method} {_describe_url(url)}"
        replayable = _is_replayable(data)
        policy = self.options.retry_policy if retry else NO_RETRY
        auth = AuthStep(self.host, self.authenticator, tuple(scopes))
        attempt = 0
        downgraded = False
        while True:
            if self.before_request is not None:
                self.before_request()
            try:
                response, sent_auth = self._send(method, url, auth, headers, params, data, replayable,
                                                 whole=method == "HEAD" or not stream)
            except requests.exceptions.SSLError as exc:
                if not downgraded and self._scheme.downgrade_after(exc, getattr(exc, "failed_url", url)):
                    downgraded = True
                    url = self._scheme.rewrite(url)
                    continue
                raise tls_error(self.host, exc, what) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                delay = policy.delay_after(attempt)
                if delay is None:
                    raise TransportError(self._connection_message(exc, what, attempt + 1)) from None
                if not replayable:
                    raise ReplayRequired(self._connection_message(exc, what, attempt + 1)) from None
                self.options.sleep(delay)
                attempt += 1
                continue
            self._scheme.settle()
            self._observe(response)
            status = response.status_code

            reason = auth.replay_reason(response, sent_auth, self.is_registry_origin(response.url))
            if reason is not None:
                if not replayable:
                    raise ReplayRequired(f"{what} on {self.host} must be sent again with {reason}")
                continue
            if status not in ok:
                delay = policy.delay_after(attempt, status, response.headers.get("Retry-After"))
                if delay is not None:
                    discard(response)
                    if not replayable:
                        raise ReplayRequired(f"{what} on {self.host} answered HTTP {status}; it must be sent again")
                    self.options.sleep(delay)
                    attempt += 1
                    continue
                if auth.hides_missing_repository(method, response):
                    response.close()
                    raise NotFoundError(
                        f"{what} on {self.host} failed: HTTP 401 although the token service granted access: the "
                        "repository does not exist, or this account cannot see it (registries such as Docker Hub "
                        "and GHCR answer 401 for a missing repository); check the repository name", status=401)
                error = self.error_for(response, what, retried=attempt)
                if status in _UNIDENTIFIED_STATUSES:
                    self._check_identity(response, bool(error.errors), what)
                raise error
            if method == "HEAD":
                release_connection(response)
            elif not stream:
                try:
                    read_document(response, max_body or self.options.max_manifest_bytes, what, self.host)
                except BodyCut as exc:
                    # The answer broke after its headers; a GET can simply be asked again.
                    delay = policy.delay_after(attempt) if method == "GET" else None
                    if delay is None:
                        raise TransportError(self._connection_message(exc.cause, what, attempt + 1)) from None
                    self.options.sleep(delay)
                    attempt += 1
                    continue
            if status in _UNIDENTIFIED_STATUSES:
                # An expected miss (a HEAD's 404 is "absent"): only a registry's miss means that.
                body_says = method != "HEAD" and not stream and bool(parse_oci_errors(response.content))
                self._check_identity(response, body_says, what)
            return response

    def _send(
        self,
        method: str,
        url: str,
        auth: AuthStep,
        headers: Mapping[str, str] | None,
        params: Mapping[str, Any] | None,
        data: Any,
        replayable: bool,
        whole: bool = False,
    ) -> tuple[requests.Response, str | None]:
        """Send, following redirects by hand; return the final response and the auth header sent to it.

        ``whole``: the caller reads the whole body at once (a HEAD, a capped document), never a stream.
        """
        for _hop in range(_MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            auth_value = None
            if auth.authenticator is not None and self.is_registry_origin(url):
                auth_value = auth.header()
                if auth_value:
                    sent["Authorization"] = auth_value
            try:
                # The pool directly when nothing needs requests' full path (see RegistrySession.send_direct).
                response = self.session.send_direct(method, url, sent, params, data, self.options.timeouts,
                                                    self.options.verify, self.options.cert, whole=whole)
                if response is None:
                    response = self.session.request(
                        method, url, headers=sent, params=params, data=data, stream=True,
                        allow_redirects=False, timeout=self.options.timeouts,
                        verify=self.options.verify, cert=self.options.cert,
                    )
            except requests.exceptions.SSLError as exc:
                exc.failed_url = url  # type: ignore[attr-defined]  # which hop failed decides a downgrade
                raise
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECT_STATUSES or not location:
                return response, auth_value
            follow = method in ("GET", "HEAD") or (response.status_code in (307, 308) and replayable)
            if not follow:
                return response, auth_value
            discard(response)
            url = urljoin(response.url, location)
            params = None  # the Location carries its own query
            if response.status_code == 303 and method != "HEAD":
                method, data = "GET", None
        raise TransportError(
            f"{method} {_describe_url(url)} on {self.host} was redirected more than {_MAX_REDIRECTS} times: "
            "the registry or its storage is misconfigured"
        )

    # -- bookkeeping -----------------------------------------------------------------
    def _observe(self, response: requests.Response) -> None:
        raw_headers = getattr(getattr(response, "raw", None), "headers", None)
        getlist = getattr(raw_headers, "getlist", None)
        values: list[str] = getlist("Warning") if getlist is not None else []
        if not values and response.headers.get("Warning"):
            values = [response.headers["Warning"]]
        texts = parse_warnings(values)
        rate = parse_rate_limit(response.headers)
        if not texts and rate is None:
            return
        with self._lock:
            if rate is not None:
                self.rate_limit = rate
            for text in texts:
                if text not in self._warnings and self._warning_bytes + len(text) <= _MAX_WARNING_BYTES:
                    self._warnings.append(text)
                    self._warning_bytes += len(text)

    # -- errors --------------------------------------------------------------------
    def read_error_body(self, response: Any) -> bytes:
        """At most ``max_error_bytes`` of an error response's body (never raises)."""
        return read_error_body(response, self.options.max_error_bytes)

    def error_for(self, response: requests.Response, what: str, retried: int = 0) -> RegistryError:
        """The typed error for a response whose status the caller did not expect (after ``retried`` retries).

        The error carries the host, the operation, the status and the registry's OCI errors as
        fields; its reason and advice name no module option (``hint`` says which kind of fix).
        """
        status = response.status_code
        if response.request is not None and response.request.method == "HEAD":
            discard(response)  # no body; its connection goes back to the pool
            body = b""
        else:
            body = self.read_error_body(response)
        oci = parse_oci_errors(body)
        codes = {entry.code for entry in oci}
        challenge = response.headers.get("WWW-Authenticate", "")
        fields: dict[str, Any] = {"host": self.host, "operation": what, "status": status, "errors": oci}

        anonymous = getattr(self.authenticator, "credentials", None) is None
        if status == 400 and self.scheme == "http" and (
                b"HTTP request to an HTTPS server" in body
                or (getattr(response.raw, "version", 11) == 10 and not response.headers)):
            # Go's TLS listener answers a plain-HTTP request with a bare HTTP/1.0 400, no headers
            # (and a HEAD reads no body).
            return TransportError(
                f"{self.host} serves HTTPS on this port, but the request was sent as plain HTTP",
                advice="speak HTTPS to it (trusting its CA, or without certificate validation, for a private "
                       "certificate)", hint="https_on_plain_port", **fields)
        login = f"the registry needs credentials and none were given for {self.host}"
        give = f"give a username and password, a token or an auth file entry for {self.host}"
        if status == 401 and anonymous:
            if "insufficient_scope" in challenge:
                return AuthorizationError(
                    f"the token service did not grant an anonymous client this access: {login}",
                    advice=give, hint="login_needed", **fields)
            return AuthenticationError(login, advice=give, hint="login_needed", **fields)
        if status == 401 and "insufficient_scope" in challenge:
            return AuthorizationError(
                "the token service did not grant the access this needs",
                advice="check the account's permissions on the repository", **fields)
        if status == 401 or "UNAUTHORIZED" in codes:
            return AuthenticationError(
                "authentication failed", advice=f"check username/password, token or auth file entry for {self.host}",
                hint="login_rejected", **fields)
        if status == 403 or "DENIED" in codes:
            return AuthorizationError(
                "access denied", advice="the credentials are valid but lack permission for this "
                "(check the account's rights on the repository)", **fields)
        if status == 429 or "TOOMANYREQUESTS" in codes:
            limit = f" ({self.rate_limit.describe()})" if self.rate_limit else ""
            return RateLimitedError(
                f"the registry is rate limiting{limit}{_after(retried)}",
                advice="wait, authenticate for a higher limit, or raise retries", **fields)
        if status == 404 or any(c.endswith("_UNKNOWN") for c in codes):
            return NotFoundError("not found", advice="check the repository name and the tag or digest", **fields)
        if status == 405 or "UNSUPPORTED" in codes:
            # Loaded here: only a refused request needs the per-method advice (start-up compiles less).
            from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.refusals import (
                explain_405,
            )

            method = response.request.method if response.request is not None else None
            advice = explain_405(method or what.partition(" ")[0], self.host, codes,
                                 hub_rate_limits_seen=self.rate_limit is not None and bool(self.rate_limit.source))
            return UnsupportedError(advice, **fields)
        if status == 413:
            return TooLargeError("the registry refused the body as too large", **fields)
        if "DIGEST_INVALID" in codes:
            return DigestMismatchError(
                "the registry says the content does not match its digest",
                advice="the source is corrupt or changed in transit", **fields)
        if status >= 500:
            return TransportError(f"the registry failed{_after(retried)}",
                                  advice="retry later or check the registry's logs", **fields)
        if status in _REDIRECT_STATUSES:
            return TransportError("unexpected redirect for this request", **fields)
        return RegistryError("the registry refused the request", **fields)

    # -- is it a registry at all -------------------------------------------------------
    def _check_identity(self, response: requests.Response, body_says: bool, what: str) -> None:
        """Raise :class:`NotARegistryError` when a miss came from a host that is not a registry.

        A registry's 404 (405, 501) carries evidence: the API version header, or (a GET's) OCI error
        body. Without either, ``GET /v2/`` is asked, once per transport: 200 or 401 means a registry
        (the miss stands), anything else means the host and port are wrong. A registry that sends the
        header never pays this request, and nothing is asked on a success.
        """
        if body_says or API_VERSION_HEADER in response.headers or not self.is_registry_origin(response.url):
            # A miss from storage a registry redirected to (a blob on S3) says nothing about the registry.
            return
        if _describe_url(response.url) == "/v2/":
            # The answer to /v2/ itself (Registry.ping): it already said what asking again would.
            identity: tuple[bool, int | None] = (False, response.status_code)
        else:
            identity = self._identify()
        is_registry, answered = identity
        if is_registry or answered is None:
            return
        raise NotARegistryError(
            f"{self.host} answered {answered} for /v2/: it is not a container registry (or not at this address)",
            advice="check the host name and port", host=self.host, operation=what, status=response.status_code)

    def _identify(self) -> tuple[bool, int | None]:
        """Ask ``GET /v2/`` once (anonymously, never retried): (a registry?, the status; None: no answer)."""
        with self._identity_lock:
            if self._identity is None:
                try:
                    if self.before_request is not None:
                        self.before_request()
                    probe, _sent = self._send("GET", self.url_for("/v2/"), AuthStep(self.host, None, ()),
                                              None, None, None, True, whole=True)
                except (requests.exceptions.RequestException, TransportError):
                    # No answer now: the miss keeps its meaning (the registry may be flaky, not absent).
                    self._identity = (False, None)
                else:
                    release_connection(probe)
                    status = probe.status_code
                    self._identity = (status in (200, 401) or API_VERSION_HEADER in probe.headers, status)
            return self._identity

    def _connection_message(self, exc: BaseException, what: str, attempts: int = 1) -> str:
        sent = f"{attempts} attempts" if attempts != 1 else "1 attempt"
        if isinstance(exc, requests.exceptions.Timeout):
            connect, read = self.options.timeouts
            return (f"{what} on {self.host} timed out (connect {connect:g} s, read {read:g} s; {sent}): raise "
                    "timeout or check the network path to the registry")
        return (f"{what}: cannot reach {self.host} ({reason_of(exc)}; {sent}); check the host name and port, "
                "that the registry is running, and any proxy settings")


def _after(retried: int) -> str:
    return f" after {retried} retries" if retried else ""
