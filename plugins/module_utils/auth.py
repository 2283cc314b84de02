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
  does), 400, or 401 without an OAuth2 error body (some token services answer
  so to a password POST they do not take, and containerd falls back there too);
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ansible_collections.ocireg.registry.plugins.module_utils.credentials import Credentials, scrub
from ansible_collections.ocireg.registry.plugins.module_utils.errors import (
    AuthenticationError,
    AuthorizationError,
    InvalidInputError,
    RegistryError,
    TooLargeError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils.reference import is_loopback

try:
    import requests
except ImportError as _exc:  # ansible-test's import sanity check runs without requests
    requests = None
    REQUESTS_IMPORT_ERROR: ImportError | None = _exc
else:
    REQUESTS_IMPORT_ERROR = None

if TYPE_CHECKING:  # pragma: no cover
    from requests import Response, Session

CLIENT_ID = "ocireg.registry"
# Answers to an OAuth2 password POST after which a GET with Basic credentials is
# tried. A 401 counts only without an OAuth2 error body: {"error": "invalid_grant"}
# is the token service's real answer to a wrong password, not a missing feature.
_PASSWORD_GRANT_FALLBACK = (400, 401, 404, 405)
REGISTRY_CATALOG_SCOPE = "registry:catalog:*"
DEFAULT_TIMEOUT = (10, 60)
# Token responses are a few KiB; 1 MiB bounds a broken or hostile token service.
MAX_TOKEN_BYTES = 1024 * 1024
# token.md: expires_in defaults to 60 s and a token never lives less than that.
MIN_TOKEN_LIFETIME = 60
# Refresh a little early so a token does not expire between lookup and use.
EXPIRY_MARGIN = 10
_MAX_REDIRECTS = 3
_MAX_CACHED_TOKENS = 256

# RFC 7230 tchar, and RFC 7235 token68.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Real registries sometimes send unquoted values that are not RFC tokens
# (realm=https://..., scope=repository:a:pull): accept any run up to a delimiter.
_BARE_VALUE_RE = re.compile(r'[^\s,"]+')
_OWS = " \t"
_ACTION_RE = re.compile(r"[a-z0-9_*\-]+")


# -- WWW-Authenticate ----------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header.

    ``scheme`` is lower-cased (``bearer``, ``basic``); ``params`` has
    lower-cased names and verbatim values; ``token68`` holds the bare
    token68 form some schemes use instead of params.
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def realm(self) -> str | None:
        """The ``realm`` param, if any."""
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        """The ``service`` param (the token's audience), if any."""
        return self.params.get("service")

    @property
    def scopes(self) -> list[str]:
        """The space-separated ``scope`` param as a list."""
        return self.params.get("scope", "").split()

    @property
    def error(self) -> str | None:
        """RFC 6750 ``error`` param, e.g. ``insufficient_scope`` or ``invalid_token``."""
        return self.params.get("error")


class _Parser:
    """A small RFC 7235 ``1#challenge`` parser over one header value."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> InvalidInputError:
        snippet = self.text[max(0, self.pos - 20): self.pos + 20]
        return InvalidInputError(
            f"malformed WWW-Authenticate header: {what} at character {self.pos} (near {snippet!r}); "
            "the registry sent a challenge that does not follow RFC 7235"
        )

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ows(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _OWS:
            self.pos += 1

    def skip_list_separators(self) -> None:
        # RFC 7230 #rule: empty list elements (",,") are tolerated.
        while self.pos < len(self.text) and self.text[self.pos] in _OWS + ",":
            self.pos += 1

    def match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.pos)
        if not found:
            return None
        self.pos = found.end()
        return found.group(0)

    def looks_like_param(self) -> bool:
        """True when the text at pos is ``token BWS "="`` (an auth-param, not a new challenge)."""
        found = _TOKEN_RE.match(self.text, self.pos)
        if not found:
            return False
        rest = found.end()
        while rest < len(self.text) and self.text[rest] in _OWS:
            rest += 1
        return rest < len(self.text) and self.text[rest] == "="

    def quoted_string(self) -> str:
        self.pos += 1  # the opening quote, checked by the caller
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                if self.pos + 1 >= len(self.text):
                    break
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == '"':
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self.fail("unterminated quoted string")

    def param(self) -> tuple[str, str]:
        name = self.match(_TOKEN_RE)
        if name is None:
            raise self.fail("expected a parameter name")
        self.skip_ows()
        if self.peek() != "=":
            raise self.fail(f"expected '=' after parameter {name!r}")
        self.pos += 1
        self.skip_ows()
        if self.peek() == '"':
            return name.lower(), self.quoted_string()
        value = self.match(_BARE_VALUE_RE)
        if value is None:
            raise self.fail(f"expected a value for parameter {name!r}")
        return name.lower(), value

    def challenge(self) -> Challenge:
        scheme = self.match(_TOKEN_RE)
        if scheme is None:
            raise self.fail("expected an auth scheme")
        if not self.at_end() and self.peek() not in _OWS + ",":
            raise self.fail(f"unexpected character after auth scheme {scheme!r}")
        self.skip_ows()
        params: dict[str, str] = {}
        if self.at_end() or self.peek() == ",":
            return Challenge(scheme.lower(), params)
        # token68 first: "abc==" would otherwise read as a param "abc" with value "=".
        start = self.pos
        token68 = self.match(_TOKEN68_RE)
        self.skip_ows()
        if token68 is not None and (self.at_end() or self.peek() == ","):
            return Challenge(scheme.lower(), params, token68)
        self.pos = start
        if not self.looks_like_param():
            raise self.fail(f"expected parameters or a token68 after auth scheme {scheme!r}")
        while True:
            name, value = self.param()
            # RFC 7235: each name appears once; keep the first like Go's net/http callers do.
            params.setdefault(name, value)
            self.skip_ows()
            if self.at_end():
                break
            if self.peek() != ",":
                raise self.fail("expected ',' between parameters")
            self.skip_list_separators()
            if self.at_end() or not self.looks_like_param():
                break  # the next challenge starts here
        return Challenge(scheme.lower(), params)

    def challenges(self) -> list[Challenge]:
        found = []
        self.skip_list_separators()
        while not self.at_end():
            found.append(self.challenge())
            self.skip_list_separators()
        return found


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse one ``WWW-Authenticate`` value into its challenges (RFC 7235).

    Handles several challenges in one header, quoted strings with escapes and
    commas, token68, case-insensitive schemes and param names, and optional
    whitespace. An empty header gives ``[]``; malformed text raises
    :class:`InvalidInputError` (and nothing else).
    """
    if not isinstance(header, str):
        raise InvalidInputError(f"WWW-Authenticate must be text, not {type(header).__name__}")
    return _Parser(header).challenges()


# -- scopes --------------------------------------------------------------------------------


def scope_for(repository: str, actions: Iterable[str]) -> str:
    """The token scope for ``actions`` on ``repository``: ``repository:team/app:pull,push``."""
    wanted = sorted(set(actions))
    if not repository or any(c.isspace() for c in repository) or repository != repository.strip("/"):
        raise InvalidInputError(f"cannot build a token scope for repository {repository!r}: give a repository name like team/app")
    if not wanted or not all(_ACTION_RE.fullmatch(a) for a in wanted):
        raise InvalidInputError(f"cannot build a token scope with actions {wanted!r}: use pull, push, delete or *")
    return f"repository:{repository}:{','.join(wanted)}"


def _parse_scope(scope: str) -> tuple[str, str, frozenset[str]] | None:
    """``type:name:a,b`` -> (type, name, actions); None if it does not follow the grammar.

    The name may hold one ':' (a host port), so actions are after the last ':'.
    """
    head, sep, actions = scope.rpartition(":")
    rtype, sep2, name = head.partition(":")
    if not (sep and sep2 and rtype and name):
        return None
    parsed = frozenset(a for a in actions.split(",") if a)
    return (rtype, name, parsed) if parsed else None


def clean_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Merge scopes per resource, drop duplicates, sort: the canonical form used as a cache key.

    Scopes that do not follow the scope grammar are kept verbatim.
    """
    merged: dict[tuple[str, str], set[str]] = {}
    verbatim: set[str] = set()
    for scope in scopes:
        scope = scope.strip()
        if not scope:
            continue
        parsed = _parse_scope(scope)
        if parsed is None:
            verbatim.add(scope)
            continue
        merged.setdefault(parsed[:2], set()).update(parsed[2])
    out = set(verbatim)
    for (rtype, name), actions in merged.items():
        out.add(f"{rtype}:{name}:{'*' if '*' in actions else ','.join(sorted(actions))}")
    return tuple(sorted(out))


def scopes_cover(granted: Iterable[str], wanted: Iterable[str]) -> bool:
    """True when a token asked for ``granted`` scopes also asked for everything in ``wanted``."""
    have: dict[tuple[str, str], set[str]] = {}
    have_verbatim: set[str] = set()
    for scope in granted:
        parsed = _parse_scope(scope)
        if parsed is None:
            have_verbatim.add(scope)
        else:
            have.setdefault(parsed[:2], set()).update(parsed[2])
    for scope in wanted:
        parsed = _parse_scope(scope)
        if parsed is None:
            if scope not in have_verbatim:
                return False
            continue
        actions = have.get(parsed[:2], set())
        if "*" not in actions and not parsed[2] <= actions:
            return False
    return True


# -- hosts and realms ----------------------------------------------------------------------


def split_host_port(netloc: str) -> tuple[str, str]:
    """``host[:port]`` (IPv6 in brackets) -> (host lower-cased without brackets, port or '')."""
    netloc = netloc.rsplit("@", 1)[-1].strip().lower()
    if netloc.startswith("["):
        host, rest = netloc[1:].split("]", 1) if "]" in netloc else (netloc[1:], "")
        return host, rest[1:] if rest.startswith(":") else ""
    if netloc.count(":") == 1:
        host, port = netloc.split(":")
        return host, port
    return netloc, ""


def _same_host(a: str, b: str) -> bool:
    return split_host_port(a)[0] == split_host_port(b)[0]


def check_realm(realm: str | None, registry_host: str, plain_http_hosts: frozenset[str],
                *, with_credentials: bool) -> str:
    """Decide whether a token realm may be used; return it, or raise AuthenticationError saying why.

    Pure decision, no network. ``plain_http_hosts`` are the hosts the user
    allowed plain HTTP for.
    """
    if not realm:
        raise AuthenticationError(
            f"the registry {registry_host} asked for a Bearer token but named no realm (token service URL): "
            "the registry's auth configuration is broken; ask its operator to set a realm"
        )
    try:
        parts = urlsplit(realm)
        netloc = parts.netloc
        scheme = parts.scheme.lower()
        if parts.port is not None and parts.port <= 0:  # .port raises ValueError for a malformed port
            raise ValueError(realm)
    except ValueError:
        raise AuthenticationError(f"the registry {registry_host} named a token realm that is not a valid URL: {realm!r}") from None
    if scheme not in ("http", "https") or not parts.hostname:
        raise AuthenticationError(
            f"the registry {registry_host} named a token realm that is not an absolute http(s) URL: {realm!r}; "
            "refusing to use it"
        )
    if "@" in netloc:
        raise AuthenticationError(f"the registry {registry_host} named a token realm with user info in its URL; refusing to use it")
    if scheme == "https":
        return realm
    realm_host = netloc.lower()
    allowed = {h.lower() for h in plain_http_hosts}
    if is_loopback(realm_host) or realm_host in allowed or parts.hostname in {split_host_port(h)[0] for h in allowed}:
        return realm
    if not with_credentials and (registry_host.lower() in allowed or is_loopback(registry_host)):
        return realm  # the user accepted plain HTTP for this registry, and nothing secret is sent
    raise AuthenticationError(
        f"the registry {registry_host} sends its token requests to plain-HTTP {parts.hostname}: refusing to "
        "send credentials over an unencrypted connection to another host; use an https realm, or allow plain HTTP "
        "for that host explicitly"
    )


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


# -- tokens --------------------------------------------------------------------------------


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
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AuthenticationError(
            f"the token service at {realm} answered with something that is not JSON: "
            "it is not a Distribution token service, or it is broken"
        ) from None
    if not isinstance(data, dict):
        raise AuthenticationError(f"the token service at {realm} answered with JSON that is not an object")
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
        timeout: Any = DEFAULT_TIMEOUT,
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
                    and not (response.status_code == 401 and _has_oauth_error(response))):
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
                raise TransportError(self._scrub(
                    f"could not reach the token service of {host} at {url}: {type(exc).__name__}: {exc}; "
                    "check the network, proxy and TLS settings (validate_certs, ca_path)"
                )) from None
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
                f"the registry {host} requires credentials: give username and password or registry_token, "
                "or log in so the auth file has an entry for it", status=401,
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
        return scrub(text, self.credentials)


class _OAuthUnsupported(RegistryError):
    """Internal: the token service does not take OAuth2 POSTs (404/405); fall back to GET."""

    def __init__(self) -> None:
        super().__init__("token service does not support OAuth2 POST")


def _has_oauth_error(response: Response) -> bool:
    """Whether a token-service error answer carries an OAuth2 ``error`` field (reads at most 64 KiB)."""
    try:
        body = json.loads(next(response.iter_content(64 * 1024), b"") or b"{}")
    except (ValueError, requests.RequestException):
        return False
    return isinstance(body, dict) and bool(body.get("error"))
