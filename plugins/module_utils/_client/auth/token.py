# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Answering registry auth challenges: WWW-Authenticate parsing, bearer tokens, Basic.

The transport calls :class:`Authenticator` like this: before a request,
:meth:`~Authenticator.header_for` (cached, no network); on a 401,
:meth:`~Authenticator.authorize` with the parsed challenges (fetches a token);
after a 401/403 that carried a token, :meth:`~Authenticator.invalidate`.

Token requests follow the Distribution token spec (token.md, oauth.md):

* a ``registry_token`` is sent as the bearer token itself;
* an ``identity_token`` is exchanged with an OAuth2 ``refresh_token`` POST;
* a username/password uses an OAuth2 ``password`` POST, falling back to a GET
  with Basic credentials when the token service answers 404 or 405 (as docker
  does), 400, or 401 unless its OAuth2 error says the credentials were refused
  (``invalid_grant`` / ``invalid_client``): some token services answer 401 to a
  password POST they do not take, and containerd falls back there too;
* without credentials, an anonymous GET.

Safety rules: the realm must be an absolute http(s) URL; plain-HTTP realms
are refused unless the realm host is loopback or the user allowed plain HTTP
for it (or for the registry itself, then only anonymously); credentials go
only over https, to loopback, or to a host the user allowed plain HTTP for;
redirects from the token service are followed only to the same host (or
anywhere for an anonymous GET), never downgrading to plain HTTP.

Tokens are cached by (realm, service, scopes) until 10 s before they expire;
a token for a superset of the scopes asked is reused. Each token request asks
for exactly the scopes of that call (plus the scope the registry named in its
challenge), never a union that grows over a run.
"""
from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.challenge import (
    Challenge,
    _parse_scope,
    _same_host,
    check_realm,
    clean_scopes,
    scopes_cover,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import (
    Credentials,
    scrub,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    AuthorizationError,
    RegistryError,
    TooLargeError,
    TransportError,
    innermost_reason,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.json_documents import (
    json_object,
)

try:
    import requests
except ImportError as _exc:  # ansible-test's import sanity check runs without requests
    requests = None  # type: ignore[assignment]
    REQUESTS_IMPORT_ERROR: ImportError | None = _exc
else:
    REQUESTS_IMPORT_ERROR = None


if TYPE_CHECKING:  # pragma: no cover
    from requests import Response, Session


CLIENT_ID = "ocireg.registry"


# Answers to an OAuth2 password POST after which a GET with Basic credentials is
# tried. A 401 counts unless its body carries one of the RFC 6749 (5.2) error
# codes that mean "the credentials were checked and refused" (_CREDENTIALS_REFUSED):
# {"error": "invalid_grant"} is the token service's real answer to a wrong
# password, not a missing feature, and trying GET too would count a second failed
# login against lockout policies. Any other 401 (no body, HTML, or an error such as
# "unsupported" / "unsupported_grant_type", as Artifactory's token service answers a
# POST it does not take) falls back, as containerd does on every 401.
_PASSWORD_GRANT_FALLBACK = (400, 401, 404, 405)
_CREDENTIALS_REFUSED = frozenset({"invalid_grant", "invalid_client"})


DEFAULT_TIMEOUT = (10, 60)


# Token responses are a few KiB; 1 MiB bounds a broken or hostile token service.
MAX_TOKEN_BYTES = 1024 * 1024


# token.md: expires_in defaults to 60 s and a token never lives less than that.
MIN_TOKEN_LIFETIME = 60


# Refresh a little early so a token does not expire between lookup and use.
EXPIRY_MARGIN = 10


_MAX_REDIRECTS = 3


_MAX_CACHED_TOKENS = 256


def parse_issued_at(value: Any) -> float | None:
    """RFC 3339 ``issued_at`` -> epoch seconds, or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    # Python 3.11 reads at most 6 fractional digits; Go writes up to 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # RFC 3339 requires an offset; guessing would shift expiry
    return parsed.timestamp()


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # epoch seconds


@dataclass(frozen=True)
class _HostAuth:
    """What the last challenge from a registry host asked for."""

    scheme: str
    realm: str | None = None
    service: str | None = None


def token_from_response(body: bytes, realm: str, now: float) -> _Token:
    """Read a token service's JSON answer (token.md "Token Response Fields")."""
    data = json_object(body, lambda found: AuthenticationError(
        f"the token service at {realm} answered with {found}: it is not a Distribution token service, or it is broken"))
    value = data.get("token") or data.get("access_token")
    if not isinstance(value, str) or not value.strip():
        raise AuthenticationError(
            f"the token service at {realm} answered without a token (no 'token' or 'access_token' field)"
        )
    expires_in = data.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or not math.isfinite(expires_in):
        expires_in = MIN_TOKEN_LIFETIME
    expires_in = max(float(expires_in), MIN_TOKEN_LIFETIME)
    issued = parse_issued_at(data.get("issued_at"))
    # Clock-skew guard: an issued_at in the future, or one that would make the
    # token already expired, is not trusted; the exchange time is used instead.
    if issued is None or issued > now or issued + expires_in <= now:
        issued = now
    return _Token(value.strip(), issued + expires_in)


def token_grants(token: str, scopes: Sequence[str]) -> bool | None:
    """Whether a JWT bearer token's ``access`` claim covers every ``repository:<name>:<actions>`` scope.

    The claim (token.md "JSON Web Token") is read without verifying the
    signature. None when the token is not a JWT or has no ``access`` claim.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    access = claims.get("access") if isinstance(claims, dict) else None
    if not isinstance(access, list):
        return None
    granted: dict[tuple[str, str], set[str]] = {}
    for entry in access:
        if isinstance(entry, dict) and isinstance(entry.get("type"), str) and isinstance(entry.get("name"), str):
            actions = entry.get("actions")
            granted.setdefault((entry["type"], entry["name"]), set()).update(
                a for a in (actions if isinstance(actions, list) else []) if isinstance(a, str))
    for scope in scopes:
        parsed = _parse_scope(scope)
        if parsed is None:
            return None
        kind, name, actions = parsed  # pylint: disable=unpacking-non-sequence  # None was returned above
        have = granted.get((kind, name), set())
        if "*" not in have and not actions <= have:
            return False
    return True


class Authenticator:
    """Answers a registry's 401 challenges and caches what it got.

    ``credentials`` come from :func:`credentials.resolve_credentials` for
    this registry (None = anonymous). ``session`` is the transport's pooled
    ``requests.Session`` with TLS settings applied. ``plain_http_hosts`` are
    the hosts the user allowed plain HTTP for. ``clock`` returns epoch
    seconds (tests pass a fake one to simulate expiry).
    """

    def __init__(
        self,
        credentials: Credentials | None,
        session: Session,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        plain_http_hosts: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = credentials
        self.session = session
        self.timeout = timeout
        self.max_token_bytes = max_token_bytes
        self.plain_http_hosts = frozenset(h.lower() for h in plain_http_hosts)
        self.clock = clock
        self._lock = threading.Lock()
        self._hosts: dict[str, _HostAuth] = {}
        self._tokens: dict[tuple[str, str, tuple[str, ...]], _Token] = {}
        # Every token handed out, even after it left the cache, so callers can
        # scrub a registry error that echoes one back (bounded like the cache).
        self._issued: dict[str, None] = {}

    def issued_tokens(self) -> list[str]:
        """The bearer tokens this authenticator obtained, for scrubbing output; never logged."""
        with self._lock:
            return list(self._issued)

    # -- what the transport calls ------------------------------------------------------

    def header_for(self, host: str, scopes: Sequence[str]) -> str | None:
        """The cached ``Authorization`` value for a request to ``host`` needing ``scopes``, or None.

        No network. None until ``host`` has sent a challenge, and for a bearer
        host when no unexpired token covers ``scopes``.
        """
        with self._lock:
            known = self._hosts.get(host.lower())
            if known is None:
                return None
            if known.scheme == "basic":
                return self._basic_header()
            if self.credentials is not None and self.credentials.registry_token:
                return f"Bearer {self.credentials.registry_token}"
            token = self._cached_token(known, clean_scopes(scopes))
            return None if token is None else f"Bearer {token.value}"

    def authorize(self, host: str, challenges: list[Challenge], scopes: Sequence[str]) -> str | None:
        """Answer a 401 from ``host``: return an ``Authorization`` value, or None when there is nothing to send.

        Bearer challenges get a fresh token (the request that drew the 401
        either had none or had one that no longer works); Basic challenges get
        the username/password. None means "no credentials for this", e.g.
        Basic asked but no username/password.
        """
        host = host.lower()
        by_scheme = {c.scheme: c for c in reversed(challenges)}  # first challenge of a scheme wins
        bearer, basic = by_scheme.get("bearer"), by_scheme.get("basic")
        if bearer is not None:
            return self._authorize_bearer(host, bearer, scopes)
        if basic is not None:
            with self._lock:
                self._hosts[host] = _HostAuth("basic")
            return self._basic_header()
        if not challenges:
            raise AuthenticationError(
                f"the registry {host} answered 401 without a WWW-Authenticate challenge: it does not say how to "
                "authenticate; check the registry URL (a proxy in front of it may be answering)"
            )
        schemes = ", ".join(sorted({c.scheme for c in challenges}))
        raise AuthenticationError(
            f"the registry {host} asks for {schemes} authentication, which ocireg.registry does not support "
            "(supported: Basic and Bearer token)"
        )

    def grants(self, host: str, scopes: Sequence[str]) -> bool | None:
        """Whether the token :meth:`header_for` hands out for ``scopes`` was granted them (no network).

        Read from the token's JWT ``access`` claim without verifying it (the
        registry verifies; this only explains a refusal). None when there is
        no bearer token or it is not a readable JWT (opaque tokens).
        """
        with self._lock:
            known = self._hosts.get(host.lower())
            if known is None or known.scheme != "bearer":
                return None
            if self.credentials is not None and self.credentials.registry_token:
                return token_grants(self.credentials.registry_token, scopes)
            token = self._cached_token(known, clean_scopes(scopes))
        return None if token is None else token_grants(token.value, scopes)

    def invalidate(self, host: str, scopes: Sequence[str]) -> None:
        """Forget cached tokens for ``host`` that :meth:`header_for` would hand out for ``scopes``."""
        with self._lock:
            known = self._hosts.get(host.lower())
            if known is None or known.scheme != "bearer":
                return
            self._forget(known.realm or "", known.service or "", clean_scopes(scopes))

    def _forget(self, realm: str, service: str, scopes: tuple[str, ...]) -> None:
        """Drop cached tokens of realm+service that cover ``scopes`` (caller holds the lock)."""
        for key in [k for k in self._tokens if k[:2] == (realm, service) and scopes_cover(k[2], scopes)]:
            del self._tokens[key]

    # -- Basic ---------------------------------------------------------------------------

    def _basic_header(self) -> str | None:
        creds = self.credentials
        if creds is None or not creds.has_password:
            return None
        return f"Basic {base64.b64encode(f'{creds.username}:{creds.password}'.encode()).decode('ascii')}"

    # -- Bearer --------------------------------------------------------------------------

    def _cached_token(self, known: _HostAuth, wanted: tuple[str, ...]) -> _Token | None:
        now = self.clock()
        exact = self._tokens.get((known.realm or "", known.service or "", wanted))
        if exact is not None and now < exact.expires_at - EXPIRY_MARGIN:
            return exact
        best: _Token | None = None
        for (realm, service, granted), token in self._tokens.items():
            if (realm, service) != (known.realm, known.service or ""):
                continue
            if now < token.expires_at - EXPIRY_MARGIN and scopes_cover(granted, wanted):
                if best is None or token.expires_at > best.expires_at:
                    best = token
        return best

    def _authorize_bearer(self, host: str, challenge: Challenge, scopes: Sequence[str]) -> str | None:
        creds = self.credentials
        if creds is not None and creds.registry_token:
            with self._lock:
                self._hosts[host] = _HostAuth("bearer", challenge.realm, challenge.service)
            return f"Bearer {creds.registry_token}"
        sends_secret = creds is not None and (bool(creds.identity_token) or creds.has_password)
        realm = check_realm(challenge.realm, host, self.plain_http_hosts, with_credentials=sends_secret)
        service = challenge.service or ""
        wanted = clean_scopes(list(scopes) + challenge.scopes)
        token = self._fetch_token(host, realm, service, wanted)
        with self._lock:
            self._hosts[host] = _HostAuth("bearer", realm, service)
            # The 401 says whatever header_for handed out for these scopes failed:
            # drop it, or it would shadow the new token (an exact-key hit wins).
            self._forget(realm, service, clean_scopes(scopes))
            self._store(realm, service, wanted, token)
        return f"Bearer {token.value}"

    def _store(self, realm: str, service: str, scopes: tuple[str, ...], token: _Token) -> None:
        now = self.clock()
        for key in [k for k, t in self._tokens.items() if t.expires_at - EXPIRY_MARGIN <= now]:
            del self._tokens[key]
        if len(self._tokens) >= _MAX_CACHED_TOKENS:
            del self._tokens[min(self._tokens, key=lambda k: self._tokens[k].expires_at)]
        self._tokens[(realm, service, scopes)] = token
        self._issued[token.value] = None
        while len(self._issued) > 4 * _MAX_CACHED_TOKENS:
            del self._issued[next(iter(self._issued))]

    def _fetch_token(self, host: str, realm: str, service: str, scopes: tuple[str, ...]) -> _Token:
        creds = self.credentials
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": CLIENT_ID}
            return self._post_token(host, realm, service, scopes, form, what="identity token")
        if creds is not None and creds.has_password:
            form = {"grant_type": "password", "username": creds.username or "", "password": creds.password or "",
                    "client_id": CLIENT_ID}
            try:
                return self._post_token(host, realm, service, scopes, form, what="username/password")
            except _OAuthUnsupported:
                # token.md: not every token service speaks OAuth2; GET with Basic works everywhere.
                return self._get_token(host, realm, service, scopes, with_basic=True)
        return self._get_token(host, realm, service, scopes, with_basic=False)

    def _post_token(self, host: str, realm: str, service: str, scopes: tuple[str, ...],
                    form: dict[str, str], *, what: str) -> _Token:
        if service:
            form["service"] = service
        if scopes:
            form["scope"] = " ".join(scopes)  # oauth.md: one space-separated scope field
        response = self._send(host, "POST", realm, data=form, headers=None, with_secret=True)
        with response:
            if (response.status_code in _PASSWORD_GRANT_FALLBACK and form["grant_type"] == "password"
                    and not (response.status_code == 401 and _oauth_error(response) in _CREDENTIALS_REFUSED)):
                raise _OAuthUnsupported()
            if response.status_code in (404, 405):
                raise AuthenticationError(
                    f"the token service of {host} ({realm}) does not support OAuth2 token requests "
                    f"(HTTP {response.status_code}), so the identity token from {self._source()} cannot be used: "
                    "log in with username and password instead",
                    status=response.status_code,
                )
            return self._token_or_error(host, realm, response, what=what)

    def _get_token(self, host: str, realm: str, service: str, scopes: tuple[str, ...], *, with_basic: bool) -> _Token:
        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in scopes)  # token.md: one scope parameter per scope
        headers = None
        if with_basic and self.credentials is not None:
            params.append(("account", self.credentials.username or ""))
            headers = {"Authorization": self._basic_header() or ""}
        response = self._send(host, "GET", realm, params=params, headers=headers, with_secret=with_basic)
        with response:
            return self._token_or_error(host, realm, response, what="username/password" if with_basic else None)

    def _send(self, host: str, method: str, url: str, *, with_secret: bool, data: Mapping[str, str] | None = None,
              params: list[tuple[str, str]] | None = None, headers: Mapping[str, str] | None = None) -> Response:
        """One token request, following redirects only where credentials may go."""
        if requests is None:  # pragma: no cover - module_utils import without requests
            raise TransportError(f"the Python library 'requests' is needed to talk to registries: {REQUESTS_IMPORT_ERROR}")
        for _redirect in range(_MAX_REDIRECTS + 1):
            try:
                response = self.session.request(
                    method, url, data=data, params=params, headers=dict(headers or {}),
                    timeout=self.timeout, allow_redirects=False, stream=True,
                    # Explicit, because requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
                    # override a session's verify (and so validate_certs / ca_path).
                    verify=self.session.verify, cert=self.session.cert,
                )
            except requests.RequestException as exc:
                raise _unreachable(host, method, url, exc, self._scrub) from None
            if response.status_code not in (301, 302, 303, 307, 308) or not response.headers.get("Location"):
                return response
            response.close()
            target = urljoin(url, response.headers["Location"])
            same = _same_host(urlsplit(target).netloc, urlsplit(url).netloc)
            downgrade = urlsplit(url).scheme == "https" and urlsplit(target).scheme != "https"
            if with_secret and (not same or downgrade):
                raise AuthenticationError(self._scrub(
                    f"the token service of {host} redirected to {urlsplit(target).hostname or target}: refusing to "
                    "send credentials to another host or over plain HTTP; configure the registry with its final "
                    "token URL"
                ))
            check_realm(target, host, self.plain_http_hosts, with_credentials=with_secret)
            url, params = target, None  # the Location already carries the query
        raise TransportError(f"the token service of {host} redirected more than {_MAX_REDIRECTS} times; giving up")

    def _read_capped(self, realm: str, response: Response) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_token_bytes:
            raise TooLargeError(
                f"the token service at {realm} sent a {declared}-byte answer, more than the "
                f"{self.max_token_bytes}-byte limit for tokens: it is broken or not a token service"
            )
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > self.max_token_bytes:
                    raise TooLargeError(
                        f"the token service at {realm} sent more than the {self.max_token_bytes}-byte limit for "
                        "tokens: it is broken or not a token service"
                    )
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise TransportError(f"reading the answer of the token service at {realm} failed: {type(exc).__name__}") from None
        return b"".join(chunks)

    def _token_or_error(self, host: str, realm: str, response: Response, *, what: str | None) -> _Token:
        status = response.status_code
        if 200 <= status < 300:
            return token_from_response(self._read_capped(realm, response), realm, self.clock())
        if status == 401:
            if what == "username/password":
                raise AuthenticationError(
                    f"the registry rejected the username/password for {host}: check username/password or the "
                    f"auth file entry (source: {self._source()})", status=401,
                )
            if what == "identity token":
                raise AuthenticationError(
                    f"the registry rejected the identity token for {host} (source: {self._source()}): it may have "
                    "expired or been revoked; log in again", status=401,
                )
            raise AuthenticationError(
                f"the registry {host} requires credentials", host=host, status=401, hint="login_needed",
                advice="give a username and password or a token, or log in so the auth file has an entry for it",
            )
        if status == 403:
            raise AuthorizationError(
                f"the token service of {host} refused access (HTTP 403) for {self._who()}: check that the account "
                "may use this repository", status=403,
            )
        if status >= 500 or status in (408, 429):
            raise TransportError(
                f"the token service of {host} at {realm} failed with HTTP {status}: try again later", status=status,
            )
        raise AuthenticationError(
            f"the token service of {host} at {realm} answered HTTP {status} to a token request for {self._who()}: "
            "check the credentials and the registry's auth configuration", status=status,
        )

    # -- messages ------------------------------------------------------------------------

    def _source(self) -> str:
        return self.credentials.source if self.credentials is not None else "anonymous"

    def _who(self) -> str:
        creds = self.credentials
        if creds is None:
            return "an anonymous client"
        if creds.username:
            return f"user {creds.username!r} (source: {creds.source})"
        return f"the credentials from {creds.source}"

    def _scrub(self, text: str) -> str:
        scrubbed: str = scrub(text, self.credentials)
        return scrubbed


def _unreachable(host: str, method: str, url: str, exc: BaseException, scrub_text: Callable[[str], str]) -> TransportError:
    """One line for a token request that got no answer: the registry, the token service, the innermost cause.

    urllib3's pool text ("HTTPConnectionPool(host=..., port=...): Max retries exceeded with url: ...")
    repeats the URL with its query and says nothing the fields do not; it is left out.
    """
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}{parts.path}"
    operation = f"{method} token"
    return TransportError(
        scrub_text(f"{operation} for {host}: could not reach the token service at {where} ({innermost_reason(exc)})"),
        host=parts.netloc or host, operation=operation, hint="token_service_unreachable",
        advice="check the network path and proxy to the token service, and the TLS settings")


class _OAuthUnsupported(RegistryError):
    """Internal: the token service does not take OAuth2 POSTs (404/405); fall back to GET."""

    def __init__(self) -> None:
        super().__init__("token service does not support OAuth2 POST")


def _oauth_error(response: Response) -> str | None:
    """The OAuth2 ``error`` code of a token-service error answer, if it has one (reads at most 64 KiB)."""
    try:
        body = json.loads(next(response.iter_content(64 * 1024), b"") or b"{}")
    except (ValueError, requests.RequestException):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) and error else None
